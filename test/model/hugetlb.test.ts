import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ENOMEM,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
} from '../../src/model/constants.ts';
import type { PagePte } from '../../src/model/types.ts';
import { clearEvents, HUGE_2M, has, hugetlbAnon, mkSim, pte, RW } from './helpers.ts';

const pool = (sim: ReturnType<typeof mkSim>) => sim.state.hugetlb.find((h) => h.size === HUGE_2M)!;
const leaf = (sim: ReturnType<typeof mkSim>, pid: number, a: number) => sim.state.procs.get(pid).mm.huge.get(a / PAGE_SIZE);

test('private anon hugetlb: mmap reserves, the first write allocates an exclusive writable page', () => {
  const sim = mkSim('v6.2');
  const a = hugetlbAnon(sim);
  assert.ok(a > 0);
  assert.equal(a % HUGE_2M, 0);
  assert.deepEqual({ ...pool(sim) }, { size: HUGE_2M, nr: 2, free: 2, resv: 1 });
  sim.memset(1, a, 1, HUGE_2M);
  const id = sim.pagemap(1, a).folio;
  const f = sim.state.folios.get(id);
  assert.equal(f.hugetlb, HUGE_2M);
  assert.equal(f.kind, 'anon');
  assert.equal(f.exclusive[0], true);
  assert.equal(leaf(sim, 1, a).write, true);
  assert.deepEqual({ ...pool(sim) }, { size: HUGE_2M, nr: 2, free: 1, resv: 0 });
  assert.equal(sim.pagemap(1, a + 100 * PAGE_SIZE).folio, id);
});

test('private anon hugetlb COW after fork copies when mapcount is 2', () => {
  const sim = mkSim('v6.2');
  const a = hugetlbAnon(sim);
  sim.memset(1, a, 1, HUGE_2M);
  const old = sim.pagemap(1, a).folio;
  const child = sim.fork(1);
  assert.equal(sim.state.folios.get(old).entireMapcount, 2);
  assert.equal(sim.state.folios.get(old).exclusive[0], false);
  assert.equal(leaf(sim, 1, a).write, false);
  assert.equal(leaf(sim, child, a).write, false);
  clearEvents(sim);
  sim.memset(1, a, 2, HUGE_2M);
  assert.ok(has(sim, 'hugetlb COW: copy'));
  const neu = sim.pagemap(1, a).folio;
  assert.notEqual(neu, old);
  assert.equal(sim.pagemap(child, a).folio, old);
  assert.deepEqual(sim.read(child, a, HUGE_2M), [[1, HUGE_2M / PAGE_SIZE]]);
  assert.deepEqual(sim.read(1, a, HUGE_2M), [[2, HUGE_2M / PAGE_SIZE]]);
  assert.equal(pool(sim).free, 0);
});

test('hugetlb reuse is by mapcount: with mapcount 1 a vmsplice FOLL_GET reference does not prevent reuse (the documented leak)', () => {
  const sim = mkSim('v6.2');
  const a = hugetlbAnon(sim);
  sim.memset(1, a, 1, HUGE_2M);
  const old = sim.pagemap(1, a).folio;
  const child = sim.fork(1);
  const pipe = sim.pipe();
  assert.equal(sim.vmsplice(child, pipe, a, PAGE_SIZE), PAGE_SIZE);
  sim.exit(child, 0);
  assert.equal(sim.state.folios.get(old).refcount, 2);
  clearEvents(sim);
  sim.memset(1, a, 2, HUGE_2M);
  assert.ok(has(sim, 'hugetlb: reuse'));
  assert.ok(!has(sim, 'hugetlb COW: copy'));
  assert.equal(sim.pagemap(1, a).folio, old);
  // the pipe of the dead child sees the parent's later write
  assert.deepEqual(sim.pipeRead(pipe, PAGE_SIZE), [[2, 1]]);
});

test('hugetlb mmap fails with -ENOMEM when the pool cannot cover the reservation', () => {
  const sim = mkSim('v6.2');
  assert.equal(hugetlbAnon(sim, 3 * HUGE_2M), -ENOMEM);
  assert.equal(pool(sim).resv, 0);
  const a = hugetlbAnon(sim, 2 * HUGE_2M);
  assert.ok(a > 0);
  assert.equal(pool(sim).resv, 2);
  assert.equal(hugetlbAnon(sim, HUGE_2M), -ENOMEM);
  // MAP_NORESERVE skips the reservation
  assert.ok(
    sim.mmap(1, { len: HUGE_2M, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE, hugetlbSize: HUGE_2M }) > 0,
  );
});

test('hugetlb reservations are returned on munmap and exit; pages go back to the pool', () => {
  const sim = mkSim('v6.2');
  const a = hugetlbAnon(sim, 2 * HUGE_2M);
  sim.memset(1, a, 1, HUGE_2M);
  assert.deepEqual({ ...pool(sim) }, { size: HUGE_2M, nr: 2, free: 1, resv: 1 });
  assert.equal(sim.munmap(1, a, 2 * HUGE_2M), 0);
  assert.deepEqual({ ...pool(sim) }, { size: HUGE_2M, nr: 2, free: 2, resv: 0 });

  const child = sim.fork(1);
  const b = sim.mmap(child, { len: HUGE_2M, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, hugetlbSize: HUGE_2M });
  assert.ok(b > 0);
  assert.equal(pool(sim).resv, 1);
  sim.exit(child, 0);
  assert.deepEqual({ ...pool(sim) }, { size: HUGE_2M, nr: 2, free: 2, resv: 0 });
});

