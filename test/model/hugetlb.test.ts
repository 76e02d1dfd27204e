import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENOMEM, MAP_ANONYMOUS, MAP_HUGETLB, MAP_NORESERVE, MAP_PRIVATE, PAGE_SIZE } from '../../src/model/constants.ts';
import { clearEvents, HUGE_2M, has, hugetlbAnon, mkSim, RW } from './helpers.ts';

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
