/**
 * Page faults: handle_mm_fault and the handlers it dispatches to (mm/memory.c, mm/huge_memory.c,
 * mm/hugetlb.c), from v5.7 to 6.18 as the profile's switches say (baseline: v6.2). A fault
 * returns 'ok' or the signal the access gets.
 */
import {
  FAULT_FLAG_UNSHARE,
  FAULT_FLAG_WRITE,
  HPAGE_PMD_NR,
  PAGE_SIZE,
  PMD_SIZE,
  VM_HUGEPAGE,
  VM_MAYWRITE,
  VM_NOHUGEPAGE,
  VM_SOFTDIRTY,
  VM_WRITE,
} from './constants.ts';
import { pageCacheFolio } from './files.ts';
import {
  allocFolio,
  bug,
  type Ctx,
  emit,
  emitMm,
  findVma,
  folio,
  folioMapcount,
  hasPteTable,
  hugetlbPool,
  hugetlbPoolAdd,
  hugeVpnOf,
  isCowMapping,
  mapEntire,
  mapPte,
  pageMapcount,
  pmdVpnOf,
  tokenAt,
  unmapEntire,
  unmapPte,
  vmaIsAnonymous,
  vmaIsShared,
  vpnOf,
} from './kernel.ts';
import { OFF_UNIT, ownHuge, ownPmd, pteVal } from './pagetable.ts';
import { ownProc } from './state.ts';
import { deleteFromSwapCache, freeSwapCache, swapIn } from './swap.ts';
import { type Folio, HUGE_ZERO_FOLIO, type Mm, type PagePte, type Proc, type Vma, type ZeroPte } from './types.ts';

export type FaultResult = 'ok' | 'sigsegv' | 'sigbus' | 'oom';

/** Soft-dirty tracking is on for the VMA: CONFIG_MEM_SOFT_DIRTY and VM_SOFTDIRTY cleared. */
export function vmaSoftDirtyEnabled(k: Ctx, v: Vma): boolean {
  return k.m.softDirty && (v.flags & VM_SOFTDIRTY) === 0;
}

/**
 * handle_mm_fault(): sanitises the flags (UNSHARE is dropped outside COW mappings, UNSHARE with
 * WRITE is a bug), then goes to hugetlb_fault or walks PMD -> PTE.
 */
export function handleMmFault(k: Ctx, mm: Mm, vma: Vma, addr: number, flags: number): FaultResult {
  if (flags & FAULT_FLAG_UNSHARE) {
    if (flags & FAULT_FLAG_WRITE) bug('FAULT_FLAG_UNSHARE with FAULT_FLAG_WRITE');
    // sanitize_fault_flags(): unsharing only applies to COW mappings
    if (!isCowMapping(vma.flags)) flags &= ~FAULT_FLAG_UNSHARE;
  }
  if (flags & FAULT_FLAG_WRITE && !(vma.flags & VM_MAYWRITE)) return 'sigsegv';
  if (vma.hugetlb) return hugetlbFault(k, mm, vma, addr, flags);

  const vpn = vpnOf(addr);
  const pv = pmdVpnOf(vpn);
  const leaf = mm.pmd.get(pv);
  if (!leaf && !hasPteTable(mm, pv) && thpEligible(k, vma, pv)) {
    return doHugePmdAnonymousPage(k, mm, vma, pv, flags);
  }
  if (leaf) {
    if (flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE) && !leaf.write) {
      if (wpHugePmd(k, mm, vma, pv, flags) === 'done') return 'ok';
      // VM_FAULT_FALLBACK: the PMD was split; handle the fault at PTE level
    } else {
      if (flags & FAULT_FLAG_WRITE && !leaf.dirty) ownPmd(mm).set(pv, { ...leaf, dirty: true });
      return 'ok';
    }
  }
  return handlePteFault(k, mm, vma, addr, flags);
}

/**
 * Does the THP configuration allow folios of `size` bytes in this VMA? Anonymous, no
 * VM_NOHUGEPAGE, and the size's setting: always, or madvise with VM_HUGEPAGE; 'inherit' follows the
 * global `enabled`. Per-size settings exist from mthp (6.8); before, only the global one.
 */
