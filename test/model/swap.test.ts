import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HPAGE_PMD_NR, MADV_PAGEOUT, PAGE_SIZE, PMD_SIZE } from '../../src/model/constants.ts';
import { SEED_MACHINE } from '../../src/model/machine.ts';
import { resolveKernel } from '../../src/model/profile.ts';
import { Sim } from '../../src/model/sim.ts';
import { anon, clearEvents, has, mkSim, pagePte, pmd, pte, thpArea } from './helpers.ts';

function swapped(machine = {}, kernel = 'v6.2') {
  const sim = mkSim(kernel, machine);
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

test('a page with a FOLL_GET reference is unmapped into the swap cache and stays there; swap-in maps the same page', () => {
  const { sim, a, id } = swapped();
  const pipe = sim.pipe();
  sim.vmsplice(1, pipe, a, PAGE_SIZE);
  sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
  assert.equal(sim.pagemap(1, a).swapped, true);
  const f = sim.state.folios.get(id);
  assert.ok(f, 'the pipe still holds the folio');
  assert.equal(sim.state.swapcache.get(f.swapSlot), id);
  assert.equal(f.refcount, 2, 'the pipe and the swap cache');
  assert.equal(f.exclusive[0], false, 'try_to_unmap made it shared');
  assert.deepEqual(sim.read(1, a, PAGE_SIZE), [[0x11, 1]]);
  assert.equal(sim.pagemap(1, a).folio, id, 'the swap cache gave the same page back');
  // v6.2: the swap PTE carried the exclusive marker, so the write reuses it and the pipe sees it
  sim.memset(1, a, 0x22, PAGE_SIZE);
  assert.equal(sim.pagemap(1, a).folio, id);
  assert.deepEqual(sim.pipeRead(pipe, PAGE_SIZE), [[0x22, 1]]);
});

test('5.9-5.18: after that swap-out and a read swap-in, the write copies the page away from the pipe (refcount > 1)', () => {
  const sim = mkSim('v5.12');
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 0x11, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  const pipe = sim.pipe();
  sim.vmsplice(1, pipe, a, PAGE_SIZE);
  sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
  assert.equal(sim.pagemap(1, a).swapped, true);
  sim.read(1, a, PAGE_SIZE);
  assert.equal(sim.pagemap(1, a).folio, id);
  sim.memset(1, a, 0x22, PAGE_SIZE);
  assert.notEqual(sim.pagemap(1, a).folio, id);
  assert.deepEqual(sim.pipeRead(pipe, PAGE_SIZE), [[0x11, 1]]);
});

test('reclaim-skip-pinned (5.11): before it, a pinned page was unmapped into the swap cache too', () => {
  for (const [kernel, unmapped] of [
    ['v5.9', true],
    ['v5.12', false],
    ['latest', false],
  ] as const) {
    const sim = mkSim(kernel);
    const a = anon(sim, PAGE_SIZE);
    sim.memset(1, a, 0x11, PAGE_SIZE);
    const id = sim.pagemap(1, a).folio;
    const buf = sim.ioUringRegister(1, a, PAGE_SIZE);
    sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
    assert.equal(sim.pagemap(1, a).swapped, unmapped, kernel);
    if (!unmapped) continue;
    // 5.9/5.10: a read swap-in gives the pinned page back, and the write copies it (refcount > 1)
    sim.read(1, a, PAGE_SIZE);
    assert.equal(sim.pagemap(1, a).folio, id);
    sim.memset(1, a, 0x22, PAGE_SIZE);
    assert.notEqual(sim.pagemap(1, a).folio, id);
    assert.deepEqual(sim.pinContent(buf), [[0x11, 1]], 'the pin lost the page');
  }
});

test('a clean page already in the swap cache is swapped out again: its PTE points to the old slot, the folio is freed', () => {
  const { sim, a } = swapped({}, 'v6.2');
  sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
  const slot = (pte(sim, 1, a) as { slot: number }).slot;
  sim.read(1, a, PAGE_SIZE); // a read fault: mapped R/O, still in the swap cache
  const id = sim.pagemap(1, a).folio;
  assert.equal(sim.state.folios.get(id).swapSlot, slot);
  sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
  assert.equal(sim.pagemap(1, a).swapped, true);
  assert.equal((pte(sim, 1, a) as { slot: number }).slot, slot);
  assert.equal(sim.state.folios.get(id), undefined);
  assert.deepEqual(sim.read(1, a, PAGE_SIZE), [[0x11, 1]]);
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

test('MADV_PAGEOUT of part of a PMD-mapped THP: split and paged out when only this mapping holds it; left whole when another process maps it or a reference holds it', () => {
  // only this mapping: the pages in range go, the others stay present
  const sim = mkSim('latest');
  const t = thpArea(sim);
  sim.memset(1, t, 1, PMD_SIZE);
  assert.equal(sim.madvise(1, t + PMD_SIZE / 2, PMD_SIZE / 2, MADV_PAGEOUT), 0);
  assert.equal(pmd(sim, 1, t), undefined);
  assert.equal(pte(sim, 1, t)?.t, 'page');
  assert.equal(pte(sim, 1, t + PMD_SIZE / 2)?.t, 'swap');
  // a child maps the first half: the parent's PMD stays, nothing is swapped
  const shared = mkSim('latest');
  const u = thpArea(shared);
  shared.memset(1, u, 1, PMD_SIZE);
  const c = shared.fork(1);
  assert.equal(shared.munmap(c, u + PMD_SIZE / 2, PMD_SIZE / 2), 0);
  assert.equal(shared.madvise(1, u + PMD_SIZE / 2, PMD_SIZE / 2, MADV_PAGEOUT), 0);
  assert.ok(pmd(shared, 1, u), 'the PMD is not split');
  assert.equal(shared.pagemap(1, u + PMD_SIZE / 2).swapped, false);
  // a FOLL_GET reference on one page: the THP cannot be split, so it stays PMD-mapped
  const held = mkSim('latest');
  const w = thpArea(held);
  held.memset(1, w, 1, PMD_SIZE);
  held.vmsplice(1, held.pipe(), w, PAGE_SIZE);
  assert.equal(held.madvise(1, w + PMD_SIZE / 2, PAGE_SIZE, MADV_PAGEOUT), 0);
  assert.ok(pmd(held, 1, w));
});

test('swapin-map-writable (6.11): a read fault maps an exclusive swapped-in page writable and clean, unless soft-dirty tracking wants the fault', () => {
  const readBack = (kernel: string, machine = {}, clear = false) => {
    const sim = mkSim(kernel, machine);
    const a = anon(sim, PAGE_SIZE);
    sim.memset(1, a, 0x11, PAGE_SIZE);
    if (clear) sim.clearSoftDirty(1);
    sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
    sim.read(1, a, PAGE_SIZE);
    const p = pagePte(sim, 1, a);
    return [p.write, p.dirty];
  };
  assert.deepEqual(readBack('latest', { softDirty: false }), [true, false]);
  assert.deepEqual(readBack('v6.8', { softDirty: false }), [false, false], 'before 6.11: R/O');
  // soft-dirty on and the page clean since clear_refs: the write must fault to be tracked
  assert.deepEqual(readBack('latest', { softDirty: true }, true), [false, false]);
  assert.deepEqual(readBack('latest', { softDirty: true }), [true, false], 'soft-dirty set: no fault needed');
});

test('cow-free-swapcache (f4c4a3f48480, 5.14): the COW copy of a swap-cache page frees the old page from the swap cache; before, it stayed there, unmapped', () => {
  const run = (spec: string) => {
    const p = resolveKernel(spec);
    assert.ok(typeof p !== 'string', String(p));
    const sim = new Sim(p, SEED_MACHINE, { check: true });
    const a = anon(sim, PAGE_SIZE);
    sim.memset(1, a, 0x11, PAGE_SIZE);
    sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
    sim.read(1, a, PAGE_SIZE); // swap-in on a read fault: R/O, still in the swap cache
    const old = sim.pagemap(1, a).folio;
    sim.memset(1, a, 0x22, PAGE_SIZE); // refcount 2 (mapping + swap cache): 5.9-5.17 copy
    assert.notEqual(sim.pagemap(1, a).folio, old, spec);
    return sim.state.folios.get(old) !== undefined;
  };
  assert.equal(run('v5.12'), true, 'v5.12 (5.12-5.13): the old page stays in the swap cache');
  assert.equal(run('v5.12+cow-free-swapcache'), false, '5.14-5.17');
});
