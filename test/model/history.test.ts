/**
 * One test per history switch (src/model/profile.ts): the same steps on the profile before and
 * after the commit, or on a profile with only that switch flipped, and the difference the commit
 * made. docs/research/history.md has the sources.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EFAULT,
  MADV_DONTNEED,
  MADV_NOHUGEPAGE,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_READ,
} from '../../src/model/constants.ts';
import { SEED_MACHINE } from '../../src/model/machine.ts';
import type { SwitchName } from '../../src/model/profile.ts';
import { Sim } from '../../src/model/sim.ts';
import { anon, folioAt, hugetlbAnon, mkSim, pagePte, pmd, profile, pte, RW, thpArea } from './helpers.ts';

/** A profile with some switches flipped. */
function simWith(base: string, flips: Partial<Record<SwitchName, boolean>>): Sim {
  const p = profile(base);
  return new Sim({ ...p, name: `${base}*`, switches: { ...p.switches, ...flips } }, SEED_MACHINE, { trace: true });
}

test('thp-cow-split (3917c80280c9, 5.8): a write to a shared THP splits and copies 4 KiB; before, a new THP was copied', () => {
  for (const [kernel, split] of [
    ['v5.7', false],
    ['v5.8', true],
  ] as const) {
    const sim = mkSim(kernel);
    const t = thpArea(sim);
    sim.memset(1, t, 1, PMD_SIZE);
    const old = folioAt(sim, 1, t);
    sim.fork(1);
    sim.memset(1, t + PAGE_SIZE, 2, PAGE_SIZE);
    if (split) {
      assert.equal(pmd(sim, 1, t), undefined, kernel);
      assert.notEqual(folioAt(sim, 1, t + PAGE_SIZE), old);
      assert.equal(folioAt(sim, 1, t), old, `${kernel}: the rest still maps the old THP`);
    } else {
      assert.equal(pmd(sim, 1, t)?.t, 'thp', kernel);
      assert.notEqual(folioAt(sim, 1, t), old, `${kernel}: a whole new THP`);
      assert.deepEqual(sim.read(1, t, PMD_SIZE), [
        [1, 1],
        [2, 1],
        [1, 510],
      ]);
    }
  }
  // the huge zeropage: a zeroed THP before 5.8, a split after
  for (const [kernel, thp] of [
    ['v5.7', true],
    ['v5.8', false],
  ] as const) {
    const sim = mkSim(kernel);
    const t = thpArea(sim);
    sim.read(1, t, PAGE_SIZE);
    assert.equal(pmd(sim, 1, t)?.t, 'hugezero');
    sim.memset(1, t, 3, PAGE_SIZE);
    assert.equal(pmd(sim, 1, t)?.t === 'thp', thp, kernel);
  }
});

test('gup-force-cow (17839856fd58, 5.8 only): a R/O pin of untouched anon memory pins a new anon page, not the zeropage', () => {
  for (const [kernel, forced] of [
    ['v5.7', false],
    ['v5.8', true],
    ['v5.9', false],
  ] as const) {
    const sim = mkSim(kernel);
    const a = anon(sim, PAGE_SIZE);
    sim.read(1, a, PAGE_SIZE);
    assert.equal(sim.gupTestStart(1, a, PAGE_SIZE, false, true), 0);
    assert.equal(pte(sim, 1, a)?.t, forced ? 'page' : 'zero', kernel);
    assert.equal(sim.state.zeroPageRefs > 0, !forced, kernel);
  }
  // it applies to FOLL_GET too: vmsplice in a child breaks COW in the child (no CVE-2020-29374 leak)
  const sim = mkSim('v5.8');
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  const c = sim.fork(1);
  const p = sim.pipe();
  sim.vmsplice(c, p, a, PAGE_SIZE);
  assert.notEqual(folioAt(sim, c, a), folioAt(sim, 1, a));
});

/** CVE-2020-29374: the child vmsplices, unmaps; the parent writes; the pipe shows the new data? */
function vmspliceLeak(sim: Sim): boolean {
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  const c = sim.fork(1);
  const p = sim.pipe();
  sim.vmsplice(c, p, a, PAGE_SIZE);
  sim.munmap(c, a, PAGE_SIZE);
  sim.memset(1, a, 2, PAGE_SIZE);
  const got = sim.pipeRead(p, PAGE_SIZE);
  return JSON.stringify(got) === JSON.stringify([[2, 1]]);
}

