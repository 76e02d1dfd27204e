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
import type { File, Folio, Mm, Pte, State } from './types.ts';

/** The keys of a table in ascending order (page tables and page caches fill in any order). */
/** Are the table's keys already in ascending order (the usual case: faults come in address order)? */
function ascending(t: Map<number, unknown>): boolean {
  let prev = Number.NEGATIVE_INFINITY;
  for (const k of t.keys()) {
    if (k < prev) return false;
    prev = k;
  }
  return true;
}

function keysAsc(t: Map<number, unknown>): number[] {
  const a: number[] = [];
  let prev = Number.NEGATIVE_INFINITY;
  let sorted = true;
  for (const k of t.keys()) {
    if (k < prev) sorted = false;
    prev = k;
    a.push(k);
  }
  if (!sorted) a.sort((x, y) => x - y);
  return a;
}

/** Growable output buffer and the renumbering scratch, reused across calls. */
let buf = new Int32Array(1024);
let n = 0;
let gen = 0;
/** per raw id: the generation that named it, and its canonical number */
let folioGen = new Int32Array(1024);
let folioNum = new Int32Array(1024);
let slotGen = new Int32Array(256);
let slotNum = new Int32Array(256);
let fileGen = new Int32Array(256);
let fileNum = new Int32Array(256);
let procGen = new Int32Array(256);
let procNum = new Int32Array(256);
let folios = 0;
let slots = 0;
/** folios and slots written that exist in the state (a broken state may refer to freed ones) */
let foliosSeen = 0;
let slotsSeen = 0;
let files = 0;
let st: State;

function grow(a: Int32Array<ArrayBuffer>, need: number): Int32Array<ArrayBuffer> {
  let len = a.length;
  while (len <= need) len *= 2;
  const b = new Int32Array(len);
  b.set(a);
  return b;
}

function w(x: number): void {
  if (n === buf.length) buf = grow(buf, n);
  buf[n++] = x;
}

/** A value that may not fit 32 bits (byte counts, limits): two words; Infinity is (-1, -1). */
function wide(x: number): void {
  if (x === Number.POSITIVE_INFINITY) {
    w(-1);
    w(-1);
    return;
  }
  if (x >= 0 && x < 2147483648) {
    w(x);
    w(0);
    return;
  }
  const hi = Math.floor(x / 4294967296);
  w((x - hi * 4294967296) | 0);
  w(hi | 0);
}

/** Runs of equal values in an array (per-unit mapcount, PG_anon_exclusive, content tokens). */
function runs(a: ArrayLike<number | boolean>): void {
  let i = 0;
  while (i < a.length) {
    const v = a[i];
    let j = i + 1;
    while (j < a.length && a[j] === v) j++;
    w(+v);
    w(j - i);
    i = j;
  }
  w(-1);
}

function procRef(pid: number): void {
  w(pid >= 0 && pid < procGen.length && procGen[pid] === gen ? procNum[pid] : -1);
}

function slotRef(slot: number): void {
  if (slot < 0) {
    w(-1);
    return;
  }
  if (slot >= slotGen.length) {
    slotGen = grow(slotGen, slot);
    slotNum = grow(slotNum, slot);
  }
  if (slotGen[slot] === gen) {
    w(slotNum[slot]);
    return;
  }
  slotGen[slot] = gen;
  slotNum[slot] = slots;
  w(slots++);
  const sw = st.swap.get(slot);
  if (!sw) {
    w(-2); // a reference to a freed slot: only a broken state has one
    return;
  }
  slotsSeen++;
  w(sw.count);
  w(sw.data);
}

function fileRef(id: number): void {
  if (id < 0) {
    w(-1);
    return;
  }
  if (id >= fileGen.length) {
    fileGen = grow(fileGen, id);
    fileNum = grow(fileNum, id);
  }
  if (fileGen[id] === gen) {
    w(fileNum[id]);
    return;
  }
  fileGen[id] = gen;
  fileNum[id] = files;
  w(files++);
  const f = st.files.get(id);
  if (!f) {
    w(-2);
    return;
  }
  fileBody(f);
}

function fileBody(f: File): void {
  w(f.kind === 'shmem' ? 0 : f.kind === 'disk' ? 1 : 2);
  wide(f.hugetlb);
  wide(f.size);
  for (const key of keysAsc(f.cache)) {
    w(key);
    folioRef(f.cache.get(key));
  }
  w(-1);
  for (const [token, pages] of f.disk) {
    w(token);
    w(pages);
  }
  w(-1);
}

function folioRef(id: number): void {
  if (id < 0) {
    w(id - 1); // ZERO_FOLIO / HUGE_ZERO_FOLIO as -2 / -3, apart from "first reference" numbers
    return;
  }
  if (id >= folioGen.length) {
    folioGen = grow(folioGen, id);
    folioNum = grow(folioNum, id);
  }
  if (folioGen[id] === gen) {
    w(folioNum[id]);
    return;
  }
  folioGen[id] = gen;
  folioNum[id] = folios;
  w(folios++);
  const f = st.folios.get(id);
  if (!f) {
    w(-2);
    return;
  }
  foliosSeen++;
  folioBody(f);
}

function folioBody(f: Folio): void {
  w(f.kind === 'anon' ? 0 : 1);
  wide(f.hugetlb);
  w(f.nr);
  w(f.refcount);
  w(f.pincount);
  w(f.entireMapcount);
  w(f.index);
  runs(f.mapcount);
  runs(f.exclusive);
  runs(f.data);
  w(f.swapSlot >= 0 && st.swapcache.get(f.swapSlot) === f.id ? 1 : 0);
  slotRef(f.swapSlot);
  fileRef(f.file);
}

