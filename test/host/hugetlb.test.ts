/**
 * hugetlb on the real kernel, and the pool safety around it. Every test that changes
 * nr_hugepages lives in this file (test files may run in parallel).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hostRun, loadFile } from '../../src/host/diff.ts';
import {
  awaitHugetlbReleased,
  HostSkip,
  type HugetlbPool,
  hugepageDir,
  hugetlbPool,
  hugetlbSizes,
  readSetting,
  recoverStaleSettings,
  withHugetlbReserved,
} from '../../src/host/hostsafety.ts';
import type { HostError } from '../../src/host/session.ts';
import { hostTest, PMD, unavailable } from './helpers.ts';

const root = { root: true };
const has2M = hugetlbSizes().includes(PMD);

hostTest('MFD_HUGETLB without a free pool page: mmap fails with ENOMEM (reservation at mmap time)', root, async (s) => {
  if (!has2M) throw new HostSkip('no 2 MiB hugetlb pages on this kernel');
  const pool = hugetlbPool(PMD);
  if (pool.free - pool.resv > 0) throw new HostSkip(`the 2 MiB pool already has ${pool.free - pool.resv} unreserved free pages`);
  const fd = await s.memfd(0, PMD);
  await s.ftruncate(0, fd, PMD);
  for (const share of ['shared', 'private'] as const)
    await assert.rejects(s.mmap(0, { len: PMD, fd, share }), (e: HostError) => e.code === 'ENOMEM', share);
  await assert.rejects(s.mmap(0, { len: PMD, hugetlb: PMD }), (e: HostError) => e.code === 'ENOMEM', 'MAP_HUGETLB');
});

hostTest(
  'MFD_HUGETLB with reserved pages: shared mapping is a file page; a private write copies into an anon hugetlb page',
  root,
  async (s) => {
    if (!has2M) throw new HostSkip('no 2 MiB hugetlb pages on this kernel');
    const nrBefore = hugetlbPool(PMD).nr;
    await withHugetlbReserved(PMD, 2, async () => {
      try {
        const fd = await s.memfd(0, PMD);
        await s.ftruncate(0, fd, PMD);
        const sh = await s.mmap(0, { len: PMD, fd, share: 'shared' });
        assert.equal(await s.write(0, sh, PMD, 0x5a), null);
        const sp = await s.pagemap(0, sh, 2);
        assert.equal(sp[0].huge, true, 'kpageflags HUGE');
        assert.equal(sp[0].file, true, 'pagemap bit 61: a file page');
        assert.equal(sp[0].anon, false);
        assert.equal(sp[0].head, true);
        assert.equal(sp[1].tail, true);
        assert.equal(sp[1].pfn, (sp[0].pfn ?? 0) + 1, 'one compound page');
        assert.equal((await s.status(0)).HugetlbPages, 2048);
        const pr = await s.mmap(0, { len: PMD, fd, share: 'private' });
        assert.deepEqual(await s.read(0, pr, PMD), [[0x5a, PMD]]);
        assert.equal((await s.page(0, pr)).pfn, sp[0].pfn, 'a private read maps the page-cache page');
        assert.equal(await s.write(0, pr, 4096, 0x77), null);
        const pw = await s.page(0, pr);
        assert.notEqual(pw.pfn, sp[0].pfn, 'a private write copies the whole huge page');
        assert.equal(pw.huge, true);
        assert.equal(pw.anon, true);
        assert.equal(pw.anonExclusive, true);
        assert.deepEqual(await s.read(0, pr, 8192), [
          [0x77, 4096],
          [0x5a, 4096],
        ]);
        assert.deepEqual(await s.read(0, sh, 4096), [[0x5a, 4096]]);
      } finally {
        await s.close(); // release the pool pages before it shrinks
      }
    });
    assert.equal(hugetlbPool(PMD).nr, nrBefore, 'nr_hugepages restored');
  },
);

test('withHugetlbReserved restores nr_hugepages when its function throws', async (t) => {
  if (!has2M || process.getuid?.() !== 0) {
    t.skip(!has2M ? 'no 2 MiB hugetlb pages' : 'needs root');
    return;
  }
  const before = hugetlbPool(PMD).nr;
  await assert.rejects(
    withHugetlbReserved(PMD, 1, async (pool) => {
      assert.ok(pool.free >= 1);
      assert.ok(existsSync(join(tmpdir(), `cowlab-host-restore-${process.pid}.json`)), 'restore file written before the change');
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(hugetlbPool(PMD).nr, before);
  assert.equal(existsSync(join(tmpdir(), `cowlab-host-restore-${process.pid}.json`)), false, 'restore file removed');
  await assert.rejects(
    withHugetlbReserved(PMD, 1024, async () => {}),
    (e: Error) => e instanceof HostSkip && /bound/.test(e.message),
  );
});

test('a killed run leaves its restore file; the next start puts nr_hugepages back', async (t) => {
  if (!has2M || process.getuid?.() !== 0) {
    t.skip(!has2M ? 'no 2 MiB hugetlb pages' : 'needs root');
    return;
  }
  const path = `${hugepageDir(PMD)}/nr_hugepages`;
  const before = Number(readSetting(path));
  const fixture = fileURLToPath(new URL('./fixtures/killed-run.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', fixture, path, String(before + 1)], { encoding: 'utf8', timeout: 20_000 });
  try {
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(r.stdout, 'changed\n');
    assert.equal(Number(readSetting(path)), before + 1, 'the killed run left the pool grown');
    const restored = recoverStaleSettings();
    assert.ok(restored.includes(path));
    assert.equal(Number(readSetting(path)), before);
    assert.equal(existsSync(join(tmpdir(), `cowlab-host-restore-${r.pid}.json`)), false);
  } finally {
    recoverStaleSettings();
  }
});

test("awaitHugetlbReleased: waits until the run's pages are free and resv_huge_pages is sane again, at most ms", () => {
  const pool = (nr: number, free: number, resv = 0): HugetlbPool => ({ size: PMD, nr, free, resv, surplus: 0 });
  const reads = (...ps: HugetlbPool[]) => {
    let i = 0;
    return { read: () => ps[Math.min(i++, ps.length - 1)], count: () => i };
  };
  // one page of others in use before the run; the run's page comes back on the third read
  const a = reads(pool(3, 1), pool(3, 1), pool(3, 2));
  assert.equal(awaitHugetlbReleased(a.read, 1, 2000), true);
  assert.equal(a.count(), 3);
  // all free, but the reservation count has gone below zero (2^64 - 1 read as a number)
  const b = reads(pool(1, 1, 2 ** 64 - 1), pool(1, 1, 0));
  assert.equal(awaitHugetlbReleased(b.read, 0, 2000), true);
  assert.equal(b.count(), 2);
  // never released: false once the time is up
  const t0 = performance.now();
  assert.equal(
    awaitHugetlbReleased(() => pool(1, 0), 0, 60),
    false,
  );
  assert.ok(performance.now() - t0 >= 59);
});

test('hostRun puts nr_hugepages back at once even when a pin outlives the run (fork of a pinned hugetlb page failing with ENOMEM)', (t) => {
  if (unavailable || !has2M || process.getuid?.() !== 0) {
    t.skip(unavailable ? `real-kernel backend unavailable: ${unavailable}` : !has2M ? 'no 2 MiB hugetlb pages' : 'needs root');
    return;
  }
  const before = hugetlbPool(PMD);
  const file = fileURLToPath(new URL('../../differential/hugetlb-fork-pinned-enomem.cow', import.meta.url));
  for (let i = 0; i < 2; i++) {
    const r = hostRun(loadFile(file));
    assert.ok(r.result?.pass, r.skip ?? 'the scenario holds on this kernel');
    const after = hugetlbPool(PMD);
    assert.equal(after.nr, before.nr, `run ${i + 1}: nr_hugepages restored`);
    assert.equal(after.surplus, before.surplus, `run ${i + 1}: no page left as surplus`);
  }
});
