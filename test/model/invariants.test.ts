import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MADV_PAGEOUT, PAGE_SIZE, PMD_SIZE } from '../../src/model/constants.ts';
import { checkInvariants } from '../../src/model/invariants.ts';
import { ModelBug } from '../../src/model/kernel.ts';
import { anon, HUGE_2M, hugetlbAnon, mkSim, pagePte, thpArea } from './helpers.ts';

/** A state exercising most of the model: pins, pipes, swap, THP, hugetlb, a child. */
function busy() {
  const sim = mkSim('v6.2');
  const a = anon(sim, 4 * PAGE_SIZE);
  sim.memset(1, a, 1, 4 * PAGE_SIZE);
  sim.gupTestStart(1, a, PAGE_SIZE, false, false);
  const pipe = sim.pipe();
  sim.vmsplice(1, pipe, a + PAGE_SIZE, PAGE_SIZE);
  sim.madvise(1, a + 2 * PAGE_SIZE, PAGE_SIZE, MADV_PAGEOUT);
  const t = thpArea(sim);
  sim.memset(1, t, 2, PMD_SIZE);
  const h = hugetlbAnon(sim);
  sim.memset(1, h, 3, HUGE_2M);
  const buf = sim.ioUringRegister(1, a + 3 * PAGE_SIZE, PAGE_SIZE);
  const child = sim.fork(1);
  return { sim, a, t, h, pipe, buf, child };
}

test('checkInvariants passes after a mix of operations', () => {
  const { sim, a, child } = busy();
  assert.doesNotThrow(() => checkInvariants(sim.k));
  sim.memset(child, a + 3 * PAGE_SIZE, 9, PAGE_SIZE);
  sim.exit(child, 0);
  assert.doesNotThrow(() => checkInvariants(sim.k));
});

test('a bumped folio refcount is a ModelBug', () => {
  const { sim, a } = busy();
  sim.state.folios.get(sim.pagemap(1, a).folio).refcount++;
  assert.throws(
    () => checkInvariants(sim.k),
    (e: unknown) => e instanceof ModelBug && /refcount/.test(e.message),
  );
});

test('a wrong mapcount is a ModelBug', () => {
  const { sim, t } = busy();
  sim.state.folios.get(sim.pagemap(1, t).folio).entireMapcount++;
  assert.throws(() => checkInvariants(sim.k), ModelBug);
});

test('a writable PTE mapping a shared (non-exclusive) anon page is a ModelBug', () => {
  const sim = mkSim('v6.2');
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  sim.fork(1);
  sim.state.procs.get(1).mm.pte.set(a / PAGE_SIZE, { ...pagePte(sim, 1, a), write: true });
  assert.throws(
    () => checkInvariants(sim.k),
    (e: unknown) => e instanceof ModelBug && /writable PTE/.test(e.message),
  );
});

test('clearing PG_anon_exclusive on a pinned page is a ModelBug', () => {
  const sim = mkSim('v6.2');
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  assert.equal(sim.gupTestStart(1, a, PAGE_SIZE, false, false), 0);
  assert.doesNotThrow(() => checkInvariants(sim.k));
  // make the PTE R/O first so only the pin invariant is broken
  sim.state.procs.get(1).mm.pte.set(a / PAGE_SIZE, { ...pagePte(sim, 1, a), write: false });
  assert.doesNotThrow(() => checkInvariants(sim.k));
  sim.state.folios.get(sim.pagemap(1, a).folio).setExclusive(0, false);
  assert.throws(
    () => checkInvariants(sim.k),
    (e: unknown) => e instanceof ModelBug && /pinned anon page/.test(e.message),
  );
});

test('an exclusive page mapped twice is a ModelBug', () => {
  const sim = mkSim('v6.2');
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  const child = sim.fork(1);
  sim.state.folios.get(sim.pagemap(child, a).folio).setExclusive(0, true);
  assert.throws(
    () => checkInvariants(sim.k),
    (e: unknown) => e instanceof ModelBug && /exclusive but mapped 2/.test(e.message),
  );
});

test('a wrong swap count, hugetlb pool or memlock counter is a ModelBug', () => {
  {
    const { sim } = busy();
    const slot = [...sim.state.swap.values()][0];
    slot.count++;
    assert.throws(() => checkInvariants(sim.k), ModelBug);
  }
  {
    const { sim } = busy();
    sim.state.hugetlb = [{ ...sim.state.hugetlb[0], free: sim.state.hugetlb[0].free + 1 }, ...sim.state.hugetlb.slice(1)];
    assert.throws(() => checkInvariants(sim.k), ModelBug);
  }
  {
    const { sim } = busy();
    sim.state.procs.get(1).mm.pinnedVm++;
    assert.throws(() => checkInvariants(sim.k), /VmPin/);
  }
  {
    const { sim } = busy();
    sim.state.zeroPageRefs++;
    assert.throws(() => checkInvariants(sim.k), /zeropage refs/);
  }
});

test('the Sim checks invariants after every operation', () => {
  const sim = mkSim('v6.2');
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  sim.state.folios.get(sim.pagemap(1, a).folio).refcount++;
  assert.throws(() => sim.read(1, a, PAGE_SIZE), ModelBug);
});