export function thpAllowed(k: Ctx, vma: Vma, size: number): boolean {
  if (!k.m.thp || !vmaIsAnonymous(vma) || vma.flags & VM_NOHUGEPAGE) return false;
  let mode = k.sw.mthp ? (k.m.thpModes?.[size] ?? (size === PMD_SIZE ? 'inherit' : 'never')) : 'inherit';
  if (mode === 'inherit') mode = k.m.thpEnabled;
  return mode === 'always' || (mode === 'madvise' && (vma.flags & VM_HUGEPAGE) !== 0);
}

/** A PMD THP for a fault: allowed, and the whole PMD range lies in the VMA. */
export function thpEligible(k: Ctx, vma: Vma, pv: number): boolean {
  if (!thpAllowed(k, vma, PMD_SIZE)) return false;
  const start = pv * PAGE_SIZE;
  return start >= vma.start && start + HPAGE_PMD_NR * PAGE_SIZE <= vma.end;
}

/**
 * alloc_anon_folio() (mthp, 6.8): the largest allowed size below the PMD size whose naturally
 * aligned range around vpn lies in the VMA with every PTE none; 1 (a small folio) otherwise.
 */
function anonFolioPages(k: Ctx, mm: Mm, vma: Vma, vpn: number): number {
  if (!k.sw.mthp) return 1;
  const sizes = (k.m.thpSizes ?? []).filter((s) => s < PMD_SIZE).sort((a, b) => b - a);
  for (const size of sizes) {
    const nr = size / PAGE_SIZE;
    const first = vpn - (vpn % nr);
    if (first * PAGE_SIZE < vma.start || (first + nr) * PAGE_SIZE > vma.end) continue;
    if (!thpAllowed(k, vma, size)) continue;
    let none = true;
    for (let i = 0; i < nr && none; i++) if (mm.pte.get(first + i)) none = false;
    if (none) return nr;
  }
  return 1;
}

/**
 * do_huge_pmd_anonymous_page(): a read fault maps the huge zeropage (use_zero_page), anything
 * else allocates a zeroed PMD THP mapped exclusive, writable if VM_WRITE.
 */
function doHugePmdAnonymousPage(k: Ctx, mm: Mm, vma: Vma, pv: number, flags: number): FaultResult {
  vma.anonVma = true;
  if (!(flags & FAULT_FLAG_WRITE) && k.m.hugeZeroPage && k.m.zeroPage) {
    if (!mm.hugeZeroRef) {
      mm.hugeZeroRef = true;
      k.s.hugeZeroRefs++;
    }
    ownPmd(mm).set(pv, { t: 'hugezero', folio: HUGE_ZERO_FOLIO, write: false, dirty: false, softDirty: false });
    emitMm(k, mm, 'map huge zeropage', pv * PAGE_SIZE);
    return 'ok';
  }
  const f = allocFolio(k, 'anon', HPAGE_PMD_NR, 0, 0);
  f.setExclusive(0, true);
  mapEntire(k, f.id);
  const write = (vma.flags & VM_WRITE) !== 0;
  ownPmd(mm).set(pv, { t: 'thp', folio: f.id, write, dirty: true, softDirty: true });
  if (k.trace) emitMm(k, mm, 'new THP', pv * PAGE_SIZE, `folio ${f.id}`);
  return 'ok';
}

/**
 * __split_huge_pmd(): replace a PMD leaf by 512 PTEs. Each PTE takes a reference; subpages inherit
 * the head's PG_anon_exclusive. The huge zeropage becomes 512 shared-zeropage PTEs.
 */
export function splitHugePmd(k: Ctx, mm: Mm, pv: number): void {
  const leaf = mm.pmd.get(pv);
  if (!leaf) return;
  mm.pmd.delete(pv);
  emitMm(k, mm, 'split PMD', pv * PAGE_SIZE);
  // 512 entries that differ only in the page offset: encoded once, the offset added per entry
  if (leaf.t === 'hugezero') {
    const zero = pteVal({ t: 'zero', softDirty: leaf.softDirty });
    for (let i = 0; i < HPAGE_PMD_NR; i++) mm.pte.setWord(pv + i, zero);
    return;
  }
  const f = folio(k, leaf.folio);
  const excl = f.exclusiveAt(0);
  const first = pteVal({ t: 'page', folio: f.id, off: 0, write: leaf.write, dirty: leaf.dirty, softDirty: leaf.softDirty });
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    mm.pte.setWord(pv + i, first + i * OFF_UNIT);
    f.setMapcount(i, f.mapcountAt(i) + 1);
    if (excl) f.setExclusive(i, true);
  }
  f.refcount += HPAGE_PMD_NR - 1;
  f.entireMapcount--;
}

