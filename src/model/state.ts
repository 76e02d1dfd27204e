/**
 * Creating, cloning and hashing states. The canonical form and its fingerprint live in canon.ts;
 * canonicalJson() is the raw form with the model's own ids, for golden files and debugging.
 */
import { fingerprint } from './canon.ts';
import type { Machine } from './machine.ts';
import type { File, Folio, HugeLeaf, Mm, PageRun, PinSet, Pipe, PmdLeaf, Proc, Pte, State, SwapSlot, Vma } from './types.ts';

/**
 * Where mmap(NULL) starts handing out addresses. The model's addresses are synthetic (the real
 * runner compares pages by identity, not by address), and kept low on purpose: page tables are
 * records keyed by vpn, and only keys below 2^32 - 1 are array indices, which V8 stores as
 * elements and for-in visits in ascending order. Larger keys would be strings in insertion order,
 * so the canonical form would depend on history. See TASK_SIZE in constants.ts.
 */
export const FIRST_MMAP = 0x100000000;

export function createState(m: Machine): State {
  const s: State = {
    folios: {},
    procs: {},
    files: {},
    pipes: {},
    pins: {},
    swap: {},
    swapcache: {},
    hugetlb: m.hugetlb.map((h) => ({ size: h.size, nr: h.nr, free: h.nr, resv: 0 })),
    zeroPageRefs: 0,
    hugeZeroRefs: 0,
    hugeZeroPins: 0,
    userLockedVm: 0,
    nextId: 2,
    nextSlot: 0,
  };
  s.procs[1] = {
    pid: 1,
    parent: 0,
    alive: true,
    status: -1,
    memlockLimit: m.memlockLimit,
    capIpcLock: m.capIpcLock,
    mm: emptyMm(),
  };
  return s;
}

export function emptyMm(): Mm {
  return { vmas: [], pte: {}, pmd: {}, huge: {}, hasPinned: false, lockedVm: 0, pinnedVm: 0, hugeZeroRef: false, mmapBase: FIRST_MMAP };
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
  const pte: Record<number, Pte> = {};
  for (const key in mm.pte) pte[key as unknown as number] = clonePte(mm.pte[key]);
  const pmd: Record<number, PmdLeaf> = {};
  for (const key in mm.pmd) {
    const l = mm.pmd[key];
    pmd[key as unknown as number] = { t: l.t, folio: l.folio, write: l.write, dirty: l.dirty, softDirty: l.softDirty };
  }
  const huge: Record<number, HugeLeaf> = {};
  for (const key in mm.huge) {
    const l = mm.huge[key];
    huge[key as unknown as number] = { folio: l.folio, write: l.write, dirty: l.dirty };
  }
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
  cache: { ...f.cache },
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
  const folios: Record<number, Folio> = {};
  for (const key in s.folios) folios[key as unknown as number] = cloneFolio(s.folios[key]);
  const procs: Record<number, Proc> = {};
  for (const key in s.procs) procs[key as unknown as number] = cloneProc(s.procs[key]);
  const files: Record<number, File> = {};
  for (const key in s.files) files[key as unknown as number] = cloneFile(s.files[key]);
  const pipes: Record<number, Pipe> = {};
  for (const key in s.pipes) pipes[key as unknown as number] = { id: s.pipes[key].id, bufs: s.pipes[key].bufs.map(cloneRun) };
  const pins: Record<number, PinSet> = {};
  for (const key in s.pins) pins[key as unknown as number] = clonePins(s.pins[key]);
  const swap: Record<number, SwapSlot> = {};
  for (const key in s.swap) swap[key as unknown as number] = { count: s.swap[key].count, data: s.swap[key].data };
  return {
    folios,
    procs,
    files,
    pipes,
    pins,
    swap,
    swapcache: { ...s.swapcache },
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

/** The raw form as a string, with the model's own ids (for golden files and debugging). */
export function canonicalJson(s: State): string {
  return JSON.stringify(s);
}
