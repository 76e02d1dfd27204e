/**
 * madvise(): the advice values cow.c and the scenarios use.
 */
import {
  EAGAIN,
  EINVAL,
  HPAGE_PMD_NR,
  MADV_COLLAPSE,
  MADV_DOFORK,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MADV_PAGEOUT,
  PAGE_SIZE,
  PMD_SIZE,
  VM_DONTCOPY,
  VM_HUGEPAGE,
  VM_NOHUGEPAGE,
  VM_WRITE,
} from './constants.ts';
import { splitHugePmd } from './fault.ts';
import {
  allocFolio,
  type Ctx,
  emit,
  findVma,
  folio,
  folioMapcount,
  mapEntire,
  pageMapcount,
  pmdVpnOf,
  unmapPte,
  vmaIsAnonymous,
  vpnOf,
} from './kernel.ts';
import { holeError, madviseDontneed, setVmaFlags } from './mm.ts';
import { ownPmd } from './pagetable.ts';
import { ownProc } from './state.ts';
import { reclaimFolio } from './swap.ts';
import type { Folio, Proc } from './types.ts';

/**
 * do_madvise(): the start must be page aligned, the length is rounded up to whole pages, an empty
 * range does nothing. The advice then visits every VMA in the range (madvise_walk_vmas): a hole
 * does not stop it, but the call returns ENOMEM at the end; an advice's own error stops it at once.
 */
export function madvise(k: Ctx, p: Proc, addr: number, len: number, advice: number): number {
  if (addr % PAGE_SIZE || len < 0) return -EINVAL;
  len = Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
  if (len === 0) return 0;
  switch (advice) {
    case MADV_HUGEPAGE:
      return setVmaFlags(k, p, addr, len, VM_HUGEPAGE, VM_NOHUGEPAGE);
    case MADV_NOHUGEPAGE:
      return setVmaFlags(k, p, addr, len, VM_NOHUGEPAGE, VM_HUGEPAGE);
    case MADV_DONTFORK:
      return setVmaFlags(k, p, addr, len, VM_DONTCOPY, 0);
    case MADV_DOFORK:
      return setVmaFlags(k, p, addr, len, 0, VM_DONTCOPY);
    case MADV_DONTNEED:
      return madviseDontneed(k, p, addr, len);
    case MADV_PAGEOUT:
      return madvisePageout(k, p, addr, len);
    case MADV_COLLAPSE:
      return madviseCollapse(k, p, addr, len);
    default:
      return -EINVAL;
  }
}

/**
 * MADV_PAGEOUT (madvise_cold_or_pageout_pte_range, v6.2): only folios mapped exactly once are
 * reclaimed. A PMD-mapped THP is left alone (PMD and all) when anything else maps it or holds it;
 * fully in range it is reclaimed whole (its PMD is split into swap PTEs), partly in range it is
 * split into small folios first. A PTE-mapped large folio is split into small folios
 * (split_huge_page, which fails when something holds extra references). Page-cache pages and the
 * huge zeropage are left alone.
 */
function madvisePageout(k: Ctx, p: Proc, addr: number, len: number): number {
  const mm = p.mm;
  const end = addr + len;
  for (let vpn = vpnOf(addr); vpn < vpnOf(end); ) {
    const v = findVma(mm, vpn * PAGE_SIZE);
    if (!v) {
      // a hole: on to the next VMA (madvise_walk_vmas), ENOMEM at the end
      const next = mm.vmas.find((x) => x.start > vpn * PAGE_SIZE);
      if (!next || next.start >= end) break;
      vpn = vpnOf(next.start);
      continue;
    }
    if (v.hugetlb) return -EINVAL;
    const pv = pmdVpnOf(vpn);
    const leaf = mm.pmd.get(pv);
    if (leaf) {
      const next = Math.min(pv + HPAGE_PMD_NR, vpnOf(end));
      // the huge zeropage, a THP something else maps too ("do not interfere with other mappings
      // of this folio"), or one that cannot be split (references besides this mapping): left alone
      const f = leaf.t === 'thp' ? folio(k, leaf.folio) : null;
      if (!f || folioMapcount(f) !== 1 || f.refcount !== 1) {
        vpn = next;
        continue;
      }
      splitHugePmd(k, mm, pv);
      if (vpn === pv && next === pv + HPAGE_PMD_NR) {
        // the whole THP: reclaimed as one folio (its PMD becomes 512 swap PTEs)
        const vpns = Array.from({ length: HPAGE_PMD_NR }, (_, i) => pv + i);
        reclaimFolio(k, f, { mm, vpns });
        vpn = next;
        continue;
      }
      // part of it: split_folio(), then the pages in range one by one (below)
    }
    const pte = mm.pte.get(vpn);
    if (pte?.t === 'page') {
      let f: Folio | null = folio(k, pte.folio);
      // "Do not interfere with other mappings of this page": page_mapcount(page) must be 1
      if (f.kind === 'anon' && pageMapcount(f, pte.off) === 1) {
        if (f.nr > 1) f = splitFolio(k, f, pte.off);
        if (f && f.nr === 1) reclaimFolio(k, f, { mm, vpns: [vpn] });
      }
    }
    vpn++;
  }
  return holeError(mm, addr, end);
}

