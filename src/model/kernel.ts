/**
 * The context every rule runs in, and the small helpers shared by all rules: folio allocation and
 * reference counting, VMA look-up, page-table access. Rules mutate the State they are handed; the
 * public entry points (index.ts) clone first, so from outside every step is a pure function.
 */
import { GUP_PIN_COUNTING_BIAS, HPAGE_PMD_NR, PAGE_SIZE, VM_MAYSHARE, VM_MAYWRITE, VM_SHARED } from './constants.ts';
import type { Machine } from './machine.ts';
import type { Switches } from './profile.ts';
import { ownProc } from './state.ts';
import {
  type Folio,
  type FolioKind,
  HUGE_ZERO_FOLIO,
  type HugeLeaf,
  type Mm,
  type PmdLeaf,
  type Proc,
  type Pte,
  type State,
  type Token,
  type Vma,
  ZERO_FOLIO,
} from './types.ts';

/** One thing the kernel did, for traces and for tests that check which path a rule took. */
export interface Event {
  pid: number;
  what: string;
  addr?: number;
  detail?: string;
}

export interface Ctx {
  s: State;
  sw: Switches;
  m: Machine;
  /** events are recorded only when this is an array */
  trace: Event[] | null;
}

/** A broken model invariant or an impossible internal state: a bug in cowlab, never user error. */
export class ModelBug extends Error {
  override name = 'ModelBug';
}

export function bug(msg: string): never {
  throw new ModelBug(msg);
}

/**
 * Records an event when tracing (the scenario runner and `cowlab run` trace; the selftest and the
 * explorer do not). Per-page rules call it as `if (k.trace) emit(...)` when the detail is built
 * from numbers: the template string would be made, and thrown away, on every page otherwise.
 */
export function emit(k: Ctx, pid: number, what: string, addr?: number, detail?: string): void {
  if (k.trace) k.trace.push({ pid, what, addr, detail });
}

/** emit() for rules that hold an mm: the owning pid is looked up only when tracing. */
export function emitMm(k: Ctx, mm: Mm, what: string, addr?: number, detail?: string): void {
  if (k.trace) k.trace.push({ pid: pidOf(k, mm), what, addr, detail });
}

// ---------------------------------------------------------------------------------------------
// processes and VMAs

/** The live process `pid`, this state's own (ownProc: the operation may change it). */
export function proc(k: Ctx, pid: number): Proc {
  const p = ownProc(k.s, pid);
  if (!p?.alive) bug(`no live process ${pid}`);
  return p;
}

export function findVma(mm: Mm, addr: number): Vma | undefined {
  for (const v of mm.vmas) if (addr >= v.start && addr < v.end) return v;
  return undefined;
}

