import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAP_PRIVATE, PAGE_SIZE, PROT_READ } from '../../src/model/constants.ts';
import { anon, clearEvents, has, mkSim, pagePte, RW } from './helpers.ts';

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