/**
 * split_huge_page(): turn a PTE-mapped large anonymous folio into small folios, keeping each
 * page's PG_anon_exclusive. Fails (returns null) when the folio has references beyond its
 * mappings, e.g. GUP references or pins. Returns the new folio holding unit `off`.
 */
export function splitFolio(k: Ctx, f: Folio, off: number): Folio | null {
  if (f.entireMapcount || f.swapSlot >= 0 || f.refcount !== folioMapcount(f)) return null;
  const made: number[] = [];
  for (let i = 0; i < f.nr; i++) {
    const n = allocFolio(k, 'anon', 1, 0, [f.dataAt(i)]);
    n.setExclusive(0, f.exclusiveAt(i));
    n.setMapcount(0, f.mapcountAt(i));
    n.refcount = f.mapcountAt(i);
    made.push(n.id);
  }
  // every PTE of every mm that maps the folio now maps the small folio of its unit
  for (const q of k.s.procs.values()) {
    for (const vpn of q.mm.pte.keys()) {
      const pte = q.mm.pte.get(vpn);
      if (pte.t !== 'page' || pte.folio !== f.id) continue;
      // written through ownProc: a process shared with a clone is copied first (once)
      (ownProc(k.s, q.pid) as Proc).mm.pte.set(vpn, { ...pte, folio: made[pte.off], off: 0 });
    }
  }
  k.s.folios.delete(f.id);
  for (const id of made) if (k.s.folios.get(id).refcount === 0) k.s.folios.delete(id);
  return k.s.folios.get(made[off]) ?? null;
}

/**
 * MADV_COLLAPSE (collapse_huge_page): for each PMD range of an anonymous VMA, copy the pages into a
 * new exclusive THP mapped by a PMD and drop the old PTE mappings. Fails with EAGAIN when a page is
 * referenced beyond its mappings (is_refcount_suitable), with EINVAL when the range is no THP
 * candidate.
 */
function madviseCollapse(k: Ctx, p: Proc, addr: number, len: number): number {
  const mm = p.mm;
  if (!k.m.thp) return -EINVAL;
  const start = Math.ceil(addr / PMD_SIZE) * PMD_SIZE;
  for (let a = start; a + PMD_SIZE <= addr + len; a += PMD_SIZE) {
    const v = findVma(mm, a);
    if (!v || !vmaIsAnonymous(v) || v.flags & VM_NOHUGEPAGE || v.end < a + PMD_SIZE) return -EINVAL;
    const pv = vpnOf(a);
    if (mm.pmd.get(pv)) continue;
    const data: number[] = [];
    for (let i = 0; i < HPAGE_PMD_NR; i++) {
      const pte = mm.pte.get(pv + i);
      if (pte?.t === 'swap') return -EAGAIN;
      if (pte?.t === 'page') {
        const f = folio(k, pte.folio);
        const swapRefs = f.swapSlot >= 0 ? f.nr : 0;
        if (f.kind !== 'anon' || f.refcount !== folioMapcount(f) + swapRefs) return -EAGAIN;
        data.push(f.dataAt(pte.off));
      } else data.push(0);
    }
    const n = allocFolio(k, 'anon', HPAGE_PMD_NR, 0, data);
    n.setExclusive(0, true);
    for (let i = 0; i < HPAGE_PMD_NR; i++) {
      const pte = mm.pte.get(pv + i);
      mm.pte.delete(pv + i);
      if (pte?.t === 'page') unmapPte(k, pte.folio, pte.off);
    }
    mapEntire(k, n.id);
    ownPmd(mm).set(pv, { t: 'thp', folio: n.id, write: (v.flags & VM_WRITE) !== 0, dirty: true, softDirty: true });
    if (k.trace) emit(k, p.pid, 'collapse into new THP', a, `folio ${n.id}`);
  }
  return 0;
}
