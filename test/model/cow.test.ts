import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GUP_PIN_COUNTING_BIAS, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PMD_SIZE, PROT_READ } from '../../src/model/constants.ts';
import { SEED_MACHINE } from '../../src/model/machine.ts';
import { resolveKernel } from '../../src/model/profile.ts';
import { Sim } from '../../src/model/sim.ts';
import { anon, clearEvents, has, mkSim, pagePte, pmd, RW, thpArea } from './helpers.ts';

function forked(kernel: 'v6.1' | 'v6.2' = 'v6.2') {
  const sim = mkSim(kernel);
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  const old = sim.pagemap(1, a).folio;
  const child = sim.fork(1);
  return { sim, a, old, child };
}

test('fork write-protects both PTEs and clears PG_anon_exclusive of the shared page', () => {
  const { sim, a, old, child } = forked();
  assert.equal(sim.pagemap(child, a).folio, old);
  assert.equal(pagePte(sim, 1, a).write, false);
  assert.equal(pagePte(sim, child, a).write, false);
  const f = sim.state.folios.get(old);
  assert.equal(f.exclusive[0], false);
  assert.equal(f.refcount, 2);
  assert.deepEqual(f.mapcount, [2]);
  assert.equal(sim.pagemap(1, a).exclusivelyMapped, false);
});

for (const kernel of ['v6.1', 'v6.2'] as const) {
  test(`${kernel}: parent write to a page shared with a live child copies; the child keeps the old page`, () => {
    const { sim, a, old, child } = forked(kernel);
    clearEvents(sim);
    sim.memset(1, a, 2, PAGE_SIZE);
    assert.ok(has(sim, 'COW: copy', 1));
    assert.ok(!has(sim, 'reuse anon page'));
    const neu = sim.pagemap(1, a).folio;
    assert.notEqual(neu, old);
    assert.equal(sim.pagemap(child, a).folio, old);
    assert.equal(sim.state.folios.get(neu).exclusive[0], true);
    assert.equal(pagePte(sim, 1, a).write, true);
    assert.deepEqual(sim.read(1, a, PAGE_SIZE), [[2, 1]]);
    assert.deepEqual(sim.read(child, a, PAGE_SIZE), [[1, 1]]);
    // the old page lost the parent's mapping and reference
    assert.equal(sim.state.folios.get(old).refcount, 1);
    assert.deepEqual(sim.state.folios.get(old).mapcount, [1]);
    // the child's page is still non-exclusive: its own write reuses it by the refcount check
    clearEvents(sim);
    sim.memset(child, a, 3, PAGE_SIZE);
    assert.ok(has(sim, 'reuse anon page', child));
    assert.equal(sim.pagemap(child, a).folio, old);
    assert.equal(sim.state.folios.get(old).exclusive[0], true);
  });
}

test('after the child exits, the parent write reuses the page (refcount == 1) and marks it exclusive', () => {
  const { sim, a, old, child } = forked();
  sim.exit(child, 0);
  assert.equal(sim.wait(child), 0);
  assert.equal(sim.state.folios.get(old).exclusive[0], false);
  clearEvents(sim);
  sim.memset(1, a, 2, PAGE_SIZE);
  assert.ok(has(sim, 'reuse anon page'));
  assert.ok(!has(sim, 'COW: copy'));
  assert.equal(sim.pagemap(1, a).folio, old);
  assert.equal(sim.state.folios.get(old).exclusive[0], true);
  assert.equal(pagePte(sim, 1, a).write, true);
});

test('an extra FOLL_GET reference (vmsplice into a pipe) forces a copy; the pipe keeps the old content', () => {
  const { sim, a, old, child } = forked();
  const pipe = sim.pipe();
  assert.equal(sim.vmsplice(child, pipe, a, PAGE_SIZE), PAGE_SIZE);
  assert.equal(sim.state.folios.get(old).refcount, 3);
  sim.munmap(child, a, PAGE_SIZE);
  assert.equal(sim.state.folios.get(old).refcount, 2);
  assert.deepEqual(sim.state.folios.get(old).mapcount, [1]);
  clearEvents(sim);
  sim.memset(1, a, 0xff, PAGE_SIZE);
  assert.ok(has(sim, 'COW: copy'));
  assert.notEqual(sim.pagemap(1, a).folio, old);
  assert.deepEqual(sim.pipeRead(pipe, PAGE_SIZE), [[1, 1]]);
});

test('an exclusive page is reused on a write fault whatever its refcount (PG_anon_exclusive wins)', () => {
  const sim = mkSim();
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  const pipe = sim.pipe();
  sim.vmsplice(1, pipe, a, PAGE_SIZE);
  // clear_refs soft-dirty write-protects the PTE, so the next store takes a write fault
  sim.clearSoftDirty(1);
  assert.equal(pagePte(sim, 1, a).write, false);
  clearEvents(sim);
  sim.memset(1, a, 2, PAGE_SIZE);
  assert.ok(has(sim, 'reuse anon page'));
  assert.equal(sim.pagemap(1, a).folio, id);
  assert.deepEqual(sim.pipeRead(pipe, PAGE_SIZE), [[2, 1]]);
});

