import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EAGAIN, HPAGE_PMD_NR, MADV_COLLAPSE, MADV_DONTNEED, PAGE_SIZE, PMD_SIZE, PROT_READ } from '../../src/model/constants.ts';
import { anon, clearEvents, has, mkSim, pagePte, pmd, RW, thpArea } from './helpers.ts';

function thp(kernel: 'v6.1' | 'v6.2' = 'v6.2') {
  const sim = mkSim(kernel);
  const a = thpArea(sim);
  sim.memset(1, a, 1, PMD_SIZE);
  const id = sim.pagemap(1, a).folio;
  assert.equal(sim.state.folios.get(id).nr, HPAGE_PMD_NR);
  return { sim, a, id };
}

test('fork shares a PMD THP R/O in both processes and clears the head exclusive bit', () => {
  const { sim, a, id } = thp();
  const child = sim.fork(1);
  assert.equal(pmd(sim, 1, a)?.write, false);
  assert.equal(pmd(sim, child, a)?.write, false);
  assert.equal(pmd(sim, child, a)?.folio, id);
  const f = sim.state.folios.get(id);
  assert.equal(f.exclusive[0], false);
  assert.equal(f.entireMapcount, 2);
  assert.equal(f.refcount, 2);
});

test('a write to a PMD THP shared with a live child splits the PMD and copies one 4 KiB page', () => {
  const { sim, a, id } = thp();
  const child = sim.fork(1);
  clearEvents(sim);
  sim.memset(1, a + 3 * PAGE_SIZE, 2, PAGE_SIZE);
  assert.ok(has(sim, 'split PMD', 1));
  assert.ok(has(sim, 'COW: copy', 1));
  assert.ok(!has(sim, 'reuse THP'));
  assert.equal(pmd(sim, 1, a), undefined);
  const neu = sim.pagemap(1, a + 3 * PAGE_SIZE).folio;
  assert.notEqual(neu, id);
  assert.equal(sim.state.folios.get(neu).nr, 1);
  // the rest stays PTE-mapped from the shared THP, R/O
  assert.equal(sim.pagemap(1, a).folio, id);
  assert.equal(sim.pagemap(1, a + 4 * PAGE_SIZE).folio, id);
  assert.equal(pagePte(sim, 1, a).write, false);
  // the child still maps the THP with its PMD and sees the old content
  assert.equal(pmd(sim, child, a)?.folio, id);
  assert.deepEqual(sim.read(child, a, PMD_SIZE), [[1, HPAGE_PMD_NR]]);
  assert.deepEqual(sim.read(1, a, PMD_SIZE), [
    [1, 3],
    [2, 1],
    [1, HPAGE_PMD_NR - 4],
  ]);
  const f = sim.state.folios.get(id);
  assert.equal(f.entireMapcount, 1);
  assert.equal(f.mapcount[3], 0);
  assert.equal(f.mapcount[4], 1);
});

test('after the child exits, the parent write reuses the whole THP', () => {
  const { sim, a, id } = thp();
  const child = sim.fork(1);
  sim.exit(child, 0);
  clearEvents(sim);
  sim.memset(1, a + PAGE_SIZE, 2, PAGE_SIZE);
  assert.ok(has(sim, 'reuse THP'));
  assert.ok(!has(sim, 'split PMD'));
  assert.equal(pmd(sim, 1, a)?.folio, id);
  assert.equal(pmd(sim, 1, a)?.write, true);
  assert.equal(sim.state.folios.get(id).exclusive[0], true);
});

test('an extra FOLL_GET reference on a shared THP forces the split+copy even with one mapping left', () => {
  const { sim, a, id } = thp();
  const child = sim.fork(1);
  const pipe = sim.pipe();
  sim.vmsplice(child, pipe, a, PAGE_SIZE);
  sim.exit(child, 0);
  clearEvents(sim);
  sim.memset(1, a, 2, PAGE_SIZE);
  assert.ok(has(sim, 'split PMD'));
  assert.notEqual(sim.pagemap(1, a).folio, id);
  assert.deepEqual(sim.pipeRead(pipe, PAGE_SIZE), [[1, 1]]);
});

test('mprotect of one subpage PTE-maps the THP (exclusive subpages, only that PTE R/O)', () => {
  const { sim, a, id } = thp();
  assert.equal(sim.mprotect(1, a + PAGE_SIZE, PAGE_SIZE, PROT_READ), 0);
  assert.ok(has(sim, 'split PMD'));
  assert.equal(pmd(sim, 1, a), undefined);
  assert.equal(sim.pagemap(1, a + PAGE_SIZE).folio, id);
  assert.equal(pagePte(sim, 1, a + PAGE_SIZE).write, false);
  assert.equal(pagePte(sim, 1, a).write, true);
  assert.equal(pagePte(sim, 1, a + 2 * PAGE_SIZE).write, true);
  const f = sim.state.folios.get(id);
  assert.equal(f.entireMapcount, 0);
  assert.ok(f.mapcount.every((m) => m === 1));
  assert.ok(f.exclusive.every((x) => x));
  assert.equal(f.refcount, HPAGE_PMD_NR);
  assert.equal(sim.state.procs.get(1).mm.vmas.length, 3);
});

test('partial munmap splits the PMD and drops only the unmapped page', () => {
  const { sim, a, id } = thp();
  assert.equal(sim.munmap(1, a, PAGE_SIZE), 0);
  assert.equal(pmd(sim, 1, a + PAGE_SIZE), undefined);
  assert.equal(sim.pagemap(1, a).present, false);
  assert.equal(sim.pagemap(1, a + PAGE_SIZE).folio, id);
  assert.equal(sim.state.folios.get(id).mapcount[0], 0);
  assert.equal(sim.state.folios.get(id).refcount, HPAGE_PMD_NR - 1);
});

