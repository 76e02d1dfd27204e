/**
 * Creating, cloning and hashing states. The canonical form and its fingerprint live in canon.ts;
 * canonicalJson() is the raw form with the model's own ids, for golden files and debugging.
 */
import { fingerprint } from './canon.ts';
import type { Machine } from './machine.ts';
import {
  type File,
  type Folio,
  type HugeLeaf,
  type Mm,
  newTable,
  type PageRun,
  type PinSet,
  type Pipe,
  type PmdLeaf,
  type Proc,
  type Pte,
  type State,
  type SwapSlot,
  sortedKeys,
  type Table,
  type Vma,
} from './types.ts';

/**
 * Where mmap(NULL) starts handing out addresses. The model's addresses are synthetic (the real
 * runner compares pages by identity, not by address), and kept low on purpose: vpns stay below
 * 2^32, so the canonical form (canon.ts) writes a page-table key as one 32-bit word. See TASK_SIZE
 * in constants.ts.
 */
export const FIRST_MMAP = 0x100000000;

export function createState(m: Machine): State {
  const s: State = {
    folios: newTable(),
    procs: newTable(),
    files: newTable(),
    pipes: newTable(),
    pins: newTable(),
    swap: newTable(),
    swapcache: newTable(),
    hugetlb: m.hugetlb.map((h) => ({ size: h.size, nr: h.nr, free: h.nr, resv: 0 })),
    zeroPageRefs: 0,
    hugeZeroRefs: 0,
    hugeZeroPins: 0,
    userLockedVm: 0,
    nextId: 2,
    nextSlot: 0,
  };
  s.procs.set(1, {
    pid: 1,
    parent: 0,
    alive: true,
    status: -1,
    memlockLimit: m.memlockLimit,
    capIpcLock: m.capIpcLock,
    mm: emptyMm(),
  });
  return s;
}

export function emptyMm(): Mm {
  return {
    vmas: [],
    pte: newTable(),
    pmd: newTable(),
    huge: newTable(),
    hasPinned: false,
    lockedVm: 0,
    pinnedVm: 0,
    hugeZeroRef: false,
    mmapBase: FIRST_MMAP,
  };
}

// Cloning is written out field by field: object literals of a fixed shape are several times
// faster than spreads and keep V8's hidden classes monomorphic (the explorer clones every state).

const clonePte = (p: Pte): Pte =>
  p.t === 'page'
    ? { t: 'page', folio: p.folio, off: p.off, write: p.write, dirty: p.dirty, softDirty: p.softDirty }
    : p.t === 'zero'
      ? { t: 'zero', softDirty: p.softDirty }
      : { t: 'swap', slot: p.slot, exclusive: p.exclusive, softDirty: p.softDirty };

const cloneFolio = (f: Folio): Folio => ({
  id: f.id,
  kind: f.kind,
  hugetlb: f.hugetlb,
  nr: f.nr,
  sub: f.sub,
  refcount: f.refcount,
  pincount: f.pincount,
  mapcount: f.mapcount.slice(),
  entireMapcount: f.entireMapcount,
  exclusive: f.exclusive.slice(),
  swapSlot: f.swapSlot,
  file: f.file,
  index: f.index,
  data: f.data.slice(),
});

const cloneVma = (v: Vma): Vma => ({
  start: v.start,
  end: v.end,
  flags: v.flags,
  file: v.file,
  pgoff: v.pgoff,
  anonVma: v.anonVma,
  hugetlb: v.hugetlb,
  resv: v.resv,
});

function cloneMm(mm: Mm): Mm {
  const pte: Table<Pte> = newTable();
  for (const [key, p] of mm.pte) pte.set(key, clonePte(p));
  const pmd: Table<PmdLeaf> = newTable();
  for (const [key, l] of mm.pmd) pmd.set(key, { t: l.t, folio: l.folio, write: l.write, dirty: l.dirty, softDirty: l.softDirty });
  const huge: Table<HugeLeaf> = newTable();
  for (const [key, l] of mm.huge) huge.set(key, { folio: l.folio, write: l.write, dirty: l.dirty });
  return {
    vmas: mm.vmas.map(cloneVma),
    pte,
    pmd,
    huge,
    hasPinned: mm.hasPinned,
    lockedVm: mm.lockedVm,
    pinnedVm: mm.pinnedVm,
    hugeZeroRef: mm.hugeZeroRef,
    mmapBase: mm.mmapBase,
  };
}

const cloneProc = (p: Proc): Proc => ({
  pid: p.pid,
  parent: p.parent,
  alive: p.alive,
  status: p.status,
  memlockLimit: p.memlockLimit,
  capIpcLock: p.capIpcLock,
  mm: cloneMm(p.mm),
});

const cloneFile = (f: File): File => ({
  id: f.id,
  kind: f.kind,
  hugetlb: f.hugetlb,
  size: f.size,
  cache: newTable(f.cache),
  disk: f.disk.map((r) => [r[0], r[1]] as [number, number]),
});

const cloneRun = (r: PageRun): PageRun => ({ folio: r.folio, first: r.first, n: r.n });

const clonePins = (p: PinSet): PinSet => ({
  id: p.id,
  user: p.user,
  owner: p.owner,
  flags: p.flags,
  runs: p.runs.map(cloneRun),
  accountedPinned: p.accountedPinned,
  accountedLocked: p.accountedLocked,
  accountedUser: p.accountedUser,
});

/** A deep copy sharing nothing with the original. */
export function cloneState(s: State): State {
  const folios: Table<Folio> = newTable();
  for (const [key, f] of s.folios) folios.set(key, cloneFolio(f));
  const procs: Table<Proc> = newTable();
  for (const [key, p] of s.procs) procs.set(key, cloneProc(p));
  const files: Table<File> = newTable();
  for (const [key, f] of s.files) files.set(key, cloneFile(f));
  const pipes: Table<Pipe> = newTable();
  for (const [key, p] of s.pipes) pipes.set(key, { id: p.id, bufs: p.bufs.map(cloneRun) });
  const pins: Table<PinSet> = newTable();
  for (const [key, p] of s.pins) pins.set(key, clonePins(p));
  const swap: Table<SwapSlot> = newTable();
  for (const [key, x] of s.swap) swap.set(key, { count: x.count, data: x.data });
  return {
    folios,
    procs,
    files,
    pipes,
    pins,
    swap,
    swapcache: newTable(s.swapcache),
    hugetlb: s.hugetlb.map((h) => ({ size: h.size, nr: h.nr, free: h.free, resv: h.resv })),
    zeroPageRefs: s.zeroPageRefs,
    hugeZeroRefs: s.hugeZeroRefs,
    hugeZeroPins: s.hugeZeroPins,
    userLockedVm: s.userLockedVm,
    nextId: s.nextId,
    nextSlot: s.nextSlot,
  };
}

/**
 * The 64-bit fingerprint of a state's canonical form (canon.ts) as 16 hex digits. States that
 * differ only in the names of folios, slots and processes hash equal; see canon.ts.
 */
export function hashState(s: State): string {
  const [hi, lo] = fingerprint(s);
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

/** The raw form as a string, with the model's own ids (for golden files and debugging); a table is
 *  written as an object keyed by its keys in ascending order. */
export function canonicalJson(s: State): string {
  return JSON.stringify(s, (_key, v) => (v instanceof Map ? Object.fromEntries(sortedKeys(v).map((k) => [k, v.get(k)])) : v));
}
