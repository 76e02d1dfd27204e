/**
 * The model's invariants, kept apart from the rules and checked after every user operation.
 * Each one is a fact the kernel relies on; a violation is a bug in a rule (ModelBug).
 */
import { FOLL_PIN, GUP_PIN_COUNTING_BIAS, HPAGE_PMD_NR } from './constants.ts';
import { zeroPageRefDelta } from './gup.ts';
import { bug, type Ctx, findVma, isCowMapping, isLarge, vmaIsShared } from './kernel.ts';
import { BIT_WRITE, entryBits, entryRef, KIND_MASK, OFF_SHIFT, PTE_PAGE, PTE_SWAP } from './pagetable.ts';
import { HUGE_ZERO_FOLIO, type State, type Vma, ZERO_FOLIO } from './types.ts';

interface Expect {
  refs: number;
  pins: number;
  map: number[];
  entire: number;
}

/**
 * Checks every invariant; throws ModelBug naming the first one broken.
 * 1. refcount == mappings + page cache + swap cache + FOLL_GET references + pins (bias on small
 *    folios), exactly; pincount == pinned pages on large folios.
 * 2. mapcount[i] and entireMapcount equal the page-table entries that map the folio.
 * 3. a writable entry in a COW mapping that maps an anonymous page implies PG_anon_exclusive.
 * 4. an exclusive anonymous page is mapped at most once.
 * 5. a FOLL_PIN'ed anonymous page is exclusive (and stays so while pinned), from 5.19 on.
 * 6. swap slot counts equal the swap PTEs using them; hugetlb pools add up.
 * 7. memlock counters equal what the pin sets accounted.
 * 8. entries lie inside VMAs; no PTEs under a PMD leaf.
 */
