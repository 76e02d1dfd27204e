/**
 * The argument and range rules of the address-space system calls (do_madvise, madvise_walk_vmas,
 * do_mprotect_pkey): what is done when a range is not fully mapped, and what is returned.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EACCES,
  EINVAL,
  ENOMEM,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MADV_PAGEOUT,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  VM_DONTCOPY,
  VM_HUGEPAGE,
  VM_MAYWRITE,
  VM_WRITE,
} from '../../src/model/constants.ts';
import { ownProc } from '../../src/model/state.ts';
import { anon, HUGE_2M, mkSim, pagePte, pte, RW } from './helpers.ts';

/** Three pages, the middle one unmapped: a hole between two VMAs. */
function holed() {
  const sim = mkSim('latest');
  const a = anon(sim, 3 * PAGE_SIZE);
  sim.memset(1, a, 1, 3 * PAGE_SIZE);
  assert.equal(sim.munmap(1, a + PAGE_SIZE, PAGE_SIZE), 0);
  return { sim, a };
}

const vmaAt = (sim: ReturnType<typeof mkSim>, addr: number) => sim.state.procs.get(1).mm.vmas.find((v) => v.start <= addr && addr < v.end);

test('madvise over a hole gives the advice to the mapped parts, then ENOMEM (madvise_walk_vmas)', () => {
  // MADV_DONTNEED: both pages around the hole are zapped
  let { sim, a } = holed();
  assert.equal(sim.madvise(1, a, 3 * PAGE_SIZE, MADV_DONTNEED), -ENOMEM);
  assert.equal(pte(sim, 1, a), undefined);
  assert.equal(pte(sim, 1, a + 2 * PAGE_SIZE), undefined);
  // MADV_PAGEOUT: both are swapped out
  ({ sim, a } = holed());
  assert.equal(sim.madvise(1, a, 3 * PAGE_SIZE, MADV_PAGEOUT), -ENOMEM);
  assert.equal(pte(sim, 1, a)?.t, 'swap');
  assert.equal(pte(sim, 1, a + 2 * PAGE_SIZE)?.t, 'swap');
  // flag advices: both VMAs get the flag
  ({ sim, a } = holed());
  assert.equal(sim.madvise(1, a, 3 * PAGE_SIZE, MADV_DONTFORK), -ENOMEM);
  assert.ok(vmaAt(sim, a)!.flags & VM_DONTCOPY && vmaAt(sim, a + 2 * PAGE_SIZE)!.flags & VM_DONTCOPY);
  ({ sim, a } = holed());
  // a range that starts in the hole and one that ends past the last VMA: the same
  assert.equal(sim.madvise(1, a + PAGE_SIZE, 2 * PAGE_SIZE, MADV_HUGEPAGE), -ENOMEM);
  assert.ok(vmaAt(sim, a + 2 * PAGE_SIZE)!.flags & VM_HUGEPAGE);
  assert.ok(!(vmaAt(sim, a)!.flags & VM_HUGEPAGE));
  assert.equal(sim.madvise(1, a + 2 * PAGE_SIZE, 8 * PAGE_SIZE, MADV_DONTNEED), -ENOMEM);
  assert.equal(pte(sim, 1, a + 2 * PAGE_SIZE), undefined);
  // fully mapped: 0
  const b = anon(sim, 2 * PAGE_SIZE);
  assert.equal(sim.madvise(1, b, 2 * PAGE_SIZE, MADV_DONTFORK), 0);
});

test('madvise rounds the length up to whole pages; a zero length does nothing; an unaligned start is EINVAL', () => {
  const sim = mkSim('latest');
  const a = anon(sim, 2 * PAGE_SIZE);
  sim.memset(1, a, 1, 2 * PAGE_SIZE);
  assert.equal(sim.madvise(1, a, 100, MADV_PAGEOUT), 0);
  assert.equal(pte(sim, 1, a)?.t, 'swap', 'the first page, rounded up to');
  assert.equal(pte(sim, 1, a + PAGE_SIZE)?.t, 'page', 'not the second');
  assert.equal(sim.madvise(1, a + PAGE_SIZE, 0, MADV_DONTNEED), 0);
  assert.equal(pte(sim, 1, a + PAGE_SIZE)?.t, 'page');
  assert.equal(sim.madvise(1, a + 1, PAGE_SIZE, MADV_DONTNEED), -EINVAL);
  // even a zero length over unmapped memory succeeds
  assert.equal(sim.madvise(1, 0x1000, 0, MADV_DONTNEED), 0);
});

test('mprotect changes VMAs in order up to a hole, then ENOMEM; a range starting in a hole changes nothing', () => {
  let { sim, a } = holed();
  assert.equal(sim.mprotect(1, a, 3 * PAGE_SIZE, PROT_READ), -ENOMEM);
  assert.equal(vmaAt(sim, a)!.flags & VM_WRITE, 0, 'the VMA before the hole changed');
  assert.equal(pagePte(sim, 1, a).write, false);
  assert.ok(vmaAt(sim, a + 2 * PAGE_SIZE)!.flags & VM_WRITE, 'the one after it did not');
  ({ sim, a } = holed());
  assert.equal(sim.mprotect(1, a + PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ), -ENOMEM);
  assert.ok(vmaAt(sim, a + 2 * PAGE_SIZE)!.flags & VM_WRITE);
  // past the last VMA: the mapped part changes
  ({ sim, a } = holed());
  assert.equal(sim.mprotect(1, a + 2 * PAGE_SIZE, 4 * PAGE_SIZE, PROT_READ), -ENOMEM);
  assert.equal(vmaAt(sim, a + 2 * PAGE_SIZE)!.flags & VM_WRITE, 0);
});

