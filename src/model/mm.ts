/**
 * Address-space operations: mmap, munmap/zap, mprotect, madvise, mremap, fork (copy_page_range),
 * exit, and /proc/self/clear_refs. VMAs are split where an operation covers part of one (which
 * splits a PMD-mapped THP crossing the boundary, as vma_adjust_trans_huge does) and merged again
 * when neighbours become compatible.
 */
import {
  EACCES,
  EINVAL,
  ENOMEM,
  HPAGE_PMD_NR,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_SHARED,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
  VM_DONTCOPY,
  VM_HUGETLB,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_READ,
  VM_SHARED,
  VM_SOFTDIRTY,
  VM_WRITE,
} from './constants.ts';
import { needsWriteNotify, splitHugePmd, vmaSoftDirtyEnabled } from './fault.ts';
import { createFile } from './files.ts';
import {
  allocFolio,
  type Ctx,
  emit,
  findVma,
  folio,
  folioMapcount,
  folioMaybeDmaPinned,
  hugetlbPool,
  hugetlbPoolAdd,
  isCowMapping,
  mapEntire,
  mapPte,
  pmdVpnOf,
  putRef,
  unmapEntire,
  unmapPte,
  vmaIsShared,
  vpnOf,
} from './kernel.ts';
import {
  BIT_DIRTY,
  BIT_EXCLUSIVE,
  BIT_SOFT_DIRTY,
  BIT_WRITE,
  entryBits,
  entryRef,
  KIND_MASK,
  OFF_SHIFT,
  ownHuge,
  ownPmd,
  PTE_PAGE,
  PTE_SWAP,
  PTE_ZERO,
} from './pagetable.ts';
import { emptyMm } from './state.ts';
import { freeSwapCache, swapPut } from './swap.ts';
import { EPOCH, type Folio, type Mm, type PmdLeaf, type Proc, type Vma } from './types.ts';

export const PROT_RW = PROT_READ | PROT_WRITE;

