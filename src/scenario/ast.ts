/**
 * The scenario AST: what a .cow file and its JSON form both describe. Plain data, so the JSON form
 * is this structure serialised. Sizes and offsets are bytes; data values are bytes (0..255).
 *
 * Positions: every statement has `at` (its first token); `pos` maps a field name to the position of
 * that field's text (a name, a range), so errors found after parsing point at the exact column.
 * Neither is part of the scenario's meaning: `stripPositions` removes both for comparisons.
 */

export interface Pos {
  line: number;
  col: number;
}

/** Positions of a node: the statement and, per field, the field's own text. */
export interface Located {
  at?: Pos;
  pos?: Record<string, Pos>;
}

export type Prot = 'none' | 'r' | 'rw';
export type Sharing = 'private' | 'shared';

/**
 * A part of a mapping (or of a file), by name:
 * - `all`: the whole object (`buf`)
 * - `page`: one page at a byte offset (`buf+4K`; the page is the mapping's page size)
 * - `slice`: bytes [lo, hi) (`buf[4K:12K]`, either bound may be left out)
 */
export type Range =
  | { name: string; form: 'all' }
  | { name: string; form: 'page'; off: number }
  | { name: string; form: 'slice'; lo?: number; hi?: number };

/** A range as seen by one process (`A:buf+4K`). */
export interface ProcRange {
  proc: string;
  range: Range;
}

/** Where a mapping's memory comes from. `memfd`, `tmpfile` create an unnamed file of the mapping's size. */
export type Source =
  | { kind: 'anon'; hugetlb?: number }
  | { kind: 'memfd'; hugetlb?: number }
  | { kind: 'tmpfile' }
  | { kind: 'file'; file: string };

export const ADVICES = ['dontneed', 'pageout', 'dontfork', 'dofork', 'hugepage', 'nohugepage', 'collapse'] as const;
export type Advice = (typeof ADVICES)[number];

/** Errors a step may be declared to fail with (`! EFAULT`). */
export const ERRORS = [
  'EPERM',
  'ENOENT',
  'EAGAIN',
  'ENOMEM',
  'EACCES',
  'EFAULT',
  'EBUSY',
  'EINVAL',
  'ENOSPC',
  'EOPNOTSUPP',
  'SIGSEGV',
  'SIGBUS',
] as const;
export type ErrorName = (typeof ERRORS)[number];

export type Op =
  | {
      op: 'mmap';
      name: string;
      source: Source;
      sharing: Sharing;
      prot: Prot;
      size: number;
      offset?: number;
      /** thp: MADV_HUGEPAGE (the model aligns mappings of 2M and more); nothp: MADV_NOHUGEPAGE */
      hint?: 'thp' | 'nothp';
    }
  | { op: 'memfd'; name: string; size: number; hugetlb?: number }
  | { op: 'tmpfile'; name: string; size: number }
  | { op: 'store'; range: Range; value: number }
  | { op: 'load'; range: Range }
  | { op: 'read'; range: Range; into: string }
  | { op: 'pipe-read'; pipe: string; len?: number; into: string }
  | { op: 'fork'; child: string }
  | { op: 'exit'; status: number }
  | { op: 'wait'; child: string }
  | { op: 'munmap'; range: Range }
  | { op: 'mprotect'; range: Range; prot: Prot }
  | { op: 'madvise'; range: Range; advice: Advice }
  | { op: 'mremap'; range: Range; to: string }
  | { op: 'pipe'; name: string }
  | { op: 'vmsplice'; range: Range; pipe: string }
  | { op: 'close'; name: string }
  | { op: 'uring-register'; range: Range; name: string }
  | { op: 'uring-write'; buf: string; file: Range }
  | { op: 'uring-unregister'; buf: string }
  | { op: 'odirect-read'; file: Range; range: Range }
  | { op: 'odirect-write'; range: Range; file: Range }
  | { op: 'pin'; range: Range; write: boolean; fast: boolean; name: string }
  | { op: 'unpin'; pin: string }
  | { op: 'vfio-map'; range: Range; write: boolean; name: string }
  | { op: 'vfio-unmap'; dma: string }
  | { op: 'pread'; file: Range; into: string }
  | { op: 'pwrite'; file: Range; value: number }
  | { op: 'clear-softdirty' };

export type OpName = Op['op'];

export type Step = Located & {
  kind: 'step';
  proc: string;
  /** the step is expected to fail with this error (`! EFAULT`); names it would bind stay unbound */
  fails?: ErrorName;
} & Op;

/** One part of a content pattern: `len` bytes of `value`; without len: the rest. */
export interface Run {
  value: number;
  len?: number;
}

export type Cmp = '==' | '!=' | '<' | '<=' | '>' | '>=';

export const PROPS = ['present', 'swapped', 'writable', 'exclusive', 'mapped-once', 'zeropage', 'thp', 'anon', 'pinned'] as const;
export type Prop = (typeof PROPS)[number];
export const FIELDS = ['refcount', 'mapcount', 'pincount'] as const;
export type Field = (typeof FIELDS)[number];
export const COUNTERS = ['VmPin', 'VmLck'] as const;
export type Counter = (typeof COUNTERS)[number];

/** What a content expectation reads: a variable, a pin's pages, or memory (read like `load`). */
export type Subject = { var: string } | { pin: string } | { mem: ProcRange };

export type Check =
  | { check: 'content'; subject: Subject; cmp: '==' | '!='; pattern: Run[] }
  | { check: 'matches'; pin: string; target: ProcRange; not?: boolean }
  | { check: 'same-page' | 'different-page'; a: ProcRange; b: ProcRange }
  | { check: 'prop'; target: ProcRange; prop: Prop; not?: boolean }
  | { check: 'field'; target: ProcRange; field: Field; cmp: Cmp; value: number }
  | { check: 'counter'; proc: string; counter: Counter; cmp: Cmp; value: number }
  | { check: 'user-locked'; cmp: Cmp; value: number };

export type Expect = Located & { kind: 'expect' } & Check;

export type Item = Step | Expect;

/** Machine settings (`machine swap=off memlock=64K`); unset fields keep the seed mail's machine. */
export interface MachineSpec {
  thp?: boolean;
  hugeZeropage?: boolean;
  /** read faults may map the shared zeropage (off: mm_forbids_zeropage(), e.g. pvm_no_zero_page=1) */
  zeroPage?: boolean;
  swap?: boolean;
  gupTest?: boolean;
  softDirty?: boolean;
  /** huge page sizes with pool sizes, in order; [] = no hugetlb */
  hugetlb?: Array<{ size: number; pages: number }>;
  /** RLIMIT_MEMLOCK in bytes */
  memlock?: number;
  /** CAP_IPC_LOCK */
  ipcLock?: boolean;
}

export interface Outcome extends Located {
  profile: string;
  pass: boolean;
}

export interface Scenario extends Located {
  title: string;
  outcomes: Outcome[];
  machine: MachineSpec;
  /** the first process (the others are forked) */
  process: string;
  items: Item[];
}

/** A deep copy without `at` and `pos` (for comparing scenarios by meaning). */
export function stripPositions<T>(x: T): T {
  return JSON.parse(JSON.stringify(x, (k, v) => (k === 'at' || k === 'pos' ? undefined : v)));
}

/** The position of a field of a node, else of the node. */
export function posOf(n: Located, field?: string): Pos | undefined {
  return (field && n.pos?.[field]) || n.at;
}
