/**
 * The model state: plain, cloneable data. Everything a rule reads or writes is here; there are
 * no hidden object graphs. Collections keyed by small integers (vpn, folio id, pid, swap slot, ...)
 * are Tables (table.ts): one array of key, value pairs, keys ascending, so every walk (processes by
 * pid, page tables by address) is in canonical order and a clone is one slice. Page tables are
 * LeafTables (pagetable.ts): the same, each entry packed into one number; folios are number
 * records behind Folio views (folio.ts). Empty tables are shared singletons that refuse writes:
 * writers take a table of their own first (ownTable, ownPmd, ownHuge). Page runs and hugetlb pools
 * are immutable and shared by clones.
 *
 * Units: addresses and sizes are bytes; `vpn` is a virtual page number (address / 4096);
 * a folio's "page" index is in 4 KiB pages except for hugetlb folios, whose single "unit" is the
 * whole huge page (a hugetlb page is one page of its VMA, as in the kernel).
 */

export { Folio, type FolioJson, type FolioKind, FolioTable, type Token } from './folio.ts';
export { Table } from './table.ts';

import type { FolioTable, Token } from './folio.ts';

import type { LeafTable } from './pagetable.ts';
import { Table } from './table.ts';

export function newTable<V>(): Table<V> {
  return new Table<V>();
}

/** Reserved folio ids for the two special pages (never freed, never in `folios`). */
export const ZERO_FOLIO = -1;
export const HUGE_ZERO_FOLIO = -2;

/** A present PTE mapping a page of a folio. `off` is the unit index inside the folio. */
export interface PagePte {
  t: 'page';
  folio: number;
  off: number;
  write: boolean;
  dirty: boolean;
  softDirty: boolean;
}
/** A special PTE mapping the shared zeropage (my_zero_pfn); never writable, never refcounted. */
export interface ZeroPte {
  t: 'zero';
  softDirty: boolean;
}
/** A swap PTE; `exclusive` is the pte_swp_exclusive marker (5.19+). */
export interface SwapPte {
  t: 'swap';
  slot: number;
  exclusive: boolean;
  softDirty: boolean;
}
export type Pte = PagePte | ZeroPte | SwapPte;

/** A PMD leaf: a PMD-mapped THP, or the huge zeropage (never writable). */
export interface PmdLeaf {
  t: 'thp' | 'hugezero';
  folio: number;
  write: boolean;
  dirty: boolean;
  softDirty: boolean;
}

/** A hugetlb entry (huge PTE at PMD or PUD level): maps a whole hugetlb folio. */
export interface HugeLeaf {
  folio: number;
  write: boolean;
  dirty: boolean;
}

export interface Vma {
  start: number;
  end: number;
  /** VM_* bits, see constants.ts */
  flags: number;
  /** file id, or -1 for anonymous memory */
  file: number;
  /** file offset of `start`, in bytes */
  pgoff: number;
  /** anon_vma present: the VMA has (or had) anonymous pages */
  anonVma: boolean;
  /** hugetlb page size in bytes, 0 when not hugetlb */
  hugetlb: number;
  /** hugetlb: huge pages still reserved for this private mapping (HPAGE_RESV_OWNER) */
  resv: number;
  /** hugetlb: HPAGE_RESV_OWNER, this private mapping was made here (not inherited by fork) with
   *  reservations; its COW may take a page back from children (unmap_ref_private) */
  resvOwner: boolean;
  /** hugetlb: HPAGE_RESV_UNMAPPED, the owner took a page away from this (child's) mapping: a
   *  fault on a missing entry here is SIGBUS */
  resvUnmapped: boolean;
}

export interface Mm {
  vmas: Vma[];
  /** PTEs keyed by vpn (packed, pagetable.ts: read-only values, written back with set()) */
  pte: LeafTable<Pte>;
  /** PMD leaves keyed by the vpn of the PMD's first page (EMPTY_PMD when none: write via ownPmd) */
  pmd: LeafTable<PmdLeaf>;
  /** hugetlb entries keyed by the vpn of the huge page's first 4 KiB page (EMPTY_HUGE when none:
   *  write via ownHuge) */
  huge: LeafTable<HugeLeaf>;
  /** MMF_HAS_PINNED: set by the first FOLL_PIN on this mm, never cleared */
  hasPinned: boolean;
  /** mm->locked_vm in pages (VmLck; VFIO accounts here) */
  lockedVm: number;
  /** mm->pinned_vm in pages (VmPin; io_uring and RDMA account here) */
  pinnedVm: number;
  /** this mm holds a reference on the huge zero folio (mm_get_huge_zero_page) */
  hugeZeroRef: boolean;
  /** next address the deterministic mmap allocator hands out */
  mmapBase: number;
}

