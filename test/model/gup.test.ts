import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EFAULT,
  FOLL_FORCE,
  FOLL_GET,
  FOLL_LONGTERM,
  FOLL_PIN,
  FOLL_WRITE,
  GUP_PIN_COUNTING_BIAS,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
} from '../../src/model/constants.ts';
import { gup } from '../../src/model/gup.ts';
import { anon, clearEvents, HUGE_2M, has, hasLike, hugetlbAnon, mkSim, pagePte, pinSets } from './helpers.ts';

function sharedWithChild(kernel: 'v6.1' | 'v6.2') {
  const sim = mkSim(kernel);
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  const old = sim.pagemap(1, a).folio;
  const child = sim.fork(1);
  clearEvents(sim);
  return { sim, a, old, child };
}

for (const kernel of ['v6.1', 'v6.2'] as const) {
  for (const fast of [false, true]) {
    test(`${kernel}: R/O long-term pin${fast ? ' (GUP-fast)' : ''} of a page shared with a child unshares; the pin sees later writes`, () => {
      const { sim, a, old, child } = sharedWithChild(kernel);
      assert.equal(sim.gupTestStart(1, a, PAGE_SIZE, false, fast), 0);
      assert.ok(has(sim, 'unshare: copy', 1));
      if (fast) assert.ok(has(sim, 'GUP-fast: fall back to the slow path'));
      const neu = sim.pagemap(1, a).folio;
      assert.notEqual(neu, old);
      assert.equal(sim.pagemap(child, a).folio, old);
      const f = sim.state.folios.get(neu);
      assert.equal(f.exclusive[0], true);
      assert.equal(f.refcount, 1 + GUP_PIN_COUNTING_BIAS);
      // the unshared copy is mapped R/O
      assert.equal(pagePte(sim, 1, a).write, false);
      assert.equal(pinSets(sim, 'gup_test')[0].runs[0].folio, neu);
      // a later write reuses the exclusive page, so the pin sees it
      clearEvents(sim);
      sim.memset(1, a, 0xff, PAGE_SIZE);
      assert.ok(has(sim, 'reuse anon page'));
      assert.equal(sim.pagemap(1, a).folio, neu);
      assert.deepEqual(sim.gupTestRead(1), sim.read(1, a, PAGE_SIZE));
      assert.deepEqual(sim.gupTestRead(1), [[0xff, 1]]);
      assert.deepEqual(sim.read(child, a, PAGE_SIZE), [[1, 1]]);
      assert.equal(sim.gupTestStop(1), 0);
      assert.equal(sim.state.folios.get(neu).refcount, 1);
    });
  }
}

test('FOLL_GET (vmsplice) of a page shared with a child does not unshare', () => {
  const { sim, a, old, child } = sharedWithChild('v6.2');
  const pipe = sim.pipe();
  assert.equal(sim.vmsplice(1, pipe, a, PAGE_SIZE), PAGE_SIZE);
  assert.ok(!hasLike(sim, /unshare/));
  assert.equal(sim.pagemap(1, a).folio, old);
  assert.equal(sim.pagemap(child, a).folio, old);
  assert.equal(sim.state.folios.get(old).exclusive[0], false);
  assert.equal(sim.state.folios.get(old).refcount, 3);
});

test('R/O pin of a non-exclusive page whose only reference is our mapping reuses it (unshare: reuse)', () => {
  const { sim, a, old, child } = sharedWithChild('v6.2');
  sim.exit(child, 0);
  clearEvents(sim);
  assert.equal(sim.gupTestStart(1, a, PAGE_SIZE, false, false), 0);
  assert.ok(has(sim, 'unshare: reuse exclusive anon page'));
  assert.ok(!has(sim, 'unshare: copy'));
  assert.equal(sim.pagemap(1, a).folio, old);
  assert.equal(sim.state.folios.get(old).exclusive[0], true);
  assert.equal(pagePte(sim, 1, a).write, false, 'unshare never maps writable');
});

test('R/O pin of an exclusive page pins it in place, even when mapped R/O, and GUP-fast takes it', () => {
  const sim = mkSim('v6.2');
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  sim.mprotect(1, a, PAGE_SIZE, PROT_READ);
  const id = sim.pagemap(1, a).folio;
  clearEvents(sim);
  assert.equal(sim.gupTestStart(1, a, PAGE_SIZE, false, true), 0);
  assert.ok(!hasLike(sim, /unshare|fall back/));
  assert.equal(sim.pagemap(1, a).folio, id);
  assert.equal(sim.state.folios.get(id).refcount, 1 + GUP_PIN_COUNTING_BIAS);
  assert.equal(sim.state.procs.get(1).mm.hasPinned, true);
});

test('a write pin of a page shared with a child breaks COW with a write fault (writable copy)', () => {
  const { sim, a, old, child } = sharedWithChild('v6.2');
  assert.equal(sim.gupTestStart(1, a, PAGE_SIZE, true, false), 0);
  assert.ok(has(sim, 'COW: copy'));
  assert.ok(!hasLike(sim, /unshare/));
  assert.notEqual(sim.pagemap(1, a).folio, old);
  assert.equal(sim.pagemap(child, a).folio, old);
  assert.equal(pagePte(sim, 1, a).write, true);
});

test('GUP-fast never takes the shared zeropage (special PTE): it falls back on both profiles', () => {
  for (const kernel of ['v6.1', 'v6.2'] as const) {
    const sim = mkSim(kernel);
    const a = anon(sim, PAGE_SIZE);
    sim.read(1, a, PAGE_SIZE);
    clearEvents(sim);
    const pipe = sim.pipe();
    sim.vmsplice(1, pipe, a, PAGE_SIZE);
    assert.ok(has(sim, 'GUP-fast: fall back to the slow path'), kernel);
    assert.equal(sim.state.zeroPageRefs, 1, kernel);
  }
});