test('wp-reuse-refcount (09854ba94c6a, 5.9): reuse needs refcount 1; before, reuse_swap_page counted mappings only (CVE-2020-29374)', () => {
  assert.equal(vmspliceLeak(mkSim('v5.7')), true);
  assert.equal(vmspliceLeak(mkSim('v5.9')), false);
  // and a page still in the swap cache is never reused by do_wp_page in 5.9-5.17
  for (const [kernel, reused] of [
    ['v5.7', true],
    ['v5.9', false],
    ['v5.18', true],
  ] as const) {
    const sim = mkSim(kernel);
    const a = anon(sim, PAGE_SIZE);
    sim.memset(1, a, 1, PAGE_SIZE);
    sim.madvise(1, a, PAGE_SIZE, 21); // MADV_PAGEOUT
    sim.read(1, a, PAGE_SIZE); // swap-in by a read: R/O, still in the swap cache
    const f = folioAt(sim, 1, a);
    assert.ok(sim.state.folios.get(f).swapSlot >= 0, kernel);
    sim.memset(1, a, 2, PAGE_SIZE);
    assert.equal(folioAt(sim, 1, a) === f, reused, kernel);
  }
});

test('fork-copy-pinned (70e806e4e645, 5.9): fork gives the child a copy of a pinned page; before, it was shared', () => {
  for (const on of [false, true]) {
    const sim = simWith('v5.9', { 'fork-copy-pinned': on, 'fork-copy-pinned-hugetlb': false });
    const a = anon(sim, PAGE_SIZE);
    sim.memset(1, a, 1, PAGE_SIZE);
    assert.ok(sim.ioUringRegister(1, a, PAGE_SIZE) >= 0);
    const c = sim.fork(1);
    assert.equal(folioAt(sim, c, a) !== folioAt(sim, 1, a), on);
    // the parent's next write: with the copy it keeps the pinned page, without it gets a new one
    const pinned = folioAt(sim, 1, a);
    sim.memset(1, a, 2, PAGE_SIZE);
    assert.equal(folioAt(sim, 1, a) === pinned, on);
  }
});

test('fork-copy-pinned-hugetlb (4eae4efa2c29, 5.12): the same for hugetlb pages', () => {
  for (const [kernel, copied] of [
    ['v5.9', false],
    ['v5.12', true],
  ] as const) {
    const sim = mkSim(kernel);
    const h = hugetlbAnon(sim);
    sim.memset(1, h, 1, PAGE_SIZE);
    assert.ok(sim.ioUringRegister(1, h, PAGE_SIZE) >= 0);
    const c = sim.fork(1);
    assert.equal(folioAt(sim, c, h) !== folioAt(sim, 1, h), copied, kernel);
  }
});

test('no-reuse-swap-page (c145e0b47c77, 5.18): the write fault on a swap PTE no longer reuses a page the pipe holds', () => {
  for (const [kernel, leak] of [
    ['v5.12', true],
    ['v5.18', false],
  ] as const) {
    const sim = mkSim(kernel);
    const a = anon(sim, PAGE_SIZE);
    sim.memset(1, a, 1, PAGE_SIZE);
    sim.madvise(1, a, PAGE_SIZE, 21);
    const c = sim.fork(1);
    const p = sim.pipe();
    sim.vmsplice(c, p, a, PAGE_SIZE);
    sim.munmap(c, a, PAGE_SIZE);
    sim.memset(1, a, 2, PAGE_SIZE); // do_swap_page, write fault
    assert.equal(JSON.stringify(sim.pipeRead(p, PAGE_SIZE)) === '[[2,1]]', leak, kernel);
  }
  // and a pinned PMD THP is no longer reused by mapcount (3bff7e3f1f16): 5.18's PMD regression
  for (const [kernel, kept] of [
    ['v5.12', true],
    ['v5.18', false],
  ] as const) {
    const sim = mkSim(kernel);
    const t = thpArea(sim);
    sim.memset(1, t, 1, PMD_SIZE);
    sim.mprotect(1, t, PMD_SIZE, PROT_READ);
    sim.gupTestStart(1, t, PMD_SIZE, false, false);
    sim.mprotect(1, t, PMD_SIZE, RW);
    sim.memset(1, t, 2, PMD_SIZE);
    assert.equal(JSON.stringify(sim.gupTestRead(1)) === JSON.stringify([[2, 512]]), kept, kernel);
  }
});

