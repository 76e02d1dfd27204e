/**
 * GUP: get_user_pages / pin_user_pages, slow path (__get_user_pages: follow_page_mask +
 * faultin_page) and GUP-fast (lockless walk, falls back to the slow path), v5.7 to 6.18 as the
 * profile's switches say (baseline: v6.2).
 */
import {
  EFAULT,
  FAULT_FLAG_UNSHARE,
  FAULT_FLAG_WRITE,
  FOLL_FAST_ONLY,
  FOLL_FORCE,
  FOLL_GET,
  FOLL_LONGTERM,
  FOLL_PIN,
  FOLL_WRITE,
  GUP_PIN_COUNTING_BIAS,
  HPAGE_PMD_NR,
  PAGE_SIZE,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './constants.ts';
import { handleMmFault, vmaSoftDirtyEnabled } from './fault.ts';
import { bug, type Ctx, emitMm, findVma, folio, isCowMapping, isLarge, lookup, pteLevel, putRef } from './kernel.ts';
import { BIT_SOFT_DIRTY, BIT_WRITE, entryBits, entryRef, KIND_MASK, OFF_SHIFT, PTE_SWAP, PTE_ZERO } from './pagetable.ts';
import { type Folio, HUGE_ZERO_FOLIO, type Mm, type PageRun, type Vma, ZERO_FOLIO } from './types.ts';

/** The folio of a page that may be anonymous: undefined for the special pages (the shared and the
 *  huge zeropage), which never are. */
function normalFolio(k: Ctx, id: number): Folio | undefined {
  return id === ZERO_FOLIO || id === HUGE_ZERO_FOLIO ? undefined : folio(k, id);
}

/**
 * gup_must_unshare(): must a R/O pin of this page, mapped R/O, break COW first?
 * - only FOLL_PIN without FOLL_WRITE (FOLL_GET never unshares; write pins fault for write);
 * - anonymous page: unless PG_anon_exclusive (5.19+);
 * - anything else (switch gup-unshare-noanon, the seed): only for FOLL_LONGTERM, and then in COW
 *   mappings; GUP-fast has no VMA (vma === null) and must fall back.
 */
export function gupMustUnshare(k: Ctx, vma: Vma | null, flags: number, id: number, off: number): boolean {
  // before a7f226604170 (5.19) R/O pins took whatever page was mapped
  if (!k.sw['gup-unshare-anon']) return false;
  if ((flags & (FOLL_WRITE | FOLL_PIN)) !== FOLL_PIN) return false;
  const f = normalFolio(k, id);
  if (f?.kind !== 'anon') {
    if (!k.sw['gup-unshare-noanon']) return false;
    if (!(flags & FOLL_LONGTERM)) return false;
    if (!vma) return true;
    return isCowMapping(vma.flags);
  }
  return !f.exclusiveAt(off);
}

/**
 * check_vma_flags(): may GUP with these flags touch this VMA at all? Writes need VM_WRITE, or
 * FOLL_FORCE in a COW mapping (not on hugetlb with hugetlb-no-force-write); reads need VM_READ or
 * FOLL_FORCE with VM_MAYREAD.
 */
export function checkVmaFlags(k: Ctx, vma: Vma, flags: number): number {
  if (flags & FOLL_LONGTERM && flags & FOLL_WRITE && k.sw['longterm-write-file-refused'] && needsDirtyTracking(k, vma)) return -EFAULT;
  if (flags & FOLL_WRITE) {
    if (!(vma.flags & VM_WRITE)) {
      if (!(flags & FOLL_FORCE)) return -EFAULT;
      if (k.sw['hugetlb-no-force-write'] && vma.hugetlb) return -EFAULT;
      if (!isCowMapping(vma.flags)) return -EFAULT;
    }
  } else if (!(vma.flags & VM_READ)) {
    if (!(flags & FOLL_FORCE) || !(vma.flags & VM_MAYREAD)) return -EFAULT;
  }
  return 0;
}

/**
 * writable_file_mapping_allowed() says no (6.5+): a shared, writable mapping of a file whose
 * dirty pages the filesystem must track (a disk file; shmem and hugetlbfs need no tracking).
 */
function needsDirtyTracking(k: Ctx, vma: Vma): boolean {
  return (vma.flags & VM_SHARED) !== 0 && (vma.flags & VM_WRITE) !== 0 && k.s.files.get(vma.file)?.kind === 'disk';
}

/**
 * gup-force-cow (v5.8): FOLL_GET and FOLL_PIN in a COW mapping act as FOLL_WRITE (after
 * check_vma_flags looked at the caller's flags); following a R/O entry afterwards is allowed like a
 * FOLL_FORCE write (FOLL_COW: the entry the write fault left).
 */
function forcedCow(k: Ctx, vma: Vma, flags: number): number {
  if (!k.sw['gup-force-cow'] || !isCowMapping(vma.flags) || flags & FOLL_WRITE) return flags;
  return flags | FOLL_WRITE | FOLL_FORCE;
}

/**
 * can_follow_write_pte()/_pmd() (6.0+, 5535be309971): a R/O entry may be written through with
 * FOLL_FORCE only in a private, may-write, not-writable VMA when the page is exclusive anonymous and
 * no soft-dirty write fault is pending.
 */
function canFollowWrite(k: Ctx, vma: Vma, writable: boolean, id: number, off: number, softDirty: boolean, flags: number): boolean {
  if (writable) return true;
  if (!(flags & FOLL_FORCE)) return false;
  if (vma.flags & (VM_MAYSHARE | VM_SHARED)) return false;
  if (!(vma.flags & VM_MAYWRITE) || vma.flags & VM_WRITE) return false;
  const f = normalFolio(k, id);
  if (f?.kind !== 'anon' || !f.exclusiveAt(off)) return false;
  return !(vmaSoftDirtyEnabled(k, vma) && !softDirty);
}

type Follow = { t: 'page'; folio: number; first: number; n: number } | { t: 'fault' } | { t: 'unshare' } | { t: 'error'; errno: number };

const FAULT: Follow = Object.freeze({ t: 'fault' });
const UNSHARE: Follow = Object.freeze({ t: 'unshare' });

/**
 * follow_page_mask(): what the page tables give for addr, or why GUP must fault first. Where no
 * PMD leaf covers addr, the PTE is read as a raw word (follow_page_pte(): GUP of a PTE-mapped
 * range comes here once per page).
 */
function followPage(k: Ctx, mm: Mm, vma: Vma, addr: number, flags: number, remaining: number): Follow {
  const vpn = Math.floor(addr / PAGE_SIZE);
  if (pteLevel(mm, vma, vpn)) {
    const w = mm.pte.word(vpn);
    if (w === undefined) return FAULT;
    const bits = entryBits(w);
    const kind = bits & KIND_MASK;
    if (kind === PTE_SWAP) return FAULT;
    const zero = kind === PTE_ZERO;
    const id = zero ? ZERO_FOLIO : entryRef(w);
    const off = zero ? 0 : bits >>> OFF_SHIFT;
    const write = !zero && (bits & BIT_WRITE) !== 0;
    // the zeropage is no normal page: can_follow_write_pte() says no
    if (flags & FOLL_WRITE && (zero || !canFollowWrite(k, vma, write, id, off, (bits & BIT_SOFT_DIRTY) !== 0, flags))) return FAULT;
    if (!write && gupMustUnshare(k, vma, flags, id, off)) return UNSHARE;
    return { t: 'page', folio: id, first: off, n: 1 };
  }
  const e = lookup(mm, vma, addr);
  switch (e.level) {
    case 'none':
      return FAULT;
    case 'huge': {
      // follow_hugetlb_page(): the whole huge page at once
      const leaf = e.leaf;
      if (flags & FOLL_WRITE && !canFollowWrite(k, vma, leaf.write, leaf.folio, 0, true, flags)) return FAULT;
      if (!leaf.write && gupMustUnshare(k, vma, flags, leaf.folio, 0)) return UNSHARE;
      const first = vpn - e.vpn;
      const n = Math.min(remaining, vma.hugetlb / PAGE_SIZE - first);
      return { t: 'page', folio: leaf.folio, first, n };
    }
    case 'pmd': {
      // follow_trans_huge_pmd(): the checks use the head page; the rest of the PMD in one go
      const leaf = e.leaf;
      if (flags & FOLL_WRITE && !canFollowWrite(k, vma, leaf.write, leaf.folio, 0, leaf.softDirty, flags)) return FAULT;
      if (!leaf.write && gupMustUnshare(k, vma, flags, leaf.folio, 0)) return UNSHARE;
      const first = vpn - e.vpn;
      return { t: 'page', folio: leaf.folio, first, n: Math.min(remaining, HPAGE_PMD_NR - first) };
    }
    case 'pte':
      return bug('followPage: a PTE where a PMD leaf or a hugetlb entry decides');
  }
}

/** What grabbing n pages of the shared zeropage adds to its refcount: pins none since
 *  c8070b787519 (6.5), GUP_PIN_COUNTING_BIAS each before; FOLL_GET one each. */
export function zeroPageRefDelta(k: Ctx, n: number, flags: number): number {
  if (!(flags & FOLL_PIN)) return n;
  return k.sw['zeropage-pin-noref'] ? 0 : n * GUP_PIN_COUNTING_BIAS;
}

/**
 * try_grab_folio(): FOLL_GET takes a reference per page; FOLL_PIN adds GUP_PIN_COUNTING_BIAS per
 * page to a small folio's refcount, or +1 refcount and +1 pincount per page on a large one.
 */
export function grab(k: Ctx, run: PageRun, flags: number): void {
  const { folio: id, n } = run;
  if (id === ZERO_FOLIO) {
    k.s.zeroPageRefs += zeroPageRefDelta(k, n, flags);
    return;
  }
  if (id === HUGE_ZERO_FOLIO) {
    k.s.hugeZeroRefs += n;
    if (flags & FOLL_PIN) k.s.hugeZeroPins += n;
    return;
  }
  const f = folio(k, id);
  if (flags & FOLL_PIN) {
    if (isLarge(f)) {
      f.refcount += n;
      f.pincount += n;
    } else f.refcount += n * GUP_PIN_COUNTING_BIAS;
  } else f.refcount += n;
}

/** unpin_user_page() / put_page() for a run grabbed with `flags`. */
export function release(k: Ctx, run: PageRun, flags: number): void {
  const { folio: id, n } = run;
  if (id === ZERO_FOLIO) {
    k.s.zeroPageRefs -= zeroPageRefDelta(k, n, flags);
    return;
  }
  if (id === HUGE_ZERO_FOLIO) {
    k.s.hugeZeroRefs -= n;
    if (flags & FOLL_PIN) k.s.hugeZeroPins -= n;
    return;
  }
  const f = folio(k, id);
  if (flags & FOLL_PIN) {
    if (isLarge(f)) {
      f.pincount -= n;
      putRef(k, id, n);
    } else putRef(k, id, n * GUP_PIN_COUNTING_BIAS);
  } else putRef(k, id, n);
}

/** Releases every run of a GUP call (undoing it after a partial result or a refused accounting). */
export function releaseAll(k: Ctx, runs: readonly PageRun[], flags: number): void {
  for (const r of runs) release(k, r, flags);
}

export interface GupResult {
  /** pages grabbed, or a negative errno when none could be */
  nr: number;
  runs: PageRun[];
  /** how many pages GUP-fast grabbed before falling back */
  fast: number;
}

function pushRun(runs: PageRun[], r: PageRun): void {
  const last = runs[runs.length - 1];
  if (last && last.folio === r.folio && last.first + last.n === r.first)
    runs[runs.length - 1] = { folio: last.folio, first: last.first, n: last.n + r.n };
  else runs.push({ folio: r.folio, first: r.first, n: r.n });
}

/**
 * __get_user_pages(): for each page, follow the page tables; fault in what is missing (write fault
 * for FOLL_WRITE), break COW with an unshare fault when gup_must_unshare() says so, and retry;
 * then grab. Stops at the first error, returning what it got so far.
 */
export function getUserPagesSlow(k: Ctx, mm: Mm, start: number, nrPages: number, flags: number, runs: PageRun[]): number {
  let done = 0;
  let vma: Vma | undefined;
  let vflags = flags;
  while (done < nrPages) {
    const addr = start + done * PAGE_SIZE;
    if (!vma || addr >= vma.end) {
      vma = findVma(mm, addr);
      if (!vma) return done || -EFAULT;
      const err = checkVmaFlags(k, vma, flags);
      if (err) return done || err;
      vflags = forcedCow(k, vma, flags);
    }
    let tries = 0;
    for (;;) {
      if (++tries > 8) bug(`GUP makes no progress at ${addr.toString(16)}: check the profile's switches`);
      const r = followPage(k, mm, vma, addr, vflags, nrPages - done);
      if (r.t === 'page') {
        const run = { folio: r.folio, first: r.first, n: r.n };
        grab(k, run, flags);
        pushRun(runs, run);
        done += r.n;
        break;
      }
      if (r.t === 'error') return done || -r.errno;
      const fflags = r.t === 'unshare' ? FAULT_FLAG_UNSHARE : vflags & FOLL_WRITE ? FAULT_FLAG_WRITE : 0;
      emitMm(k, mm, r.t === 'unshare' ? 'GUP: unshare fault' : 'GUP: fault in', addr);
      const res = handleMmFault(k, mm, vma, addr, fflags);
      if (res !== 'ok') return done || -EFAULT;
    }
  }
  return done;
}

/**
 * GUP-fast (gup_pte_range/gup_huge_pmd without the mmap lock and without VMAs): stops at the first
 * entry it may not take: none or swap, PROT_NONE, special PTEs (the shared zeropage), FOLL_WRITE on
 * a R/O entry, or a R/O entry where gup_must_unshare(NULL, ...) is true.
 */
function getUserPagesFast(k: Ctx, mm: Mm, start: number, nrPages: number, flags: number, runs: PageRun[]): number {
  let done = 0;
  while (done < nrPages) {
    const addr = start + done * PAGE_SIZE;
    const vma = findVma(mm, addr);
    if (!vma) break; // (the walk itself would just find no page table)
    // pte_protnone / pte_access_permitted: the entries of a PROT_NONE mapping carry no access
    // (the model keeps protection in the VMA): left to the slow path, whose check_vma_flags refuses
    if (!(vma.flags & (VM_READ | VM_WRITE))) break;
    const e = lookup(mm, vma, addr);
    const vpn = Math.floor(addr / PAGE_SIZE);
    let run: PageRun;
    let write: boolean;
    let off: number;
    if (e.level === 'none') break;
    if (e.level === 'pte') {
      if (e.pte.t !== 'page') break; // swap entry, or pte_special (zeropage)
      run = { folio: e.pte.folio, first: e.pte.off, n: 1 };
      write = e.pte.write;
      off = e.pte.off;
    } else {
      const per = e.level === 'pmd' ? HPAGE_PMD_NR : vma.hugetlb / PAGE_SIZE;
      const first = vpn - e.vpn;
      run = { folio: e.leaf.folio, first, n: Math.min(nrPages - done, per - first) };
      write = e.leaf.write;
      off = 0;
    }
    // gup-force-cow (v5.8): the fast walk always asks for write access
    if ((flags & FOLL_WRITE || k.sw['gup-force-cow']) && !write) break;
    if (!write && gupMustUnshare(k, null, flags, run.folio, off)) break;
    // a6e79df92e4a (6.5): long-term write pins of dirty-tracked file pages are left to the slow path
    if (flags & FOLL_LONGTERM && flags & FOLL_WRITE && k.sw['longterm-write-file-refused'] && isDiskFilePage(k, run.folio)) break;
    grab(k, run, flags);
    pushRun(runs, run);
    done += run.n;
  }
  return done;
}

function isDiskFilePage(k: Ctx, id: number): boolean {
  if (id < 0) return false;
  const f = folio(k, id);
  return f.kind === 'file' && k.s.files.get(f.file)?.kind === 'disk';
}

/**
 * get_user_pages()/pin_user_pages() and their _fast variants. FOLL_PIN first sets MMF_HAS_PINNED.
 * FOLL_LONGTERM needs no migration here: the model has no ZONE_MOVABLE/CMA memory.
 */
export function gup(k: Ctx, mm: Mm, start: number, nrPages: number, flags: number, fast: boolean): GupResult {
  if (!(flags & (FOLL_GET | FOLL_PIN)) || (flags & FOLL_GET && flags & FOLL_PIN)) bug('GUP needs exactly one of FOLL_GET, FOLL_PIN');
  if (flags & FOLL_LONGTERM && !(flags & FOLL_PIN)) bug('FOLL_LONGTERM without FOLL_PIN');
  if (flags & FOLL_PIN) mm.hasPinned = true;
  const runs: PageRun[] = [];
  let nr = 0;
  let fastNr = 0;
  if (fast) {
    fastNr = getUserPagesFast(k, mm, start, nrPages, flags, runs);
    nr = fastNr;
    if (fastNr < nrPages) emitMm(k, mm, 'GUP-fast: fall back to the slow path', start + fastNr * PAGE_SIZE);
    if (flags & FOLL_FAST_ONLY) return { nr, runs, fast: fastNr };
  }
  if (nr < nrPages) {
    const more = getUserPagesSlow(k, mm, start + nr * PAGE_SIZE, nrPages - nr, flags, runs);
    if (more < 0) {
      if (nr === 0) return { nr: more, runs, fast: fastNr };
    } else nr += more;
  }
  return { nr, runs, fast: fastNr };
}
