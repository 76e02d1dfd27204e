/**
 * The canonical form of a state: a flat Int32Array, and its 64-bit fingerprint.
 *
 * Two states that differ only in the arbitrary names the model hands out (folio ids, swap slots,
 * pids, file/pipe/pin ids, the next-id counters) encode to the same words; any other difference
 * changes them. That is what the explorer needs: a page reached by two histories is one state.
 *
 * - Folios, swap slots and files are renamed by first reference in a fixed walk (processes by pid,
 *   then each mm's VMAs and page tables by address, then files, pipes, pins), and their bodies are
 *   written inline at the first reference (so no sort is needed). A later reference writes the
 *   name (0, 1, ...); a first one writes a negative marker, then the body.
 * - Processes, files, pipes and pins keep their creation order (ascending id) as their name.
 * - The swap cache is implied by the folios (PG_swapcache + the slot; the invariants check that
 *   both sides agree), so only its size is written.
 * - Lists are written as a count, then the items (no end markers a value could be mistaken for).
 *
 * The words, in order (test/model/canon.test.ts decodes them back, which is what shows that no
 * two different states share a form):
 *
 *   state  = #pools (pages nr free resv)*  zeroPageRefs hugeZeroRefs hugeZeroPins userLockedVm
 *            #procs proc*  #files fileRef*  #pipes (#bufs run*)*  #pins pin*
 *            #unreferenced-folios folioRef*  #unreferenced-slots slotRef*  #swapcache
 *   proc   = parent (alive | capIpcLock<<1 | (status+1)<<2) limitLo limitHi  mm
 *   mm     = (hasPinned | hugeZeroRef<<1 | hasPmd<<2 | hasHuge<<3) lockedVm pinnedVm mmapBase/4K
 *            #vmas vma*  #ptes pte*  [#pmds (vpn bits folioRef)* if hasPmd]  [#huge (vpn bits folioRef)* if hasHuge]
 *   vma    = start/4K end/4K flags pgoff/4K hugetlb/4K (resv<<3 | resvUnmapped<<2 | resvOwner<<1 |
 *            anonVma) fileRef
 *   pte    = vpn bits (folioRef if a page | slotRef if a swap entry)
 *   run    = first n folioRef
 *   pin    = (user | owner<<2) flags accountedPinned accountedLocked accountedUser #runs run*
 *   folioRef = name | -2 zeropage | -3 huge zeropage | -4 freed | marker body
 *     marker = -8 - (kind | small<<1 | extra<<2 | !uptodate<<3), small: one unit, not hugetlb, no
 *              pincount, no entire mapcount (the common folio: five words in all)
 *     body   = [hugetlb/4K nr pincount entire if not small] refcount index
 *              unit words: (mapcount<<1 | exclusive) then content, for one unit; for more, the runs
 *              of each as (value length)* until they cover nr units
 *              [inSwapcache slotRef fileRef if extra]
 *   slotRef  = -1 none | name | -4 freed | -3 count data
 *   fileRef  = -1 none | name | -4 freed | -3 kind hugetlb/4K sizeLo sizeHi #cache (index folioRef)* #disk (token pages)*
 *
 * Entry bits are the page table's own (pagetable.ts: kind, write, dirty, soft-dirty, exclusive,
 * unit offset), masked to what the entry's kind uses. Sizes in bytes that may exceed 31 bits are
 * two words; the rest are counts of 4 KiB pages (vpns are below 2^32: FIRST_MMAP, TASK_SIZE).
 *
 * Speed matters here (the explorer hashes every state it reaches): one reusable buffer, renaming
 * through generation-stamped scratch arrays instead of Maps, no strings, few words (a small folio
 * is five; session 5 cut the bench state from 161 words to 95).
 */
import { PAGE_SIZE } from './constants.ts';
import { F_ENTIRE, F_FILE, F_HUGETLB, F_INDEX, F_KIND, F_NR, F_PIN, F_REF, F_SWAP, F_UPTODATE, FOLIO_HEADER } from './folio.ts';
import { BIT_DIRTY, BIT_EXCLUSIVE, BIT_SOFT_DIRTY, BIT_WRITE, entryBits, entryRef, KIND_MASK, PTE_PAGE, PTE_SWAP } from './pagetable.ts';
import type { File, Mm, PinSet, Pipe, Proc, State } from './types.ts';

