/** Pin users: VFIO (memlock cost of the seed), io_uring fixed buffers, and fork of pinned pages. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENOMEM, FOLL_GET, GUP_PIN_COUNTING_BIAS, HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE } from '../../src/model/constants.ts';
import { gup } from '../../src/model/gup.ts';
import { SEED_MACHINE } from '../../src/model/machine.ts';
import { Sim } from '../../src/model/sim.ts';
import { ZERO_FOLIO } from '../../src/model/types.ts';
import { anon, clearEvents, count, folioCount, has, mkSim, pagePte, pinSets, pmd, profile, thpArea } from './helpers.ts';

const N = 16;
const LEN = N * PAGE_SIZE;

for (const touch of ['untouched', 'read-touched'] as const) {
  test(`VFIO R/O map of ${touch} private anon memory: v6.1 pins the zeropage and accounts nothing`, () => {
    const sim = mkSim('v6.1');
    const a = anon(sim, LEN);
    if (touch === 'read-touched') sim.read(1, a, LEN);
    const id = sim.vfioMapDma(1, a, LEN, false);
    assert.ok(id > 0, `vfioMapDma returned ${id}`);
    assert.equal(sim.state.procs.get(1).mm.lockedVm, 0);
    assert.equal(folioCount(sim), 0, 'no memory allocated');
    assert.equal(sim.pagemap(1, a).folio, ZERO_FOLIO);
    assert.deepEqual(sim.state.pins.get(id).runs, []);
    assert.equal(sim.state.zeroPageRefs, 0, 'zero pages are unpinned at once');
  });

  test(`VFIO R/O map of ${touch} private anon memory: v6.2 allocates pages and accounts len/4096`, () => {
    const sim = mkSim('v6.2');
    const a = anon(sim, LEN);
    if (touch === 'read-touched') sim.read(1, a, LEN);
    const id = sim.vfioMapDma(1, a, LEN, false);
    assert.ok(id > 0);
    assert.equal(sim.state.procs.get(1).mm.lockedVm, N);
    assert.equal(sim.state.pins.get(id).accountedLocked, N);
    assert.equal(folioCount(sim), N);
    for (let i = 0; i < N; i++) {
      const f = sim.state.folios.get(sim.pagemap(1, a + i * PAGE_SIZE).folio);
      assert.equal(f.exclusive[0], true);
      assert.equal(f.refcount, 1 + GUP_PIN_COUNTING_BIAS);
    }
    sim.unpin(id);
    assert.equal(sim.state.procs.get(1).mm.lockedVm, 0);
  });
}

test('v6.2: VFIO R/O map beyond RLIMIT_MEMLOCK without CAP_IPC_LOCK is -ENOMEM, with nothing accounted or pinned', () => {
  const sim = mkSim('v6.2', { memlockLimit: (N / 2) * PAGE_SIZE, capIpcLock: false });
  const a = anon(sim, LEN);
  assert.equal(sim.vfioMapDma(1, a, LEN, false), -ENOMEM);
  assert.equal(sim.state.procs.get(1).mm.lockedVm, 0);
  assert.equal(pinSets(sim).length, 0);
  for (const f of [...sim.state.folios.values()]) assert.ok(f.refcount < GUP_PIN_COUNTING_BIAS, 'no pin left behind');
  assert.ok(has(sim, 'vfio: RLIMIT_MEMLOCK exceeded'));
});

test('v6.1: the same VFIO R/O map under the same limit succeeds (the zeropage is not accounted)', () => {
  const sim = mkSim('v6.1', { memlockLimit: (N / 2) * PAGE_SIZE, capIpcLock: false });
  const a = anon(sim, LEN);
  assert.ok(sim.vfioMapDma(1, a, LEN, false) > 0);
  assert.equal(sim.state.procs.get(1).mm.lockedVm, 0);
});

test('CAP_IPC_LOCK bypasses RLIMIT_MEMLOCK for VFIO (still accounted)', () => {
  const sim = mkSim('v6.2', { memlockLimit: PAGE_SIZE, capIpcLock: true });
  const a = anon(sim, LEN);
  assert.ok(sim.vfioMapDma(1, a, LEN, false) > 0);
  assert.equal(sim.state.procs.get(1).mm.lockedVm, N);
});

test('VFIO write map populates and accounts on both profiles', () => {
  for (const kernel of ['v6.1', 'v6.2'] as const) {
    const sim = mkSim(kernel);
    const a = anon(sim, LEN);
    assert.ok(sim.vfioMapDma(1, a, LEN, true) > 0);
    assert.equal(sim.state.procs.get(1).mm.lockedVm, N, kernel);
    assert.equal(folioCount(sim), N, kernel);
  }
});

// ---------------------------------------------------------------------------------------------
// io_uring

test('io_uring register accounts VmPin per 4 KiB page and unpin undoes it', () => {
  const sim = mkSim('v6.2');
  const a = anon(sim, 2 * PAGE_SIZE);
  sim.memset(1, a, 1, 2 * PAGE_SIZE);
  const buf = sim.ioUringRegister(1, a, 2 * PAGE_SIZE);
  assert.ok(buf > 0);
  assert.equal(sim.state.procs.get(1).mm.pinnedVm, 2);
  assert.equal(sim.state.procs.get(1).mm.lockedVm, 0);
  assert.equal(sim.state.userLockedVm, 0, 'CAP_IPC_LOCK: no per-user accounting');
  sim.unpin(buf);
  assert.equal(sim.state.procs.get(1).mm.pinnedVm, 0);
});

test('io_uring register of part of a THP accounts the whole THP (512 pages) once', () => {
  const sim = mkSim('v6.2');
  const a = thpArea(sim);
  sim.memset(1, a, 1, PMD_SIZE);
  const id = sim.pagemap(1, a).folio;
  const buf = sim.ioUringRegister(1, a, 3 * PAGE_SIZE);
  assert.ok(buf > 0);
  assert.equal(sim.state.procs.get(1).mm.pinnedVm, HPAGE_PMD_NR);
  assert.equal(sim.state.folios.get(id).pincount, 3);
  sim.unpin(buf);
  const all = sim.ioUringRegister(1, a, PMD_SIZE);
  assert.equal(sim.state.procs.get(1).mm.pinnedVm, HPAGE_PMD_NR);
  assert.equal(sim.state.folios.get(id).pincount, HPAGE_PMD_NR);
  sim.unpin(all);
  assert.equal(sim.state.folios.get(id).pincount, 0);
});

test('io_uring without CAP_IPC_LOCK: per-user locked_vm is checked against RLIMIT_MEMLOCK', () => {
  const sim = mkSim('v6.2', { memlockLimit: 4 * PAGE_SIZE, capIpcLock: false });
  const a = anon(sim, 8 * PAGE_SIZE);
  const buf = sim.ioUringRegister(1, a, 4 * PAGE_SIZE);
  assert.ok(buf > 0);
  assert.equal(sim.state.userLockedVm, 4);
  assert.equal(sim.ioUringRegister(1, a + 4 * PAGE_SIZE, PAGE_SIZE), -ENOMEM);
  assert.equal(sim.state.userLockedVm, 4);
  assert.equal(sim.state.procs.get(1).mm.pinnedVm, 4);
});

test('fork after io_uring register copies the pinned page for the child; the parent keeps folio, exclusivity and write', () => {
  const sim = mkSim('v6.2');
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  const buf = sim.ioUringRegister(1, a, PAGE_SIZE);
  clearEvents(sim);
  const child = sim.fork(1);
  assert.ok(has(sim, 'fork: copy maybe-pinned page', child));
  assert.equal(sim.pagemap(1, a).folio, id);
  assert.equal(sim.state.folios.get(id).exclusive[0], true);
  assert.equal(pagePte(sim, 1, a).write, true);
  const c = sim.pagemap(child, a).folio;
  assert.notEqual(c, id);
  assert.equal(sim.state.folios.get(c).exclusive[0], true);
  assert.deepEqual(sim.read(child, a, PAGE_SIZE), [[1, 1]]);
  // the parent's later write goes to the pinned page: the ring sees it, the child does not
  sim.memset(1, a, 2, PAGE_SIZE);
  assert.equal(sim.pagemap(1, a).folio, id);
  assert.deepEqual(sim.pinContent(buf), [[2, 1]]);
  assert.deepEqual(sim.read(child, a, PAGE_SIZE), [[1, 1]]);
  // the child's mm did not inherit VmPin
  assert.equal(sim.state.procs.get(child).mm.pinnedVm, 0);
});

test('fork without any pin shares the page (control for the maybe-pinned copy)', () => {
  const sim = mkSim('v6.2');
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  const child = sim.fork(1);
  assert.ok(!has(sim, 'fork: copy maybe-pinned page'));
  assert.equal(sim.pagemap(child, a).folio, id);
});

test('fork copies a page with refcount >= GUP_PIN_COUNTING_BIAS only if the mm has MMF_HAS_PINNED', () => {
  for (const hasPinned of [false, true]) {
    // FOLL_GET references taken with gup() directly are not recorded anywhere: no invariant checks
    const sim = new Sim(profile('v6.2'), SEED_MACHINE, { trace: true, check: false });
    const a = anon(sim, PAGE_SIZE);
    sim.memset(1, a, 1, PAGE_SIZE);
    const id = sim.pagemap(1, a).folio;
    for (let i = 0; i < GUP_PIN_COUNTING_BIAS; i++) gup(sim.k, sim.state.procs.get(1).mm, a, 1, FOLL_GET, false);
    assert.equal(sim.state.procs.get(1).mm.hasPinned, false);
    sim.state.procs.get(1).mm.hasPinned = hasPinned;
    const child = sim.fork(1);
    assert.equal(sim.pagemap(child, a).folio === id, !hasPinned, `hasPinned=${hasPinned}`);
    assert.equal(has(sim, 'fork: copy maybe-pinned page'), hasPinned);
  }
});

test('fork of a pinned PMD THP splits the parent PMD and gives the child copies', () => {
  const sim = mkSim('v6.2');
  const a = thpArea(sim);
  sim.memset(1, a, 1, PMD_SIZE);
  const id = sim.pagemap(1, a).folio;
  assert.equal(sim.gupTestStart(1, a, PAGE_SIZE, false, false), 0);
  assert.equal(sim.state.folios.get(id).pincount, 1);
  clearEvents(sim);
  const child = sim.fork(1);
  assert.ok(has(sim, 'fork: split pinned THP', 1));
  assert.ok(has(sim, 'split PMD', 1));
  assert.equal(pmd(sim, 1, a), undefined, 'parent PMD split');
  assert.equal(sim.pagemap(1, a).folio, id);
  assert.equal(sim.pagemap(1, a + 7 * PAGE_SIZE).folio, id);
  assert.equal(sim.state.folios.get(id).exclusive[0], true);
  assert.equal(pagePte(sim, 1, a).write, true);
  assert.notEqual(sim.pagemap(child, a).folio, id);
  assert.equal(count(sim, 'fork: copy maybe-pinned page'), HPAGE_PMD_NR);
  sim.memset(1, a, 2, PAGE_SIZE);
  assert.deepEqual(sim.gupTestRead(1), [[2, 1]]);
  assert.deepEqual(sim.read(child, a, PAGE_SIZE), [[1, 1]]);
});

test('exit unpins what the process pinned and drops its accounting', () => {
  const sim = mkSim('v6.2');
  const child = sim.fork(1);
  const a = anon(sim, PAGE_SIZE, undefined, child);
  sim.memset(child, a, 1, PAGE_SIZE);
  assert.ok(sim.ioUringRegister(child, a, PAGE_SIZE) > 0);
  sim.exit(child, 3);
  assert.equal(pinSets(sim).length, 0);
  assert.equal(folioCount(sim), 0);
  assert.equal(sim.wait(child), 3);
});