// ---------------------------------------------------------------------------------------------
// mprotect: can_change_pte_writable

test('mprotect(R) then mprotect(RW) makes the PTE of an exclusive anon page writable again', () => {
  const sim = mkSim();
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  assert.equal(sim.mprotect(1, a, PAGE_SIZE, PROT_READ), 0);
  assert.equal(pagePte(sim, 1, a).write, false);
  assert.equal(sim.state.folios.get(id).exclusive[0], true);
  assert.equal(sim.memset(1, a, 2, PAGE_SIZE), 'SIGSEGV');
  assert.equal(sim.mprotect(1, a, PAGE_SIZE, RW), 0);
  assert.equal(pagePte(sim, 1, a).write, true);
  clearEvents(sim);
  sim.memset(1, a, 2, PAGE_SIZE);
  assert.equal(sim.events.filter((e) => e.what !== 'mprotect').length, 0, 'no fault expected');
  assert.equal(sim.pagemap(1, a).folio, id);
});

test('mprotect(RW) leaves the PTE of a page shared after fork R/O', () => {
  const { sim, a, old } = forked();
  sim.mprotect(1, a, PAGE_SIZE, PROT_READ);
  sim.mprotect(1, a, PAGE_SIZE, RW);
  assert.equal(pagePte(sim, 1, a).write, false);
  sim.memset(1, a, 5, PAGE_SIZE);
  assert.notEqual(sim.pagemap(1, a).folio, old);
});

test('mprotect(RW) leaves zeropage and page-cache PTEs R/O in a private mapping', () => {
  const sim = mkSim();
  const a = anon(sim, PAGE_SIZE);
  sim.read(1, a, PAGE_SIZE);
  sim.mprotect(1, a, PAGE_SIZE, PROT_READ);
  sim.mprotect(1, a, PAGE_SIZE, RW);
  assert.equal(sim.pagemap(1, a).folio, -1);
  const fd = sim.memfdCreate();
  sim.fallocate(fd, PAGE_SIZE);
  const b = sim.mmap(1, { len: PAGE_SIZE, prot: PROT_READ, flags: MAP_PRIVATE, file: fd });
  sim.read(1, b, PAGE_SIZE);
  sim.mprotect(1, b, PAGE_SIZE, RW);
  assert.equal(pagePte(sim, 1, b).write, false);
});

test('softDirty=true: clear_refs between mprotect(R) and mprotect(RW) keeps the PTE R/O; the write fault then reuses', () => {
  const sim = mkSim('v6.2', { softDirty: true });
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  sim.mprotect(1, a, PAGE_SIZE, PROT_READ);
  sim.clearSoftDirty(1);
  sim.mprotect(1, a, PAGE_SIZE, RW);
  assert.equal(pagePte(sim, 1, a).write, false);
  assert.equal(pagePte(sim, 1, a).softDirty, false);
  clearEvents(sim);
  sim.memset(1, a, 2, PAGE_SIZE);
  assert.ok(has(sim, 'reuse anon page'));
  assert.equal(sim.pagemap(1, a).folio, id);
  assert.equal(pagePte(sim, 1, a).softDirty, true);
});

test('softDirty=true: clear_refs write-protects a writable PTE', () => {
  const sim = mkSim('v6.2', { softDirty: true });
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  sim.clearSoftDirty(1);
  assert.equal(pagePte(sim, 1, a).write, false);
});

// pte_is_pinned() in clear_soft_dirty (9348b73c2e1b, 5.11): a pinned page keeps its writable PTE
test('softdirty-keep-pinned (5.11+): clear_refs leaves a pinned page writable and soft-dirty; the next store takes no fault and the pin sees it', () => {
  for (const kernel of ['v5.12', 'latest']) {
    const sim = mkSim(kernel, { softDirty: true });
    const a = anon(sim, 2 * PAGE_SIZE);
    sim.memset(1, a, 1, 2 * PAGE_SIZE);
    const buf = sim.ioUringRegister(1, a, PAGE_SIZE);
    sim.clearSoftDirty(1);
    const pinned = pagePte(sim, 1, a);
    assert.deepEqual([pinned.write, pinned.softDirty], [true, true], kernel);
    const other = pagePte(sim, 1, a + PAGE_SIZE);
    assert.deepEqual([other.write, other.softDirty], [false, false], `${kernel}: the page next to it is tracked as before`);
    const id = sim.pagemap(1, a).folio;
    clearEvents(sim);
    sim.memset(1, a, 2, PAGE_SIZE);
    assert.equal(sim.events.length, 0, `${kernel}: no fault`);
    assert.equal(sim.pagemap(1, a).folio, id);
    assert.deepEqual(sim.pinContent(buf), [[2, 1]], kernel);
  }
});

