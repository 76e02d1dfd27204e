/**
 * Kernel facts the model relies on, checked on the running kernel through build/cowhost.
 * Needs root for PFNs and /proc/kpage*; each test skips with its reason when it cannot run.
 */
import assert from 'node:assert/strict';
import { HostSkip } from '../../src/host/hostsafety.ts';
import type { HostPage, HostSession } from '../../src/host/session.ts';
import { cmdline, hostTest, PAGE, PMD, thpUnavailable, zeroPageDisabled } from './helpers.ts';

const root = { root: true };

async function anonPage(s: HostSession, byte: number, len = PAGE): Promise<number> {
  const a = await s.mmap(0, { len });
  assert.equal(await s.write(0, a, len, byte), null);
  return a;
}

function assertExclusiveAnon(pg: HostPage, what: string): void {
  assert.equal(pg.present, true, `${what}: present`);
  assert.equal(pg.anon, true, `${what}: anon`);
  assert.equal(pg.count, 1, `${what}: mapcount 1`);
  assert.equal(pg.exclusive, true, `${what}: pagemap bit 56`);
  assert.equal(pg.anonExclusive, true, `${what}: kpageflags bit 34 (PG_anon_exclusive)`);
}

hostTest('anon read fault maps the shared zeropage (unless the kernel disables it)', root, async (s) => {
  const a = await s.mmap(0, { len: 2 * PAGE });
  assert.deepEqual(await s.read(0, a, 2 * PAGE), [[0, 2 * PAGE]]);
  const [p0, p1] = await s.pagemap(0, a, 2);
  assert.equal(p0.present && p1.present, true);
  if (p0.zero) {
    assert.equal(p1.zero, true);
    assert.equal(p0.pfn, p1.pfn, 'one shared zeropage');
    assert.equal(p0.count, 0, 'kpagecount of the zeropage reads 0');
    assert.equal(p0.exclusive, false);
    assert.equal(p0.file, false);
    assert.equal(p0.anon, false);
  } else {
    // PVM guests (kernel parameter pvm_no_zero_page=1) give read faults a fresh page
    assert.ok(zeroPageDisabled, `no zeropage on a read fault, and no known reason on the command line: ${cmdline()}`);
    assertExclusiveAnon(p0, 'read-faulted page');
    assertExclusiveAnon(p1, 'read-faulted page');
    assert.notEqual(p0.pfn, p1.pfn);
  }
});

hostTest('anon write fault: a new exclusive anon page (bit 56 and PG_anon_exclusive)', root, async (s) => {
  const a = await anonPage(s, 0x41);
  const pg = await s.page(0, a);
  assertExclusiveAnon(pg, 'written page');
  assert.equal(pg.zero, false);
  assert.equal(pg.thp, false);
  assert.deepEqual(await s.read(0, a, PAGE), [[0x41, PAGE]]);
});

hostTest('fork shares the page: same PFN, mapcount 2, neither exclusive', root, async (s) => {
  const a = await anonPage(s, 1);
  const before = await s.page(0, a);
  const c = await s.fork(0);
  const [pp, cp] = [await s.page(0, a), await s.page(c.p, a)];
  assert.equal(pp.pfn, before.pfn);
  assert.equal(cp.pfn, pp.pfn);
  for (const pg of [pp, cp]) {
    assert.equal(pg.count, 2);
    assert.equal(pg.exclusive, false);
    assert.equal(pg.anonExclusive, false, 'fork clears PG_anon_exclusive');
  }
  assert.deepEqual(await s.read(c.p, a, PAGE), [[1, PAGE]]);
});

