/**
 * Swap: reclaim of anonymous folios to swap (MADV_PAGEOUT -> shrink_folio_list -> try_to_unmap)
 * and swap-in (do_swap_page, v5.7 to 6.18 by the profile's switches). Swap readahead is off
 * (page-cluster 0) and the device is not SWP_SYNCHRONOUS_IO, so every swap-in goes through the swap
 * cache. Which pages reclaim may unmap: reclaimFolio.
 */
import { FAULT_FLAG_WRITE, PAGE_SIZE, VM_WRITE } from './constants.ts';
import { type FaultResult, reuseSwapPage, vmaSoftDirtyEnabled } from './fault.ts';
import { allocFolio, bug, type Ctx, emitMm, folio, folioMapcount, folioMaybeDmaPinned, mapPte, putRef } from './kernel.ts';
import { ownTable } from './table.ts';
import type { Folio, Mm, SwapPte, Vma } from './types.ts';

/** folio_free_swap(): drop the folio from the swap cache if no swap PTE still needs the slot. */
export function freeSwapCache(k: Ctx, f: Folio): boolean {
  if (f.swapSlot < 0) return false;
  const slot = k.s.swap.get(f.swapSlot);
  if (slot && slot.count > 0) return false;
  deleteFromSwapCache(k, f);
  return true;
}

/** delete_from_swap_cache(): the folio leaves the swap cache; slots no swap PTE uses are freed,
 *  the others stay (their PTEs will read the data back from the device). */
export function deleteFromSwapCache(k: Ctx, f: Folio): void {
  for (let i = 0; i < f.nr; i++) {
    const id = f.swapSlot + i;
    k.s.swapcache.delete(id);
    if ((k.s.swap.get(id)?.count ?? 0) === 0) k.s.swap.delete(id);
  }
  f.swapSlot = -1;
  putRef(k, f.id, f.nr);
}

/** swap_free() of one reference; frees the slot when nothing uses it any more. */
export function swapPut(k: Ctx, slotId: number): void {
  const slot = k.s.swap.get(slotId);
  if (!slot) bug(`no swap slot ${slotId}`);
  slot.count--;
  if (slot.count > 0) return;
  const cached = k.s.swapcache.get(slotId);
  if (cached === undefined) k.s.swap.delete(slotId);
  else {
    // free_swap_and_cache(): the cached folio is dropped once no PTE maps it
    const f = folio(k, cached);
    if (folioMapcount(f) === 0) freeSwapCache(k, f);
  }
}

/**
 * Reclaim one anonymous folio to swap (shrink_folio_list). The caller says where the mappings are
 * (MADV_PAGEOUT reclaims only folios its own mm maps alone), so the rmap walk is that mm's PTEs in
 * `vpns`; a mapping elsewhere is a ModelBug below.
 * - A large folio with references besides its mappings cannot be split or frozen: kept as it is.
 * - With reclaim-skip-pinned (5.11+) a maybe-pinned folio is not added to the swap cache; with
 *   anon-exclusive (5.19+) try_to_unmap cannot make a maybe-pinned exclusive page shared, so it
 *   stays mapped, in the swap cache or not.
 * - Otherwise add_to_swap() (a folio not in the swap cache yet gets slots), try_to_unmap() (each
 *   mapping becomes a swap PTE carrying the exclusive marker; PG_anon_exclusive is cleared) and
 *   pageout() (the slots hold the content). __remove_mapping() then frees the folio, unless
 *   something else still holds it (a FOLL_GET reference, a pin before 5.11): it stays in the swap
 *   cache, unmapped, and the next swap-in maps that same folio again.
 * Returns whether the folio was unmapped.
 */
export function reclaimFolio(k: Ctx, f: Folio, where: { mm: Mm; vpns: number[] }): boolean {
  if (!k.m.swap || f.kind !== 'anon' || f.hugetlb) return false;
  const cached = f.swapSlot >= 0;
  const others = f.refcount - folioMapcount(f) - (cached ? f.nr : 0);
  if (f.nr > 1 && others > 0) return false;
  const pinned = folioMaybeDmaPinned(f);
  if (pinned && !cached && k.sw['reclaim-skip-pinned']) return false;
  if (pinned && k.sw['anon-exclusive'] && anyExclusive(f)) return false;
  const swap = ownTable(k.s, 'swap');
  if (!cached) {
    const base = k.s.nextSlot;
    k.s.nextSlot += f.nr;
    const swapcache = ownTable(k.s, 'swapcache');
    for (let i = 0; i < f.nr; i++) {
      swap.set(base + i, { count: 0, data: 0 });
      swapcache.set(base + i, f.id);
    }
    f.swapSlot = base;
    f.refcount += f.nr; // the swap cache's references
  }
  for (let i = 0; i < f.nr; i++) swap.get(f.swapSlot + i).data = f.dataAt(i);
  const { mm, vpns } = where;
  for (const vpn of vpns) {
    const pte = mm.pte.get(vpn);
    if (pte?.t !== 'page' || pte.folio !== f.id) continue;
    const slot = f.swapSlot + pte.off;
    mm.pte.set(vpn, { t: 'swap', slot, exclusive: f.exclusiveAt(pte.off), softDirty: pte.softDirty });
    swap.get(slot).count++;
    f.setExclusive(pte.off, false);
    f.setMapcount(pte.off, f.mapcountAt(pte.off) - 1);
    f.refcount--;
    if (k.trace) emitMm(k, mm, 'swap out', vpn * PAGE_SIZE, `slot ${slot}`);
  }
  if (folioMapcount(f) || f.entireMapcount) bug(`folio ${f.id} still mapped after reclaim`);
  // nothing but the swap cache holds it: freed (its slots keep the content for the swap PTEs)
  if (f.refcount === f.nr) deleteFromSwapCache(k, f);
  return true;
}