/**
 * do_huge_pmd_wp_page(): a write or unshare fault on a R/O PMD.
 * - The huge zeropage: a new zeroed THP (huge-zero-wp-alloc, 6.13+, and before thp-cow-split),
 *   otherwise the PMD is split and the PTE level copies 4 KiB.
 * - An anonymous THP is reused when exclusive (anon-exclusive), or by refcount (no-reuse-swap-page,
 *   5.18+), or by reuse_swap_page() (mapcount, <= 5.17). An unshare fault only marks it exclusive.
 * - Otherwise the PMD is split and the PTE level copies 4 KiB (thp-cow-split, 5.8+), or before
 *   that a whole new THP receives a copy of the 2 MiB; if the VMA no longer allows a THP
 *   (__transparent_hugepage_enabled), every page is copied into a small page of its own
 *   (do_huge_pmd_wp_page_fallback), and the huge zeropage's PMD is split.
 */
function wpHugePmd(k: Ctx, mm: Mm, vma: Vma, pv: number, flags: number): 'done' | 'fallback' {
  const leaf = mm.pmd.get(pv);
  const unshare = (flags & FAULT_FLAG_UNSHARE) !== 0;
  if (leaf.t === 'hugezero') {
    if (k.sw['huge-zero-wp-alloc'] || (!k.sw['thp-cow-split'] && thpAllowed(k, vma, PMD_SIZE)))
      return thpCopy(k, mm, vma, pv, 'huge zeropage');
    splitHugePmd(k, mm, pv);
    return 'fallback';
  }
  const f = folio(k, leaf.folio);
  let reuse = k.sw['anon-exclusive'] && f.exclusiveAt(0);
  if (!reuse && !k.sw['no-reuse-swap-page']) reuse = reuseSwapPage(k, f);
  else if (!reuse) {
    const swapRefs = f.swapSlot >= 0 ? f.nr : 0;
    if (f.refcount <= 1 + swapRefs) {
      if (f.swapSlot >= 0) freeSwapCache(k, f);
      reuse = f.refcount === 1;
    }
  }
  if (!reuse) {
    if (!k.sw['thp-cow-split'])
      return thpAllowed(k, vma, PMD_SIZE) ? thpCopy(k, mm, vma, pv, `folio ${f.id}`) : thpFallbackCopy(k, mm, vma, pv);
    splitHugePmd(k, mm, pv);
    return 'fallback';
  }
  f.setExclusive(0, true); // page_move_anon_rmap()
  if (unshare) {
    emitMm(k, mm, 'unshare: THP already exclusive', pv * PAGE_SIZE);
    return 'done';
  }
  ownPmd(mm).set(pv, { ...leaf, write: leaf.write || (vma.flags & VM_WRITE) !== 0, dirty: true, softDirty: true });
  emitMm(k, mm, 'reuse THP', pv * PAGE_SIZE);
  return 'done';
}

/**
 * do_huge_pmd_wp_page_fallback() (before 5.8): no THP may be allocated, so each page of the shared
 * THP gets a small exclusive copy of its own, mapped writable (if the VMA is) by a PTE.
 */
function thpFallbackCopy(k: Ctx, mm: Mm, vma: Vma, pv: number): 'done' {
  const old = mm.pmd.get(pv);
  const src = folio(k, old.folio);
  vma.anonVma = true;
  ownPmd(mm).delete(pv);
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const f = allocFolio(k, 'anon', 1, 0, [src.dataAt(i)]);
    f.setExclusive(0, true);
    mapPte(k, f.id, 0);
    mm.pte.set(pv + i, { t: 'page', folio: f.id, off: 0, write: (vma.flags & VM_WRITE) !== 0, dirty: true, softDirty: true });
  }
  unmapEntire(k, old.folio);
  if (k.trace) emitMm(k, mm, 'COW: THP copied page by page', pv * PAGE_SIZE, `folio ${old.folio}`);
  return 'done';
}

/**
 * A new PMD THP replacing the mapped one: zeroed for the huge zeropage (do_huge_zero_wp_pmd, 6.13;
 * do_huge_pmd_wp_page before 5.8), a copy of all 512 pages for a shared THP (before 5.8). Mapped
 * exclusive, writable when the VMA is (do_huge_zero_wp_pmd does so for unshare faults too).
 */
