/**
 * Creating, cloning and hashing states. The canonical form and its fingerprint live in canon.ts;
 * canonicalJson() is the raw form with the model's own ids, for golden files and debugging.
 */
import { fingerprint } from './canon.ts';
import { FolioTable } from './folio.ts';
import type { Machine } from './machine.ts';
import { EMPTY_HUGE, EMPTY_PMD, newPteTable } from './pagetable.ts';
import { cloneOrShare, NO_ROWS } from './table.ts';
import { EPOCH, type File, type Mm, newTable, type Proc, type State, type SwapSlot, type Vma } from './types.ts';

/**
 * Where mmap(NULL) starts handing out addresses. The model's addresses are synthetic (the real
 * runner compares pages by identity, not by address), and kept low on purpose: vpns stay below
 * 2^32, so the canonical form (canon.ts) writes a page-table key as one 32-bit word. See TASK_SIZE
 * in constants.ts.
 */
export const FIRST_MMAP = 0x100000000;

export function createState(m: Machine): State {
  const s: State = {
    // every state and process record carries its epoch from the start, first: one object shape
    // (an epoch added later would give V8 two shapes to tell apart on every access)
    [EPOCH]: 0,
    folios: new FolioTable(),
    procs: newTable(),
    files: NO_ROWS,
    pipes: newTable(),
    pins: newTable(),
    swap: NO_ROWS,
    swapcache: NO_ROWS,
    hugetlb: m.hugetlb.map((h) => ({ size: h.size, nr: h.nr, free: h.nr, resv: 0 })),
    zeroPageRefs: 0,
    hugeZeroRefs: 0,
    hugeZeroPins: 0,
    userLockedVm: 0,
    nextId: 2,
    nextSlot: 0,
  };
  s.procs.set(1, {
    [EPOCH]: 0,
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
    pte: newPteTable(),
    pmd: EMPTY_PMD,
    huge: EMPTY_HUGE,
    hasPinned: false,
    lockedVm: 0,
    pinnedVm: 0,
    hugeZeroRef: false,
    mmapBase: FIRST_MMAP,
  };
}

// Cloning is written out field by field: object literals of a fixed shape are several times
// faster than spreads and keep V8's hidden classes monomorphic (the explorer clones every state).

const cloneVma = (v: Vma): Vma => ({
  start: v.start,
  end: v.end,
  flags: v.flags,
  file: v.file,
  pgoff: v.pgoff,
  anonVma: v.anonVma,
  hugetlb: v.hugetlb,
  resv: v.resv,
  resvOwner: v.resvOwner,
  resvUnmapped: v.resvUnmapped,
});

function cloneMm(mm: Mm): Mm {
  return {
    vmas: mm.vmas.map(cloneVma),
    pte: mm.pte.clone(),
    pmd: mm.pmd.size ? mm.pmd.clone() : EMPTY_PMD,
    huge: mm.huge.size ? mm.huge.clone() : EMPTY_HUGE,
    hasPinned: mm.hasPinned,
    lockedVm: mm.lockedVm,
    pinnedVm: mm.pinnedVm,
    hugeZeroRef: mm.hugeZeroRef,
    mmapBase: mm.mmapBase,
  };
}

const cloneProc = (p: Proc, epoch: number): Proc => ({
  [EPOCH]: epoch,
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
  cache: f.cache.clone(),
  disk: f.disk.map((r) => [r[0], r[1]] as [number, number]),
});

const cloneSwap = (x: SwapSlot): SwapSlot => ({ count: x.count, data: x.data });

/** Epochs handed out so far (state.ts only; never part of what a state means). */
let epochs = 0;

/**
 * A copy of a state. Immutable records (pipes, pin sets, page runs, hugetlb pools) are shared for
 * good; process records (Proc with its mm, VMAs and page tables) are shared until one side writes:
 * both states get a new epoch, so the first ownProc() of a process on either side copies it. Every
 * write to a process goes through ownProc (kernel.ts's proc() and the walks over all processes that
 * change another process's page tables), so a change on one side never shows on the other.
 * Everything else is copied now. The explorer clones every state it reaches; most steps change
 * one process, and sharing the others more than halved a clone (BENCHMARKS.md, session 4).
 */
export function cloneState(s: State): State {
  s[EPOCH] = ++epochs;
  return {
    [EPOCH]: ++epochs,
    folios: s.folios.clone(),
    procs: s.procs.clone(),
    files: cloneOrShare(s.files, cloneFile),
    // pipes and pin sets are immutable (a change replaces the record): shared
    pipes: cloneOrShare(s.pipes),
    pins: cloneOrShare(s.pins),
    swap: cloneOrShare(s.swap, cloneSwap),
    swapcache: cloneOrShare(s.swapcache),
    hugetlb: s.hugetlb, // immutable pools (a change replaces the array): shared
    zeroPageRefs: s.zeroPageRefs,
    hugeZeroRefs: s.hugeZeroRefs,
    hugeZeroPins: s.hugeZeroPins,
    userLockedVm: s.userLockedVm,
    nextId: s.nextId,
    nextSlot: s.nextSlot,
  };
}

/**
 * The process `pid` of `s`, made this state's own first: a record still shared with a clone (see
 * cloneState) is copied (cloneProc) and the copy put in its place. Undefined if there is none.
 * Rules write to a process only through a record they got from here.
 */
export function ownProc(s: State, pid: number): Proc | undefined {
  const p = s.procs.get(pid);
  if (!p || p[EPOCH] === s[EPOCH]) return p;
  const q = cloneProc(p, s[EPOCH]);
  s.procs.set(pid, q);
  return q;
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
 *  written as an object keyed by its keys in ascending order (Table.toJSON). */
export function canonicalJson(s: State): string {
  return JSON.stringify(s);
}
