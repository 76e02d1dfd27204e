import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HPAGE_PMD_NR, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PMD_SIZE, PROT_READ } from '../../src/model/constants.ts';
import { HUGE_ZERO_FOLIO, ZERO_FOLIO } from '../../src/model/types.ts';
import { anon, clearEvents, has, mkSim, pagePte, pmd, pte, RW, thpArea } from './helpers.ts';

test('read fault on private anon maps the shared zeropage, without a folio or a reference', () => {
  const sim = mkSim();
  const a = anon(sim, 4 * PAGE_SIZE);
  assert.deepEqual(sim.read(1, a, PAGE_SIZE), [[0, 1]]);
  const pm = sim.pagemap(1, a);
  assert.equal(pm.present, true);
  assert.equal(pm.folio, ZERO_FOLIO);
  assert.equal(pte(sim, 1, a)?.t, 'zero');
  assert.equal(sim.state.folios.size, 0);
  assert.equal(sim.state.zeroPageRefs, 0);
  assert.ok(has(sim, 'map shared zeropage'));
  // only the touched page is mapped
  assert.equal(sim.pagemap(1, a + PAGE_SIZE).present, false);
});

test('write fault on private anon allocates an exclusive writable page', () => {
  const sim = mkSim();
  const a = anon(sim, PAGE_SIZE);
  assert.equal(sim.memset(1, a, 7, PAGE_SIZE), null);
  const id = sim.pagemap(1, a).folio;
  assert.ok(id >= 0);
  const f = sim.state.folios.get(id);
  assert.equal(f.kind, 'anon');
  assert.equal(f.nr, 1);
  assert.equal(f.exclusive[0], true);
  assert.equal(f.refcount, 1);
  assert.deepEqual(f.mapcount, [1]);
  assert.equal(pagePte(sim, 1, a).write, true);
  assert.equal(sim.pagemap(1, a).exclusivelyMapped, true);
  assert.deepEqual(sim.read(1, a, PAGE_SIZE), [[7, 1]]);
  assert.ok(has(sim, 'new anon page'));
});

test('write after a read replaces the shared zeropage by a zeroed exclusive copy', () => {
  const sim = mkSim();
  const a = anon(sim, PAGE_SIZE);
  sim.read(1, a, PAGE_SIZE);
  clearEvents(sim);
  sim.memset(1, a, 3, PAGE_SIZE);
  const e = sim.events.find((x) => x.what === 'COW: copy');
  assert.ok(e, 'expected a COW copy of the zeropage');
  assert.match(e.detail ?? '', /shared zeropage/);
  const id = sim.pagemap(1, a).folio;
  assert.ok(id >= 0);
  assert.equal(sim.state.folios.get(id).exclusive[0], true);
  assert.equal(pagePte(sim, 1, a).write, true);
});

test('store to a PROT_READ mapping is SIGSEGV and maps nothing writable', () => {
  const sim = mkSim();
  const a = anon(sim, PAGE_SIZE, PROT_READ);
  assert.equal(sim.memset(1, a, 1, PAGE_SIZE), 'SIGSEGV');
  assert.equal(sim.state.folios.size, 0);
});

test('read fault in a MADV_HUGEPAGE range maps the huge zeropage (THP enabled=madvise)', () => {
  const sim = mkSim();
  const a = thpArea(sim);
  assert.deepEqual(sim.read(1, a, PMD_SIZE), [[0, HPAGE_PMD_NR]]);
  assert.equal(sim.pagemap(1, a).folio, HUGE_ZERO_FOLIO);
  assert.equal(sim.pagemap(1, a + 100 * PAGE_SIZE).folio, HUGE_ZERO_FOLIO);
  assert.equal(sim.pagemap(1, a + 100 * PAGE_SIZE).page, 100);
  assert.equal(pmd(sim, 1, a)?.t, 'hugezero');
  assert.equal(pmd(sim, 1, a)?.write, false);
  assert.equal(sim.state.hugeZeroRefs, 1);
  assert.equal(sim.state.procs.get(1).mm.hugeZeroRef, true);
  assert.ok(has(sim, 'map huge zeropage'));
});