/** is_cow_mapping(): private and may become writable; also true for PROT_READ MAP_PRIVATE. */
export function isCowMapping(flags: number): boolean {
  return (flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
}

/** vma_is_anonymous(): private anonymous memory (shared anonymous memory is shmem). */
export function vmaIsAnonymous(v: Vma): boolean {
  return v.file < 0;
}

export function vmaIsShared(v: Vma): boolean {
  return (v.flags & (VM_SHARED | VM_MAYSHARE)) !== 0;
}

export const vpnOf = (addr: number): number => Math.floor(addr / PAGE_SIZE);
export const pmdVpnOf = (vpn: number): number => vpn - (vpn % HPAGE_PMD_NR);
export const hugeVpnOf = (vpn: number, hsize: number): number => {
  const per = hsize / PAGE_SIZE;
  return vpn - (vpn % per);
};

// ---------------------------------------------------------------------------------------------
// folios

export function folio(k: Ctx, id: number): Folio {
  const f = k.s.folios.get(id);
  if (!f) bug(`no folio ${id}`);
  return f;
}

export function isLarge(f: Folio): boolean {
  return f.nr > 1 || f.hugetlb > 0;
}

export function allocFolio(
  k: Ctx,
  kind: FolioKind,
  nr: number,
  hugetlb: number,
  data: readonly Token[] | Token,
  file = -1,
  index = 0,
): Folio {
  return k.s.folios.alloc(k.s.nextId++, kind, nr, hugetlb, hugetlb ? hugetlb / PAGE_SIZE : 1, data, file, index);
}

export function getRef(k: Ctx, id: number, n = 1): void {
  if (id === ZERO_FOLIO) k.s.zeroPageRefs += n;
  else if (id === HUGE_ZERO_FOLIO) k.s.hugeZeroRefs += n;
  else folio(k, id).refcount += n;
}

/** folio_put(): drop references; the last one frees the folio (hugetlb pages go back to the pool). */
export function putRef(k: Ctx, id: number, n = 1): void {
  if (id === ZERO_FOLIO) {
    k.s.zeroPageRefs -= n;
    if (k.s.zeroPageRefs < 0) bug('zeropage refcount underflow');
    return;
  }
  if (id === HUGE_ZERO_FOLIO) {
    k.s.hugeZeroRefs -= n;
    if (k.s.hugeZeroRefs < 0) bug('huge zeropage refcount underflow');
    return;
  }
  folioPut(k, folio(k, id), n);
}

/** putRef() of a folio already in hand (one look-up fewer on the hot unmap paths). */
function folioPut(k: Ctx, f: Folio, n: number): void {
  const r = f.refcount - n;
  f.refcount = r;
  if (r < 0) bug(`folio ${f.id} refcount underflow`);
  if (r === 0) freeFolio(k, f);
}

function freeFolio(k: Ctx, f: Folio): void {
  if (folioMapcount(f)) bug(`freeing mapped folio ${f.id}`);
  if (f.pincount) bug(`freeing pinned folio ${f.id}`);
  if (f.swapSlot >= 0 || f.file >= 0) bug(`freeing folio ${f.id} still in a cache`);
  if (f.hugetlb) hugetlbPoolAdd(k, f.hugetlb, 1, 0);
  k.s.folios.delete(f.id);
}

/** folio_maybe_dma_pinned(): exact for large folios, a heuristic on the refcount for small ones. */
export function folioMaybeDmaPinned(f: Folio): boolean {
  if (isLarge(f)) return f.pincount > 0;
  return f.refcount >= GUP_PIN_COUNTING_BIAS;
}

/** Total mappings of a folio (folio_mapcount): PTE maps of every unit plus entire maps. */
export function folioMapcount(f: Folio): number {
  let n = f.entireMapcount;
  for (let i = 0; i < f.nr; i++) n += f.mapcountAt(i);
  return n;
}

/** page_mapcount() of one unit: its PTE maps plus the maps of the whole folio. */
export function pageMapcount(f: Folio, off: number): number {
  return f.mapcountAt(off) + f.entireMapcount;
}

export function tokenAt(k: Ctx, id: number, off: number): Token {
  if (id === ZERO_FOLIO || id === HUGE_ZERO_FOLIO) return 0;
  return folio(k, id).dataAt(off);
}

/** Adds to a hugetlb pool's free pages and reservations (the pool records are immutable and shared
 *  by clones, so this replaces the array with the changed record in it). */
export function hugetlbPoolAdd(k: Ctx, size: number, free: number, resv: number): void {
  hugetlbPool(k, size);
  k.s.hugetlb = k.s.hugetlb.map((p) => (p.size === size ? { size: p.size, nr: p.nr, free: p.free + free, resv: p.resv + resv } : p));
}

export function hugetlbPool(k: Ctx, size: number) {
  const p = k.s.hugetlb.find((h) => h.size === size);
  if (!p) bug(`no hugetlb pool of ${size} bytes`);
  return p;
}

// ---------------------------------------------------------------------------------------------
// page tables

/** What the walk found: a decoded copy of the entry and its key (a change is a set() on the table
 *  of `level` at `vpn`). */
export type Entry =
  | { level: 'none' }
  | { level: 'pte'; vpn: number; pte: Readonly<Pte> }
  | { level: 'pmd'; vpn: number; leaf: Readonly<PmdLeaf> }
  | { level: 'huge'; vpn: number; leaf: Readonly<HugeLeaf> };

const NONE: Entry = { level: 'none' };

/** Walks the page tables of `mm` for `addr` inside `vma` (pud/pmd/pte walk). */
export function lookup(mm: Mm, vma: Vma, addr: number): Entry {
  const vpn = vpnOf(addr);
  if (vma.hugetlb) {
    const hv = hugeVpnOf(vpn, vma.hugetlb);
    const leaf = mm.huge.get(hv);
    return leaf ? { level: 'huge', vpn: hv, leaf } : NONE;
  }
  const pv = pmdVpnOf(vpn);
  const leaf = mm.pmd.get(pv);
  if (leaf) return { level: 'pmd', vpn: pv, leaf };
  const pte = mm.pte.get(vpn);
  return pte ? { level: 'pte', vpn, pte } : NONE;
}

/** Is vpn's entry a PTE, as lookup() would find it (not a hugetlb VMA, no PMD leaf over it)? The
 *  per-page paths that read raw PTE words ask this first. */
export function pteLevel(mm: Mm, vma: Vma, vpn: number): boolean {
  return !vma.hugetlb && (mm.pmd.size === 0 || !mm.pmd.has(pmdVpnOf(vpn)));
}

/** Is there a page table (pmd not none) for the PMD range starting at pv? */
export function hasPteTable(mm: Mm, pv: number): boolean {
  return mm.pte.hasIn(pv, pv + HPAGE_PMD_NR);
}

/** Adds a mapping reference for a PTE that maps unit `off` of folio `id`. */
export function mapPte(k: Ctx, id: number, off: number): void {
  const f = folio(k, id);
  f.setMapcount(off, f.mapcountAt(off) + 1);
  f.refcount++;
}

/** Drops the mapping reference of a PTE (page_remove_rmap + put). */
export function unmapPte(k: Ctx, id: number, off: number): void {
  const f = folio(k, id);
  const m = f.mapcountAt(off) - 1;
  f.setMapcount(off, m);
  if (m < 0) bug(`folio ${id} unit ${off} mapcount underflow`);
  folioPut(k, f, 1);
}

export function mapEntire(k: Ctx, id: number): void {
  const f = folio(k, id);
  f.entireMapcount++;
  f.refcount++;
}

export function unmapEntire(k: Ctx, id: number): void {
  const f = folio(k, id);
  f.entireMapcount--;
  if (f.entireMapcount < 0) bug(`folio ${id} entire mapcount underflow`);
  folioPut(k, f, 1);
}

/** The process that owns `mm` (for trace events). */
export function pidOf(k: Ctx, mm: Mm): number {
  for (const p of k.s.procs.values()) if (p.mm === mm) return p.pid;
  return -1;
}
