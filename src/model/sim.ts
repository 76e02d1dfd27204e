/**
 * A running model: a state, a profile and a machine, with the user operations of a process as
 * methods taking the pid. Every operation is followed by the invariant check (unless disabled,
 * for benchmarks). The selftest and the scenario runner both drive the model through this one
 * set of operations.
 */
import { type Content, memset, readRange } from './access.ts';
import { EINVAL, PAGE_SIZE, PMD_SIZE } from './constants.ts';
import { createFile, dropFile, fallocate } from './files.ts';
import { checkInvariants } from './invariants.ts';
import * as io from './io.ts';
import { type Ctx, type Event, findVma, lookup, proc, putRef } from './kernel.ts';
import type { Machine, ThpMode } from './machine.ts';
import { madvise } from './madvise.ts';
import { clearSoftDirty, exitMm, fork, type MmapArgs, mmap, mprotect, mremapFixed, munmap } from './mm.ts';
import type { Profile } from './profile.ts';
import { createState } from './state.ts';
import type { State } from './types.ts';

export interface SimOptions {
  /** check invariants after every operation (default true) */
  check?: boolean;
  /** record kernel events (default false) */
  trace?: boolean;
}

/** What /proc/self/pagemap tells for one page. */
export interface PagemapEntry {
  present: boolean;
  swapped: boolean;
  /** folio id and page within it, standing in for the PFN; -1 = shared zeropage, -2 = huge zeropage */
  folio: number;
  page: number;
  /** bit 56: mapped exactly once */
  exclusivelyMapped: boolean;
  /** bit 61: file page or shared anonymous (also set for the huge zeropage) */
  file: boolean;
}

export class Sim {
  readonly k: Ctx;
  readonly check: boolean;

  constructor(
    readonly profile: Profile,
    readonly machine: Machine,
    opts: SimOptions = {},
  ) {
    this.k = { s: createState(machine), sw: profile.switches, m: machine, trace: opts.trace ? [] : null };
    this.check = opts.check ?? true;
  }

  get state(): State {
    return this.k.s;
  }

  get events(): Event[] {
    return this.k.trace ?? [];
  }

  /** The anonymous THP sizes with a sysfs directory of their own (6.8+; before, none but the
   *  PMD size, which has the global setting): what cow.c's detect_thp_sizes() finds. */
  thpSizes(): number[] {
    if (!this.machine.thp) return [];
    return this.k.sw.mthp ? (this.machine.thpSizes ?? [PMD_SIZE]) : [PMD_SIZE];
  }

  /** echo MODE > transparent_hugepage/hugepages-<size/1024>kB/enabled (6.8+; ignored before,
   *  where the file does not exist). Returns the previous mode. */
  setThpMode(size: number, mode: ThpMode): ThpMode {
    const prev = this.k.m.thpModes?.[size] ?? (size === PMD_SIZE ? 'inherit' : 'never');
    if (this.k.sw.mthp) this.k.m = { ...this.k.m, thpModes: { ...this.k.m.thpModes, [size]: mode } };
    return prev;
  }

  private done<T>(x: T): T {
    if (this.check) checkInvariants(this.k);
    return x;
  }

  mmap(pid: number, a: MmapArgs): number {
    return this.done(mmap(this.k, proc(this.k, pid), a));
  }
  munmap(pid: number, addr: number, len: number): number {
    return this.done(munmap(this.k, proc(this.k, pid), addr, len));
  }
  mprotect(pid: number, addr: number, len: number, prot: number): number {
    return this.done(mprotect(this.k, proc(this.k, pid), addr, len, prot));
  }
  madvise(pid: number, addr: number, len: number, advice: number): number {
    return this.done(madvise(this.k, proc(this.k, pid), addr, len, advice));
  }
  mremap(pid: number, oldAddr: number, len: number, newAddr: number): number {
    return this.done(mremapFixed(this.k, proc(this.k, pid), oldAddr, len, newAddr));
  }
  fork(pid: number): number {
    return this.done(fork(this.k, proc(this.k, pid)));
  }
  /** exit(): tears down the address space and closes what only the process held (pins). */
  exit(pid: number, status: number): void {
    const p = proc(this.k, pid);
    for (const ps of [...this.k.s.pins.values()]) if (ps.owner === pid) io.unpinSet(this.k, ps.id);
    exitMm(this.k, p);
    p.alive = false;
    p.status = status;
    this.done(0);
  }
  /** wait(): reaps a dead child, returning its exit status. */
  wait(pid: number): number {
    const p = this.k.s.procs.get(pid);
    if (!p || p.alive) return -EINVAL;
    this.k.s.procs.delete(pid);
    return this.done(p.status);
  }
  memset(pid: number, addr: number, token: number, len: number): string | null {
    return this.done(memset(this.k, proc(this.k, pid), addr, token, len));
  }
  read(pid: number, addr: number, len: number): Content | string {
    return this.done(readRange(this.k, proc(this.k, pid), addr, len));
  }
  clearSoftDirty(pid: number): void {
    this.done(clearSoftDirty(this.k, proc(this.k, pid)));
  }

