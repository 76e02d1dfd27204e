import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HPAGE_PMD_NR, MADV_PAGEOUT, PAGE_SIZE, PMD_SIZE } from '../../src/model/constants.ts';
import { anon, clearEvents, has, mkSim, pagePte, pte, thpArea } from './helpers.ts';

function swapped(machine = {}) {
  const sim = mkSim('v6.2', machine);
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 0x11, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  return { sim, a, id };
}

test('MADV_PAGEOUT of an exclusive page leaves a swap PTE with the exclusive marker and frees the folio', () => {
  const { sim, a, id } = swapped();
  assert.equal(sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT), 0);
  const p = pte(sim, 1, a);
  assert.equal(p?.t, 'swap');
  assert.equal(p?.t === 'swap' && p.exclusive, true);
  assert.equal(sim.pagemap(1, a).swapped, true);
  assert.equal(sim.pagemap(1, a).present, false);
  assert.equal(sim.state.folios.get(id), undefined);
  assert.ok(has(sim, 'swap out'));
});

test('a write fault on an exclusive swap PTE swaps in exclusive and writable, without a copy', () => {
  const { sim, a } = swapped();
  sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
  clearEvents(sim);
  sim.memset(1, a, 0x22, PAGE_SIZE);
  assert.ok(has(sim, 'swap in (exclusive)'));
  assert.ok(!has(sim, 'COW: copy'));
  const p = pagePte(sim, 1, a);
  assert.equal(p.write, true);
  const f = sim.state.folios.get(p.folio);
  assert.equal(f.exclusive[0], true);
  assert.equal(f.swapSlot, -1, 'the write fault freed the swap cache');
  assert.equal(f.refcount, 1);
  assert.deepEqual(sim.state.swap.keys(), []);
  assert.deepEqual(sim.read(1, a, PAGE_SIZE), [[0x22, 1]]);
});

test('a read fault on an exclusive swap PTE maps the page exclusive but R/O (v6.2); the next write reuses it', () => {
  const { sim, a } = swapped();
  sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
  assert.deepEqual(sim.read(1, a, PAGE_SIZE), [[0x11, 1]]);
  const p = pagePte(sim, 1, a);
  assert.equal(p.write, false);
  const id = p.folio;
  assert.equal(sim.state.folios.get(id).exclusive[0], true);
  clearEvents(sim);
  sim.memset(1, a, 0x22, PAGE_SIZE);
  assert.ok(has(sim, 'reuse anon page'));
  assert.equal(sim.pagemap(1, a).folio, id);
});

test('fork clears the swap exclusive marker; the parent write then copies and the child keeps the old data', () => {
  const { sim, a } = swapped();
  sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
  const child = sim.fork(1);
  const pp = pte(sim, 1, a);
  const cp = pte(sim, child, a);
  assert.equal(pp?.t === 'swap' && pp.exclusive, false);
  assert.equal(cp?.t === 'swap' && cp.exclusive, false);
  assert.equal(pp?.t === 'swap' && cp?.t === 'swap' && pp.slot === cp.slot, true);
  clearEvents(sim);
  sim.memset(1, a, 0x22, PAGE_SIZE);
  assert.ok(has(sim, 'swap in (shared)'));
  assert.ok(has(sim, 'COW: copy'));
  assert.deepEqual(sim.read(child, a, PAGE_SIZE), [[0x11, 1]]);
  assert.deepEqual(sim.read(1, a, PAGE_SIZE), [[0x22, 1]]);
  assert.notEqual(sim.pagemap(1, a).folio, sim.pagemap(child, a).folio);
});

test('MADV_PAGEOUT leaves a page mapped twice (after fork) alone', () => {
  const { sim, a, id } = swapped();
  sim.fork(1);
  sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
  assert.equal(sim.pagemap(1, a).folio, id);
});

test('a pinned page is not swapped out', () => {
  const { sim, a, id } = swapped();
  assert.equal(sim.gupTestStart(1, a, PAGE_SIZE, false, false), 0);
  sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
  assert.equal(sim.pagemap(1, a).present, true);
  assert.equal(sim.pagemap(1, a).folio, id);
  assert.equal(sim.state.folios.get(id).exclusive[0], true);
  assert.ok(!has(sim, 'swap out'));
});

test('a page with a FOLL_GET reference is not swapped out', () => {
  const { sim, a, id } = swapped();
  const pipe = sim.pipe();
  sim.vmsplice(1, pipe, a, PAGE_SIZE);
  sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
  assert.equal(sim.pagemap(1, a).folio, id);
});

test('without swap (swap=false) MADV_PAGEOUT leaves the page present', () => {
  const { sim, a, id } = swapped({ swap: false });
  assert.equal(sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT), 0);
  assert.equal(sim.pagemap(1, a).present, true);
  assert.equal(sim.pagemap(1, a).folio, id);
  assert.deepEqual(sim.state.swap.keys(), []);
});

test('MADV_PAGEOUT of a whole exclusive PMD THP gives 512 exclusive swap PTEs', () => {
  const sim = mkSim('v6.2');
  const a = thpArea(sim);
  sim.memset(1, a, 3, PMD_SIZE);
  const id = sim.pagemap(1, a).folio;
  sim.madvise(1, a, PMD_SIZE, MADV_PAGEOUT);
  assert.equal(sim.state.folios.get(id), undefined);
  for (const i of [0, 1, HPAGE_PMD_NR - 1]) {
    const p = pte(sim, 1, a + i * PAGE_SIZE);
    assert.equal(p?.t === 'swap' && p.exclusive, true);
  }
  assert.deepEqual(sim.read(1, a, PMD_SIZE), [[3, HPAGE_PMD_NR]]);
});

test('munmap of a swap PTE frees the swap slot', () => {
  const { sim, a } = swapped();
  sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
  assert.equal(sim.state.swap.size, 1);
  sim.munmap(1, a, PAGE_SIZE);
  assert.equal(sim.state.swap.size, 0);
});