test('write fault in an untouched MADV_HUGEPAGE range allocates an exclusive PMD THP', () => {
  const sim = mkSim();
  const a = thpArea(sim);
  sim.memset(1, a + 5 * PAGE_SIZE, 9, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  assert.ok(id >= 0);
  const f = sim.state.folios.get(id);
  assert.equal(f.nr, HPAGE_PMD_NR);
  assert.equal(f.entireMapcount, 1);
  assert.equal(f.refcount, 1);
  assert.equal(f.exclusive[0], true);
  const leaf = pmd(sim, 1, a);
  assert.equal(leaf?.t, 'thp');
  assert.equal(leaf?.write, true);
  assert.equal(sim.pagemap(1, a + 5 * PAGE_SIZE).folio, id);
  assert.deepEqual(sim.read(1, a, PMD_SIZE), [
    [0, 5],
    [9, 1],
    [0, HPAGE_PMD_NR - 6],
  ]);
  assert.ok(has(sim, 'new THP'));
});

test('v6.2: a write to the huge zeropage splits the PMD and copies one 4 KiB page', () => {
  const sim = mkSim('v6.2');
  const a = thpArea(sim);
  sim.read(1, a, PAGE_SIZE);
  clearEvents(sim);
  sim.memset(1, a + PAGE_SIZE, 4, PAGE_SIZE);
  assert.ok(has(sim, 'split PMD'));
  assert.equal(pmd(sim, 1, a), undefined);
  const id = sim.pagemap(1, a + PAGE_SIZE).folio;
  assert.ok(id >= 0);
  assert.equal(sim.state.folios.get(id).nr, 1);
  assert.equal(sim.pagemap(1, a).folio, ZERO_FOLIO);
  assert.equal(sim.pagemap(1, a + 2 * PAGE_SIZE).folio, ZERO_FOLIO);
});

test('without MADV_HUGEPAGE (enabled=madvise) faults are 4 KiB; enabled=always gives a THP without it', () => {
  const sim = mkSim();
  const a = anon(sim, PMD_SIZE);
  assert.equal(a % PMD_SIZE, 0);
  sim.memset(1, a, 1, PAGE_SIZE);
  assert.equal(sim.state.folios.get(sim.pagemap(1, a).folio).nr, 1);
  assert.equal(pmd(sim, 1, a), undefined);

  const always = mkSim('v6.2', { thpEnabled: 'always' });
  const b = anon(always, PMD_SIZE);
  always.memset(1, b, 1, PAGE_SIZE);
  assert.equal(always.state.folios.get(always.pagemap(1, b).folio).nr, HPAGE_PMD_NR);
});

test('enabled=never, or no PMD THP, disables THP even with MADV_HUGEPAGE', () => {
  for (const m of [{ thpEnabled: 'never' as const }, { thp: false }]) {
    const sim = mkSim('v6.2', m);
    const a = thpArea(sim);
    sim.read(1, a, PAGE_SIZE);
    assert.equal(sim.pagemap(1, a).folio, ZERO_FOLIO, JSON.stringify(m));
    sim.memset(1, a + PAGE_SIZE, 1, PAGE_SIZE);
    assert.equal(sim.state.folios.get(sim.pagemap(1, a + PAGE_SIZE).folio).nr, 1);
  }
});

test('use_zero_page=0: a read fault in a THP range allocates a THP', () => {
  const sim = mkSim('v6.2', { hugeZeroPage: false });
  const a = thpArea(sim);
  sim.read(1, a, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  assert.ok(id >= 0);
  assert.equal(sim.state.folios.get(id).nr, HPAGE_PMD_NR);
  assert.equal(sim.state.hugeZeroRefs, 0);
});

test('private file mapping: a read maps the page-cache page R/O, a write makes an anon copy and leaves the file alone', () => {
  const sim = mkSim();
  const fd = sim.memfdCreate();
  sim.pwrite(fd, 0, PAGE_SIZE, 5);
  const a = sim.mmap(1, { len: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE, file: fd });
  assert.deepEqual(sim.read(1, a, PAGE_SIZE), [[5, 1]]);
  const cache = sim.state.files.get(fd).cache.get(0);
  assert.equal(sim.pagemap(1, a).folio, cache);
  assert.equal(sim.pagemap(1, a).file, true);
  assert.equal(pagePte(sim, 1, a).write, false);
  sim.memset(1, a, 6, PAGE_SIZE);
  const id = sim.pagemap(1, a).folio;
  assert.notEqual(id, cache);
  assert.equal(sim.state.folios.get(id).kind, 'anon');
  assert.equal(sim.state.folios.get(id).exclusive[0], true);
  assert.deepEqual(sim.pread(fd, 0, PAGE_SIZE), [[5, 1]]);
  assert.deepEqual(sim.read(1, a, PAGE_SIZE), [[6, 1]]);
  // the page cache still holds its page, unmapped
  assert.equal(sim.state.folios.get(cache).refcount, 1);
});

test('write fault on an untouched private file page is do_cow_fault (the file is not written)', () => {
  const sim = mkSim();
  const fd = sim.memfdCreate();
  sim.pwrite(fd, 0, PAGE_SIZE, 5);
  const a = sim.mmap(1, { len: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE, file: fd });
  sim.memset(1, a, 8, PAGE_SIZE);
  assert.ok(has(sim, 'COW of page-cache page (do_cow_fault)'));
  assert.notEqual(sim.pagemap(1, a).folio, sim.state.files.get(fd).cache.get(0));
  assert.deepEqual(sim.pread(fd, 0, PAGE_SIZE), [[5, 1]]);
});

test('shared memfd mapping: a write goes to the page cache', () => {
  const sim = mkSim();
  const fd = sim.memfdCreate();
  sim.fallocate(fd, PAGE_SIZE);
  const a = sim.mmap(1, { len: PAGE_SIZE, prot: RW, flags: MAP_SHARED, file: fd });
  sim.memset(1, a, 0x42, PAGE_SIZE);
  assert.equal(sim.pagemap(1, a).folio, sim.state.files.get(fd).cache.get(0));
  assert.deepEqual(sim.pread(fd, 0, PAGE_SIZE), [[0x42, 1]]);
});

test('access beyond the end of a file mapping is SIGBUS', () => {
  const sim = mkSim();
  const fd = sim.memfdCreate();
  sim.fallocate(fd, PAGE_SIZE);
  const a = sim.mmap(1, { len: 2 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE, file: fd });
  assert.equal(sim.read(1, a + PAGE_SIZE, PAGE_SIZE), 'SIGBUS');
});

test('zeroPage=false (mm_forbids_zeropage, e.g. pvm_no_zero_page=1): read faults allocate writable exclusive pages, THP too', () => {
  const sim = mkSim('v6.2', { zeroPage: false });
  const a = anon(sim, PAGE_SIZE);
  sim.read(1, a, PAGE_SIZE);
  const p = pagePte(sim, 1, a);
  assert.equal(p.write, true);
  assert.equal(sim.state.folios.get(p.folio).exclusive[0], true);
  const t = thpArea(sim);
  sim.read(1, t, PAGE_SIZE);
  assert.equal(pmd(sim, 1, t)?.t, 'thp');
  // with the zeropage allowed, the same reads map the zeropages
  const z = mkSim('v6.2');
  const b = anon(z, PAGE_SIZE);
  z.read(1, b, PAGE_SIZE);
  assert.equal(pte(z, 1, b)?.t, 'zero');
  const u = thpArea(z);
  z.read(1, u, PAGE_SIZE);
  assert.equal(pmd(z, 1, u)?.t, 'hugezero');
});

test('fault-around: a read fault of a file mapping also maps the uptodate cached pages of its 16-page window, inside the VMA, R/O in a private mapping', () => {
  const sim = mkSim('latest');
  const fd = sim.memfdCreate();
  sim.pwrite(fd, 0, 32 * PAGE_SIZE, 3);
  const a = sim.mmap(1, { len: 32 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE, file: fd });
  sim.read(1, a + 5 * PAGE_SIZE, PAGE_SIZE);
  for (let i = 0; i < 32; i++) assert.equal(pte(sim, 1, a + i * PAGE_SIZE)?.t === 'page', i < 16, `page ${i}`);
  const p = pagePte(sim, 1, a + 9 * PAGE_SIZE);
  assert.equal(p.write, false);
  assert.equal(sim.state.folios.get(p.folio).refcount, 2, 'the page cache and this mapping');
  // the window is clamped to the VMA: a 4-page mapping at file page 4 maps those 4 only
  const b = sim.mmap(1, { len: 4 * PAGE_SIZE, prot: PROT_READ, flags: MAP_SHARED, file: fd, offset: 4 * PAGE_SIZE });
  sim.read(1, b + PAGE_SIZE, PAGE_SIZE);
  for (let i = 0; i < 4; i++) assert.equal(pte(sim, 1, b + i * PAGE_SIZE)?.t, 'page');
  assert.deepEqual(sim.read(1, b, PAGE_SIZE), [[3, 1]]);
});

test('fault-around skips shmem pages fallocate() left !uptodate; the faulted page becomes uptodate', () => {
  const sim = mkSim('latest');
  const fd = sim.memfdCreate();
  sim.fallocate(fd, 4 * PAGE_SIZE);
  const a = sim.mmap(1, { len: 4 * PAGE_SIZE, prot: PROT_READ, flags: MAP_SHARED, file: fd });
  sim.read(1, a, PAGE_SIZE);
  assert.equal(pte(sim, 1, a + PAGE_SIZE), undefined);
  assert.equal(sim.state.folios.get(pagePte(sim, 1, a).folio).uptodate, true);
  // written pages are uptodate: a second mapping's fault maps them around
  sim.pwrite(fd, 2 * PAGE_SIZE, PAGE_SIZE, 7);
  const b = sim.mmap(1, { len: 4 * PAGE_SIZE, prot: PROT_READ, flags: MAP_SHARED, file: fd });
  sim.read(1, b + 3 * PAGE_SIZE, PAGE_SIZE);
  assert.equal(pte(sim, 1, b)?.t, 'page', 'page 0, uptodate since its fault');
  assert.equal(pte(sim, 1, b + PAGE_SIZE), undefined, 'page 1, never written nor faulted');
  assert.equal(pte(sim, 1, b + 2 * PAGE_SIZE)?.t, 'page', 'page 2, written');
});