function thpCopy(k: Ctx, mm: Mm, vma: Vma, pv: number, from: string): 'done' {
  const old = mm.pmd.get(pv);
  const data = old.t === 'hugezero' ? 0 : folio(k, old.folio).data;
  const f = allocFolio(k, 'anon', HPAGE_PMD_NR, 0, data);
  f.setExclusive(0, true);
  mapEntire(k, f.id);
  vma.anonVma = true;
  ownPmd(mm).set(pv, { t: 'thp', folio: f.id, write: (vma.flags & VM_WRITE) !== 0, dirty: true, softDirty: true });
  if (old.t === 'thp') unmapEntire(k, old.folio);
  if (k.trace) emitMm(k, mm, 'COW: new THP', pv * PAGE_SIZE, `${from} -> folio ${f.id}`);
  return 'done';
}

/** handle_pte_fault(): reads the PTE once (vmf->orig_pte) and hands it to the handler. */
function handlePteFault(k: Ctx, mm: Mm, vma: Vma, addr: number, flags: number): FaultResult {
  const vpn = vpnOf(addr);
  const pte = mm.pte.get(vpn);
  if (!pte) {
    if (vmaIsAnonymous(vma)) return doAnonymousPage(k, mm, vma, vpn, flags);
    return doFault(k, mm, vma, vpn, flags);
  }
  if (pte.t === 'swap') return swapIn(k, mm, vma, vpn, pte, flags);
  if (flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE) && !('write' in pte && pte.write)) {
    return doWpPage(k, mm, vma, vpn, pte, flags);
  }
  if (flags & FAULT_FLAG_WRITE && pte.t === 'page' && !pte.dirty) mm.pte.set(vpn, { ...pte, dirty: true });
  return 'ok';
}

/**
 * do_anonymous_page(): a read fault (or an unshare fault that found nothing) maps the shared
 * zeropage; a write fault allocates a zeroed exclusive page. Where the zeropage is forbidden
 * (mm_forbids_zeropage), a read fault allocates too, mapped writable like after a write. Only a
 * writable VMA's new page is made writable and dirty (pte_mkwrite(pte_mkdirty()), which on x86
 * also sets the soft-dirty bit); the zeropage PTE and a FOLL_FORCE write's page stay clean.
 */
function doAnonymousPage(k: Ctx, mm: Mm, vma: Vma, vpn: number, flags: number): FaultResult {
  if (!(flags & FAULT_FLAG_WRITE) && k.m.zeroPage) {
    mm.pte.set(vpn, { t: 'zero', softDirty: false });
    emitMm(k, mm, 'map shared zeropage', vpn * PAGE_SIZE);
    return 'ok';
  }
  vma.anonVma = true;
  const nr = anonFolioPages(k, mm, vma, vpn);
  const first = vpn - (vpn % nr);
  const f = allocFolio(k, 'anon', nr, 0, 0);
  for (let i = 0; i < nr; i++) {
    f.setExclusive(i, true);
    mapPte(k, f.id, i);
    const w = (vma.flags & VM_WRITE) !== 0;
    mm.pte.set(first + i, { t: 'page', folio: f.id, off: i, write: w, dirty: w, softDirty: w });
  }
  if (k.trace) emitMm(k, mm, nr > 1 ? `new mTHP (${nr * 4} kB)` : 'new anon page', first * PAGE_SIZE, `folio ${f.id}`);
  return 'ok';
}

/**
 * do_fault(): file-backed memory. Read faults map the page-cache page (R/O in private mappings and
 * in shared mappings that need write notification); a write fault in a private mapping is
 * do_cow_fault (an exclusive anonymous copy), in a shared mapping do_shared_fault.
 */
function doFault(k: Ctx, mm: Mm, vma: Vma, vpn: number, flags: number): FaultResult {
  const index = vma.pgoff / PAGE_SIZE + (vpn - vma.start / PAGE_SIZE);
  const cache = pageCacheFolio(k, vma.file, index);
  if (!cache) return 'sigbus'; // beyond EOF
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  if (write && !vmaIsShared(vma)) {
    vma.anonVma = true;
    const f = allocFolio(k, 'anon', 1, 0, [cache.dataAt(0)]);
    f.setExclusive(0, true);
    mapPte(k, f.id, 0);
    mm.pte.set(vpn, { t: 'page', folio: f.id, off: 0, write: (vma.flags & VM_WRITE) !== 0, dirty: true, softDirty: true });
    if (k.trace) emitMm(k, mm, 'COW of page-cache page (do_cow_fault)', vpn * PAGE_SIZE, `folio ${f.id}`);
    return 'ok';
  }
  mapPte(k, cache.id, 0);
  const writable = vmaIsShared(vma) && (vma.flags & VM_WRITE) !== 0 && (write || !needsWriteNotify(k, vma));
  mm.pte.set(vpn, { t: 'page', folio: cache.id, off: 0, write: writable, dirty: write, softDirty: write });
  if (k.trace) emitMm(k, mm, write ? 'map page-cache page writable' : 'map page-cache page', vpn * PAGE_SIZE, `folio ${cache.id}`);
  if (!write) faultAround(k, mm, vma, vpn, writable);
  return 'ok';
}