test('before softdirty-keep-pinned (5.9/5.10): clear_refs write-protects a pinned page, and the next store copies it away from the pin', () => {
  const sim = mkSim('v5.9', { softDirty: true });
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  const buf = sim.ioUringRegister(1, a, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  sim.clearSoftDirty(1);
  assert.equal(pagePte(sim, 1, a).write, false);
  sim.memset(1, a, 2, PAGE_SIZE);
  assert.notEqual(sim.pagemap(1, a).folio, id, 'refcount > 1: do_wp_page copies');
  assert.deepEqual(sim.pinContent(buf), [[1, 1]], 'the pin kept the old page');
  // the same history with the switch backported
  const backport = resolveKernel('v5.9+softdirty-keep-pinned');
  assert.ok(typeof backport !== 'string', String(backport));
  const fixed = new Sim(backport, { ...SEED_MACHINE, softDirty: true }, { trace: true });
  const b = anon(fixed, PAGE_SIZE);
  fixed.memset(1, b, 1, PAGE_SIZE);
  const fbuf = fixed.ioUringRegister(1, b, PAGE_SIZE);
  fixed.clearSoftDirty(1);
  fixed.memset(1, b, 2, PAGE_SIZE);
  assert.deepEqual(fixed.pinContent(fbuf), [[2, 1]]);
});

test('softdirty-keep-pinned keeps only what pte_is_pinned() names: not a pinned PMD leaf, not a shared mapping, not a R/O PTE, not an mm that never pinned', () => {
  const sim = mkSim('latest', { softDirty: true });
  // a PMD-mapped THP, pinned: clear_soft_dirty_pmd has no such check
  const t = thpArea(sim);
  sim.memset(1, t, 1, PMD_SIZE);
  assert.ok(sim.ioUringRegister(1, t, PAGE_SIZE) > 0);
  assert.equal(pmd(sim, 1, t)?.write, true);
  // a shared memfd page, pinned: not a COW mapping
  const fd = sim.memfdCreate();
  sim.fallocate(fd, PAGE_SIZE);
  const m = sim.mmap(1, { len: PAGE_SIZE, prot: RW, flags: MAP_SHARED, file: fd });
  sim.memset(1, m, 2, PAGE_SIZE);
  assert.ok(sim.ioUringRegister(1, m, PAGE_SIZE) > 0);
  assert.equal(pagePte(sim, 1, m).write, true);
  // a pinned page mapped R/O: pte_write() is false, so it is cleaned like any other
  const r = anon(sim, PAGE_SIZE);
  sim.memset(1, r, 4, PAGE_SIZE);
  assert.ok(sim.ioUringRegister(1, r, PAGE_SIZE) > 0);
  sim.mprotect(1, r, PAGE_SIZE, PROT_READ);
  assert.equal(pagePte(sim, 1, r).softDirty, true);
  sim.clearSoftDirty(1);
  assert.equal(pagePte(sim, 1, r).softDirty, false);
  assert.equal(pmd(sim, 1, t)?.write, false);
  assert.equal(pmd(sim, 1, t)?.softDirty, false);
  assert.equal(pagePte(sim, 1, m).write, false);
  // an mm that never pinned (no MMF_HAS_PINNED), whose page holds GUP_PIN_COUNTING_BIAS FOLL_GET
  // references (vmsplice, 16 buffers a pipe): folio_maybe_dma_pinned() would say yes, but the mm
  // is never asked
  const other = mkSim('latest', { softDirty: true });
  const x = anon(other, PAGE_SIZE);
  other.memset(1, x, 3, PAGE_SIZE);
  for (let i = 0; i < GUP_PIN_COUNTING_BIAS; i++) {
    if (i % 16 === 0) other.pipe();
    assert.equal(other.vmsplice(1, other.state.pipes.keys().at(-1)!, x, PAGE_SIZE), PAGE_SIZE);
  }
  assert.ok(other.state.folios.get(other.pagemap(1, x).folio).refcount > GUP_PIN_COUNTING_BIAS);
  other.clearSoftDirty(1);
  assert.equal(pagePte(other, 1, x).write, false);
});

test('softDirty=false: clear_refs is a no-op and mprotect(RW) upgrades again', () => {
  const sim = mkSim('v6.2', { softDirty: false });
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  sim.clearSoftDirty(1);
  assert.equal(pagePte(sim, 1, a).write, true);
  assert.equal(pagePte(sim, 1, a).softDirty, true);
  sim.mprotect(1, a, PAGE_SIZE, PROT_READ);
  sim.clearSoftDirty(1);
  sim.mprotect(1, a, PAGE_SIZE, RW);
  assert.equal(pagePte(sim, 1, a).write, true);
});
