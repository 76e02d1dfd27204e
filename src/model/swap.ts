/**
 * Swap: reclaim of anonymous folios to swap (MADV_PAGEOUT -> shrink_folio_list -> try_to_unmap)
 * and swap-in (do_swap_page, v5.7 to 6.18 by the profile's switches). Swap readahead is off
 * (page-cluster 0) and the device is not SWP_SYNCHRONOUS_IO, so every swap-in goes through the swap
 * cache. Reclaim never unmaps a maybe-pinned page, in every profile (docs/model.md).
 */
import { FAULT_FLAG_WRITE, PAGE_SIZE, VM_WRITE } from './constants.ts';
import { type FaultResult, reuseSwapPage } from './fault.ts';
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
 * Reclaim one anonymous folio to swap. Refused when the folio has references other than its
 * mappings (GUP references, pins: try_to_unmap cannot make a maybe-pinned page shared, and the
 * refcount would not freeze). Each mapping becomes a swap PTE carrying the exclusive marker. The
 * caller says where the mappings are (MADV_PAGEOUT reclaims only folios its own mm maps alone), so
 * the rmap walk is that mm's PTEs in `vpns`; a mapping elsewhere is a ModelBug below.
 */
export function reclaimFolio(k: Ctx, f: Folio, where: { mm: Mm; vpns: number[] }): boolean {
  if (!k.m.swap || f.kind !== 'anon' || f.hugetlb || f.swapSlot >= 0) return false;
  if (folioMaybeDmaPinned(f) || f.refcount !== folioMapcount(f)) return false;
  const base = k.s.nextSlot;
  k.s.nextSlot += f.nr;
  const swap = ownTable(k.s, 'swap');
  for (let i = 0; i < f.nr; i++) swap.set(base + i, { count: 0, data: f.dataAt(i) });
  const { mm, vpns } = where;
  for (const vpn of vpns) {
    const pte = mm.pte.get(vpn);
    if (pte?.t !== 'page' || pte.folio !== f.id) continue;
    const slot = base + pte.off;
    mm.pte.set(vpn, { t: 'swap', slot, exclusive: f.exclusiveAt(pte.off), softDirty: pte.softDirty });
    k.s.swap.get(slot).count++;
    f.setMapcount(pte.off, f.mapcountAt(pte.off) - 1);
    f.refcount--;
    if (k.trace) emitMm(k, mm, 'swap out', vpn * PAGE_SIZE, `slot ${slot}`);
  }
  if (f.refcount !== 0 || f.entireMapcount) bug(`folio ${f.id} still referenced after reclaim`);
  for (let i = 0; i < f.nr; i++) if (k.s.swap.get(base + i).count === 0) k.s.swap.delete(base + i);
  k.s.folios.delete(f.id);
  return true;
}

/**
 * do_swap_page(): find the page in the swap cache or read it in (into the swap cache), then:
 * - no-reuse-swap-page (5.18+): the page is mapped exclusive if the swap PTE carried the exclusive
 *   marker (anon-exclusive) or if no other reference remains after a write fault dropped the swap
 *   cache; exclusive + write fault maps it writable, otherwise R/O and do_wp_page decides;
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
  const writable = exclusive && write && (vma.flags & VM_WRITE) !== 0;
  mm.pte.set(vpn, { t: 'page', folio: f.id, off: 0, write: writable, dirty: writable, softDirty: pte.softDirty || writable });
  if (k.trace) emitMm(k, mm, exclusive ? 'swap in (exclusive)' : 'swap in (shared)', vpn * PAGE_SIZE, `folio ${f.id}`);
  return 'ok';
}