hostTest('child write copies; the parent keeps the old page (mapcount 1, not anon-exclusive) and reuses it on write', root, async (s) => {
  const a = await anonPage(s, 1);
  const orig = (await s.page(0, a)).pfn;
  const c = await s.fork(0);
  assert.equal(await s.write(c.p, a, PAGE, 2), null);
  const cp = await s.page(c.p, a);
  assert.notEqual(cp.pfn, orig, 'the child got a copy');
  assertExclusiveAnon(cp, 'child copy');
  const pp = await s.page(0, a);
  assert.equal(pp.pfn, orig);
  assert.equal(pp.count, 1);
  assert.equal(pp.exclusive, true, 'bit 56 follows the mapcount');
  assert.equal(pp.anonExclusive, false, 'PG_anon_exclusive stays clear until a write fault reuses the page');
  assert.equal(await s.write(0, a, PAGE, 3), null);
  const after = await s.page(0, a);
  assert.equal(after.pfn, orig, 'reuse: refcount 1, no copy');
  assertExclusiveAnon(after, 'reused page');
  assert.deepEqual(await s.read(0, a, PAGE), [[3, PAGE]]);
  assert.deepEqual(await s.read(c.p, a, PAGE), [[2, PAGE]]);
});

hostTest('child exit: the parent page is mapped once but not anon-exclusive; a write reuses it', root, async (s) => {
  const a = await anonPage(s, 1);
  const orig = (await s.page(0, a)).pfn;
  const c = await s.fork(0);
  assert.equal(await s.exit(c.p, 5), 5);
  const pp = await s.page(0, a);
  assert.equal(pp.count, 1);
  assert.equal(pp.exclusive, true);
  assert.equal(pp.anonExclusive, false);
  await s.write(0, a, PAGE, 2);
  const w = await s.page(0, a);
  assert.equal(w.pfn, orig);
  assert.equal(w.anonExclusive, true);
});

hostTest('vmsplice takes a reference, not a mapping: kpagecount unchanged, and the parent must copy', root, async (s) => {
  const a = await anonPage(s, 1);
  const orig = (await s.page(0, a)).pfn;
  const c = await s.fork(0);
  const pipe = await s.pipe(c.p);
  assert.equal(await s.vmsplice(c.p, pipe.wfd, a, PAGE), PAGE);
  assert.equal((await s.page(0, a)).count, 2, 'vmsplice adds no mapping');
  await s.munmap(c.p, a, PAGE);
  const pp = await s.page(0, a);
  assert.equal(pp.count, 1);
  assert.equal(pp.exclusive, true);
  assert.equal(pp.anonExclusive, false);
  await s.write(0, a, PAGE, 2);
  const w = await s.page(0, a);
  assert.notEqual(w.pfn, orig, 'no reuse: the pipe still holds a reference (refcount > 1)');
  assertExclusiveAnon(w, 'copy');
  assert.deepEqual(await s.pipeRead(c.p, pipe.rfd, PAGE), { bytes: PAGE, data: [[1, PAGE]] }, 'the pipe reads the old content');
});

hostTest('io_uring fixed buffers: VmPin counts them; fork copies the pinned pages for the child', root, async (s) => {
  const a = await anonPage(s, 3, 2 * PAGE);
  const before = await s.pagemap(0, a, 2);
  await s.uringRegister(0, a, 2 * PAGE);
  assert.equal((await s.status(0)).VmPin, 8, 'VmPin 8 kB');
  const c = await s.fork(0);
  const pp = await s.pagemap(0, a, 2);
  const cp = await s.pagemap(c.p, a, 2);
  for (let i = 0; i < 2; i++) {
    assert.equal(pp[i].pfn, before[i].pfn, 'the parent keeps its pinned pages');
    assertExclusiveAnon(pp[i], 'pinned parent page');
    assert.notEqual(cp[i].pfn, pp[i].pfn, 'the child gets copies at fork');
    assertExclusiveAnon(cp[i], 'child copy');
  }
  assert.equal((await s.status(c.p)).VmPin, 0, 'pins are accounted to the registering mm only');
  assert.deepEqual(await s.read(c.p, a, 2 * PAGE), [[3, 2 * PAGE]]);
  // the pinned pages are the mapped ones: a store is what WRITE_FIXED sends
  const fd = await s.tmpfile(0, '/tmp');
  await s.write(0, a, PAGE, 9);
  assert.equal(await s.uringWriteFixed(0, fd, 0), 2 * PAGE);
  assert.deepEqual(await s.pread(0, fd, 0, 2 * PAGE), [
    [9, PAGE],
    [3, PAGE],
  ]);
  await s.uringUnregister(0);
  assert.equal((await s.status(0)).VmPin, 0);
});