/** The bits of a PTE that mean something for its kind: a page PTE all but the swap-only exclusive
 *  marker (its unit offset included), a zeropage PTE its soft-dirty bit, a swap PTE the exclusive
 *  marker and soft-dirty. Indexed by kind. */
const PTE_KEEP = [0, 0xffff & ~BIT_EXCLUSIVE, KIND_MASK | BIT_SOFT_DIRTY, KIND_MASK | BIT_EXCLUSIVE | BIT_SOFT_DIRTY];
/** A PMD leaf: kind (THP or huge zeropage), write, dirty, soft-dirty. */
const PMD_KEEP = KIND_MASK | BIT_WRITE | BIT_DIRTY | BIT_SOFT_DIRTY;
/** A hugetlb entry: present, write, dirty. */
const HUGE_KEEP = KIND_MASK | BIT_WRITE | BIT_DIRTY;

/** The canonical word of a PTE's kind, flags and unit offset, from its raw value. */
export function pteCanonWord(w: number): number {
  const bits = entryBits(w);
  return bits & PTE_KEEP[bits & KIND_MASK];
}

/** The canonical word of a PMD leaf from its raw value. */
export function pmdCanonWord(w: number): number {
  return entryBits(w) & PMD_KEEP;
}

/** The canonical word of a hugetlb entry from its raw value. */
export function hugeCanonWord(w: number): number {
  return entryBits(w) & HUGE_KEEP;
}