export function checkInvariants(k: Ctx): void {
  const s: State = k.s;
  const exp = new Map<number, Expect>();
  const e = (id: number): Expect => {
    let x = exp.get(id);
    if (!x) {
      const f = s.folios.get(id);
      if (!f) bug(`entry refers to freed folio ${id}`);
      x = { refs: 0, pins: 0, map: new Array(f.nr).fill(0), entire: 0 };
      exp.set(id, x);
    }
    return x;
  };
  const swapUse = new Map<number, number>();
  let hugeZeroMms = 0;

  for (const p of s.procs.values()) {
    const mm = p.mm;
    if (!p.alive && mm.vmas.length) bug(`dead process ${p.pid} still has VMAs`);
    if (mm.hugeZeroRef) hugeZeroMms++;
    const inVma = (vpn: number) => findVma(mm, vpn * 4096);
    // the PTEs as raw words (pagetable.ts), in address order: a THP-sized table is 512 of them,
    // checked after every step
    const pt = mm.pte.raw();
    let vma: Vma | undefined;
    for (let i = 0; i < pt.length; i += 2) {
      const vpn = pt[i];
      const w = pt[i + 1];
      if (!vma || vpn * 4096 >= vma.end || vpn * 4096 < vma.start) vma = inVma(vpn);
      if (!vma) bug(`pid ${p.pid}: PTE at ${(vpn * 4096).toString(16)} outside any VMA`);
      if (mm.pmd.size && mm.pmd.has(vpn - (vpn % HPAGE_PMD_NR))) bug(`pid ${p.pid}: PTE under a PMD leaf`);
      const bits = entryBits(w);
      const kind = bits & KIND_MASK;
      if (kind === PTE_SWAP) {
        const slot = entryRef(w);
        swapUse.set(slot, (swapUse.get(slot) ?? 0) + 1);
        continue;
      }
      if (kind !== PTE_PAGE) continue;
      const id = entryRef(w);
      const off = bits >>> OFF_SHIFT;
      const f = s.folios.get(id);
      const x = e(id);
      x.refs++;
      x.map[off]++;
      if (bits & BIT_WRITE && isCowMapping(vma.flags) && f.kind === 'anon' && !f.exclusiveAt(off)) {
        bug(`pid ${p.pid}: writable PTE at ${(vpn * 4096).toString(16)} maps non-exclusive anon page`);
      }
    }
    for (const [pv, leaf] of mm.pmd) {
      const v = inVma(pv);
      if (!v || v.end < (pv + HPAGE_PMD_NR) * 4096) bug(`pid ${p.pid}: PMD leaf not inside one VMA`);
      if (leaf.t === 'hugezero') {
        if (leaf.write) bug('writable huge zeropage');
        continue;
      }
      const f = s.folios.get(leaf.folio);
      const x = e(leaf.folio);
      x.refs++;
      x.entire++;
      if (leaf.write && isCowMapping(v.flags) && !f.exclusiveAt(0)) bug(`pid ${p.pid}: writable PMD maps non-exclusive THP`);
    }
    for (const [hv, leaf] of mm.huge) {
      const v = inVma(hv);
      if (!v) bug(`pid ${p.pid}: hugetlb entry outside any VMA`);
      const f = s.folios.get(leaf.folio);
      const x = e(leaf.folio);
      x.refs++;
      x.entire++;
      if (leaf.write && !vmaIsShared(v) && f.kind === 'anon' && !f.exclusiveAt(0))
        bug(`pid ${p.pid}: writable hugetlb entry maps non-exclusive page`);
    }
  }
  for (const file of s.files.values()) for (const id of file.cache.values()) e(id).refs += s.folios.get(id).nr;
  for (const id of s.swapcache.values()) e(id).refs += s.folios.get(id).nr;
  let zeroRefs = 0;
  let hzRefs = hugeZeroMms;
  let hzPins = 0;
  for (const pipe of s.pipes.values()) {
    for (const b of pipe.bufs) {
      if (b.folio === ZERO_FOLIO) zeroRefs += b.n;
      else if (b.folio === HUGE_ZERO_FOLIO) hzRefs += b.n;
      else e(b.folio).refs += b.n;
    }
  }
  for (const ps of s.pins.values()) {
    const pin = (ps.flags & FOLL_PIN) !== 0;
    for (const r of ps.runs) {
      if (r.folio === ZERO_FOLIO) {
        zeroRefs += zeroPageRefDelta(k, r.n, ps.flags);
        continue;
      }
      if (r.folio === HUGE_ZERO_FOLIO) {
        hzRefs += r.n;
        if (pin) hzPins += r.n;
        continue;
      }
      const f = s.folios.get(r.folio);
      if (!f) bug(`pin set ${ps.id} refers to freed folio ${r.folio}`);
      const x = e(r.folio);
      if (pin && isLarge(f)) {
        x.refs += r.n;
        x.pins += r.n;
      } else x.refs += pin ? r.n * GUP_PIN_COUNTING_BIAS : r.n;
      // since 5.19 (gup-unshare-anon) R/O pins unshare first; before, pinned pages could be shared
      if (pin && f.kind === 'anon' && k.sw['gup-unshare-anon']) {
        const last = Math.floor((r.first + r.n - 1) / f.sub);
        for (let unit = Math.floor(r.first / f.sub); unit <= last; unit++) {
          if (!f.exclusiveAt(unit) && !f.exclusiveAt(0)) bug(`pinned anon page ${f.id}/${unit} is not exclusive`);
        }
      }
    }
  }
  if (zeroRefs !== s.zeroPageRefs) bug(`zeropage refs ${s.zeroPageRefs}, expected ${zeroRefs}`);
  if (hzRefs !== s.hugeZeroRefs) bug(`huge zeropage refs ${s.hugeZeroRefs}, expected ${hzRefs}`);
  if (hzPins !== s.hugeZeroPins) bug(`huge zeropage pins ${s.hugeZeroPins}, expected ${hzPins}`);

  for (const f of s.folios.values()) {
    const x = exp.get(f.id) ?? { refs: 0, pins: 0, map: new Array(f.nr).fill(0), entire: 0 };
    if (f.refcount !== x.refs) bug(`folio ${f.id}: refcount ${f.refcount}, expected ${x.refs}`);
    if (f.pincount !== x.pins) bug(`folio ${f.id}: pincount ${f.pincount}, expected ${x.pins}`);
    if (f.entireMapcount !== x.entire) bug(`folio ${f.id}: entire mapcount ${f.entireMapcount}, expected ${x.entire}`);
    for (let i = 0; i < f.nr; i++) {
      if (f.mapcountAt(i) !== x.map[i]) bug(`folio ${f.id} unit ${i}: mapcount ${f.mapcountAt(i)}, expected ${x.map[i]}`);
      if (f.kind === 'anon' && f.exclusiveAt(i) && f.mapcountAt(i) + f.entireMapcount > 1)
        bug(`folio ${f.id} unit ${i}: exclusive but mapped ${f.mapcountAt(i) + f.entireMapcount} times`);
    }
    if (f.refcount === 0) bug(`folio ${f.id} has no references but was not freed`);
  }
  for (const [slot, n] of swapUse) {
    if (!s.swap.get(slot) || s.swap.get(slot).count !== n) bug(`swap slot ${slot}: count ${s.swap.get(slot)?.count}, expected ${n}`);
  }
  for (const key of s.swap.keys()) {
    const slot = Number(key);
    if (!swapUse.has(slot) && s.swapcache.get(slot) === undefined) bug(`swap slot ${slot} leaked`);
  }
  for (const pool of s.hugetlb) {
    let used = 0;
    for (const f of s.folios.values()) if (f.hugetlb === pool.size) used++;
    if (pool.free + used !== pool.nr) bug(`hugetlb ${pool.size}: free ${pool.free} + used ${used} != ${pool.nr}`);
    let resv = 0;
    for (const p of s.procs.values()) for (const v of p.mm.vmas) if (v.hugetlb === pool.size) resv += v.resv;
    if (resv !== pool.resv || pool.resv > pool.free)
      bug(`hugetlb ${pool.size}: reservations ${pool.resv}, VMAs hold ${resv}, free ${pool.free}`);
  }
  let user = 0;
  for (const p of s.procs.values()) {
    let pinned = 0;
    let locked = 0;
    for (const ps of s.pins.values()) {
      if (ps.owner !== p.pid) continue;
      pinned += ps.accountedPinned;
      locked += ps.accountedLocked;
    }
    if (p.mm.pinnedVm !== pinned || p.mm.lockedVm !== locked)
      bug(`pid ${p.pid}: VmPin/VmLck ${p.mm.pinnedVm}/${p.mm.lockedVm}, pins account ${pinned}/${locked}`);
  }
  for (const ps of s.pins.values()) user += ps.accountedUser;
  if (user !== s.userLockedVm) bug(`user locked_vm ${s.userLockedVm}, pins account ${user}`);
}