test('anon-exclusive (6c287605fd56, 5.19): an exclusive page is reused whatever its refcount, so a R/W pin survives mprotect', () => {
  for (const [kernel, kept] of [
    ['v5.18', false],
    ['v5.19', true],
  ] as const) {
    const sim = mkSim(kernel);
    const a = anon(sim, PAGE_SIZE);
    sim.memset(1, a, 1, PAGE_SIZE);
    assert.ok(sim.ioUringRegister(1, a, PAGE_SIZE) >= 0);
    const pinned = folioAt(sim, 1, a);
    sim.mprotect(1, a, PAGE_SIZE, PROT_READ);
    sim.mprotect(1, a, PAGE_SIZE, RW);
    sim.memset(1, a, 2, PAGE_SIZE);
    assert.equal(folioAt(sim, 1, a) === pinned, kept, kernel);
  }
});

test('gup-unshare-anon (a7f226604170, 5.19): a R/O pin of a shared anon page unshares first', () => {
  for (const on of [false, true]) {
    const sim = simWith('v5.19', { 'gup-unshare-anon': on, 'mprotect-upgrade-anon': false });
    const a = anon(sim, PAGE_SIZE);
    sim.memset(1, a, 1, PAGE_SIZE);
    const c = sim.fork(1);
    const shared = folioAt(sim, 1, a);
    sim.gupTestStart(1, a, PAGE_SIZE, false, false);
    assert.equal(folioAt(sim, 1, a) !== shared, on);
    assert.equal(folioAt(sim, c, a), shared);
    sim.memset(1, a, 2, PAGE_SIZE);
    assert.equal(JSON.stringify(sim.gupTestRead(1)) === '[[2,1]]', on, 'the pin sees the write only when it unshared');
  }
});

test('mprotect-upgrade-anon (64fe24a3e05e, 6.0): mprotect(RW) maps an exclusive anon page writable at once', () => {
  for (const [kernel, writable] of [
    ['v5.19', false],
    ['v6.1', true],
  ] as const) {
    const sim = mkSim(kernel);
    const a = anon(sim, PAGE_SIZE);
    sim.memset(1, a, 1, PAGE_SIZE);
    sim.mprotect(1, a, PAGE_SIZE, PROT_READ);
    sim.mprotect(1, a, PAGE_SIZE, RW);
    assert.equal(pagePte(sim, 1, a).write, writable, kernel);
  }
});

test('zeropage-pin-noref (c8070b787519, 6.5): a pin of the shared zeropage leaves its refcount alone', () => {
  for (const on of [false, true]) {
    const sim = simWith('v6.1', { 'zeropage-pin-noref': on });
    const a = anon(sim, 2 * PAGE_SIZE);
    sim.read(1, a, 2 * PAGE_SIZE);
    sim.gupTestStart(1, a, 2 * PAGE_SIZE, false, false); // v6.1: pins the zeropage itself
    assert.equal(pte(sim, 1, a)?.t, 'zero');
    assert.equal(sim.state.zeroPageRefs, on ? 0 : 2 * 1024);
    sim.gupTestStop(1);
    assert.equal(sim.state.zeroPageRefs, 0);
  }
});

test('longterm-write-file-refused (8ac268436e6d, 6.5): a long-term write pin of a shared disk-file mapping fails; shmem is fine', () => {
  for (const [kernel, refused] of [
    ['v6.2', false],
    ['v6.5', true],
  ] as const) {
    for (const fast of [false, true]) {
      const sim = mkSim(kernel);
      const fd = sim.tmpfile();
      sim.fallocate(fd, PAGE_SIZE);
      const m = sim.mmap(1, { len: PAGE_SIZE, prot: RW, flags: MAP_SHARED, file: fd });
      sim.memset(1, m, 1, PAGE_SIZE);
      const r = sim.gupTestStart(1, m, PAGE_SIZE, true, fast);
      assert.equal(r === -EFAULT, refused, `${kernel} fast=${fast}: ${r}`);
      const mfd = sim.memfdCreate();
      sim.fallocate(mfd, PAGE_SIZE);
      const s = sim.mmap(1, { len: PAGE_SIZE, prot: RW, flags: MAP_SHARED, file: mfd });
      assert.ok(sim.vfioMapDma(1, s, PAGE_SIZE, true) >= 0, kernel);
      // a R/O long-term pin of the disk file is fine
      assert.ok(sim.vfioMapDma(1, m, PAGE_SIZE, false) >= 0, kernel);
    }
  }
});