/** fault_around_bytes (64 KiB): the window do_fault_around() maps, in pages. */
const FAULT_AROUND_PAGES = 16;

/**
 * do_fault_around() -> filemap_map_pages() (read faults of file mappings): the other pages of the
 * aligned 16-page window around the fault, inside the VMA and the page table, that are in the page
 * cache and uptodate and whose PTE is none, get mapped as the read fault mapped its page. The
 * model maps the faulting page first; the kernel maps the window first, which comes to the same.
 */
function faultAround(k: Ctx, mm: Mm, vma: Vma, vpn: number, writable: boolean): void {
  const file = k.s.files.get(vma.file);
  if (!file || vma.hugetlb) return;
  const vmaFirst = vma.start / PAGE_SIZE;
  const ptFirst = vpn - (vpn % HPAGE_PMD_NR);
  const from = Math.max(vpn - (vpn % FAULT_AROUND_PAGES), vmaFirst, ptFirst);
  const to = Math.min(from + FAULT_AROUND_PAGES, vma.end / PAGE_SIZE, ptFirst + HPAGE_PMD_NR);
  for (let v = from; v < to; v++) {
    if (v === vpn || mm.pte.word(v) !== undefined) continue;
    const index = vma.pgoff / PAGE_SIZE + (v - vmaFirst);
    if (index * PAGE_SIZE >= file.size) break;
    const id = file.cache.get(index);
    if (id === undefined || !folio(k, id).uptodate) continue;
    mapPte(k, id, 0);
    mm.pte.set(v, { t: 'page', folio: id, off: 0, write: writable, dirty: false, softDirty: false });
  }
}

/** vma_wants_writenotify(): disk-backed shared mappings track dirtying, shmem does not; any shared
 *  mapping under soft-dirty tracking (clear_refs cleared VM_SOFTDIRTY) wants the write fault too. */
export function needsWriteNotify(k: Ctx, vma: Vma): boolean {
  // soft-dirty tracking wants the write faults too (hugetlb has none)
  if (vmaSoftDirtyEnabled(k, vma) && !vma.hugetlb) return true;
  return k.s.files.get(vma.file)?.kind === 'disk';
}

/**
 * Can do_wp_page() reuse this anonymous page? Era by era:
 * - anon-exclusive (5.19+): an exclusive page is reused at once, whatever holds references;
 * - pte-thp-reuse (6.15+): a page of a PTE-mapped large folio all of whose references are this
 *   mm's own mappings;
 * - no-reuse-swap-page (5.18+): refcount 1 after dropping the swap cache's reference (the "> 3"
 *   early exit keeps PTE-mapped large folios out);
 * - wp-reuse-refcount (5.9-5.17): refcount exactly 1, so a page still in the swap cache is never
 *   reused;
 * - before (<= 5.8): reuse_swap_page(), mappings plus swap entries; pins and pipe references do not
 *   count (CVE-2020-29374).
 * A reused page becomes PG_anon_exclusive (page_move_anon_rmap; before 5.19 just our marker).
 */
function wpCanReuseAnon(k: Ctx, mm: Mm, pte: Readonly<PagePte>): boolean {
  const f = folio(k, pte.folio);
  if (k.sw['anon-exclusive'] && f.exclusiveAt(pte.off)) return true;
  let reuse: boolean;
  if (!k.sw['wp-reuse-refcount']) reuse = reuseSwapPage(k, f);
  else if (!k.sw['no-reuse-swap-page']) reuse = f.refcount === 1;
  else if (k.sw['pte-thp-reuse'] && f.nr > 1) reuse = largeFolioOwnedBy(mm, f);
  // 781a3ca5c345 (6.9): a page of a large folio is never reused, the folio can go sooner
  else if (k.sw['wp-no-large-reuse'] && f.nr > 1) reuse = false;
  else {
    reuse = false;
    const swapRefs = f.swapSlot >= 0 ? 1 : 0;
    if (f.refcount <= 3 && f.refcount <= 1 + swapRefs) {
      if (f.swapSlot >= 0) freeSwapCache(k, f);
      reuse = f.refcount === 1;
    }
  }
  if (reuse) f.setExclusive(pte.off, true);
  return reuse;
}

