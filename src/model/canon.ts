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
import { F_ENTIRE, F_FILE, F_HUGETLB, F_INDEX, F_KIND, F_NR, F_PIN, F_REF, F_SWAP, FOLIO_HEADER } from './folio.ts';
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
import type { File, Mm, PinSet, Pipe, Proc, State } from './types.ts';

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

/** The two words of a value that may not fit 32 bits (sizes, limits): low and high halves, so
 *  (x, 0) for 0 <= x < 2^31; Infinity (RLIM_INFINITY) is (-1, -1). */
const wideHi = (x: number): number => (x === Number.POSITIVE_INFINITY ? -1 : Math.floor(x / 4294967296) | 0);
const wideLo = (x: number): number => (x === Number.POSITIVE_INFINITY ? -1 : (x - Math.floor(x / 4294967296) * 4294967296) | 0);

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
    if (this.store) this.put(x);
    this.n++;
    this.a = Math.imul(this.a ^ x, 0x01000193);
    const b = Math.imul(this.b ^ x, 0x5bd1e995);
    this.b = b ^ (b >>> 15);
  }

  // w2..w5: several words in one call, the lanes kept in locals. The walk calls these ~100 times
  // a state; one call per word was a third of the hashing time (V8 stops inlining in big callers).
  w2(x0: number, x1: number): void {
    if (this.store) this.put(x0, x1);
    this.n += 2;
    let a = this.a;
    let b = this.b;
    a = Math.imul(a ^ x0, 0x01000193);
    b = Math.imul(b ^ x0, 0x5bd1e995);
    b ^= b >>> 15;
    a = Math.imul(a ^ x1, 0x01000193);
    b = Math.imul(b ^ x1, 0x5bd1e995);
    this.a = a;
    this.b = b ^ (b >>> 15);
  }

  w3(x0: number, x1: number, x2: number): void {
    this.w2(x0, x1);
    this.w(x2);
  }

  w4(x0: number, x1: number, x2: number, x3: number): void {
    this.w2(x0, x1);
    this.w2(x2, x3);
  }

  w5(x0: number, x1: number, x2: number, x3: number, x4: number): void {
    this.w2(x0, x1);
    this.w3(x2, x3, x4);
  }

  /** Keeps words for encodeState (the fingerprint alone does not store them). */
  put(...xs: number[]): void {
    let n = this.n;
    for (const x of xs) {
      if (n === this.buf.length) this.buf = grow(this.buf, n);
      this.buf[n++] = x;
    }
  }

  /** A value that may not fit 32 bits (byte counts, limits): two words, wideLo and wideHi. */
  wide(x: number): void {
    this.w2(wideLo(x), wideHi(x));
  }

  /** Runs of equal values in h[at, at + n) (per-unit mapcount, PG_anon_exclusive, content tokens). */
  runs(h: readonly number[], at: number, n: number): void {
    const end = at + n;
    let i = at;
    while (i < end) {
      const v = h[i];
      let j = i + 1;
      while (j < end && h[j] === v) j++;
      this.w2(v, j - i);
      i = j;
    }
    this.w(-1);
  }

  procRef(pid: number): void {
    this.w(this.procName(pid));
  }

  procName(pid: number): number {
    return pid >= 0 && pid < this.procGen.length && this.procGen[pid] === this.gen ? this.procNum[pid] : -1;
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
    const c = f.cache.raw();
    for (let i = 0; i < c.length; i += 2) {
      this.w(c[i]);
      this.folioRef(c[i + 1]);
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
    const num = this.folios++;
    const r = this.st.folios.recordOf(id);
    if (r === undefined) {
      this.w2(num, -2);
      return;
    }
    this.foliosSeen++;
    this.folioBody(num, id, r);
  }

  /** A folio's canonical number and record (layout in folio.ts). The common shapes (a small
   *  folio; not in a cache) take the fewest calls. */
  folioBody(num: number, id: number, r: readonly number[]): void {
    const nr = r[F_NR];
    const hs = r[F_HUGETLB];
    this.w4(num, r[F_KIND], wideLo(hs), wideHi(hs));
    this.w5(nr, r[F_REF], r[F_PIN], r[F_ENTIRE], r[F_INDEX]);
    const u = FOLIO_HEADER;
    if (nr === 1) {
      // one run each: value, length 1, end
      this.w3(r[u], 1, -1);
      this.w3(r[u + 1], 1, -1);
      this.w3(r[u + 2], 1, -1);
    } else {
      this.runs(r, u, nr); // mapcount per unit
      this.runs(r, u + nr, nr); // PG_anon_exclusive per unit
      this.runs(r, u + 2 * nr, nr); // content per unit
    }
    const slot = r[F_SWAP];
    const file = r[F_FILE];
    if (slot < 0 && file < 0) {
      this.w3(0, -1, -1); // not in the swap cache, no slot, no file
      return;
    }
    this.w(slot >= 0 && this.st.swapcache.get(slot) === id ? 1 : 0);
    this.slotRef(slot);
    this.fileRef(file);
  }

  /** A PTE from its raw value: key, kind and flags, then the unit and the folio, or the slot. */
  pteWords(key: number, w: number): void {
    const bits = entryBits(w);
    if ((bits & KIND_MASK) === PTE_PAGE) {
      this.w3(key, pteCanonBits(bits), bits >>> OFF_SHIFT);
      this.folioRef(entryRef(w));
    } else {
      this.w2(key, pteCanonBits(bits));
      if ((bits & KIND_MASK) === PTE_SWAP) this.slotRef(entryRef(w));
    }
  }

  mmBody(mm: Mm): void {
    this.w5(+mm.hasPinned, mm.lockedVm, mm.pinnedVm, +mm.hugeZeroRef, mm.mmapBase / PAGE_SIZE);
    for (const v of mm.vmas) {
      this.w5(v.start / PAGE_SIZE, v.end / PAGE_SIZE, v.flags, v.pgoff / PAGE_SIZE, +v.anonVma);
      this.w3(wideLo(v.hugetlb), wideHi(v.hugetlb), v.resv);
      this.fileRef(v.file);
    }
    this.w(-1);
    // page tables by ascending vpn (vpns are below 2^32, see FIRST_MMAP; tables keep keys sorted),
    // read as raw values without decoding them
    const pt = mm.pte.raw();
    for (let i = 0; i < pt.length; i += 2) this.pteWords(pt[i], pt[i + 1]);
    const pmd = mm.pmd.raw();
    const huge = mm.huge.raw();
    if (pmd.length === 0 && huge.length === 0) {
      this.w3(-1, -1, -1); // the ends of the PTEs, of no PMD leaves and of no hugetlb entries
      return;
    }
    this.w(-1);
    for (let i = 0; i < pmd.length; i += 2) {
      this.w2(pmd[i], pmdCanonWord(pmd[i + 1]));
      this.folioRef(entryRef(pmd[i + 1]));
    }
    this.w(-1);
    for (let i = 0; i < huge.length; i += 2) {
      this.w2(huge[i], hugeCanonWord(huge[i + 1]));
      this.folioRef(entryRef(huge[i + 1]));
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
      this.w5(wideLo(h.size), wideHi(h.size), h.nr, h.free, h.resv);
    }
    this.w4(s.zeroPageRefs, s.hugeZeroRefs, s.hugeZeroPins, s.userLockedVm);
    // processes are named by creation order (pids ascend with creation; tables keep keys ascending)
    let rank = 0;
    const procs = s.procs.raw();
    for (let i = 0; i < procs.length; i += 2) {
      const pid = procs[i] as number;
      if (pid >= this.procGen.length) {
        this.procGen = grow(this.procGen, pid);
        this.procNum = grow(this.procNum, pid);
      }
      this.procGen[pid] = this.gen;
      this.procNum[pid] = rank++;
    }
    for (let i = 1; i < procs.length; i += 2) {
      const p = procs[i] as Proc;
      const flags = +p.alive | (+p.capIpcLock << 1);
      const limit = p.memlockLimit;
      this.w5(this.procName(p.parent), flags, p.status, wideLo(limit), wideHi(limit));
      this.mmBody(p.mm);
    }
    this.w(-1);
    const files = s.files.raw();
    for (let i = 0; i < files.length; i += 2) this.fileRef(files[i] as number);
    this.w(-1);
    const pipes = s.pipes.raw();
    for (let i = 1; i < pipes.length; i += 2) {
      const pipe = pipes[i] as Pipe;
      for (const b of pipe.bufs) {
        this.w2(b.first, b.n);
        this.folioRef(b.folio);
      }
      this.w(-1);
    }
    this.w(-1);
    const pins = s.pins.raw();
    for (let i = 1; i < pins.length; i += 2) {
      const ps = pins[i] as PinSet;
      const user = ps.user === 'gup_test' ? 0 : ps.user === 'io_uring' ? 1 : ps.user === 'vfio' ? 2 : 3;
      this.w3(user, this.procName(ps.owner), ps.flags);
      this.w3(ps.accountedPinned, ps.accountedLocked, ps.accountedUser);
      for (const r of ps.runs) {
        this.w2(r.first, r.n);
        this.folioRef(r.folio);
      }
      this.w(-1);
    }
    this.w(-1);
    // what nothing references (only a leak would leave such a folio or slot)
    // (a folio nothing refers to: only a leak leaves one; usually every folio is named by now)
    if (this.foliosSeen !== s.folios.size) for (const key of s.folios.keys()) if (this.folioGen[key] !== this.gen) this.folioRef(key);
    this.w(-1);
    if (this.slotsSeen !== s.swap.size)
      for (const key of s.swap.keys()) if (key >= this.slotGen.length || this.slotGen[key] !== this.gen) this.slotRef(key);
    this.w2(-1, s.swapcache.size);
    return this.n;
  }
}

const E = new Encoder();

/** The canonical words of a state (a fresh copy). Equal arrays iff equal up to renaming. */
export function encodeState(s: State): Int32Array {
  // encode first: it may replace E.buf with a bigger one (E.buf.slice(0, E.encode(...)) read the
  // old, shorter buffer and cut the first state longer than any before at its length)
  const n = E.encode(s, true);
  return E.buf.slice(0, n);
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