/** Markers (negative words; names are 0, 1, ...). */
const NONE = -1;
const FIRST = -3;
const FREED = -4;
const FOLIO_MARK = -8;
const SMALL = 2;
const EXTRA = 4;
const NOT_UPTODATE = 8;

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

  /**
   * Two 32-bit hash lanes over the words, and whether the words are also kept (encodeState). Each
   * word goes into both lanes: lane a multiplies and rotates, lane b multiplies and folds its high
   * half down, so in both a word's high bits reach the low bits of later states. (Until session 5,
   * lane a was FNV-1a, whose multiply carries differences only upward: its low 16 bits depended
   * on nothing but the low 16 bits of the words, so states that differ only in high bits, a
   * refcount bias or a vpn, had ~48 bits of fingerprint between them. The rotation costs ~4%.)
   */
  a = 0;
  b = 0;
  store = false;

  w(x: number): void {
    if (this.store) this.put(x);
    const a = Math.imul(this.a ^ x, 0xcc9e2d51);
    this.a = (a << 15) | (a >>> 17);
    const b = Math.imul(this.b ^ x, 0x5bd1e995);
    this.b = b ^ (b >>> 15);
  }

  // w2..w5: several words in one call, the lanes kept in locals. The walk calls these ~40 times
  // for the bench's state; one call per word was a third of the hashing time (V8 stops inlining
  // in big callers).
  w2(x0: number, x1: number): void {
    if (this.store) this.put(x0, x1);
    let a = this.a;
    let b = this.b;
    a = Math.imul(a ^ x0, 0xcc9e2d51);
    a = (a << 15) | (a >>> 17);
    b = Math.imul(b ^ x0, 0x5bd1e995);
    b ^= b >>> 15;
    a = Math.imul(a ^ x1, 0xcc9e2d51);
    a = (a << 15) | (a >>> 17);
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
    this.n = n;
  }

  /** A value that may not fit 32 bits (byte counts, limits): two words, wideLo and wideHi. */
  wide(x: number): void {
    this.w2(wideLo(x), wideHi(x));
  }

  /** Runs of equal values in h[at, at + n) as (value, length) pairs; they end where they cover n. */
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
  }

  /** Runs of (mapcount << 1 | PG_anon_exclusive) over the n units of the record r. */
  unitRuns(r: readonly number[], n: number): void {
    const mc = FOLIO_HEADER;
    const ex = FOLIO_HEADER + n;
    let i = 0;
    while (i < n) {
      const v = (r[mc + i] << 1) | r[ex + i];
      let j = i + 1;
      while (j < n && ((r[mc + j] << 1) | r[ex + j]) === v) j++;
      this.w2(v, j - i);
      i = j;
    }
  }

  procName(pid: number): number {
    return pid >= 0 && pid < this.procGen.length && this.procGen[pid] === this.gen ? this.procNum[pid] : NONE;
  }

  slotRef(slot: number): void {
    if (slot < 0) {
      this.w(NONE);
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
    this.slotNum[slot] = this.slots++;
    const sw = this.st.swap.get(slot);
    if (!sw) {
      this.w(FREED); // a reference to a freed slot: only a broken state has one
      return;
    }
    this.slotsSeen++;
    this.w3(FIRST, sw.count, sw.data);
  }

  fileRef(id: number): void {
    if (id < 0) {
      this.w(NONE);
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
    this.fileNum[id] = this.files++;
    const f = this.st.files.get(id);
    if (!f) {
      this.w(FREED);
      return;
    }
    this.fileBody(f);
  }

  fileBody(f: File): void {
    this.w3(FIRST, f.kind === 'shmem' ? 0 : f.kind === 'disk' ? 1 : 2, f.hugetlb / PAGE_SIZE);
    this.wide(f.size);
    const c = f.cache.raw();
    this.w(c.length >> 1);
    for (let i = 0; i < c.length; i += 2) {
      this.w(c[i]);
      this.folioRef(c[i + 1]);
    }
    this.w(f.disk.length);
    for (const [token, pages] of f.disk) this.w2(token, pages);
  }

  folioRef(id: number): void {
    if (id < 0) {
      this.w(id - 1); // ZERO_FOLIO / HUGE_ZERO_FOLIO as -2 / -3
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
    this.folioNum[id] = this.folios++;
    const r = this.st.folios.recordOf(id);
    if (r === undefined) {
      this.w(FREED);
      return;
    }
    this.foliosSeen++;
    this.folioBody(id, r);
  }

  /** A folio's marker and body (layout in folio.ts and at the top of this file). A small folio
   *  (the common one) is one call. */
  folioBody(id: number, r: readonly number[]): void {
    const nr = r[F_NR];
    const slot = r[F_SWAP];
    const file = r[F_FILE];
    const extra = (slot >= 0 || file >= 0 ? EXTRA : 0) | (r[F_UPTODATE] ? 0 : NOT_UPTODATE);
    const u = FOLIO_HEADER;
    if (nr === 1 && r[F_HUGETLB] === 0 && r[F_PIN] === 0 && r[F_ENTIRE] === 0) {
      this.w5(FOLIO_MARK - (r[F_KIND] | SMALL | extra), r[F_REF], r[F_INDEX], (r[u] << 1) | r[u + 1], r[u + 2]);
    } else {
      this.w5(FOLIO_MARK - (r[F_KIND] | extra), r[F_HUGETLB] / PAGE_SIZE, nr, r[F_PIN], r[F_ENTIRE]);
      this.w2(r[F_REF], r[F_INDEX]);
      if (nr === 1) this.w2((r[u] << 1) | r[u + 1], r[u + 2]);
      else {
        this.unitRuns(r, nr);
        this.runs(r, u + 2 * nr, nr); // content per unit
      }
    }
    if (!(extra & EXTRA)) return;
    this.w(slot >= 0 && this.st.swapcache.get(slot) === id ? 1 : 0);
    this.slotRef(slot);
    this.fileRef(file);
  }

  /** A PTE from its raw value: vpn and bits, then the folio or the slot. */
  pteWords(key: number, w: number): void {
    const c = pteCanonWord(w);
    const kind = c & KIND_MASK; // every kind keeps its kind bits
    this.w2(key, c);
    if (kind === PTE_PAGE) this.folioRef(entryRef(w));
    else if (kind === PTE_SWAP) this.slotRef(entryRef(w));
  }

  mmBody(mm: Mm): void {
    const pmd = mm.pmd.raw();
    const huge = mm.huge.raw();
    const flags = +mm.hasPinned | (+mm.hugeZeroRef << 1) | (pmd.length ? 4 : 0) | (huge.length ? 8 : 0);
    this.w4(flags, mm.lockedVm, mm.pinnedVm, mm.mmapBase / PAGE_SIZE);
    this.w(mm.vmas.length);
    for (const v of mm.vmas) {
      this.w5(v.start / PAGE_SIZE, v.end / PAGE_SIZE, v.flags, v.pgoff / PAGE_SIZE, v.hugetlb / PAGE_SIZE);
      this.w((v.resv << 3) | (+v.resvUnmapped << 2) | (+v.resvOwner << 1) | +v.anonVma);
      this.fileRef(v.file);
    }
    // page tables by ascending vpn (tables keep keys sorted), read as raw values without decoding
    const pt = mm.pte.raw();
    this.w(pt.length >> 1);
    for (let i = 0; i < pt.length; i += 2) this.pteWords(pt[i], pt[i + 1]);
    if (pmd.length) {
      this.w(pmd.length >> 1);
      for (let i = 0; i < pmd.length; i += 2) {
        this.w2(pmd[i], pmdCanonWord(pmd[i + 1]));
        this.folioRef(entryRef(pmd[i + 1]));
      }
    }
    if (huge.length) {
      this.w(huge.length >> 1);
      for (let i = 0; i < huge.length; i += 2) {
        this.w2(huge[i], hugeCanonWord(huge[i + 1]));
        this.folioRef(entryRef(huge[i + 1]));
      }
    }
  }

  /** Hashes the canonical words of `s` into the lanes, and with `store` also writes them into the
   *  shared buffer; returns the count of words stored (0 without `store`). */
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
    this.w(s.hugetlb.length);
    for (const h of s.hugetlb) this.w4(h.size / PAGE_SIZE, h.nr, h.free, h.resv);
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
    this.w(rank);
    for (let i = 1; i < procs.length; i += 2) {
      const p = procs[i] as Proc;
      const limit = p.memlockLimit;
      this.w4(this.procName(p.parent), +p.alive | (+p.capIpcLock << 1) | ((p.status + 1) << 2), wideLo(limit), wideHi(limit));
      this.mmBody(p.mm);
    }
    const files = s.files.raw();
    this.w(files.length >> 1);
    for (let i = 0; i < files.length; i += 2) this.fileRef(files[i] as number);
    const pipes = s.pipes.raw();
    this.w(pipes.length >> 1);
    for (let i = 1; i < pipes.length; i += 2) {
      const bufs = (pipes[i] as Pipe).bufs;
      this.w(bufs.length);
      for (const b of bufs) {
        this.w2(b.first, b.n);
        this.folioRef(b.folio);
      }
    }
    const pins = s.pins.raw();
    this.w(pins.length >> 1);
    for (let i = 1; i < pins.length; i += 2) {
      const ps = pins[i] as PinSet;
      const user = ps.user === 'gup_test' ? 0 : ps.user === 'io_uring' ? 1 : ps.user === 'vfio' ? 2 : 3;
      this.w5(user | (this.procName(ps.owner) << 2), ps.flags, ps.accountedPinned, ps.accountedLocked, ps.accountedUser);
      this.w(ps.runs.length);
      for (const r of ps.runs) {
        this.w2(r.first, r.n);
        this.folioRef(r.folio);
      }
    }
    // what nothing references: only a leak leaves such a folio or slot (usually none)
    this.w(s.folios.size - this.foliosSeen);
    if (this.foliosSeen !== s.folios.size) for (const key of s.folios.keys()) if (this.folioGen[key] !== this.gen) this.folioRef(key);
    this.w(s.swap.size - this.slotsSeen);
    if (this.slotsSeen !== s.swap.size)
      for (const key of s.swap.keys()) if (key >= this.slotGen.length || this.slotGen[key] !== this.gen) this.slotRef(key);
    this.w(s.swapcache.size);
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
 *  hashed as they are produced (two lanes, see Encoder.a), then the lanes are mixed into each
 *  other. The length needs no mixing in: the form is prefix-free (a decoder knows where it ends),
 *  so no state's words are the start of another's. */
export function fingerprint(s: State): [number, number] {
  E.encode(s, false);
  let a = E.a;
  let b = E.b;
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= b;
  a ^= a >>> 13;
  b = Math.imul(b ^ (a >>> 11), 0xc2b2ae35);
  b ^= b >>> 16;
  return [a >>> 0, b >>> 0];
}
