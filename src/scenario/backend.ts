/**
 * What the scenario runner drives: a kernel, modelled (ModelBackend, over Sim) or real (the host
 * runner in src/host, replaying the same scenario). Handles (processes, files, pipes, pins) are
 * opaque numbers the backend hands out. Operations return their result or a Failure naming the
 * errno or signal, exactly as a user-space program would see it.
 *
 * Observations are what a tracer can learn; fields a backend cannot know are left out (the real
 * kernel shows no refcount, no PTE write bit). Page identity is an opaque string compared only for
 * equality within one run: folio ids in the model, PFNs on a host, never compared across backends.
 */

export interface Failure {
  fail: string;
}
export type Res<T> = T | Failure;

export function isFailure(x: unknown): x is Failure {
  return typeof x === 'object' && x !== null && 'fail' in x;
}

/** Memory content, run-length coded: (byte value, length in bytes). */
export type Bytes = Array<[number, number]>;

export interface MmapRequest {
  /** anonymous memory, or a file handle from createFile */
  file?: number;
  /** MAP_HUGETLB page size for anonymous hugetlb memory (0: none) */
  hugetlb: number;
  shared: boolean;
  prot: 'none' | 'r' | 'rw';
  size: number;
  offset: number;
  /** MADV_HUGEPAGE (and a PMD-aligned address) / MADV_NOHUGEPAGE after mmap */
  hint?: 'thp' | 'nothp';
}

/** One 4 KiB page of a process's address space, as a tracer sees it. */
export interface PageObs {
  present: boolean;
  swapped: boolean;
  /** identity of the page mapped (for equality only); its label in traces, e.g. folio#7+3, zeropage */
  page?: string;
  /** the shared zeropage or a page of the huge zeropage */
  zeropage?: boolean;
  /** mapped by a PMD (THP) or a hugetlb entry */
  huge?: boolean;
  anon?: boolean;
  /** PTE/PMD write bit */
  write?: boolean;
  /** PG_anon_exclusive */
  exclusive?: boolean;
  /** pagemap bit 56: mapped exactly once */
  mappedOnce?: boolean;
  refcount?: number;
  mapcount?: number;
  pincount?: number;
  /** folio_maybe_dma_pinned() */
  pinned?: boolean;
}

export interface ProcCounters {
  /** bytes: mm->pinned_vm */
  VmPin: number;
  /** bytes: mm->locked_vm */
  VmLck: number;
}

/** Something the kernel did (a fault, a copy, a pin), for the trace. */
export interface KernelEvent {
  /** handle of the process it happened in, when known */
  proc?: number;
  what: string;
  addr?: number;
  detail?: string;
}

export type Advice = 'dontneed' | 'pageout' | 'dontfork' | 'dofork' | 'hugepage' | 'nohugepage' | 'collapse';

export interface Backend {
  /** e.g. "model v6.2" */
  readonly name: string;
  /** the first process */
  initial(): number;

  createFile(p: number, kind: 'memfd' | 'tmpfile', hugetlb: number, size: number): Res<number>;
  closeFile(p: number, file: number): Res<void>;
  mmap(p: number, req: MmapRequest): Res<number>;
  munmap(p: number, addr: number, len: number): Res<void>;
  mprotect(p: number, addr: number, len: number, prot: 'none' | 'r' | 'rw'): Res<void>;
  madvise(p: number, addr: number, len: number, advice: Advice): Res<void>;
  /** MREMAP_MAYMOVE|MREMAP_FIXED to `to` */
  mremap(p: number, addr: number, len: number, to: number): Res<void>;

  /** a store of `byte` to every byte of [addr, addr+len) */
  store(p: number, addr: number, len: number, byte: number): Res<void>;
  /** one load per page */
  load(p: number, addr: number, len: number): Res<void>;
  read(p: number, addr: number, len: number): Res<Bytes>;

  fork(p: number): Res<number>;
  exit(p: number, status: number): Res<void>;
  wait(p: number, child: number): Res<number>;

  pipe(p: number): Res<number>;
  /** bytes transferred */
  vmsplice(p: number, pipe: number, addr: number, len: number): Res<number>;
  pipeRead(p: number, pipe: number, len: number): Res<Bytes>;
  pipeClose(p: number, pipe: number): Res<void>;

  /** gup_test PIN_LONGTERM_TEST_START (FOLL_LONGTERM, R/O unless write, GUP-fast if fast) */
  pin(p: number, addr: number, len: number, write: boolean, fast: boolean): Res<number>;
  unpin(p: number, pin: number): Res<void>;
  uringRegister(p: number, addr: number, len: number): Res<number>;
  uringWriteFixed(p: number, buf: number, file: number, offset: number): Res<void>;
  uringUnregister(p: number, buf: number): Res<void>;
  vfioMap(p: number, addr: number, len: number, write: boolean): Res<number>;
  vfioUnmap(p: number, dma: number): Res<void>;
  /** O_DIRECT: file -> memory (toMemory) or memory -> file */
  odirect(p: number, file: number, offset: number, addr: number, len: number, toMemory: boolean): Res<void>;
  pread(p: number, file: number, offset: number, len: number): Res<Bytes>;
  pwrite(p: number, file: number, offset: number, len: number, byte: number): Res<void>;
  clearSoftDirty(p: number): Res<void>;

  // observations (never change the state)
  /** is [addr, addr+len) entirely inside mappings of p? */
  mapped(p: number, addr: number, len: number): boolean;
  page(p: number, addr: number): PageObs;
  counters(p: number): ProcCounters;
  /** bytes: the user's locked_vm (io_uring accounting), if known */
  userLocked(): number | undefined;
  /** what the kernel reads through a pin (gup_test PIN_LONGTERM_TEST_READ; io_uring/VFIO: the pinned pages) */
  pinRead(pin: number): Bytes;
  /** identities of the pinned pages, one per 4 KiB page, if known */
  pinPages(pin: number): string[] | undefined;
  /** the kernel events since the last call */
  drainEvents(): KernelEvent[];
}

/** Bytes helpers. */
export function pushBytes(b: Bytes, value: number, n: number): void {
  if (n <= 0) return;
  const last = b[b.length - 1];
  if (last && last[0] === value) last[1] += n;
  else b.push([value, n]);
}

export function bytesLength(b: Bytes): number {
  let n = 0;
  for (const [, m] of b) n += m;
  return n;
}

export function fmtBytes(b: Bytes): string {
  if (!b.length) return '(empty)';
  const parts = b.map(([v, n]) => `0x${v.toString(16).padStart(2, '0')}*${fmtLen(n)}`);
  return parts.length > 6 ? `${parts.slice(0, 6).join(', ')}, ... (${parts.length} runs)` : parts.join(', ');
}

function fmtLen(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)}M`;
  if (n % 1024 === 0) return `${n / 1024}K`;
  return String(n);
}
