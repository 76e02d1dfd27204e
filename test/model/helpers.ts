/** Shared helpers for the model unit tests (not a test file itself). */
import fc from 'fast-check';
import {
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MADV_PAGEOUT,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/model/constants.ts';
import { type Machine, SEED_MACHINE } from '../../src/model/machine.ts';
import { findProfile, type Profile } from '../../src/model/profile.ts';
import { Sim } from '../../src/model/sim.ts';
import type { PagePte, PinSet, PmdLeaf, Pte } from '../../src/model/types.ts';

export const RW = PROT_READ | PROT_WRITE;
export const HUGE_2M = 2 * 1024 * 1024;

export function profile(name: string): Profile {
  const p = findProfile(name);
  if (!p) throw new Error(`no profile ${name}`);
  return p;
}

/** A traced Sim on the seed machine, with optional machine overrides. */
export function mkSim(kernel = 'v6.2', machine: Partial<Machine> = {}): Sim {
  return new Sim(profile(kernel), { ...SEED_MACHINE, ...machine }, { trace: true });
}

/** mmap private anonymous memory in pid 1 (or pid), asserting success. */
export function anon(sim: Sim, len: number, prot = RW, pid = 1, extraFlags = 0): number {
  const a = sim.mmap(pid, { len, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS | extraFlags });
  if (a < 0) throw new Error(`mmap failed: ${a}`);
  return a;
}

/** A PMD-aligned private anonymous range with MADV_HUGEPAGE. */
export function thpArea(sim: Sim, pid = 1): number {
  const a = anon(sim, PMD_SIZE, RW, pid);
  if (a % PMD_SIZE) throw new Error('THP area not PMD aligned');
  if (sim.madvise(pid, a, PMD_SIZE, MADV_HUGEPAGE) !== 0) throw new Error('MADV_HUGEPAGE failed');
  return a;
}

/** A private anonymous hugetlb mapping. */
export function hugetlbAnon(sim: Sim, len = HUGE_2M, prot = RW, size = HUGE_2M): number {
  return sim.mmap(1, { len, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, hugetlbSize: size });
}

export function pte(sim: Sim, pid: number, addr: number): Readonly<Pte> | undefined {
  return sim.state.procs.get(pid).mm.pte.get(Math.floor(addr / PAGE_SIZE));
}

/** The PTE at addr, which must map a page. */
export function pagePte(sim: Sim, pid: number, addr: number): Readonly<PagePte> {
  const p = pte(sim, pid, addr);
  if (p?.t !== 'page') throw new Error(`no page PTE at ${addr.toString(16)} in pid ${pid}: ${JSON.stringify(p)}`);
  return p;
}

export function pmd(sim: Sim, pid: number, addr: number): Readonly<PmdLeaf> | undefined {
  return sim.state.procs.get(pid).mm.pmd.get(Math.floor(addr / PAGE_SIZE));
}

export function folioAt(sim: Sim, pid: number, addr: number): number {
  return sim.pagemap(pid, addr).folio;
}

export const whats = (sim: Sim): string[] => sim.events.map((e) => e.what);
export const has = (sim: Sim, what: string, pid?: number): boolean =>
  sim.events.some((e) => e.what === what && (pid === undefined || e.pid === pid));
export const count = (sim: Sim, what: string): number => sim.events.filter((e) => e.what === what).length;
export const hasLike = (sim: Sim, re: RegExp): boolean => sim.events.some((e) => re.test(e.what));
/** Forget the events recorded so far. */
export function clearEvents(sim: Sim): void {
  sim.events.length = 0;
}

export function pinSets(sim: Sim, user?: string): PinSet[] {
  return [...sim.state.pins.values()].filter((p) => user === undefined || p.user === user);
}

export function folioCount(sim: Sim): number {
  return sim.state.folios.size;
}

/** A small random workload for property tests (state.test.ts, canon.test.ts): operations on the
 *  live processes of a small area, a THP area and a pipe. */
export type Op =
  | { t: 'store'; who: number; page: number; token: number }
  | { t: 'read'; who: number; page: number }
  | { t: 'fork'; who: number }
  | { t: 'exit'; who: number }
  | { t: 'pageout'; who: number; page: number }
  | { t: 'dontneed'; who: number; page: number }
  | { t: 'ro'; who: number; page: number }
  | { t: 'splice'; who: number; page: number }
  | { t: 'thpstore'; who: number; token: number }
  | { t: 'thpsplit'; who: number; page: number }
  | { t: 'thpout'; who: number }
  | { t: 'pin'; who: number; page: number }
  | { t: 'unpin'; who: number };
export const PAGES = 4;
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('store' as const), who: fc.nat(3), page: fc.nat(PAGES - 1), token: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ t: fc.constant('read' as const), who: fc.nat(3), page: fc.nat(PAGES - 1) }),
  fc.record({ t: fc.constant('fork' as const), who: fc.nat(3) }),
  fc.record({ t: fc.constant('exit' as const), who: fc.nat(3) }),
  fc.record({ t: fc.constant('pageout' as const), who: fc.nat(3), page: fc.nat(PAGES - 1) }),
  fc.record({ t: fc.constant('dontneed' as const), who: fc.nat(3), page: fc.nat(PAGES - 1) }),
  fc.record({ t: fc.constant('ro' as const), who: fc.nat(3), page: fc.nat(PAGES - 1) }),
  fc.record({ t: fc.constant('splice' as const), who: fc.nat(3), page: fc.nat(PAGES - 1) }),
  fc.record({ t: fc.constant('thpstore' as const), who: fc.nat(3), token: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ t: fc.constant('thpsplit' as const), who: fc.nat(3), page: fc.nat(PAGES - 1) }),
  fc.record({ t: fc.constant('thpout' as const), who: fc.nat(3) }),
  fc.record({ t: fc.constant('pin' as const), who: fc.nat(3), page: fc.nat(PAGES - 1) }),
  fc.record({ t: fc.constant('unpin' as const), who: fc.nat(3) }),
);