function align(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

/** The deterministic allocator behind mmap(NULL, ...): ascending, naturally aligned for hugetlb; mmap() checks
 *  TASK_SIZE first. */
function getUnmappedArea(mm: Mm, len: number, alignTo: number): number {
  const addr = align(mm.mmapBase, alignTo);
  mm.mmapBase = addr + len + PAGE_SIZE; // leave a guard gap so VMAs never merge by accident
  return addr;
}

function protFlags(prot: number): number {
  return (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0);
}

function insertVma(mm: Mm, v: Vma): void {
  mm.vmas.push(v);
  mm.vmas.sort((a, b) => a.start - b.start);
}

export interface MmapArgs {
  len: number;
  prot: number;
  flags: number;
  /** file id, or -1 */
  file?: number;
  offset?: number;
  /** MAP_HUGETLB page size; 0 = the first configured hugetlb size */
  hugetlbSize?: number;
}

/**
 * do_mmap(): private mappings get VM_MAYWRITE (so PROT_READ MAP_PRIVATE is still a COW mapping);
 * shared anonymous memory is backed by a shmem file; private hugetlb mappings reserve their huge
 * pages now (hugetlb_reserve_pages) and fail with ENOMEM when the pool cannot cover them.
 */
export function mmap(k: Ctx, p: Proc, a: MmapArgs): number {
  const mm = p.mm;
  const shared = (a.flags & MAP_SHARED) !== 0;
  let file = a.file ?? -1;
  const fileObj = file >= 0 ? k.s.files.get(file) : undefined;
  if (file >= 0 && !fileObj) return -EINVAL;
  let hugetlb = 0;
  if (a.flags & MAP_HUGETLB) hugetlb = a.hugetlbSize || k.s.hugetlb[0]?.size || 0;
  if (fileObj?.kind === 'hugetlbfs') hugetlb = fileObj.hugetlb;
  if (a.flags & MAP_HUGETLB && !hugetlb) return -EINVAL;
  const unit = hugetlb || PAGE_SIZE;
  if (a.len <= 0 || (a.offset ?? 0) % unit) return -EINVAL;
  const len = align(a.len, unit);
  const alignTo = hugetlb || (len >= PMD_SIZE ? PMD_SIZE : PAGE_SIZE);
  if (align(mm.mmapBase, alignTo) + len > TASK_SIZE) return -ENOMEM;
  if (hugetlb) {
    const pool = hugetlbPool(k, hugetlb);
    const need = len / hugetlb;
    if (!shared && !(a.flags & MAP_NORESERVE)) {
      if (pool.free - pool.resv < need) return -ENOMEM;
      hugetlbPoolAdd(k, hugetlb, 0, need);
    } else if (shared && !(a.flags & MAP_NORESERVE)) {
      // a shared mapping needs the pages its file does not have yet (all of them for
      // MAP_ANONYMOUS, whose file hugetlb_file_setup makes now)
      let missing = need;
      if (fileObj) {
        missing = 0;
        for (let i = 0; i < need; i++) if (fileObj.cache.get((a.offset ?? 0) / hugetlb + i) === undefined) missing++;
      }
      if (pool.free - pool.resv < missing) return -ENOMEM;
    }
  }
  if (shared && file < 0 && a.flags & MAP_ANONYMOUS) {
    const f = createFile(k, hugetlb ? 'hugetlbfs' : 'shmem', hugetlb);
    f.size = len;
    file = f.id;
  }
  // hugetlbfs_file_mmap(): a writable mapping extends the file to cover it
  if (fileObj?.kind === 'hugetlbfs' && a.prot & PROT_WRITE) fileObj.size = Math.max(fileObj.size, (a.offset ?? 0) + len);
  const addr = getUnmappedArea(mm, len, alignTo);
  let flags = protFlags(a.prot) | VM_MAYREAD | VM_SOFTDIRTY;
  if (shared) flags |= VM_SHARED | VM_MAYSHARE | VM_MAYWRITE;
  else flags |= VM_MAYWRITE;
  if (hugetlb) flags |= VM_HUGETLB;
  insertVma(mm, {
    start: addr,
    end: addr + len,
    flags,
    file,
    pgoff: a.offset ?? 0,
    anonVma: false,
    hugetlb,
    resv: hugetlb && !shared && !(a.flags & MAP_NORESERVE) ? len / hugetlb : 0,
    resvOwner: hugetlb !== 0 && !shared && !(a.flags & MAP_NORESERVE),
    resvUnmapped: false,
  });
  emit(k, p.pid, 'mmap', addr, `${len} bytes`);
  return addr;
}

/**
 * __split_vma(): split the VMA containing addr at addr. A PMD leaf straddling the split point is
 * split first (vma_adjust_trans_huge); hugetlb VMAs split only at huge page boundaries.
 */
function splitVmaAt(k: Ctx, mm: Mm, addr: number): number {
  const i = mm.vmas.findIndex((v) => addr > v.start && addr < v.end);
  if (i < 0) return 0;
  const v = mm.vmas[i];
  if (v.hugetlb && addr % v.hugetlb) return -EINVAL;
  if (addr % PMD_SIZE) {
    const pv = pmdVpnOf(vpnOf(addr));
    if (mm.pmd.get(pv)) splitHugePmd(k, mm, pv);
  }
  const right: Vma = { ...v, start: addr, pgoff: v.pgoff + (addr - v.start), resv: 0 };
  if (v.resv) {
    const leftPages = (addr - v.start) / v.hugetlb;
    right.resv = Math.max(0, v.resv - leftPages);
    v.resv -= right.resv;
  }
  v.end = addr;
  mm.vmas.splice(i + 1, 0, right);
  return 0;
}

/** vma_merge(): neighbours with the same flags (VM_SOFTDIRTY aside), file and contiguous offset. */
function mergeVmas(mm: Mm): void {
  for (let i = 0; i + 1 < mm.vmas.length; ) {
    const a = mm.vmas[i];
    const b = mm.vmas[i + 1];
    const ok =
      a.end === b.start &&
      ((a.flags ^ b.flags) & ~VM_SOFTDIRTY) === 0 &&
      a.file === b.file &&
      a.hugetlb === b.hugetlb &&
      a.resvOwner === b.resvOwner &&
      a.resvUnmapped === b.resvUnmapped &&
      (a.file < 0 || a.pgoff + (a.end - a.start) === b.pgoff);
    if (ok) {
      a.end = b.end;
      a.anonVma = a.anonVma || b.anonVma;
      a.resv += b.resv;
      mm.vmas.splice(i + 1, 1);
    } else i++;
  }
}

/** Splits VMAs so that [start, end) is covered by whole VMAs; returns those VMAs. */
function vmasIn(k: Ctx, mm: Mm, start: number, end: number): Vma[] | number {
  let err = splitVmaAt(k, mm, start);
  if (err) return err;
  err = splitVmaAt(k, mm, end);
  if (err) return err;
  return mm.vmas.filter((v) => v.start >= start && v.end <= end);
}

/** Every page of [start, end) is inside some VMA. */
function fullyMapped(mm: Mm, start: number, end: number): boolean {
  let at = start;
  for (const v of mm.vmas) {
    if (v.end <= at) continue;
    if (v.start > at) return false;
    at = v.end;
    if (at >= end) return true;
  }
  return at >= end;
}

/**
 * zap_page_range(): drop every entry in [start, end) of the VMA. A PMD leaf only partly covered is
 * split first. Pins and other references keep pages alive (and PG_anon_exclusive with them).
 */
export function zapRange(k: Ctx, mm: Mm, v: Vma, start: number, end: number): void {
  if (v.hugetlb) {
    for (let a = start; a < end; a += v.hugetlb) {
      const hv = vpnOf(a);
      const leaf = mm.huge.get(hv);
      if (!leaf) continue;
      mm.huge.delete(hv);
      unmapEntire(k, leaf.folio);
    }
    return;
  }
  const lo = vpnOf(start);
  const hi = vpnOf(end);
  for (const pv of mm.pmd.keysIn(pmdVpnOf(lo), hi)) {
    const leaf = mm.pmd.get(pv);
    if (pv >= lo && pv + HPAGE_PMD_NR <= hi) {
      mm.pmd.delete(pv);
      if (leaf.t === 'thp') unmapEntire(k, leaf.folio);
    } else splitHugePmd(k, mm, pv);
  }
  // raw entries (pagetable.ts): a zap of a PTE-mapped THP removes 512 at once
  for (const w of mm.pte.removeWordsIn(lo, hi)) {
    const bits = entryBits(w);
    const kind = bits & KIND_MASK;
    if (kind === PTE_PAGE) {
      const id = entryRef(w);
      unmapPte(k, id, bits >>> OFF_SHIFT);
      // free_swap_cache() from the TLB batch: an unmapped page nobody swaps in again leaves the cache
      const f = k.s.folios.get(id);
      if (f && f.swapSlot >= 0 && folioMapcount(f) === 0) freeSwapCache(k, f);
    } else if (kind === PTE_SWAP) swapPut(k, entryRef(w));
  }
}

/** munmap(): zap, release hugetlb reservations, remove the VMAs. */
export function munmap(k: Ctx, p: Proc, addr: number, len: number): number {
  if (addr % PAGE_SIZE || len <= 0) return -EINVAL;
  const mm = p.mm;
  const vmas = vmasIn(k, mm, addr, addr + align(len, PAGE_SIZE));
  if (typeof vmas === 'number') return vmas;
  for (const v of vmas) {
    zapRange(k, mm, v, v.start, v.end);
    if (v.resv) hugetlbPoolAdd(k, v.hugetlb, 0, -v.resv);
    mm.vmas.splice(mm.vmas.indexOf(v), 1);
  }
  emit(k, p.pid, 'munmap', addr, `${len} bytes`);
  return 0;
}

/**
 * can_change_pte_writable() (6.0+): when mprotect() adds write permission, a private PTE becomes
 * writable at once only if it maps an exclusive anonymous page and no soft-dirty write fault is
 * pending; shared mappings only for dirty PTEs (or shmem, which needs no write notification).
 */
function canChangePteWritable(k: Ctx, v: Vma, w: number): boolean {
  const bits = entryBits(w);
  if ((bits & KIND_MASK) !== PTE_PAGE) return false;
  if (vmaSoftDirtyEnabled(k, v) && !(bits & BIT_SOFT_DIRTY)) return false;
  if (!vmaIsShared(v)) {
    // 64fe24a3e05e (6.0): before, private PTEs waited for the write fault
    if (!k.sw['mprotect-upgrade-anon']) return false;
    const f = folio(k, entryRef(w));
    return f.kind === 'anon' && f.exclusiveAt(bits >>> OFF_SHIFT);
  }
  return (bits & BIT_DIRTY) !== 0 || !needsWriteNotify(k, v);
}

/**
 * can_change_pmd_writable() (6.2, c27f479ef542): the same for a PMD-mapped THP, an exclusive
 * anonymous one (the huge zeropage never); with mprotect-upgrade-anon-pmd only.
 */
function canChangePmdWritable(k: Ctx, v: Vma, leaf: Readonly<PmdLeaf>): boolean {
  if (leaf.t !== 'thp' || !k.sw['mprotect-upgrade-anon-pmd'] || vmaIsShared(v)) return false;
  if (vmaSoftDirtyEnabled(k, v) && !leaf.softDirty) return false;
  const f = folio(k, leaf.folio);
  return f.kind === 'anon' && f.exclusiveAt(0);
}

/**
 * mprotect() (do_mprotect_pkey): removing write permission write-protects every entry; adding it
 * upgrades PTEs that can_change_pte_writable() allows and PMD leaves that can_change_pmd_writable()
 * allows. hugetlb entries are not upgraded (the write fault will do it).
 * The range must start inside a VMA (else ENOMEM, nothing changed); VMAs are then changed in
 * order until a hole (ENOMEM) or a VMA that may not become writable (EACCES: no VM_MAYWRITE),
 * and the ones before it keep their new protection.
 */
export function mprotect(k: Ctx, p: Proc, addr: number, len: number, prot: number): number {
  if (addr % PAGE_SIZE) return -EINVAL;
  const mm = p.mm;
  const end = addr + align(len, PAGE_SIZE);
  if (end === addr) return 0;
  if (!findVma(mm, addr)) return -ENOMEM;
  const vmas = vmasIn(k, mm, addr, end);
  if (typeof vmas === 'number') return vmas;
  let at = addr;
  let err = 0;
  for (const v of vmas) {
    if (v.start !== at) {
      err = -ENOMEM;
      break;
    }
    if (prot & PROT_WRITE && !(v.flags & VM_MAYWRITE)) {
      err = -EACCES;
      break;
    }
    at = v.end;
    const hadWrite = (v.flags & VM_WRITE) !== 0;
    v.flags = (v.flags & ~(VM_READ | VM_WRITE)) | protFlags(prot);
    const wantWrite = (v.flags & VM_WRITE) !== 0;
    // raw entries (pagetable.ts): a THP-sized range is 512 of them, twice per cow.c mprotect test
    for (const vpn of mm.pte.keysIn(vpnOf(v.start), vpnOf(v.end))) {
      const w = mm.pte.word(vpn) as number;
      const bits = entryBits(w);
      if ((bits & KIND_MASK) !== PTE_PAGE) continue;
      const had = (bits & BIT_WRITE) !== 0;
      let write = had;
      if (!wantWrite) write = false;
      else if (!hadWrite && canChangePteWritable(k, v, w)) write = true;
      if (write !== had) mm.pte.setWord(vpn, write ? w + BIT_WRITE : w - BIT_WRITE);
    }
    if (wantWrite && !hadWrite) {
      for (const pv of mm.pmd.keysIn(vpnOf(v.start), vpnOf(v.end))) {
        const leaf = mm.pmd.get(pv);
        if (canChangePmdWritable(k, v, leaf)) ownPmd(mm).set(pv, { ...leaf, write: true });
      }
      // hugetlb_change_protection(): huge_pte_modify() with the new protection, which for a shared
      // mapping includes write (hugetlbfs wants no write notification)
      if (v.hugetlb && vmaIsShared(v))
        for (const hv of mm.huge.keysIn(vpnOf(v.start), vpnOf(v.end))) ownHuge(mm).set(hv, { ...mm.huge.get(hv), write: true });
    }
    if (!wantWrite) {
      for (const pv of mm.pmd.keysIn(vpnOf(v.start), vpnOf(v.end))) ownPmd(mm).set(pv, { ...mm.pmd.get(pv), write: false });
      for (const hv of mm.huge.keysIn(vpnOf(v.start), vpnOf(v.end))) ownHuge(mm).set(hv, { ...mm.huge.get(hv), write: false });
    }
  }
  if (!err && at < end) err = -ENOMEM;
  mergeVmas(mm);
  emit(k, p.pid, 'mprotect', addr, `${len} bytes prot ${prot}`);
  return err;
}

/** madvise_walk_vmas()'s result for a range whose VMAs were all visited: ENOMEM if part of it is
 *  not mapped (the mapped parts got the advice all the same), else 0. */
export function holeError(mm: Mm, start: number, end: number): number {
  return fullyMapped(mm, start, end) ? 0 : -ENOMEM;
}

/** Sets or clears VMA flags on the mapped parts of a range (MADV_HUGEPAGE, MADV_DONTFORK, ...),
 *  then merges; ENOMEM if the range has a hole. */
export function setVmaFlags(k: Ctx, p: Proc, addr: number, len: number, set: number, clear: number): number {
  const mm = p.mm;
  const end = addr + align(len, PAGE_SIZE);
  const vmas = vmasIn(k, mm, addr, end);
  if (typeof vmas === 'number') return vmas;
  for (const v of vmas) v.flags = (v.flags & ~clear) | set;
  mergeVmas(mm);
  return holeError(mm, addr, end);
}

/** MADV_DONTNEED: zap the mapped parts of the range; the next access faults in fresh memory.
 *  ENOMEM if the range has a hole. */
export function madviseDontneed(k: Ctx, p: Proc, addr: number, len: number): number {
  const mm = p.mm;
  const end = addr + align(len, PAGE_SIZE);
  for (const v of mm.vmas) {
    const s = Math.max(v.start, addr);
    const e = Math.min(v.end, end);
    if (s < e) zapRange(k, mm, v, s, e);
  }
  return holeError(mm, addr, end);
}

/**
 * mremap(old, len, len, MREMAP_MAYMOVE|MREMAP_FIXED, new): move the VMA part and its page-table
 * entries unchanged (no COW event); a PMD leaf only partly moved was split with the VMA.
 */
export function mremapFixed(k: Ctx, p: Proc, oldAddr: number, len: number, newAddr: number): number {
  const mm = p.mm;
  if (oldAddr % PAGE_SIZE || newAddr % PAGE_SIZE || len <= 0) return -EINVAL;
  len = align(len, PAGE_SIZE);
  if (newAddr + len > TASK_SIZE || oldAddr + len > TASK_SIZE) return -EINVAL;
  const src = vmasIn(k, mm, oldAddr, oldAddr + len);
  if (typeof src === 'number') return src;
  if (src.length !== 1 || src[0].start !== oldAddr || src[0].end !== oldAddr + len) return -EINVAL;
  const v = src[0];
  if (v.hugetlb) return -EINVAL;
  // MREMAP_FIXED unmaps whatever is at the destination
  const dst = vmasIn(k, mm, newAddr, newAddr + len);
  if (typeof dst === 'number') return dst;
  for (const d of dst) {
    zapRange(k, mm, d, d.start, d.end);
    mm.vmas.splice(mm.vmas.indexOf(d), 1);
  }
  const shift = vpnOf(newAddr) - vpnOf(oldAddr);
  for (let vpn = vpnOf(oldAddr); vpn < vpnOf(oldAddr + len); vpn++) {
    const pv = pmdVpnOf(vpn);
    if (mm.pmd.get(pv)) {
      const aligned = vpn === pv && shift % HPAGE_PMD_NR === 0 && vpn + HPAGE_PMD_NR <= vpnOf(oldAddr + len);
      if (aligned) {
        ownPmd(mm).set(pv + shift, mm.pmd.get(pv));
        mm.pmd.delete(pv);
        vpn += HPAGE_PMD_NR - 1;
        continue;
      }
      splitHugePmd(k, mm, pv);
    }
    const pte = mm.pte.get(vpn);
    if (pte) {
      mm.pte.set(vpn + shift, pte);
      mm.pte.delete(vpn);
    }
  }
  mm.vmas.splice(mm.vmas.indexOf(v), 1);
  insertVma(mm, { ...v, start: newAddr, end: newAddr + len });
  mergeVmas(mm);
  emit(k, p.pid, 'mremap', oldAddr, `-> ${newAddr.toString(16)}`);
  return newAddr;
}

// ---------------------------------------------------------------------------------------------
// fork and exit

/**
 * copy_page_range() for one VMA. Page tables are copied only if the VMA has an anon_vma
 * (otherwise the child faults lazily). With fork-copy-pinned (5.9+), a page of a COW mapping that
 * may be pinned (MMF_HAS_PINNED and folio_maybe_dma_pinned) is copied for the child right away:
 * any page until 5.18 (a page-cache page of a private file mapping too), since anon-exclusive
 * (5.19) only an exclusive anonymous one; hugetlb pages only with fork-copy-pinned-hugetlb
 * (5.12). Any other anonymous page loses PG_anon_exclusive and is shared, write-protected in both.
 * Returns 0, or -ENOMEM when no huge page is left for the copy of a pinned hugetlb page
 * (copy_hugetlb_page_range(): the copy is allocated without a reservation, so only free pages that
 * no reservation holds serve it; the entries copied so far stay as they are).
 */
function copyVma(k: Ctx, parent: Proc, child: Proc, v: Vma): number {
  const src = parent.mm;
  const dst = child.mm;
  const cow = isCowMapping(v.flags);
  // page_needs_cow_for_dma() in a COW mapping; from 5.19 (fb3d824d1a46, with anon-exclusive) only
  // for an exclusive anonymous page (a shared one cannot be pinned), before for any page, so a
  // pinned page-cache page of a private file mapping was copied for the child too
  const copyForChild = (f: Folio, unit: number, hugetlb: boolean) =>
    k.sw['fork-copy-pinned'] &&
    (!hugetlb || k.sw['fork-copy-pinned-hugetlb']) &&
    cow &&
    (k.sw['anon-exclusive'] ? f.kind === 'anon' && f.exclusiveAt(unit) : true) &&
    src.hasPinned &&
    folioMaybeDmaPinned(f);
  if (v.hugetlb) {
    for (const hv of src.huge.keysIn(vpnOf(v.start), vpnOf(v.end))) {
      const leaf = src.huge.get(hv);
      const f = folio(k, leaf.folio);
      if (copyForChild(f, 0, true)) {
        const pool = hugetlbPool(k, v.hugetlb);
        if (pool.free - pool.resv <= 0) return -ENOMEM;
        hugetlbPoolAdd(k, v.hugetlb, -1, 0);
        const c = allocFolio(k, 'anon', 1, v.hugetlb, [f.dataAt(0)]);
        c.setExclusive(0, true);
        mapEntire(k, c.id);
        ownHuge(dst).set(hv, { folio: c.id, write: true, dirty: true });
        emit(k, child.pid, 'fork: copy pinned hugetlb page', hv * PAGE_SIZE);
        continue;
      }
      if (f.kind === 'anon') f.setExclusive(0, false);
      mapEntire(k, f.id);
      // write-protected in both (huge_ptep_set_wrprotect on the parent's entry)
      const e = cow ? { ...leaf, write: false } : leaf;
      if (cow) ownHuge(src).set(hv, e);
      ownHuge(dst).set(hv, e);
    }
    return 0;
  }
  for (const pv of src.pmd.keysIn(vpnOf(v.start), vpnOf(v.end))) {
    const leaf = src.pmd.get(pv);
    {
      if (leaf.t === 'hugezero') {
        if (!dst.hugeZeroRef) {
          dst.hugeZeroRef = true;
          k.s.hugeZeroRefs++;
        }
        ownPmd(dst).set(pv, leaf);
        continue;
      }
      const f = folio(k, leaf.folio);
      if (!copyForChild(f, 0, false)) {
        f.setExclusive(0, false);
        mapEntire(k, f.id);
        // write-protected in both (pmdp_set_wrprotect on the parent's entry)
        const e = cow ? { ...leaf, write: false } : leaf;
        if (cow) ownPmd(src).set(pv, e);
        ownPmd(dst).set(pv, e);
        continue;
      }
      // a maybe-pinned exclusive THP: split the parent's PMD, copy at PTE level (d042035eaf5f)
      emit(k, parent.pid, 'fork: split pinned THP', pv * PAGE_SIZE);
      splitHugePmd(k, src, pv);
    }
  }
  // raw entries (pagetable.ts): fork copies every PTE of the parent's anonymous VMAs
  for (const vpn of src.pte.keysIn(vpnOf(v.start), vpnOf(v.end))) {
    const w = src.pte.word(vpn) as number;
    const bits = entryBits(w);
    const kind = bits & KIND_MASK;
    if (kind === PTE_ZERO) {
      dst.pte.setWord(vpn, w);
      continue;
    }
    if (kind === PTE_SWAP) {
      k.s.swap.get(entryRef(w)).count++;
      // a shared swap entry is exclusive for neither (pte_swp_clear_exclusive on the parent's too)
      const e = w - (bits & BIT_EXCLUSIVE);
      src.pte.setWord(vpn, e);
      dst.pte.setWord(vpn, e);
      continue;
    }
    const id = entryRef(w);
    const off = bits >>> OFF_SHIFT;
    const f = folio(k, id);
    if (copyForChild(f, off, false)) {
      // copy_present_page(): the child gets its own exclusive copy, the parent keeps the pinned page
      const c = allocFolio(k, 'anon', 1, 0, [f.dataAt(off)]);
      c.setExclusive(0, true);
      mapPte(k, c.id, 0);
      const softDirty = (bits & BIT_SOFT_DIRTY) !== 0;
      dst.pte.set(vpn, { t: 'page', folio: c.id, off: 0, write: (v.flags & VM_WRITE) !== 0, dirty: true, softDirty });
      if (k.trace) emit(k, child.pid, 'fork: copy maybe-pinned page', vpn * PAGE_SIZE, `folio ${c.id}`);
      continue;
    }
    if (f.kind === 'anon') f.setExclusive(off, false);
    mapPte(k, id, off);
    // ptep_set_wrprotect() on the parent's PTE, then the child's a copy (clean in shared mappings)
    const parentW = cow ? w - (bits & BIT_WRITE) : w;
    if (parentW !== w) src.pte.setWord(vpn, parentW);
    dst.pte.setWord(vpn, vmaIsShared(v) ? parentW - (entryBits(parentW) & BIT_DIRTY) : parentW);
  }
  return 0;
}

/**
 * fork(): a new process with a copy of the address space; VM_DONTCOPY VMAs are left out. Returns
 * the child's pid, or -ENOMEM when copying a VMA failed (dup_mmap()): the child's half-built
 * address space is torn down like at exit and no process is left; what the copy already did to
 * the parent (write-protected entries, cleared PG_anon_exclusive) stays.
 */
export function fork(k: Ctx, parent: Proc): number {
  const pid = k.s.nextId++;
  const child: Proc = {
    [EPOCH]: k.s[EPOCH], // this state's own from the start (ownProc)
    pid,
    parent: parent.pid,
    alive: true,
    status: -1,
    memlockLimit: parent.memlockLimit,
    capIpcLock: parent.capIpcLock,
    mm: { ...emptyMm(), mmapBase: parent.mm.mmapBase },
  };
  k.s.procs.set(pid, child);
  for (const v of parent.mm.vmas) {
    if (v.flags & VM_DONTCOPY) continue;
    child.mm.vmas.push({ ...v, resv: 0, resvOwner: false, resvUnmapped: false });
    const err = v.anonVma ? copyVma(k, parent, child, v) : 0;
    if (err) {
      exitMm(k, child);
      k.s.procs.delete(pid);
      emit(k, parent.pid, 'fork failed', undefined, 'no huge page for the copy of a pinned hugetlb page');
      return err;
    }
  }
  emit(k, parent.pid, 'fork', undefined, `child ${pid}`);
  return pid;
}

/** exit_mmap(): tear the whole address space down. */
export function exitMm(k: Ctx, p: Proc): void {
  const mm = p.mm;
  for (const v of [...mm.vmas]) {
    zapRange(k, mm, v, v.start, v.end);
    if (v.resv) hugetlbPoolAdd(k, v.hugetlb, 0, -v.resv);
  }
  mm.vmas = [];
  if (mm.hugeZeroRef) {
    mm.hugeZeroRef = false;
    putRef(k, -2, 1);
  }
}

/**
 * clear_refs "4" (CLEAR_REFS_SOFT_DIRTY, clear_soft_dirty and clear_soft_dirty_pmd): clears
 * VM_SOFTDIRTY and write-protects every PTE and PMD leaf, clearing its soft-dirty bit, so the next
 * write faults; swap PTEs lose their soft-dirty bit. hugetlb entries are not walked. With
 * softdirty-keep-pinned (5.11+), a PTE for which pte_is_pinned() holds is left alone, write bit and
 * soft-dirty bit both: the write fault would otherwise COW the page away from its pin. PMD leaves
 * have no such check. Without CONFIG_MEM_SOFT_DIRTY it does nothing.
 */
export function clearSoftDirty(k: Ctx, p: Proc): void {
  if (!k.m.softDirty) return;
  const mm = p.mm;
  for (const v of mm.vmas) v.flags &= ~VM_SOFTDIRTY;
  const keep = k.sw['softdirty-keep-pinned'] && mm.hasPinned ? pinnedPtes(k, mm) : [];
  // write-protect and clean every entry (only page PTEs and PMD leaves ever carry the write bit),
  // then put back the ones pte_is_pinned() keeps
  mm.pte.clearBits(BIT_WRITE | BIT_SOFT_DIRTY);
  for (let i = 0; i < keep.length; i += 2) mm.pte.setWord(keep[i], keep[i + 1]);
  mm.pmd.clearBits(BIT_WRITE | BIT_SOFT_DIRTY);
}

/**
 * pte_is_pinned() over an mm that has pinned (MMF_HAS_PINNED, checked by the caller): the writable
 * PTEs in COW mappings whose folio may be DMA-pinned (folio_maybe_dma_pinned; never the zeropage,
 * which vm_normal_folio does not return), as key, raw value pairs.
 */
function pinnedPtes(k: Ctx, mm: Mm): number[] {
  const out: number[] = [];
  for (const v of mm.vmas) {
    if (!isCowMapping(v.flags)) continue;
    for (const vpn of mm.pte.keysIn(vpnOf(v.start), vpnOf(v.end))) {
      const w = mm.pte.word(vpn) as number;
      const bits = entryBits(w);
      if ((bits & KIND_MASK) !== PTE_PAGE || !(bits & BIT_WRITE)) continue;
      if (folioMaybeDmaPinned(folio(k, entryRef(w)))) out.push(vpn, w);
    }
  }
  return out;
}