hostTest(
  'MADV_HUGEPAGE: a read fault maps the huge zeropage (or a THP without zeropages); a write gives an exclusive THP',
  root,
  async (s) => {
    const why = thpUnavailable();
    if (why) throw new HostSkip(why);
    const t = await s.mmap(0, { len: PMD, align: PMD });
    await s.madvise(0, t, PMD, 'hugepage');
    assert.deepEqual(await s.read(0, t, PAGE), [[0, PAGE]]);
    const r = await s.pagemap(0, t, 512);
    if (r[0].zero) {
      assert.equal(r[0].thp, true, 'huge zeropage: ZERO_PAGE + THP');
      assert.equal(r[0].file, true, 'pagemap bit 61 is set for the huge zeropage');
      assert.equal(r[0].count, 0);
    } else {
      assert.ok(zeroPageDisabled, 'no huge zeropage on a THP read fault, and no known reason');
      assert.equal(r[0].thp, true);
      assert.equal(r[0].anon, true);
    }
    await s.write(0, t, PMD, 5);
    const w = await s.pagemap(0, t, 512);
    assert.equal(w[0].head, true);
    assert.ok(w.slice(1).every((p) => p.tail && p.thp && p.anon && p.count === 1 && p.exclusive));
    assert.equal(new Set(w.map((p) => p.pfn)).size, 512);
    assertExclusiveAnon(w[0], 'THP head');
    assert.equal((await s.smaps(0, t)).AnonHugePages, 2048);
  },
);

hostTest(
  'THP after fork: a 4 KiB write in the parent splits its PMD and copies one small page; the child keeps the PMD',
  root,
  async (s) => {
    const why = thpUnavailable();
    if (why) throw new HostSkip(why);
    const t = await s.mmap(0, { len: PMD, align: PMD });
    await s.madvise(0, t, PMD, 'hugepage');
    await s.write(0, t, PMD, 5);
    const thp = await s.pagemap(0, t, 3);
    if (!thp[0].thp) throw new HostSkip('the kernel did not allocate a THP (fragmented memory?)');
    const c = await s.fork(0);
    await s.write(0, t + PAGE, PAGE, 6);
    const pp = await s.pagemap(0, t, 3);
    assert.equal(pp[0].pfn, thp[0].pfn);
    assert.equal(pp[0].count, 2);
    assert.equal(pp[0].exclusive, false);
    assert.notEqual(pp[1].pfn, thp[1].pfn, '+4K: a new small page');
    assert.equal(pp[1].thp, false);
    assertExclusiveAnon(pp[1], '+4K copy');
    assert.equal(pp[2].pfn, thp[2].pfn);
    const cp = await s.pagemap(c.p, t + PAGE, 1);
    assert.equal(cp[0].pfn, thp[1].pfn);
    assert.equal(cp[0].count, 1, 'only the child maps that subpage now');
    assert.equal(cp[0].exclusive, false, 'bit 56 of a PMD-mapped THP is not per page: the folio is mapped by two processes');
    assert.equal((await s.smaps(c.p, t)).AnonHugePages, 2048);
    assert.equal((await s.smaps(0, t)).AnonHugePages, 0);
  },
);

hostTest('MADV_COLLAPSE turns 512 small pages into a THP', root, async (s) => {
  const why = thpUnavailable();
  if (why) throw new HostSkip(why);
  const t = await s.mmap(0, { len: PMD, align: PMD });
  await s.madvise(0, t, PMD, 'nohugepage');
  await s.write(0, t, PMD, 7);
  assert.equal((await s.page(0, t)).thp, false);
  await s.madvise(0, t, PMD, 'hugepage');
  try {
    await s.madvise(0, t, PMD, 'collapse');
  } catch (e) {
    throw new HostSkip(`MADV_COLLAPSE failed here: ${(e as Error).message}`);
  }
  const pg = await s.page(0, t);
  assert.equal(pg.thp, true);
  assert.equal(pg.head, true);
  assertExclusiveAnon(pg, 'collapsed THP');
  assert.deepEqual(await s.read(0, t, PMD), [[7, PMD]]);
});