/**
 * reuse_swap_page() (<= 5.17): the page may be reused when it is mapped at most once, counting
 * swap entries that still refer to it; the refcount is never looked at. For a large folio the
 * count is the largest per-page count plus the PMD mappings. The last user drops the swap cache.
 */
export function reuseSwapPage(k: Ctx, f: Folio): boolean {
  let count = 0;
  for (let i = 0; i < f.nr; i++) {
    const swapCount = f.swapSlot >= 0 ? (k.s.swap.get(f.swapSlot + i)?.count ?? 0) : 0;
    count = Math.max(count, f.mapcountAt(i) + swapCount);
  }
  count += f.entireMapcount;
  if (count <= 1 && f.swapSlot >= 0) deleteFromSwapCache(k, f);
  return count <= 1;
}

/**
 * __wp_can_reuse_large_anon_folio() (6.15): every reference of the folio is a mapping (no GUP
 * reference, pin or swap cache), and all those mappings belong to this mm (the MM owner tracking).
 * A folio mapped only once is not reused ("let's just free up a large folio").
 */
function largeFolioOwnedBy(mm: Mm, f: Folio): boolean {
  const maps = folioMapcount(f);
  if (maps <= 1) return false;
  if (f.refcount !== maps || f.swapSlot >= 0) return false;
  let own = 0;
  for (const p of mm.pte.values()) if (p.t === 'page' && p.folio === f.id) own++;
  for (const l of mm.pmd.values()) if (l.folio === f.id) own++;
  return own === maps;
}

/**
 * do_wp_page(): a write or unshare fault on a present, non-writable PTE. Shared mappings are made
 * writable. In private mappings an anonymous page that can be reused is reused (an unshare fault
 * just leaves it exclusive and R/O); anything else is copied by wp_page_copy(). `pte` is the entry
 * handle_pte_fault() read (vmf->orig_pte).
 */
function doWpPage(k: Ctx, mm: Mm, vma: Vma, vpn: number, pte: Readonly<PagePte | ZeroPte>, flags: number): FaultResult {
  const unshare = (flags & FAULT_FLAG_UNSHARE) !== 0;
  const addr = vpn * PAGE_SIZE;
  if (vmaIsShared(vma)) {
    if (pte.t === 'page') mm.pte.set(vpn, { t: 'page', folio: pte.folio, off: pte.off, write: true, dirty: true, softDirty: true });
    emitMm(k, mm, 'make shared page writable', addr);
    return 'ok';
  }
  if (pte.t === 'page' && folio(k, pte.folio).kind === 'anon') {
    if (wpCanReuseAnon(k, mm, pte)) {
      if (unshare) {
        emitMm(k, mm, 'unshare: reuse exclusive anon page', addr);
        return 'ok';
      }
      const write = pte.write || (vma.flags & VM_WRITE) !== 0;
      mm.pte.set(vpn, { t: 'page', folio: pte.folio, off: pte.off, write, dirty: true, softDirty: true });
      if (k.trace) emitMm(k, mm, 'reuse anon page', addr, `folio ${pte.folio}`);
      return 'ok';
    }
  } else if (unshare && !k.sw['unshare-fault-noanon']) {
    // before 8d6a0ac09a16: "No anonymous page -> nothing to do"
    emitMm(k, mm, 'unshare: not anonymous, nothing to do', addr);
    return 'ok';
  }
  return wpPageCopy(k, mm, vma, vpn, pte, unshare);
}

/**
 * wp_page_copy(): map a new exclusive anonymous copy (zeroed for the shared zeropage) in place of
 * `old` (vmf->orig_pte). For an unshare fault the copy is mapped R/O and clean, keeping the old
 * soft-dirty bit.
 */
