import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, opendirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { khugepagedCollapsed, probeHost } from '../../src/host/probe.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const roots: string[] = [];

after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** a fake root: each key is a path below it, each value the file content */
function fakeRoot(files: Record<string, string | Buffer>, dirs: string[] = []): string {
  const root = mkdtempSync(join(tmpdir(), 'cowlab-probe-'));
  roots.push(root);
  for (const d of dirs) mkdirSync(join(root, d), { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

/** /proc/self/auxv with AT_PAGESZ, then AT_NULL */
function auxv(pageSize: number): Buffer {
  const buf = Buffer.alloc(48);
  buf.writeBigUInt64LE(33n, 0); // AT_SYSINFO_EHDR, ignored
  buf.writeBigUInt64LE(0x7fff0000n, 8);
  buf.writeBigUInt64LE(6n, 16); // AT_PAGESZ
  buf.writeBigUInt64LE(BigInt(pageSize), 24);
  return buf; // the last 16 bytes are AT_NULL
}

const THP = 'sys/kernel/mm/transparent_hugepage';
const HT = 'sys/kernel/mm/hugepages';

/** the machine these notes were taken on (docs/research/host-6.18), plus swap, gup_test and a 1 GiB size */
function hostLikeTree(): string {
  return fakeRoot({
    'proc/self/auxv': auxv(4096),
    [`${THP}/hpage_pmd_size`]: '2097152\n',
    [`${THP}/enabled`]: 'always [madvise] never\n',
    [`${THP}/use_zero_page`]: '1\n',
    [`${THP}/hugepages-16kB/enabled`]: 'always inherit madvise [never]\n',
    [`${THP}/hugepages-64kB/enabled`]: 'always inherit madvise [never]\n',
    [`${THP}/hugepages-2048kB/enabled`]: 'always [inherit] madvise never\n',
    // order 1 has only shmem_enabled (no anon mTHP of order 1): cow.c does not test it
    [`${THP}/hugepages-8kB/shmem_enabled`]: 'always inherit within_size advise [never]\n',
    [`${HT}/hugepages-2048kB/nr_hugepages`]: '2\n',
    [`${HT}/hugepages-2048kB/free_hugepages`]: '2\n',
    [`${HT}/hugepages-1048576kB/nr_hugepages`]: '1\n',
    [`${HT}/hugepages-1048576kB/free_hugepages`]: '0\n',
    // a regular file with a matching name: cow.c skips entries that are not DT_DIR
    [`${HT}/hugepages-4kB`]: '',
    'proc/swaps':
      'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/zram0                              partition\t1048572\t\t0\t\t-2\n',
    'sys/kernel/debug/gup_test': '',
    'proc/config.gz': gzipSync('CONFIG_MMU=y\nCONFIG_MEM_SOFT_DIRTY=y\n'),
    'proc/self/limits':
      'Limit                     Soft Limit           Hard Limit           Units     \nMax locked memory         8388608              8388608              bytes     \n',
    'proc/self/status': 'Name:\tnode\nUid:\t1000\t1000\t1000\t1000\n',
    'proc/sys/kernel/io_uring_disabled': '2\n',
    'usr/include/liburing.h': '',
    'usr/lib/x86_64-linux-gnu/liburing.so': '',
  });
}

test('probeHost reads a fake tree the way cow.c does', () => {
  const root = hostLikeTree();
  const facts = probeHost(root);
  assert.equal(facts.pageSize, 4096);
  assert.equal(facts.pmdSize, 2 * MiB);
  assert.deepEqual(facts.thpSizes, [16 * KiB, 64 * KiB, 2 * MiB]);
  assert.deepEqual(facts.thpModes, { [16 * KiB]: 'never', [64 * KiB]: 'never', [2 * MiB]: 'inherit' });
  assert.equal(facts.thpEnabled, 'madvise');
  assert.equal(facts.useZeroPage, true);
  assert.deepEqual(
    [...facts.hugetlb].sort((a, b) => a.size - b.size),
    [
      { size: 2 * MiB, nr: 2, free: 2 },
      { size: GiB, nr: 1, free: 0 },
    ],
  );
  assert.equal(facts.swap, true);
  assert.equal(facts.gupTest, true);
  assert.equal(facts.softDirty, true);
  assert.equal(facts.memlockLimit, 8 * MiB);
  assert.equal(facts.isRoot, false);
  assert.equal(facts.ioUringDisabled, 2);
  assert.equal(facts.liburing, true);
});

test('hugetlb sizes come in raw readdir order (not sorted), as cow.c lists them', () => {
  const root = hostLikeTree();
  const raw: string[] = [];
  const dir = opendirSync(join(root, HT));
  for (let e = dir.readSync(); e !== null; e = dir.readSync()) if (e.isDirectory()) raw.push(e.name);
  dir.closeSync();
  assert.deepEqual(
    probeHost(root).hugetlb.map((h) => `hugepages-${h.size / KiB}kB`),
    raw,
  );
});

test('an empty tree: no THP, no hugetlb, no swap, nothing known', () => {
  const facts = probeHost(fakeRoot({}));
  assert.deepEqual(facts, {
    pageSize: 4096,
    pmdSize: 0,
    thpSizes: [],
    thpEnabled: null,
    useZeroPage: false,
    hugetlb: [],
    swap: false,
    gupTest: false,
    softDirty: null,
    memlockLimit: Number.POSITIVE_INFINITY,
    isRoot: false,
    ioUringDisabled: null,
    liburing: false,
    zeroPage: true,
    thpModes: {},
  });
});

test('edge cases: empty hpage_pmd_size, use_zero_page 2, header-only swaps, /boot config, unlimited memlock, 16 KiB pages', () => {
  const noPmd = fakeRoot({
    [`${THP}/hpage_pmd_size`]: '',
    [`${THP}/hugepages-64kB/enabled`]: 'always inherit madvise [never]\n',
    [`${THP}/use_zero_page`]: '2\n',
    'proc/swaps': 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n',
    'proc/sys/kernel/osrelease': '6.18.0-test\n',
    'boot/config-6.18.0-test': '# CONFIG_MEM_SOFT_DIRTY is not set\n',
    'proc/self/limits': 'Max locked memory         unlimited            unlimited            bytes     \n',
    'proc/self/status': 'Uid:\t1000\t0\t0\t0\n',
    'usr/include/liburing.h': '', // header without a library: cow.c's build would not have liburing
  });
  const a = probeHost(noPmd);
  assert.equal(a.pmdSize, 0);
  assert.deepEqual(a.thpSizes, [], 'no THP sizes without a PMD size, like cow.c');
  assert.equal(a.useZeroPage, false);
  assert.equal(a.swap, false);
  assert.equal(a.softDirty, false);
  assert.equal(a.memlockLimit, Number.POSITIVE_INFINITY);
  assert.equal(a.isRoot, true, 'the effective uid counts');
  assert.equal(a.liburing, false);

  const big = fakeRoot({
    'proc/self/auxv': auxv(16 * KiB),
    [`${THP}/hpage_pmd_size`]: '33554432\n',
    [`${THP}/hugepages-64kB/enabled`]: 'always inherit madvise [never]\n',
  });
  const b = probeHost(big);
  assert.equal(b.pageSize, 16 * KiB);
  assert.deepEqual(b.thpSizes, [64 * KiB, 32 * MiB]);
});

test('the real machine: sane values only', () => {
  const facts = probeHost();
  const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  assert.ok(pow2(facts.pageSize));
  assert.ok(facts.pmdSize === 0 || pow2(facts.pmdSize), `pmdSize ${facts.pmdSize}`);
  if (facts.pmdSize === 0) assert.deepEqual(facts.thpSizes, []);
  else assert.ok(facts.thpSizes.includes(facts.pmdSize));
  assert.deepEqual(
    facts.thpSizes,
    [...facts.thpSizes].sort((a, b) => a - b),
  );
  for (const s of facts.thpSizes) assert.ok(pow2(s) && s >= facts.pageSize);
  assert.ok(facts.hugetlb.length <= 10);
  for (const h of facts.hugetlb) assert.ok(pow2(h.size) && h.nr >= 0 && h.free >= 0);
  assert.ok(facts.memlockLimit === Number.POSITIVE_INFINITY || facts.memlockLimit >= 0);
  assert.equal(facts.isRoot, process.geteuid?.() === 0);
});

test('zeroPage: false only when the kernel command line has pvm_no_zero_page=1', () => {
  assert.equal(probeHost(fakeRoot({ 'proc/cmdline': 'console=ttyS0 pvm_no_zero_page=1 quiet\n' })).zeroPage, false);
  assert.equal(probeHost(fakeRoot({ 'proc/cmdline': 'console=ttyS0 pvm_no_zero_page=0 quiet\n' })).zeroPage, true);
  assert.equal(probeHost(fakeRoot({})).zeroPage, true, 'no /proc/cmdline: assume the zeropage');
});

test('khugepagedCollapsed: the pages_collapsed count, undefined without the file', () => {
  assert.equal(khugepagedCollapsed(fakeRoot({ [`${THP}/khugepaged/pages_collapsed`]: '36\n' })), 36);
  assert.equal(khugepagedCollapsed(fakeRoot({ [`${THP}/enabled`]: 'always [madvise] never\n' })), undefined);
});