  memfdCreate(hugetlbSize = 0): number {
    if (hugetlbSize && !this.k.s.hugetlb.some((h) => h.size === hugetlbSize)) return -EINVAL;
    return this.done(createFile(this.k, hugetlbSize ? 'hugetlbfs' : 'shmem', hugetlbSize).id);
  }
  tmpfile(): number {
    return this.done(createFile(this.k, 'disk').id);
  }
  fallocate(file: number, len: number): number {
    return this.done(fallocate(this.k, file, len));
  }
  /** Last close of an unlinked file: its page cache goes (mapped pages live on). */
  closeFile(file: number): void {
    this.done(dropFile(this.k, file, (id) => putRef(this.k, id, 1)));
  }
  pread(file: number, offset: number, len: number): Content | number {
    return this.done(io.pread(this.k, file, offset, len));
  }
  pwrite(file: number, offset: number, len: number, token: number): number {
    return this.done(io.pwrite(this.k, file, offset, len, token));
  }

  pipe(): number {
    return this.done(io.pipeCreate(this.k));
  }
  vmsplice(pid: number, pipe: number, addr: number, len: number): number {
    return this.done(io.vmsplice(this.k, proc(this.k, pid), pipe, addr, len));
  }
  pipeRead(pipe: number, len: number): Content {
    return this.done(io.pipeRead(this.k, pipe, len));
  }
  pipeClose(pipe: number): void {
    this.done(io.pipeClose(this.k, pipe));
  }

  gupTestStart(pid: number, addr: number, size: number, write: boolean, fast: boolean): number {
    return this.done(io.gupTestStart(this.k, proc(this.k, pid), addr, size, write, fast));
  }
  gupTestRead(pid: number): Content | number {
    return this.done(io.gupTestRead(this.k, proc(this.k, pid)));
  }
  gupTestStop(pid: number): number {
    return this.done(io.gupTestStop(this.k, proc(this.k, pid)));
  }
  ioUringRegister(pid: number, addr: number, len: number): number {
    return this.done(io.ioUringRegister(this.k, proc(this.k, pid), addr, len));
  }
  ioUringWriteFixed(buf: number, file: number, offset: number): number {
    return this.done(io.ioUringWriteFixed(this.k, buf, file, offset));
  }
  unpin(set: number): void {
    this.done(io.unpinSet(this.k, set));
  }
  vfioMapDma(pid: number, addr: number, len: number, write: boolean): number {
    return this.done(io.vfioMapDma(this.k, proc(this.k, pid), addr, len, write));
  }
  directIo(pid: number, file: number, offset: number, addr: number, len: number, toMemory: boolean): number {
    return this.done(io.directIo(this.k, proc(this.k, pid), file, offset, addr, len, toMemory));
  }
  pinContent(set: number): Content {
    return io.pinContent(this.k, set);
  }

  /** /proc/pid/pagemap for the page at addr. */
  pagemap(pid: number, addr: number): PagemapEntry {
    const mm = proc(this.k, pid).mm;
    const none: PagemapEntry = { present: false, swapped: false, folio: 0, page: 0, exclusivelyMapped: false, file: false };
    const v = findVma(mm, addr);
    if (!v) return none;
    const e = lookup(mm, v, addr);
    const vpn = Math.floor(addr / PAGE_SIZE);
    if (e.level === 'none') return none;
    if (e.level === 'pte') {
      const pte = e.pte;
      if (pte.t === 'swap') return { ...none, swapped: true };
      if (pte.t === 'zero') return { ...none, present: true, folio: -1 };
      const f = this.k.s.folios.get(pte.folio);
      return {
        present: true,
        swapped: false,
        folio: pte.folio,
        page: pte.off,
        exclusivelyMapped: f.mapcountAt(pte.off) + f.entireMapcount === 1,
        file: f.kind === 'file',
      };
    }
    const page = vpn - e.vpn;
    if (e.level === 'pmd' && e.leaf.t === 'hugezero') return { ...none, present: true, folio: -2, page, file: true };
    const f = this.k.s.folios.get(e.leaf.folio);
    const unit = Math.floor(page / f.sub);
    return {
      present: true,
      swapped: false,
      folio: f.id,
      page,
      exclusivelyMapped: f.mapcountAt(unit) + f.entireMapcount === 1,
      file: f.kind === 'file',
    };
  }
}