test('partial MADV_DONTNEED splits; a full-PMD MADV_DONTNEED frees the THP', () => {
  const { sim, a, id } = thp();
  assert.equal(sim.madvise(1, a + 10 * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED), 0);
  assert.ok(has(sim, 'split PMD'));
  assert.equal(sim.pagemap(1, a + 10 * PAGE_SIZE).present, false);
  assert.equal(sim.pagemap(1, a + 11 * PAGE_SIZE).folio, id);
  // re-reading the dropped page gives the zeropage
  assert.deepEqual(sim.read(1, a + 10 * PAGE_SIZE, PAGE_SIZE), [[0, 1]]);

  const t = thp();
  assert.equal(t.sim.madvise(1, t.a, PMD_SIZE, MADV_DONTNEED), 0);
  assert.ok(!has(t.sim, 'split PMD'));
  assert.equal(t.sim.state.folios.get(t.id), undefined);
  assert.equal(pmd(t.sim, 1, t.a), undefined);
});

// ---------------------------------------------------------------------------------------------
// MADV_COLLAPSE

function pteMappedThp() {
  const t = thp();
  t.sim.memset(1, t.a + PAGE_SIZE, 5, PAGE_SIZE);
  t.sim.mprotect(1, t.a + PAGE_SIZE, PAGE_SIZE, PROT_READ);
  t.sim.mprotect(1, t.a + PAGE_SIZE, PAGE_SIZE, RW);
  assert.equal(pmd(t.sim, 1, t.a), undefined);
  assert.equal(t.sim.state.procs.get(1).mm.vmas.length, 1, 'VMAs merged again');
  return t;
}

test('MADV_COLLAPSE of a PTE-mapped THP creates a new exclusive PMD-mapped THP with the same content', () => {
  const { sim, a, id } = pteMappedThp();
  clearEvents(sim);
  assert.equal(sim.madvise(1, a, PMD_SIZE, MADV_COLLAPSE), 0);
  assert.ok(has(sim, 'collapse into new THP'));
  const leaf = pmd(sim, 1, a);
  assert.equal(leaf?.t, 'thp');
  assert.equal(leaf?.write, true);
  assert.notEqual(leaf?.folio, id);
  const n = sim.state.folios.get(leaf!.folio);
  assert.equal(n.nr, HPAGE_PMD_NR);
  assert.equal(n.exclusive[0], true);
  assert.equal(n.entireMapcount, 1);
  assert.equal(sim.state.folios.get(id), undefined, 'the old THP is freed');
  assert.deepEqual(sim.read(1, a, PMD_SIZE), [
    [1, 1],
    [5, 1],
    [1, HPAGE_PMD_NR - 2],
  ]);
});

test('MADV_COLLAPSE fails with EAGAIN when a page has an extra reference, leaving the PTEs alone', () => {
  const { sim, a, id } = pteMappedThp();
  const pipe = sim.pipe();
  sim.vmsplice(1, pipe, a + 7 * PAGE_SIZE, PAGE_SIZE);
  assert.equal(sim.madvise(1, a, PMD_SIZE, MADV_COLLAPSE), -EAGAIN);
  assert.equal(pmd(sim, 1, a), undefined);
  assert.equal(sim.pagemap(1, a).folio, id);
});

test('MADV_COLLAPSE of small pages and holes (no MADV_HUGEPAGE needed) builds a THP', () => {
  const sim = mkSim('v6.2');
  const a = anon(sim, PMD_SIZE);
  sim.memset(1, a + 2 * PAGE_SIZE, 9, PAGE_SIZE);
  sim.read(1, a, PAGE_SIZE);
  assert.equal(sim.madvise(1, a, PMD_SIZE, MADV_COLLAPSE), 0);
  assert.equal(pmd(sim, 1, a)?.t, 'thp');
  assert.deepEqual(sim.read(1, a, PMD_SIZE), [
    [0, 2],
    [9, 1],
    [0, HPAGE_PMD_NR - 3],
  ]);
  assert.equal(sim.state.folios.size, 1);
});

test('mprotect-upgrade-anon-pmd (6.2): mprotect(RW) maps an exclusive PMD-mapped THP writable at once; not a shared one, not before 6.2, not the huge zeropage', () => {
  const upgraded = (kernel: string, fork: boolean) => {
    const sim = mkSim(kernel, { softDirty: false });
    const t = thpArea(sim);
    sim.memset(1, t, 1, PMD_SIZE);
    if (fork) sim.fork(1);
    sim.mprotect(1, t, PMD_SIZE, PROT_READ);
    sim.mprotect(1, t, PMD_SIZE, RW);
    assert.ok(pmd(sim, 1, t), `${kernel}: still PMD-mapped`);
    return pmd(sim, 1, t)!.write;
  };
  assert.equal(upgraded('v6.2', false), true);
  assert.equal(upgraded('latest', false), true);
  assert.equal(upgraded('v6.1', false), false, 'before 6.2 the write fault does it');
  assert.equal(upgraded('latest', true), false, 'shared with a child: not exclusive');
  const z = mkSim('latest', { softDirty: false });
  const h = thpArea(z);
  z.read(1, h, PAGE_SIZE);
  z.mprotect(1, h, PMD_SIZE, PROT_READ);
  z.mprotect(1, h, PMD_SIZE, RW);
  assert.equal(pmd(z, 1, h)?.t, 'hugezero');
  assert.equal(pmd(z, 1, h)?.write, false);
});