test('huge-zero-wp-alloc (1ced09e0331f, 6.13): a write or unshare on the huge zeropage allocates a THP', () => {
  for (const [kernel, thp] of [
    ['v6.5', false],
    ['v6.13', true],
  ] as const) {
    const sim = mkSim(kernel);
    const t = thpArea(sim);
    sim.read(1, t, PAGE_SIZE);
    sim.memset(1, t, 1, PAGE_SIZE);
    assert.equal(pmd(sim, 1, t)?.t === 'thp', thp, kernel);
    // the unshare of a R/O long-term pin
    const u = thpArea(sim);
    sim.read(1, u, PAGE_SIZE);
    sim.gupTestStart(1, u, PAGE_SIZE, false, false);
    assert.equal(pmd(sim, 1, u)?.t === 'thp', thp, kernel);
    if (!thp) assert.equal(pte(sim, 1, u)?.t, 'page');
  }
});

test('pte-thp-reuse (1da190f4d0a6, 6.15): a PTE-mapped THP whose only references are our mappings is reused', () => {
  for (const [kernel, reused] of [
    ['v6.13', false],
    ['v6.15', true],
  ] as const) {
    const sim = mkSim(kernel);
    const t = thpArea(sim);
    sim.memset(1, t, 1, PMD_SIZE);
    const c = sim.fork(1);
    sim.exit(c, 0);
    sim.wait(c);
    sim.mprotect(1, t, PAGE_SIZE, PROT_READ); // PTE-map the THP
    sim.mprotect(1, t, PAGE_SIZE, RW);
    assert.equal(pmd(sim, 1, t), undefined);
    const f = folioAt(sim, 1, t + PAGE_SIZE);
    sim.memset(1, t + PAGE_SIZE, 2, PAGE_SIZE);
    assert.equal(folioAt(sim, 1, t + PAGE_SIZE) === f, reused, kernel);
  }
  // a GUP reference keeps it from being reused
  const sim = mkSim('v6.15');
  const t = thpArea(sim);
  sim.memset(1, t, 1, PMD_SIZE);
  const c = sim.fork(1);
  sim.exit(c, 0);
  sim.wait(c);
  sim.mprotect(1, t, PAGE_SIZE, PROT_READ);
  sim.mprotect(1, t, PAGE_SIZE, RW);
  const p = sim.pipe();
  sim.vmsplice(1, p, t + 2 * PAGE_SIZE, PAGE_SIZE);
  const f = folioAt(sim, 1, t + PAGE_SIZE);
  sim.memset(1, t + PAGE_SIZE, 2, PAGE_SIZE);
  assert.notEqual(folioAt(sim, 1, t + PAGE_SIZE), f);
});