function wpPageCopy(k: Ctx, mm: Mm, vma: Vma, vpn: number, old: Readonly<PagePte | ZeroPte>, unshare: boolean): FaultResult {
  vma.anonVma = true;
  const data = old.t === 'zero' ? 0 : tokenAt(k, old.folio, old.off);
  const f = allocFolio(k, 'anon', 1, 0, [data]);
  f.setExclusive(0, true);
  mapPte(k, f.id, 0);
  mm.pte.set(vpn, {
    t: 'page',
    folio: f.id,
    off: 0,
    write: !unshare && (vma.flags & VM_WRITE) !== 0,
    dirty: !unshare,
    softDirty: unshare ? old.softDirty : true,
  });
  if (old.t === 'page') {
    unmapPte(k, old.folio, old.off);
    // free_swap_cache(old_page) once it was copied (cow-free-swapcache, 5.14; before, an idle
    // swap-cache page stayed until reclaim)
    const of = k.s.folios.get(old.folio);
    if (k.sw['cow-free-swapcache'] && of && of.swapSlot >= 0 && folioMapcount(of) === 0) freeSwapCache(k, of);
  }
  if (k.trace) {
    const from = old.t === 'zero' ? 'shared zeropage' : `folio ${old.folio}`;
    emitMm(k, mm, unshare ? 'unshare: copy' : 'COW: copy', vpn * PAGE_SIZE, `${from} -> folio ${f.id}`);
  }
  return 'ok';
}

// ---------------------------------------------------------------------------------------------
// hugetlb

/**
 * hugetlb_fault(): a none entry is filled by hugetlb_no_page (page-cache page for shared mappings or
 * files with the page cached, else a new anonymous page, mapped R/O in private mappings; a write
 * then goes straight on to hugetlb_wp); a write or unshare on a R/O entry goes to hugetlb_wp.
 */
function hugetlbFault(k: Ctx, mm: Mm, vma: Vma, addr: number, flags: number): FaultResult {
  const hv = hugeVpnOf(vpnOf(addr), vma.hugetlb);
  const leaf = mm.huge.get(hv);
  if (!leaf) {
    const index = (vma.pgoff + (hv * PAGE_SIZE - vma.start)) / vma.hugetlb;
    const file = k.s.files.get(vma.file);
    let id = file?.cache.get(index);
    if (id === undefined) {
      // hugetlb_no_page(): beyond the file's size is SIGBUS (a R/O mapping does not extend it);
      // so is any fault in a child's mapping the owner took a page from (HPAGE_RESV_UNMAPPED)
      if (file && index * vma.hugetlb >= file.size) return 'sigbus';
      if (vma.resvUnmapped) return 'sigbus';
      const f = allocHugetlbFolio(k, vma, true);
      if (!f) return 'sigbus';
      if (vmaIsShared(vma)) {
        f.file = vma.file;
        f.index = index;
        file.cache.set(index, f.id);
        f.refcount++; // the page cache reference
      } else {
        vma.anonVma = true;
        f.kind = 'anon';
        f.setExclusive(0, true);
      }
      id = f.id;
    }
    mapEntire(k, id);
    const write = vmaIsShared(vma) && (vma.flags & VM_WRITE) !== 0;
    // a write to a shared mapping dirties the new entry at once; a private one goes to hugetlb_wp
    const dirty = (flags & FAULT_FLAG_WRITE) !== 0 && vmaIsShared(vma);
    ownHuge(mm).set(hv, { folio: id, write, dirty });
    if (k.trace) emitMm(k, mm, 'hugetlb: map page', hv * PAGE_SIZE, `folio ${id}`);
    if (flags & FAULT_FLAG_WRITE && !vmaIsShared(vma)) return hugetlbWp(k, mm, vma, hv, flags);
    return 'ok';
  }
  if (flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE) && !leaf.write) return hugetlbWp(k, mm, vma, hv, flags);
  if (flags & FAULT_FLAG_WRITE && !leaf.dirty) ownHuge(mm).set(hv, { ...leaf, dirty: true });
  return 'ok';
}

/**
 * hugetlb_wp() (hugetlb_cow in older kernels; the same rule in every profile): reuse is decided by
 * the **mapcount** (not the refcount): an anonymous page mapped once is reused, so FOLL_GET references (vmsplice) can still see later writes. Otherwise
 * a new hugetlb page is allocated and the content copied; unshare maps it R/O.
 */
