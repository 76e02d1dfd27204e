/**
 * The canonical form of a state: a flat Int32Array, and its 64-bit fingerprint.
 *
 * Two states that differ only in the arbitrary names the model hands out (folio ids, swap slots,
 * pids, file/pipe/pin ids, the next-id counters) encode to the same words; any other difference
 * changes them. That is what the explorer needs: a page reached by two histories is one state.
 *
 * - Folios and swap slots are renumbered by first reference in a fixed walk (processes by pid,
 *   then each mm's VMAs and page tables by address, then files, pipes, pins), and a folio's body
 *   is written inline at its first reference (so no sort is needed).
 * - Processes, files, pipes and pins keep their creation order (ascending id) as their name.
 * - The swap cache is implied by the folios (PG_swapcache + the slot; the invariants check that
 *   both sides agree), so only its size is written.
 *
 * Speed matters here (the explorer hashes every state it reaches): one reusable buffer, renumbering
 * through generation-stamped scratch arrays instead of Maps, no strings.
 */
import { PAGE_SIZE } from './constants.ts';
import {
  BIT_DIRTY,
  BIT_EXCLUSIVE,
  BIT_SOFT_DIRTY,
  BIT_WRITE,
  entryBits,
  entryRef,
  KIND_MASK,
  OFF_SHIFT,
  PTE_PAGE,
  PTE_SWAP,
  PTE_ZERO,
} from './pagetable.ts';
import type { File, Folio, Mm, State } from './types.ts';

// The canonical word of a page-table entry's kind and flags, from its raw value (pagetable.ts).
// The positions predate the packed entries and are kept, so the canonical form did not change.

/** A PTE: kind (page 1, zero 2, swap 3), then write 3, dirty 4, soft-dirty 5; a swap PTE's
 *  exclusive marker at 3. */
export function pteCanonWord(w: number): number {
  return pteCanonBits(entryBits(w));
}

/** pteCanonWord from the low 16 bits, for the encoder that has them already. */
function pteCanonBits(bits: number): number {
  const kind = bits & KIND_MASK;
  if (kind === PTE_PAGE) return PTE_PAGE | ((bits & (BIT_WRITE | BIT_DIRTY | BIT_SOFT_DIRTY)) << 1);
  if (kind === PTE_ZERO) return PTE_ZERO | ((bits & BIT_SOFT_DIRTY) << 1);
  return PTE_SWAP | ((bits & BIT_EXCLUSIVE) >>> 2) | ((bits & BIT_SOFT_DIRTY) << 1);
}

/** A PMD leaf: kind (thp 1, hugezero 2), then write 3, dirty 4, soft-dirty 5. */
export function pmdCanonWord(w: number): number {
  const bits = entryBits(w);
  return (bits & KIND_MASK) | ((bits & (BIT_WRITE | BIT_DIRTY | BIT_SOFT_DIRTY)) << 1);
}

/** A hugetlb entry: write 0, dirty 1. */
export function hugeCanonWord(w: number): number {
  return (entryBits(w) & (BIT_WRITE | BIT_DIRTY)) >>> 2;
}

function grow(a: Int32Array<ArrayBuffer>, need: number): Int32Array<ArrayBuffer> {
  let len = a.length;
  while (len <= need) len *= 2;
  const b = new Int32Array(len);
  b.set(a);
  return b;
}

/** The encoder: output buffer and renumbering scratch, reused across calls. A class with fields
 *  rather than module variables: V8 reaches monomorphic fields faster than module-level lets. */
class Encoder {
  buf = new Int32Array(1024);
  n = 0;
  gen = 0;
  /** per raw id: the generation that named it, and its canonical number */
  folioGen = new Int32Array(1024);
  folioNum = new Int32Array(1024);
  slotGen = new Int32Array(256);
  slotNum = new Int32Array(256);
  fileGen = new Int32Array(256);
  fileNum = new Int32Array(256);
  procGen = new Int32Array(256);
  procNum = new Int32Array(256);
  folios = 0;
  slots = 0;
  /** folios and slots written that exist in the state (a broken state may refer to freed ones) */
  foliosSeen = 0;
  slotsSeen = 0;
  files = 0;
  st!: State;

  /** Two 32-bit hash lanes over the words, and whether the words are also kept (encodeState). */
  a = 0;
  b = 0;
  store = false;

  w(x: number): void {
    if (this.store) {
      if (this.n === this.buf.length) this.buf = grow(this.buf, this.n);
      this.buf[this.n] = x;
    }
    this.n++;
    this.a = Math.imul(this.a ^ x, 0x01000193);
    const b = Math.imul(this.b ^ x, 0x5bd1e995);
    this.b = b ^ (b >>> 15);
  }

  /** A value that may not fit 32 bits (byte counts, limits): two words; Infinity is (-1, -1). */
  wide(x: number): void {
    if (x === Number.POSITIVE_INFINITY) {
      this.w(-1);
      this.w(-1);
      return;
    }
    if (x >= 0 && x < 2147483648) {
      this.w(x);
      this.w(0);
      return;
    }
    const hi = Math.floor(x / 4294967296);
    this.w((x - hi * 4294967296) | 0);
    this.w(hi | 0);
  }