/** Is any unit of the folio PG_anon_exclusive? */
function anyExclusive(f: Folio): boolean {
  for (let i = 0; i < f.nr; i++) if (f.exclusiveAt(i)) return true;
  return false;
}

/**
 * do_swap_page(): find the page in the swap cache or read it in (into the swap cache), then:
 * - no-reuse-swap-page (5.18+): the page is mapped exclusive if the swap PTE carried the exclusive
 *   marker (anon-exclusive) or if no other reference remains after a write fault dropped the swap
 *   cache; exclusive + write fault maps it writable (a read fault too with swapin-map-writable,
 *   6.11+), otherwise R/O and do_wp_page decides;
 * - before (<= 5.17): a write fault asks reuse_swap_page() before the swap entry is freed
 *   (mappings + swap entries, the refcount ignored) and maps the page writable when it says yes;
 *   a read fault maps it R/O and leaves it in the swap cache.
 * `pte` is the swap entry handle_pte_fault() read (vmf->orig_pte).
 */
export function swapIn(k: Ctx, mm: Mm, vma: Vma, vpn: number, pte: Readonly<SwapPte>, flags: number): FaultResult {
  const slotId = pte.slot;
  const slot = k.s.swap.get(slotId);
  if (!slot) bug(`swap PTE points to free slot ${slotId}`);
  let id = k.s.swapcache.get(slotId);
  if (id === undefined) {
    const f = allocFolio(k, 'anon', 1, 0, [slot.data]);
    f.swapSlot = slotId;
    f.refcount = 1; // the swap cache's reference
    ownTable(k.s, 'swapcache').set(slotId, f.id);
    id = f.id;
  }
  const f = folio(k, id);
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  let exclusive: boolean;
  if (!k.sw['no-reuse-swap-page']) {
    f.refcount++; // our reference from the look-up
    // reuse_swap_page() runs before swap_free(): our own entry still counts
    exclusive = write && reuseSwapPage(k, f);
    slot.count--;
    if (slot.count === 0 && k.s.swapcache.get(slotId) === undefined) k.s.swap.delete(slotId);
    f.refcount--; // mapPte takes it again
  } else {
    f.refcount++; // our reference from the look-up, becomes the mapping's
    // swap_free(): this PTE no longer uses the slot
    slot.count--;
    // should_try_to_free_swap(): a write fault with nobody else holding the page frees the cache
    if (slot.count === 0 && write && f.refcount === 2) freeSwapCache(k, f);
    else if (slot.count === 0 && f.swapSlot < 0) k.s.swap.delete(slotId);
    exclusive = (k.sw['anon-exclusive'] && pte.exclusive) || f.refcount === 1;
    f.refcount--; // mapPte takes it again
  }
  mapPte(k, f.id, 0);
  if (exclusive) f.setExclusive(0, true);
  // an exclusive page is mapped writable on a write fault (maybe_mkwrite), and from
  // swapin-map-writable (6.11) on a read fault too, unless soft-dirty tracking wants the fault
  // (pte_needs_soft_dirty_wp); dirty only on a write fault
  const writable =
    exclusive &&
    (vma.flags & VM_WRITE) !== 0 &&
    (write || (k.sw['swapin-map-writable'] && !(vmaSoftDirtyEnabled(k, vma) && !pte.softDirty)));
  const dirty = writable && write;
  mm.pte.set(vpn, { t: 'page', folio: f.id, off: 0, write: writable, dirty, softDirty: pte.softDirty || dirty });
  if (k.trace) emitMm(k, mm, exclusive ? 'swap in (exclusive)' : 'swap in (shared)', vpn * PAGE_SIZE, `folio ${f.id}`);
  return 'ok';
}