test('memfd hugetlb: fallocate takes pages from the pool and fails with ENOSPC when it is empty', () => {
  const sim = mkSim('v6.2');
  const fd = sim.memfdCreate(HUGE_2M);
  assert.ok(fd > 0);
  assert.equal(sim.fallocate(fd, 2 * HUGE_2M), 0);
  assert.equal(pool(sim).free, 0);
  const fd2 = sim.memfdCreate(HUGE_2M);
  assert.equal(sim.fallocate(fd2, HUGE_2M), -28);
  assert.equal(sim.memfdCreate(4096 * 3), -22);
});

test('fork of a pinned hugetlb page with no unreserved free page fails with ENOMEM: the child is torn down, the parent keeps its pages', () => {
  const sim = mkSim('v6.2');
  // a small anonymous page first (lower address, copied before the hugetlb VMA), then the hugetlb page
  const small = sim.mmap(1, { len: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  sim.memset(1, small, 7, PAGE_SIZE);
  const a = hugetlbAnon(sim);
  sim.memset(1, a, 1, HUGE_2M);
  // the pool's other page is reserved by a second mapping: nothing is left for a copy
  const other = hugetlbAnon(sim);
  assert.ok(other > 0);
  assert.deepEqual({ ...pool(sim) }, { size: HUGE_2M, nr: 2, free: 1, resv: 1 });
  assert.ok(sim.ioUringRegister(1, a, HUGE_2M) >= 0);
  const big = sim.pagemap(1, a).folio;
  const page = sim.pagemap(1, small).folio;
  const bigRef = sim.state.folios.get(big).refcount;
  const procs = sim.state.procs.size;
  clearEvents(sim);
  assert.equal(sim.fork(1), -ENOMEM);
  assert.ok(has(sim, 'fork failed'));
  assert.equal(sim.state.procs.size, procs, 'no child is left');
  assert.deepEqual({ ...pool(sim) }, { size: HUGE_2M, nr: 2, free: 1, resv: 1 });
  // the pinned huge page: untouched (the copy was never made, the page never shared)
  const f = sim.state.folios.get(big);
  assert.equal(f.refcount, bigRef);
  assert.equal(f.entireMapcount, 1);
  assert.equal(f.exclusive[0], true);
  assert.equal(leaf(sim, 1, a).write, true);
  // the small page was shared with the child and is mapped once again, but as the kernel leaves
  // it: write-protected and no longer exclusive; the next write reuses it (refcount 1)
  const p = sim.state.folios.get(page);
  assert.equal(p.refcount, 1);
  assert.equal(p.mapcount[0], 1);
  assert.equal(p.exclusive[0], false);
  assert.equal((pte(sim, 1, small) as PagePte).write, false);
  clearEvents(sim);
  sim.memset(1, small, 8, PAGE_SIZE);
  assert.equal(sim.pagemap(1, small).folio, page);
  assert.ok(has(sim, 'reuse anon page'));
  // with the other mapping gone, the same fork copies the pinned page for the child
  assert.equal(sim.munmap(1, other, HUGE_2M), 0);
  const child = sim.fork(1);
  assert.ok(child > 0);
  assert.notEqual(sim.pagemap(child, a).folio, big);
  assert.equal(sim.pagemap(1, a).folio, big);
});

test('a hugetlbfs file beyond its size: a R/O mapping faults SIGBUS there (hugetlb_no_page checks i_size); a writable mapping extends the file first', () => {
  const sim = mkSim('latest');
  const fd = sim.memfdCreate(HUGE_2M);
  const ro = sim.mmap(1, { len: HUGE_2M, prot: PROT_READ, flags: MAP_SHARED, file: fd });
  assert.equal(sim.read(1, ro, PAGE_SIZE), 'SIGBUS');
  const free = sim.state.hugetlb.find((h) => h.size === HUGE_2M)!.free;
  const rw = sim.mmap(1, { len: HUGE_2M, prot: RW, flags: MAP_SHARED, file: fd });
  assert.equal(sim.state.files.get(fd).size, HUGE_2M);
  assert.deepEqual(sim.read(1, rw, PAGE_SIZE), [[0, 1]]);
  assert.deepEqual(sim.read(1, ro, PAGE_SIZE), [[0, 1]], 'now inside the file');
  assert.equal(sim.state.hugetlb.find((h) => h.size === HUGE_2M)!.free, free - 1);
});

test('the owner of a private hugetlb mapping that cannot copy takes the page back from its child (unmap_ref_private); the child then faults SIGBUS there', () => {
  const sim = mkSim('latest', { hugetlb: [{ size: HUGE_2M, nr: 2 }] });
  const a = hugetlbAnon(sim, 2 * HUGE_2M);
  sim.memset(1, a, 1, 2 * HUGE_2M);
  const c = sim.fork(1);
  const id = sim.pagemap(1, a).folio;
  // no free huge page left: the parent's write cannot copy
  assert.equal(sim.memset(1, a, 2, PAGE_SIZE), null);
  assert.equal(sim.pagemap(1, a).folio, id, 'the parent reused its page');
  assert.equal(sim.state.procs.get(c).mm.huge.get(a / PAGE_SIZE), undefined, "the child's entry is gone");
  assert.equal(sim.read(c, a, PAGE_SIZE), 'SIGBUS');
  assert.deepEqual(sim.read(c, a + HUGE_2M, PAGE_SIZE), [[1, 1]], 'its other page is still there');
  // a child never takes a page from the parent: its own COW just fails
  const other = mkSim('latest', { hugetlb: [{ size: HUGE_2M, nr: 1 }] });
  const b = hugetlbAnon(other, HUGE_2M);
  other.memset(1, b, 1, HUGE_2M);
  const d = other.fork(1);
  assert.equal(other.memset(d, b, 2, PAGE_SIZE), 'SIGBUS');
  assert.deepEqual(other.read(1, b, PAGE_SIZE), [[1, 1]]);
});