/** Where a history of Ops runs: a fresh model with a small area, a THP area and a pipe in pid 1. */
export function historyStart(p: Profile, check: boolean): { sim: Sim; a: number; t: number; pipe: number } {
  const sim = new Sim(p, SEED_MACHINE, { check });
  const a = anon(sim, PAGES * PAGE_SIZE);
  const t = thpArea(sim);
  const pipe = sim.pipe();
  return { sim, a, t, pipe };
}

/** Runs ops on sim (a small area at a, a THP area at t, in pid 1 and every child). */
export function applyOps(sim: ReturnType<typeof mkSim>, a: number, t: number, pipe: number, ops: readonly Op[]): void {
  for (const o of ops) {
    const live = [...sim.state.procs.values()].filter((p) => p.alive).map((p) => p.pid);
    const pid = live[o.who % live.length];
    const at = 'page' in o ? a + o.page * PAGE_SIZE : a;
    if (o.t === 'store') sim.memset(pid, at, o.token, PAGE_SIZE);
    else if (o.t === 'read') sim.read(pid, at, PAGE_SIZE);
    else if (o.t === 'fork') {
      if (live.length < 4) sim.fork(pid);
    } else if (o.t === 'exit') {
      if (pid !== 1) {
        sim.exit(pid, 0);
        sim.wait(pid);
      }
    } else if (o.t === 'pageout') sim.madvise(pid, at, PAGE_SIZE, MADV_PAGEOUT);
    else if (o.t === 'dontneed') sim.madvise(pid, at, PAGE_SIZE, MADV_DONTNEED);
    else if (o.t === 'ro') sim.mprotect(pid, at, PAGE_SIZE, PROT_READ);
    else if (o.t === 'splice') sim.vmsplice(pid, pipe, at, PAGE_SIZE);
    else if (o.t === 'thpstore') sim.memset(pid, t, o.token, PAGE_SIZE);
    else if (o.t === 'thpsplit') sim.madvise(pid, t + (o.page + 1) * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED);
    else if (o.t === 'thpout') sim.madvise(pid, t, PMD_SIZE, MADV_PAGEOUT);
    else if (o.t === 'pin') sim.ioUringRegister(pid, at, PAGE_SIZE);
    else {
      // unpin a set of any process (Sim.unpin works on the set, not through a process)
      const sets = sim.state.pins.keys();
      if (sets.length) sim.unpin(sets[o.who % sets.length]);
    }
  }
}
