import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { type Machine, SEED_MACHINE } from '../../src/model/machine.ts';
import { findProfile, profileNames } from '../../src/model/profile.ts';
import { runCow } from '../../src/selftest/cow.ts';
import { findEdition } from '../../src/selftest/editions.ts';

const golden = (name: string) => new URL(`../golden/${name}`, import.meta.url);
const run = (kernel: string, suite: string, machine: Machine = SEED_MACHINE) => runCow(findProfile(kernel)!, machine, findEdition(suite)!);

// The 24 lines the seed mail quotes, in order.
const SEED_MAIL_LINES = [
  ['shared zeropage', 'memfd', 'tmpfile', 'huge zeropage', 'memfd hugetlb (2048 kB)', 'memfd hugetlb (1048576 kB)'].flatMap((v, i) => [
    `# [RUN] R/O longterm GUP pin ... with ${v}`,
    `ok ${151 + i} Longterm R/O pin is reliable`,
  ]),
  ['shared zeropage', 'memfd', 'tmpfile', 'huge zeropage', 'memfd hugetlb (2048 kB)', 'memfd hugetlb (1048576 kB)'].flatMap((v, i) => [
    `# [RUN] R/O longterm GUP-fast pin ... with ${v}`,
    `ok ${157 + i} Longterm R/O pin is reliable`,
  ]),
].flat();

test('v6.2 with the seed suite prints the 24 lines of the seed mail, in order', () => {
  const lines = run('v6.2', 'seed').tap.split('\n');
  const at = lines.indexOf(SEED_MAIL_LINES[0]);
  assert.ok(at > 0);
  assert.deepEqual(lines.slice(at, at + 24), SEED_MAIL_LINES);
  assert.ok(lines.includes('1..162'));
});

test('v6.1 fails exactly the twelve R/O long-term pin cases the seed fixed, nothing else changes', () => {
  const a = run('v6.1', 'seed').tap.split('\n');
  const b = run('v6.2', 'seed').tap.split('\n');
  assert.equal(a.length, b.length);
  const diff = a.map((l, i) => [l, b[i]]).filter(([x, y]) => x !== y);
  const results = diff.filter(([x]) => /^(not )?ok /.test(x));
  assert.equal(results.length, 12);
  for (const [x, y] of results) {
    const n = Number(/^not ok (\d+)/.exec(x)?.[1]);
    assert.ok(n >= 151 && n <= 162, x);
    assert.equal(y, x.replace(/^not ok/, 'ok'));
  }
  // besides those: the Bail out! count and the totals
  assert.deepEqual(
    diff.filter(([x]) => !/^(not )?ok /.test(x)).map(([x]) => x),
    ['Bail out! 18 out of 162 tests failed', '# Totals: pass:144 fail:18 xfail:0 xpass:0 skip:0 error:0'],
  );
});

test('the older editions report the hugetlb vmsplice leak as not ok, the latest as XFAIL', () => {
  const seed = run('v6.2', 'seed').tap;
  assert.match(seed, /# \[RUN\] vmsplice\(\) \+ unmap in child \.\.\. with hugetlb \(2048 kB\)\nnot ok 23 No leak from parent into child/);
  const latest = run('v6.2', 'latest');
  assert.match(latest.tap, /# Leak from parent into child\nok \d+ # XFAIL vmsplice\(\) \+ unmap in child \.\.\. with hugetlb \(2048 kB\)/);
  assert.equal(latest.counts.xfail, 8);
  assert.equal(latest.exitCode, 0);
});

test('plan and skips follow the machine', () => {
  const noUring = run('v6.2', 'seed', { ...SEED_MACHINE, liburing: false });
  assert.match(noUring.tap, /^1\.\.138$/m);
  const noSwap = run('v6.2', 'seed', { ...SEED_MACHINE, swap: false });
  assert.match(
    noSwap.tap,
    /# \[RUN\] Basic COW after fork\(\) \.\.\. with swapped out base page\nok 2 # SKIP MADV_PAGEOUT did not work, is swap enabled\?/,
  );
  assert.equal(noSwap.counts.skip, 12 * 4);
  const noGup = run('v6.2', 'latest', { ...SEED_MACHINE, gupTest: false });
  assert.match(noGup.tap, /# gup_test not available\nok \d+ # SKIP R\/O GUP pin on R\/O-mapped shared page \.\.\. with base page/);
  const fewHuge = run('v6.2', 'seed', { ...SEED_MACHINE, hugetlb: [{ size: 2 << 20, nr: 1 }] });
  assert.match(fewHuge.tap, /with hugetlb \(2048 kB\)\nok \d+ # SKIP need more free huge pages/);
  assert.doesNotMatch(fewHuge.tap, /1048576/);
  const noThp = run('v6.2', 'latest', { ...SEED_MACHINE, thp: false });
  assert.doesNotMatch(noThp.tap, /THP|huge zeropage/);
});

// every profile with every edition (older kernels run the v6.2 edition, as people testing backports did)
for (const kernel of profileNames()) {
  for (const suite of kernel === 'latest' ? ['seed', 'v6.2', 'v6.18', 'latest'] : ['seed', 'v6.2', 'latest']) {
    test(`golden TAP: --kernel ${kernel} --suite ${suite}`, () => {
      const name = `cow-${kernel}-${suite}.tap`;
      const got = run(kernel, suite).tap;
      if (process.env.UPDATE_GOLDEN) writeFileSync(golden(name), got);
      assert.equal(got, readFileSync(golden(name), 'utf8'));
    });
  }
}