  /** Runs of equal values in an array (per-unit mapcount, PG_anon_exclusive, content tokens). */
  runs(a: ArrayLike<number | boolean>): void {
    let i = 0;
    while (i < a.length) {
      const v = a[i];
      let j = i + 1;
      while (j < a.length && a[j] === v) j++;
      this.w(+v);
      this.w(j - i);
      i = j;
    }
    this.w(-1);
  }

  procRef(pid: number): void {
    this.w(pid >= 0 && pid < this.procGen.length && this.procGen[pid] === this.gen ? this.procNum[pid] : -1);
  }

  slotRef(slot: number): void {
    if (slot < 0) {
      this.w(-1);
      return;
    }
    if (slot >= this.slotGen.length) {
      this.slotGen = grow(this.slotGen, slot);
      this.slotNum = grow(this.slotNum, slot);
    }
    if (this.slotGen[slot] === this.gen) {
      this.w(this.slotNum[slot]);
      return;
    }
    this.slotGen[slot] = this.gen;
    this.slotNum[slot] = this.slots;
    this.w(this.slots++);
    const sw = this.st.swap.get(slot);
    if (!sw) {
      this.w(-2); // a reference to a freed slot: only a broken state has one
      return;
    }
    this.slotsSeen++;
    this.w(sw.count);
    this.w(sw.data);
  }

  fileRef(id: number): void {
    if (id < 0) {
      this.w(-1);
      return;
    }
    if (id >= this.fileGen.length) {
      this.fileGen = grow(this.fileGen, id);
      this.fileNum = grow(this.fileNum, id);
    }
    if (this.fileGen[id] === this.gen) {
      this.w(this.fileNum[id]);
      return;
    }
    this.fileGen[id] = this.gen;
    this.fileNum[id] = this.files;
    this.w(this.files++);
    const f = this.st.files.get(id);
    if (!f) {
      this.w(-2);
      return;
    }
    this.fileBody(f);
  }

  fileBody(f: File): void {
    this.w(f.kind === 'shmem' ? 0 : f.kind === 'disk' ? 1 : 2);
    this.wide(f.hugetlb);
    this.wide(f.size);
    const ck = f.cache.rawKeys();
    const cv = f.cache.rawValues();
    for (let i = 0; i < ck.length; i++) {
      this.w(ck[i]);
      this.folioRef(cv[i]);
    }
    this.w(-1);
    for (const [token, pages] of f.disk) {
      this.w(token);
      this.w(pages);
    }
    this.w(-1);
  }

  folioRef(id: number): void {
    if (id < 0) {
      this.w(id - 1); // ZERO_FOLIO / HUGE_ZERO_FOLIO as -2 / -3, apart from "first reference" numbers
      return;
    }
    if (id >= this.folioGen.length) {
      this.folioGen = grow(this.folioGen, id);
      this.folioNum = grow(this.folioNum, id);
    }
    if (this.folioGen[id] === this.gen) {
      this.w(this.folioNum[id]);
      return;
    }
    this.folioGen[id] = this.gen;
    this.folioNum[id] = this.folios;
    this.w(this.folios++);
    const f = this.st.folios.get(id);
    if (!f) {
      this.w(-2);
      return;
    }
    this.foliosSeen++;
    this.folioBody(f);
  }

  folioBody(f: Folio): void {
    this.w(f.kind === 'anon' ? 0 : 1);
    this.wide(f.hugetlb);
    this.w(f.nr);
    this.w(f.refcount);
    this.w(f.pincount);
    this.w(f.entireMapcount);
    this.w(f.index);
    this.runs(f.mapcount);
    this.runs(f.exclusive);
    this.runs(f.data);
    this.w(f.swapSlot >= 0 && this.st.swapcache.get(f.swapSlot) === f.id ? 1 : 0);
    this.slotRef(f.swapSlot);
    this.fileRef(f.file);
  }

  /** A PTE from its raw value: key, kind and flags, then the unit and the folio, or the slot. */
  pteWords(key: number, w: number): void {
    const bits = entryBits(w);
    const kind = bits & KIND_MASK;
    this.w(key);
    this.w(pteCanonBits(bits));
    if (kind === PTE_PAGE) {
      this.w(bits >>> OFF_SHIFT);
      this.folioRef(entryRef(w));
    } else if (kind === PTE_SWAP) this.slotRef(entryRef(w));
  }