function hugetlbWp(k: Ctx, mm: Mm, vma: Vma, hv: number, flags: number): FaultResult {
  const unshare = (flags & FAULT_FLAG_UNSHARE) !== 0;
  // f347454d0341: no FOLL_FORCE-style writes into R/O hugetlb mappings (before, the page was mapped writable)
  if (k.sw['hugetlb-no-force-write'] && !unshare && !(vma.flags & VM_WRITE)) return 'sigsegv';
  const leaf = mm.huge.get(hv);
  if (vmaIsShared(vma)) {
    ownHuge(mm).set(hv, { ...leaf, write: true, dirty: true });
    return 'ok';
  }
  // 052ccfbcc6cd (6.14): a FOLL_FORCE write into a R/O mapping leaves the entry R/O
  // (set_huge_ptep_maybe_writable; GUP then follows it as can_follow_write_pmd allows); before
  // f347454d0341 (6.2) such a write made it writable
  const writable = !k.sw['hugetlb-wp-maybe-writable'] || (vma.flags & VM_WRITE) !== 0;
  const old = folio(k, leaf.folio);
  if (old.kind === 'anon' && pageMapcount(old, 0) === 1) {
    old.setExclusive(0, true);
    if (!unshare) ownHuge(mm).set(hv, { ...leaf, write: leaf.write || writable, dirty: true });
    if (k.trace) emitMm(k, mm, unshare ? 'hugetlb unshare: reuse' : 'hugetlb: reuse', hv * PAGE_SIZE, `folio ${old.id}`);
    return 'ok';
  }
  if (unshare && old.kind !== 'anon' && !k.sw['unshare-fault-noanon']) return 'ok';
  // the reservation covers the copy of a page-cache page; an anonymous COW by the owner does not
  const f = allocHugetlbFolio(k, vma, old.kind !== 'anon');
  if (!f) {
    // cow_from_owner: the mapping's creator takes the page back from its children and reuses it
    if (vma.resvOwner && old.kind === 'anon' && unmapRefPrivate(k, mm, hv, old.id)) return hugetlbWp(k, mm, vma, hv, flags);
    return 'oom';
  }
  vma.anonVma = true;
  f.kind = 'anon';
  f.setData(0, old.dataAt(0));
  f.setExclusive(0, true);
  mapEntire(k, f.id);
  ownHuge(mm).set(hv, { folio: f.id, write: !unshare && writable, dirty: !unshare });
  unmapEntire(k, old.id);
  if (k.trace) emitMm(k, mm, unshare ? 'hugetlb unshare: copy' : 'hugetlb COW: copy', hv * PAGE_SIZE, `folio ${old.id} -> folio ${f.id}`);
  return 'ok';
}

/**
 * unmap_ref_private(): when the owner of a private hugetlb mapping cannot copy a page its children
 * share, their entries for it (at the same address, in mappings that are not owners) are zapped,
 * and those mappings are marked HPAGE_RESV_UNMAPPED (a later fault there is SIGBUS). Returns
 * whether any entry went.
 */
function unmapRefPrivate(k: Ctx, mm: Mm, hv: number, id: number): boolean {
  let any = false;
  for (const q of k.s.procs.values()) {
    if (q.mm === mm || !q.alive) continue;
    const leaf = q.mm.huge.get(hv);
    if (leaf?.folio !== id) continue;
    const v = findVma(q.mm, hv * PAGE_SIZE);
    if (!v || vmaIsShared(v) || v.resvOwner) continue;
    // written through ownProc: a process shared with a clone is copied first
    const own = ownProc(k.s, q.pid) as Proc;
    own.mm.vmas.find((x) => x.start === v.start)!.resvUnmapped = true;
    ownHuge(own.mm).delete(hv);
    unmapEntire(k, id);
    if (k.trace) emit(k, q.pid, 'hugetlb: page taken back by the owner (unmap_ref_private)', hv * PAGE_SIZE, `folio ${id}`);
    any = true;
  }
  return any;
}

/**
 * alloc_hugetlb_folio(): use this VMA's reservation when allowed and present, else a free page
 * nobody reserved. Returns null when the pool is exhausted.
 */
export function allocHugetlbFolio(k: Ctx, vma: Vma, useResv: boolean) {
  const pool = hugetlbPool(k, vma.hugetlb);
  let resv = 0;
  if (useResv && vma.resv > 0) {
    vma.resv--;
    resv = -1;
  } else if (pool.free - pool.resv <= 0) {
    return null;
  }
  hugetlbPoolAdd(k, vma.hugetlb, -1, resv);
  return allocFolio(k, 'file', 1, vma.hugetlb, [0]);
}