test('mprotect(PROT_WRITE) of a VMA without VM_MAYWRITE is EACCES; the VMAs before it keep their change', () => {
  const sim = mkSim('latest');
  const a = anon(sim, 2 * PAGE_SIZE, PROT_READ);
  // two VMAs (different flags), the second as a MAP_SHARED mapping of a file opened read-only
  // would be: no VM_MAYWRITE
  assert.equal(sim.madvise(1, a + PAGE_SIZE, PAGE_SIZE, MADV_DONTFORK), 0);
  const v = ownProc(sim.state, 1)!.mm.vmas.find((x) => x.start === a + PAGE_SIZE)!;
  v.flags &= ~VM_MAYWRITE;
  assert.equal(sim.mprotect(1, a, 2 * PAGE_SIZE, RW), -EACCES);
  assert.ok(vmaAt(sim, a)!.flags & VM_WRITE, 'the VMA before it became writable');
  assert.equal(vmaAt(sim, a + PAGE_SIZE)!.flags & VM_WRITE, 0);
});

test('soft-dirty: a read fault leaves the new PTE clean (zeropage and page cache); a write sets the bit (pte_mkdirty)', () => {
  const sim = mkSim('latest', { softDirty: true });
  const a = anon(sim, 2 * PAGE_SIZE);
  sim.clearSoftDirty(1); // VM_SOFTDIRTY cleared: the PTE bits decide
  sim.read(1, a, PAGE_SIZE);
  assert.equal(pte(sim, 1, a)?.t, 'zero');
  assert.equal(pte(sim, 1, a)?.softDirty, false);
  sim.memset(1, a + PAGE_SIZE, 1, PAGE_SIZE);
  assert.equal(pagePte(sim, 1, a + PAGE_SIZE).softDirty, true);
  // a R/O pin unshares the zeropage into a copy that keeps the old (clean) bit, so mprotect(RW)
  // leaves it R/O for the soft-dirty write fault (pte_needs_soft_dirty_wp)
  const r = anon(sim, PAGE_SIZE, PROT_READ);
  sim.clearSoftDirty(1);
  sim.read(1, r, PAGE_SIZE);
  assert.equal(sim.gupTestStart(1, r, PAGE_SIZE, false, false), 0);
  assert.equal(pagePte(sim, 1, r).softDirty, false);
  sim.gupTestStop(1);
  sim.mprotect(1, r, PAGE_SIZE, RW);
  assert.equal(pagePte(sim, 1, r).write, false);
});

test('a shared memfd mapping under soft-dirty tracking wants write notification: a read fault maps it R/O, the write fault makes it writable and soft-dirty', () => {
  const sim = mkSim('latest', { softDirty: true });
  const fd = sim.memfdCreate();
  sim.fallocate(fd, PAGE_SIZE);
  const m = sim.mmap(1, { len: PAGE_SIZE, prot: RW, flags: MAP_SHARED, file: fd });
  sim.read(1, m, PAGE_SIZE);
  assert.equal(pagePte(sim, 1, m).write, true, 'VM_SOFTDIRTY set (new mapping): no tracking yet, writable');
  assert.equal(sim.madvise(1, m, PAGE_SIZE, MADV_DONTNEED), 0);
  sim.clearSoftDirty(1);
  sim.read(1, m, PAGE_SIZE);
  assert.equal(pagePte(sim, 1, m).write, false);
  sim.memset(1, m, 2, PAGE_SIZE);
  assert.equal(pagePte(sim, 1, m).write, true);
  assert.equal(pagePte(sim, 1, m).softDirty, true);
});

test('shared hugetlb: MAP_SHARED|MAP_ANONYMOUS needs the pages in the pool at mmap (ENOMEM; not with MAP_NORESERVE), and mprotect(RW) makes its entries writable', () => {
  const sim = mkSim('latest', { hugetlb: [{ size: HUGE_2M, nr: 2 }] });
  const flags = MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB;
  assert.equal(sim.mmap(1, { len: 3 * HUGE_2M, prot: RW, flags, hugetlbSize: HUGE_2M }), -ENOMEM);
  assert.ok(sim.mmap(1, { len: 3 * HUGE_2M, prot: RW, flags: flags | MAP_NORESERVE, hugetlbSize: HUGE_2M }) > 0);
  const h = sim.mmap(1, { len: HUGE_2M, prot: PROT_READ, flags, hugetlbSize: HUGE_2M });
  assert.ok(h > 0);
  sim.read(1, h, PAGE_SIZE);
  const entry = () => sim.state.procs.get(1).mm.huge.get(h / PAGE_SIZE);
  assert.equal(entry().write, false);
  assert.equal(sim.mprotect(1, h, HUGE_2M, RW), 0);
  assert.equal(entry().write, true);
});

test('x86: a PROT_WRITE-only mapping can be read (vma_is_accessible)', () => {
  const sim = mkSim('latest');
  const a = anon(sim, PAGE_SIZE, PROT_WRITE);
  assert.deepEqual(sim.read(1, a, PAGE_SIZE), [[0, 1]]);
  const n = anon(sim, PAGE_SIZE, PROT_NONE);
  assert.equal(sim.read(1, n, PAGE_SIZE), 'SIGSEGV');
});