  mmBody(mm: Mm): void {
    this.w(+mm.hasPinned);
    this.w(mm.lockedVm);
    this.w(mm.pinnedVm);
    this.w(+mm.hugeZeroRef);
    this.w(mm.mmapBase / PAGE_SIZE);
    for (const v of mm.vmas) {
      this.w(v.start / PAGE_SIZE);
      this.w(v.end / PAGE_SIZE);
      this.w(v.flags);
      this.w(v.pgoff / PAGE_SIZE);
      this.w(+v.anonVma);
      this.wide(v.hugetlb);
      this.w(v.resv);
      this.fileRef(v.file);
    }
    this.w(-1);
    // page tables by ascending vpn (vpns are below 2^32, see FIRST_MMAP; tables keep keys sorted),
    // read as raw values without decoding them
    const pk = mm.pte.rawKeys();
    const pw = mm.pte.rawWords();
    for (let i = 0; i < pk.length; i++) this.pteWords(pk[i], pw[i]);
    this.w(-1);
    const mk = mm.pmd.rawKeys();
    const mw = mm.pmd.rawWords();
    for (let i = 0; i < mk.length; i++) {
      this.w(mk[i]);
      this.w(pmdCanonWord(mw[i]));
      this.folioRef(entryRef(mw[i]));
    }
    this.w(-1);
    const hk = mm.huge.rawKeys();
    const hw = mm.huge.rawWords();
    for (let i = 0; i < hk.length; i++) {
      this.w(hk[i]);
      this.w(hugeCanonWord(hw[i]));
      this.folioRef(entryRef(hw[i]));
    }
    this.w(-1);
  }

  /** Writes the canonical words of `s` into the shared buffer; returns their count. */
  encode(s: State, store: boolean): number {
    this.st = s;
    this.n = 0;
    this.store = store;
    this.a = 0x811c9dc5 | 0;
    this.b = 0x9e3779b9 | 0;
    this.folios = this.slots = this.files = this.foliosSeen = this.slotsSeen = 0;
    this.gen++;
    if (this.gen === 0x7fffffff) {
      this.gen = 1;
      this.folioGen.fill(0);
      this.slotGen.fill(0);
      this.fileGen.fill(0);
      this.procGen.fill(0);
    }
    for (const h of s.hugetlb) {
      this.wide(h.size);
      this.w(h.nr);
      this.w(h.free);
      this.w(h.resv);
    }
    this.w(s.zeroPageRefs);
    this.w(s.hugeZeroRefs);
    this.w(s.hugeZeroPins);
    this.w(s.userLockedVm);
    // processes are named by creation order (pids ascend with creation; tables keep keys ascending)
    let rank = 0;
    const procKeys = s.procs.rawKeys();
    const procs = s.procs.rawValues();
    for (const pid of procKeys) {
      if (pid >= this.procGen.length) {
        this.procGen = grow(this.procGen, pid);
        this.procNum = grow(this.procNum, pid);
      }
      this.procGen[pid] = this.gen;
      this.procNum[pid] = rank++;
    }
    for (const p of procs) {
      this.procRef(p.parent);
      this.w(+p.alive | (+p.capIpcLock << 1));
      this.w(p.status);
      this.wide(p.memlockLimit);
      this.mmBody(p.mm);
    }
    this.w(-1);
    for (const key of s.files.rawKeys()) this.fileRef(key);
    this.w(-1);
    for (const pipe of s.pipes.rawValues()) {
      for (const b of pipe.bufs) {
        this.w(b.first);
        this.w(b.n);
        this.folioRef(b.folio);
      }
      this.w(-1);
    }
    this.w(-1);
    for (const ps of s.pins.rawValues()) {
      this.w(ps.user === 'gup_test' ? 0 : ps.user === 'io_uring' ? 1 : ps.user === 'vfio' ? 2 : 3);
      this.procRef(ps.owner);
      this.w(ps.flags);
      this.w(ps.accountedPinned);
      this.w(ps.accountedLocked);
      this.w(ps.accountedUser);
      for (const r of ps.runs) {
        this.w(r.first);
        this.w(r.n);
        this.folioRef(r.folio);
      }
      this.w(-1);
    }
    this.w(-1);
    // what nothing references (only a leak would leave such a folio or slot)
    // (a folio nothing refers to: only a leak leaves one; usually every folio is named by now)
    if (this.foliosSeen !== s.folios.size) for (const key of s.folios.rawKeys()) if (this.folioGen[key] !== this.gen) this.folioRef(key);
    this.w(-1);
    if (this.slotsSeen !== s.swap.size)
      for (const key of s.swap.rawKeys()) if (key >= this.slotGen.length || this.slotGen[key] !== this.gen) this.slotRef(key);
    this.w(-1);
    this.w(s.swapcache.size);
    return this.n;
  }
}

const E = new Encoder();

/** The canonical words of a state (a fresh copy). Equal arrays iff equal up to renaming. */
export function encodeState(s: State): Int32Array {
  return E.buf.slice(0, E.encode(s, true));
}

/** 64-bit fingerprint of the canonical form, as two unsigned 32-bit halves [hi, lo]: the words are
 *  hashed as they are produced (two multiply-xorshift lanes), the length mixed in at the end. */
export function fingerprint(s: State): [number, number] {
  const len = E.encode(s, false);
  let a = E.a ^ len;
  let b = E.b;
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= b;
  a ^= a >>> 13;
  b = Math.imul(b ^ (a >>> 11), 0xc2b2ae35);
  b ^= b >>> 16;
  return [a >>> 0, b >>> 0];
}