/**
 * Which state owns a process record (state.ts, ownProc): clones share process records until one of
 * them writes. A symbol, so JSON (canonicalJson, golden files) never shows it.
 */
export const EPOCH: unique symbol = Symbol('epoch');

export interface Proc {
  /** the epoch of the state that may write this record (state.ts, ownProc) */
  [EPOCH]: number;
  pid: number;
  parent: number;
  alive: boolean;
  /** exit status once dead, -1 while alive */
  status: number;
  mm: Mm;
  /** RLIMIT_MEMLOCK in bytes */
  memlockLimit: number;
  /** CAP_IPC_LOCK */
  capIpcLock: boolean;
}

export type FileKind = 'shmem' | 'disk' | 'hugetlbfs';

export interface File {
  id: number;
  kind: FileKind;
  /** hugetlb page size for hugetlbfs files, else 0 */
  hugetlb: number;
  size: number;
  /** page cache: folio id per page index (units of 4 KiB, or of the huge page size) */
  cache: Table<number>;
  /** file data not in the page cache, run-length coded from page 0 as (token, 4 KiB pages);
   *  holes and data past the last run read as 0 */
  disk: Array<[Token, number]>;
}

/** A run of consecutive 4 KiB pages of one folio, held by a pipe buffer or a pin. Immutable (a
 *  change replaces the run), so clones share runs. */
export interface PageRun {
  readonly folio: number;
  /** first 4 KiB page, counted from the folio's start */
  readonly first: number;
  /** number of 4 KiB pages */
  readonly n: number;
}

/** A pipe. Immutable, so clones share it: a change replaces the record in `pipes`. */
export interface Pipe {
  readonly id: number;
  /** page references from vmsplice (FOLL_GET), in order */
  readonly bufs: readonly PageRun[];
}

export type PinUser = 'gup_test' | 'io_uring' | 'vfio' | 'odirect';

/** A set of pages held by a pin user (FOLL_PIN), with what it accounted. Immutable (made whole,
 *  dropped whole), so clones share it. */
export interface PinSet {
  readonly id: number;
  readonly user: PinUser;
  readonly owner: number;
  /** FOLL_* flags used */
  readonly flags: number;
  readonly runs: readonly PageRun[];
  /** pages accounted to mm->pinned_vm / locked_vm / the user (undone on unpin) */
  readonly accountedPinned: number;
  readonly accountedLocked: number;
  readonly accountedUser: number;
}

export interface SwapSlot {
  /** swap count: swap PTEs referencing the slot (plus the swap cache while it holds the page) */
  count: number;
  data: Token;
}

/** A hugetlb pool. Immutable, so clones share the pools: a change replaces the record
 *  (hugetlbPoolAdd in kernel.ts). */
export interface HugetlbPool {
  readonly size: number;
  readonly nr: number;
  readonly free: number;
  readonly resv: number;
}

export interface State {
  /** this state's epoch: a process record stamped with it is this state's own (ownProc) */
  [EPOCH]: number;
  folios: FolioTable;
  procs: Table<Proc>;
  files: Table<File>;
  pipes: Table<Pipe>;
  pins: Table<PinSet>;
  swap: Table<SwapSlot>;
  /** swap cache: slot -> folio id holding it */
  swapcache: Table<number>;
  hugetlb: readonly HugetlbPool[];
  /** refcount taken on the shared zeropage by pins (6.2: GUP_PIN_COUNTING_BIAS each) */
  zeroPageRefs: number;
  /** refcount of the huge zero folio: one per mm using it plus GUP references and pins */
  hugeZeroRefs: number;
  hugeZeroPins: number;
  /** per-user locked memory in pages (io_uring's user->locked_vm) */
  userLockedVm: number;
  nextId: number;
  nextSlot: number;
}