hostTest('MADV_PAGEOUT of anon pages: swapped out with a swap device, left present without one', root, async (s, t) => {
  const swapBefore = Number((await s.meminfo()).SwapTotal);
  const a = await anonPage(s, 1, 4 * PAGE);
  const r = await s.madvise(0, a, 4 * PAGE, 'pageout');
  const swapAfter = Number((await s.meminfo()).SwapTotal);
  if (swapBefore !== swapAfter) throw new HostSkip('swap devices changed during the test');
  if (swapBefore === 0) {
    t.diagnostic('no swap device: MADV_PAGEOUT cannot page out anonymous memory');
    assert.deepEqual(r, { present: 4, swapped: 0 });
    assert.ok((await s.pagemap(0, a, 4)).every((p) => p.present && !p.swapped));
  } else {
    assert.equal(r.swapped, 4);
    assert.deepEqual(await s.read(0, a, 4 * PAGE), [[1, 4 * PAGE]]);
  }
});

/** The first directory whose filesystem takes O_DIRECT on an O_TMPFILE file. */
async function directDir(s: HostSession): Promise<{ dir: string; fd: number }> {
  const tried: string[] = [];
  for (const dir of [process.env.COWLAB_DIRECT_DIR, '/tmp', '/var/tmp', process.cwd()]) {
    if (!dir) continue;
    try {
      return { dir, fd: await s.tmpfile(0, dir, true) };
    } catch (e) {
      tried.push(`${dir}: ${(e as Error).message}`);
    }
  }
  throw new HostSkip(`no directory takes O_DIRECT tmpfiles (${tried.join('; ')})`);
}

hostTest('O_DIRECT read into a page shared after fork: the reader gets its own copy (write GUP breaks COW)', root, async (s, t) => {
  const { dir, fd } = await directDir(s);
  t.diagnostic(`O_DIRECT on ${dir}`);
  await s.pwrite(0, fd, 0, PAGE, 0x22);
  const a = await s.mmap(0, { len: PAGE, align: PAGE });
  await s.write(0, a, PAGE, 0x11);
  const orig = (await s.page(0, a)).pfn;
  const c = await s.fork(0);
  assert.equal(await s.fdRead(0, fd, 0, a, PAGE), PAGE);
  const pp = await s.page(0, a);
  assert.notEqual(pp.pfn, orig);
  assertExclusiveAnon(pp, 'DMA target');
  const cp = await s.page(c.p, a);
  assert.equal(cp.pfn, orig);
  assert.equal(cp.anonExclusive, false);
  assert.deepEqual(await s.read(0, a, PAGE), [[0x22, PAGE]]);
  assert.deepEqual(await s.read(c.p, a, PAGE), [[0x11, PAGE]]);
  // memory -> file from the child's (shared-then-sole) page
  assert.equal(await s.fdWrite(c.p, fd, PAGE, a, PAGE), PAGE);
  assert.deepEqual(await s.pread(0, fd, PAGE, PAGE), [[0x11, PAGE]]);
});

hostTest('gup_test R/O long-term pin on a page shared after fork', root, async (s) => {
  if (!s.info.gupTest) throw new HostSkip('no /sys/kernel/debug/gup_test (CONFIG_GUP_TEST off or debugfs not mounted)');
  const a = await anonPage(s, 1);
  const c = await s.fork(0);
  await s.gupStart(0, a, PAGE, false, false);
  try {
    // the pin unshared the parent's page (R/O long-term pins of anon pages are exclusive)
    assert.equal((await s.page(0, a)).anonExclusive, true);
    await s.write(c.p, a, PAGE, 2);
    await s.write(0, a, PAGE, 3);
    assert.deepEqual(await s.gupRead(0, PAGE), [[3, PAGE]], "the pin sees the parent's later write");
  } finally {
    await s.gupStop(0);
  }
});

hostTest('mlock shows in VmLck and in kpageflags MLOCKED', root, async (s) => {
  const a = await anonPage(s, 1, 2 * PAGE);
  await s.mlock(0, a, 2 * PAGE);
  assert.equal((await s.status(0)).VmLck, 8);
  assert.equal((await s.page(0, a)).mlocked, true);
  await s.munlock(0, a, 2 * PAGE);
  assert.equal((await s.status(0)).VmLck, 0);
});