test('mthp (19eaf44954df, 6.8): with a size enabled, a write fault allocates the largest fitting mTHP, PTE-mapped', () => {
  const machine = { ...SEED_MACHINE, thpSizes: [16 << 10, 64 << 10, PMD_SIZE] };
  for (const [kernel, nr] of [
    ['v6.5', 1],
    ['v6.8', 16],
  ] as const) {
    const sim = new Sim(profile(kernel), machine, { trace: true });
    assert.deepEqual(sim.thpSizes(), kernel === 'v6.8' ? machine.thpSizes : [PMD_SIZE]);
    sim.setThpMode(16 << 10, 'always');
    sim.setThpMode(64 << 10, 'always');
    const a = anon(sim, 2 * 64 * 1024);
    const at = a + 64 * 1024 + 5 * PAGE_SIZE;
    sim.memset(1, at, 7, PAGE_SIZE);
    const f = sim.state.folios.get(folioAt(sim, 1, at));
    assert.equal(f.nr, nr, kernel);
    if (nr > 1) {
      // aligned: the folio maps the whole 64 KiB block around the fault, exclusive, writable
      assert.equal(folioAt(sim, 1, a + 64 * 1024), f.id);
      assert.equal(pagePte(sim, 1, a + 64 * 1024).off, 0);
      assert.ok(f.exclusive.every((x) => x));
      assert.deepEqual(sim.read(1, a + 64 * 1024, 64 * 1024), [
        [0, 5],
        [7, 1],
        [0, 10],
      ]);
    }
    // a block that is not entirely none gets the next smaller size: 16 KiB
    if (kernel === 'v6.8') {
      const b = anon(sim, 128 * 1024);
      const c = Math.ceil(b / (64 * 1024)) * 64 * 1024;
      sim.setThpMode(64 << 10, 'never');
      sim.memset(1, c + 60 * 1024, 1, PAGE_SIZE);
      assert.equal(sim.state.folios.get(folioAt(sim, 1, c + 60 * 1024)).nr, 4);
      sim.setThpMode(64 << 10, 'always');
      sim.memset(1, c, 2, PAGE_SIZE);
      assert.equal(sim.state.folios.get(folioAt(sim, 1, c)).nr, 4);
    }
  }
  // the PMD size follows its own setting: 'never' keeps a MADV_HUGEPAGE range from getting a PMD THP
  const sim = new Sim(profile('v6.8'), machine, { trace: true });
  sim.setThpMode(PMD_SIZE, 'never');
  const t = thpArea(sim);
  sim.memset(1, t, 1, PAGE_SIZE);
  assert.equal(pmd(sim, 1, t), undefined);
  sim.setThpMode(PMD_SIZE, 'inherit');
  const u = thpArea(sim);
  sim.memset(1, u, 1, PAGE_SIZE);
  assert.equal(pmd(sim, 1, u)?.t, 'thp');
});

test('odirect-foll-pin (6.5): an O_DIRECT write from a page shared after fork unshares it first (R/O FOLL_PIN)', () => {
  for (const [kernel, unshared] of [
    ['v6.2', false],
    ['v6.5', true],
  ] as const) {
    const sim = mkSim(kernel);
    const a = anon(sim, PAGE_SIZE);
    sim.memset(1, a, 1, PAGE_SIZE);
    const c = sim.fork(1);
    const shared = folioAt(sim, 1, a);
    const fd = sim.tmpfile();
    sim.fallocate(fd, PAGE_SIZE);
    assert.equal(sim.directIo(1, fd, 0, a, PAGE_SIZE, false), PAGE_SIZE);
    assert.equal(folioAt(sim, 1, a) !== shared, unshared, kernel);
    assert.equal(folioAt(sim, c, a), shared);
    assert.deepEqual(sim.pread(fd, 0, PAGE_SIZE), [[1, 1]]);
    assert.equal(sim.state.procs.get(1).mm.hasPinned, unshared, `${kernel}: MMF_HAS_PINNED`);
  }
});

test('v5.7: a write to a shared THP in a VMA that no longer allows THP copies it page by page (do_huge_pmd_wp_page_fallback); the huge zeropage is split', () => {
  const sim = mkSim('v5.7');
  const t = thpArea(sim);
  sim.memset(1, t, 1, PMD_SIZE);
  const c = sim.fork(1);
  const shared = pmd(sim, 1, t)!.folio;
  assert.equal(sim.madvise(1, t, PMD_SIZE, MADV_NOHUGEPAGE), 0);
  sim.memset(1, t + PAGE_SIZE, 2, PAGE_SIZE);
  assert.equal(pmd(sim, 1, t), undefined, 'no THP for the parent any more');
  const mine = new Set([0, 1, 511].map((i) => pagePte(sim, 1, t + i * PAGE_SIZE).folio));
  assert.equal(mine.size, 3, 'a small page each');
  assert.ok(!mine.has(shared));
  assert.deepEqual(sim.read(1, t, 3 * PAGE_SIZE), [
    [1, 1],
    [2, 1],
    [1, 1],
  ]);
  assert.equal(pmd(sim, c, t)?.folio, shared, 'the child keeps the THP');
  assert.deepEqual(sim.read(c, t + PAGE_SIZE, PAGE_SIZE), [[1, 1]]);
  // with THP still allowed: a new THP, as before
  const other = mkSim('v5.7');
  const u = thpArea(other);
  other.memset(1, u, 1, PMD_SIZE);
  other.fork(1);
  other.memset(1, u + PAGE_SIZE, 2, PAGE_SIZE);
  assert.ok(pmd(other, 1, u));
  // the huge zeropage with THP no longer allowed: split, one page copied, the rest stay zeropage
  const z = mkSim('v5.7');
  const h = thpArea(z);
  z.read(1, h, PAGE_SIZE);
  assert.equal(pmd(z, 1, h)?.t, 'hugezero');
  assert.equal(z.madvise(1, h, PMD_SIZE, MADV_NOHUGEPAGE), 0);
  z.memset(1, h + PAGE_SIZE, 3, PAGE_SIZE);
  assert.equal(pmd(z, 1, h), undefined);
  assert.equal(pte(z, 1, h)?.t, 'zero');
  assert.equal(pte(z, 1, h + PAGE_SIZE)?.t, 'page');
});