test('gup_test is refused without CONFIG_GUP_TEST (-ENOENT) and a second test pin is -EINVAL', () => {
  const none = mkSim('v6.2', { gupTest: false });
  const a = anon(none, PAGE_SIZE);
  none.memset(1, a, 1, PAGE_SIZE);
  assert.equal(none.gupTestStart(1, a, PAGE_SIZE, false, false), -2);
  const sim = mkSim('v6.2');
  const b = anon(sim, PAGE_SIZE);
  sim.memset(1, b, 1, PAGE_SIZE);
  assert.equal(sim.gupTestStart(1, b, PAGE_SIZE, false, false), 0);
  assert.equal(sim.gupTestStart(1, b, PAGE_SIZE, false, false), -22);
});

// ---------------------------------------------------------------------------------------------
// check_vma_flags

const FORCE_WRITE_PIN = FOLL_PIN | FOLL_LONGTERM | FOLL_FORCE | FOLL_WRITE;

test('v6.2: FOLL_FORCE|FOLL_WRITE on a PROT_READ private hugetlb mapping is refused with -EFAULT', () => {
  const sim = mkSim('v6.2');
  const a = hugetlbAnon(sim, HUGE_2M, PROT_READ);
  assert.ok(a > 0);
  sim.read(1, a, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  const r = gup(sim.k, sim.state.procs.get(1).mm, a, 1, FORCE_WRITE_PIN, false);
  assert.equal(r.nr, -EFAULT);
  assert.deepEqual(r.runs, []);
  assert.equal(sim.state.folios.get(id).pincount, 0);
});

test('v6.1: FOLL_FORCE|FOLL_WRITE on a PROT_READ private hugetlb mapping (exclusive page mapped) is allowed', () => {
  const sim = mkSim('v6.1');
  const a = hugetlbAnon(sim, HUGE_2M, PROT_READ);
  sim.read(1, a, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  assert.equal(sim.state.folios.get(id).exclusive[0], true);
  const r = gup(sim.k, sim.state.procs.get(1).mm, a, 1, FORCE_WRITE_PIN, false);
  assert.equal(r.nr, 1);
  assert.equal(r.runs[0].folio, id);
  assert.equal(sim.state.folios.get(id).pincount, 1);
});

test('check_vma_flags: FOLL_WRITE without FOLL_FORCE on PROT_READ is -EFAULT; FOLL_FORCE works on a non-hugetlb COW mapping on v6.2', () => {
  const sim = mkSim('v6.2');
  const a = anon(sim, PAGE_SIZE, PROT_READ);
  const mm = sim.state.procs.get(1).mm;
  assert.equal(gup(sim.k, mm, a, 1, FOLL_GET | FOLL_WRITE, false).nr, -EFAULT);
  const r = gup(sim.k, mm, a, 1, FOLL_GET | FOLL_WRITE | FOLL_FORCE, false);
  assert.equal(r.nr, 1);
  // the forced write fault broke COW (zeropage -> new exclusive page) but left the PTE R/O
  const id = sim.pagemap(1, a).folio;
  assert.ok(id >= 0);
  assert.equal(r.runs[0].folio, id);
  assert.equal(pagePte(sim, 1, a).write, false);
  assert.equal(sim.state.folios.get(id).exclusive[0], true);
});

test('FOLL_FORCE|FOLL_WRITE is refused on a shared mapping without VM_WRITE', () => {
  const sim = mkSim('v6.1');
  const fd = sim.memfdCreate();
  sim.fallocate(fd, PAGE_SIZE);
  const a = sim.mmap(1, { len: PAGE_SIZE, prot: PROT_READ, flags: MAP_SHARED, file: fd });
  assert.equal(gup(sim.k, sim.state.procs.get(1).mm, a, 1, FOLL_GET | FOLL_WRITE | FOLL_FORCE, false).nr, -EFAULT);
});

test('GUP-fast leaves a PROT_NONE mapping to the slow path, which refuses it (pte_protnone): vmsplice and a fast R/O pin fail with EFAULT', () => {
  const sim = mkSim('latest');
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  assert.equal(sim.mprotect(1, a, PAGE_SIZE, PROT_NONE), 0);
  assert.equal(sim.vmsplice(1, sim.pipe(), a, PAGE_SIZE), -EFAULT);
  assert.equal(sim.gupTestStart(1, a, PAGE_SIZE, false, true), -EFAULT);
});

test('FOLL_FORCE|FOLL_WRITE on a R/O private hugetlb mapping shared after fork: v6.1 copies into a writable entry, latest (hugetlb-wp-maybe-writable) into a R/O one that GUP follows anyway', () => {
  for (const [kernel, writable] of [
    ['v6.1', true],
    ['latest', false],
  ] as const) {
    const sim = mkSim(kernel);
    const a = hugetlbAnon(sim, HUGE_2M, PROT_READ);
    sim.read(1, a, PAGE_SIZE);
    const old = sim.pagemap(1, a).folio;
    sim.fork(1);
    const r = gup(sim.k, sim.state.procs.get(1).mm, a, 1, FOLL_GET | FOLL_WRITE | FOLL_FORCE, false);
    assert.equal(r.nr, 1, kernel);
    const now = sim.pagemap(1, a).folio;
    assert.notEqual(now, old, `${kernel}: the forced write copied the shared page`);
    assert.equal(r.runs[0].folio, now);
    assert.equal(sim.state.procs.get(1).mm.huge.values()[0].write, writable, kernel);
  }
});
