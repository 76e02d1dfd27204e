/** Shared helpers for the model unit tests (not a test file itself). */
import {
  MADV_HUGEPAGE,
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