test('fork of a pinned page-cache page in a private file mapping: copied for the child on 5.9-5.18 (no PageAnon check yet), shared on 5.19-6.1, unshared by the pin itself from 6.2', () => {
  const childSees = (kernel: string) => {
    const sim = mkSim(kernel);
    const fd = sim.memfdCreate();
    sim.fallocate(fd, 2 * PAGE_SIZE);
    sim.pwrite(fd, 0, 2 * PAGE_SIZE, 7);
    const a = sim.mmap(1, { len: 2 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE, file: fd });
    sim.memset(1, a, 1, PAGE_SIZE); // an anonymous page: the VMA gets an anon_vma, fork copies it
    sim.read(1, a + PAGE_SIZE, PAGE_SIZE); // the page-cache page, mapped R/O
    assert.ok(sim.vfioMapDma(1, a + PAGE_SIZE, PAGE_SIZE, false) > 0, kernel);
    const c = sim.fork(1);
    sim.pwrite(fd, PAGE_SIZE, PAGE_SIZE, 9);
    return (sim.read(c, a + PAGE_SIZE, PAGE_SIZE) as number[][])[0][0];
  };
  for (const kernel of ['v5.9', 'v5.12', 'v5.18']) assert.equal(childSees(kernel), 7, kernel);
  for (const kernel of ['v5.19', 'v6.1']) assert.equal(childSees(kernel), 9, kernel);
  for (const kernel of ['v6.2', 'latest']) assert.equal(childSees(kernel), 7, kernel);
});

test('a write to a page of a PTE-mapped mTHP that fork made non-exclusive, after the child exited: reused by refcount on 6.8, copied from 6.9 (wp-no-large-reuse); from 6.15 reused when this mm maps two or more of its pages (pte-thp-reuse), copied when it maps one', () => {
  const machine = { ...SEED_MACHINE, thpSizes: [64 << 10, PMD_SIZE] };
  const outcome = (kernel: string, keep: number) => {
    const sim = new Sim(profile(kernel), machine, { trace: true });
    sim.setThpMode(64 << 10, 'always');
    const a = anon(sim, PMD_SIZE);
    sim.memset(1, a, 1, 64 << 10);
    const f = folioAt(sim, 1, a);
    assert.equal(sim.state.folios.get(f).nr, 16, kernel);
    sim.madvise(1, a + keep * PAGE_SIZE, (16 - keep) * PAGE_SIZE, MADV_DONTNEED);
    const c = sim.fork(1);
    sim.exit(c, 0);
    sim.wait(c);
    sim.memset(1, a, 2, PAGE_SIZE);
    return folioAt(sim, 1, a) === f ? 'reuse' : 'copy';
  };
  assert.equal(outcome('v6.8', 1), 'reuse');
  assert.equal(outcome('v6.8', 2), 'copy', 'refcount 2: not reused by refcount');
  assert.equal(outcome('v6.13', 1), 'copy');
  assert.equal(outcome('v6.13', 2), 'copy');
  assert.equal(outcome('latest', 1), 'copy');
  assert.equal(outcome('latest', 2), 'reuse');
});