function pteWords(key: number, p: Pte): void {
  w(key);
  if (p.t === 'page') {
    w(1 | (+p.write << 3) | (+p.dirty << 4) | (+p.softDirty << 5));
    w(p.off);
    folioRef(p.folio);
  } else if (p.t === 'zero') {
    w(2 | (+p.softDirty << 5));
  } else {
    w(3 | (+p.exclusive << 3) | (+p.softDirty << 5));
    slotRef(p.slot);
  }
}

const pteWordsOf = (p: Pte, key: number) => pteWords(key, p);

function mmBody(mm: Mm): void {
  w(+mm.hasPinned);
  w(mm.lockedVm);
  w(mm.pinnedVm);
  w(+mm.hugeZeroRef);
  w(mm.mmapBase / PAGE_SIZE);
  for (const v of mm.vmas) {
    w(v.start / PAGE_SIZE);
    w(v.end / PAGE_SIZE);
    w(v.flags);
    w(v.pgoff / PAGE_SIZE);
    w(+v.anonVma);
    wide(v.hugetlb);
    w(v.resv);
    fileRef(v.file);
  }
  w(-1);
  // page tables by ascending vpn (vpns are below 2^32, see FIRST_MMAP)
  if (mm.pte.size) {
    if (ascending(mm.pte)) mm.pte.forEach(pteWordsOf);
    else for (const key of keysAsc(mm.pte)) pteWords(key, mm.pte.get(key));
  }
  w(-1);
  if (mm.pmd.size)
    for (const key of keysAsc(mm.pmd)) {
      const p = mm.pmd.get(key);
      w(key);
      w((p.t === 'thp' ? 1 : 2) | (+p.write << 3) | (+p.dirty << 4) | (+p.softDirty << 5));
      folioRef(p.folio);
    }
  w(-1);
  if (mm.huge.size)
    for (const key of keysAsc(mm.huge)) {
      const p = mm.huge.get(key);
      w(key);
      w(+p.write | (+p.dirty << 1));
      folioRef(p.folio);
    }
  w(-1);
}

/** Writes the canonical words of `s` into the shared buffer; returns their count. */
function encode(s: State): number {
  st = s;
  n = 0;
  folios = slots = files = foliosSeen = slotsSeen = 0;
  gen++;
  if (gen === 0x7fffffff) {
    gen = 1;
    folioGen.fill(0);
    slotGen.fill(0);
    fileGen.fill(0);
    procGen.fill(0);
  }
  for (const h of s.hugetlb) {
    wide(h.size);
    w(h.nr);
    w(h.free);
    w(h.resv);
  }
  w(s.zeroPageRefs);
  w(s.hugeZeroRefs);
  w(s.hugeZeroPins);
  w(s.userLockedVm);
  // processes are named by creation order (pids ascend with creation, tables keep insertion order)
  let rank = 0;
  for (const pid of s.procs.keys()) {
    if (pid >= procGen.length) {
      procGen = grow(procGen, pid);
      procNum = grow(procNum, pid);
    }
    procGen[pid] = gen;
    procNum[pid] = rank++;
  }
  for (const p of s.procs.values()) {
    procRef(p.parent);
    w(+p.alive | (+p.capIpcLock << 1));
    w(p.status);
    wide(p.memlockLimit);
    mmBody(p.mm);
  }
  w(-1);
  for (const key of s.files.keys()) fileRef(key);
  w(-1);
  for (const pipe of s.pipes.values()) {
    for (const b of pipe.bufs) {
      w(b.first);
      w(b.n);
      folioRef(b.folio);
    }
    w(-1);
  }
  w(-1);
  for (const ps of s.pins.values()) {
    w(ps.user === 'gup_test' ? 0 : ps.user === 'io_uring' ? 1 : ps.user === 'vfio' ? 2 : 3);
    procRef(ps.owner);
    w(ps.flags);
    w(ps.accountedPinned);
    w(ps.accountedLocked);
    w(ps.accountedUser);
    for (const r of ps.runs) {
      w(r.first);
      w(r.n);
      folioRef(r.folio);
    }
    w(-1);
  }
  w(-1);
  // what nothing references (only a leak would leave such a folio or slot)
  // (a folio nothing refers to: only a leak leaves one; usually every folio is named by now)
  if (foliosSeen !== s.folios.size) for (const key of s.folios.keys()) if (folioGen[key] !== gen) folioRef(key);
  w(-1);
  if (slotsSeen !== s.swap.size) for (const key of s.swap.keys()) if (key >= slotGen.length || slotGen[key] !== gen) slotRef(key);
  w(-1);
  w(s.swapcache.size);
  return n;
}

/** The canonical words of a state (a fresh copy). Equal arrays iff equal up to renaming. */
export function encodeState(s: State): Int32Array {
  return buf.slice(0, encode(s));
}

/** 64-bit fingerprint of the canonical form, as two unsigned 32-bit halves [hi, lo]. */
export function fingerprint(s: State): [number, number] {
  const len = encode(s);
  let a = 0x811c9dc5 ^ len;
  let b = 0x9e3779b9;
  for (let i = 0; i < len; i++) {
    const x = buf[i];
    a = Math.imul(a ^ x, 0x01000193);
    b = Math.imul(b ^ x, 0x5bd1e995);
    b ^= b >>> 15;
  }
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= b;
  a ^= a >>> 13;
  b = Math.imul(b ^ (a >>> 11), 0xc2b2ae35);
  b ^= b >>> 16;
  return [a >>> 0, b >>> 0];
}
