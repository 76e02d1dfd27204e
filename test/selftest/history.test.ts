/**
 * The per-version claims about cow.c that have a source (docs/research/history.md §3, catalogue.md
 * §6), reproduced by the profiles. Each claim names its source; the results come from running the
 * selftest on the model, never from a table.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SEED_MACHINE } from '../../src/model/machine.ts';
import { PROFILES } from '../../src/model/profile.ts';
import { runCow } from '../../src/selftest/cow.ts';
import { findEdition } from '../../src/selftest/editions.ts';
import type { Outcome } from '../../src/selftest/tap.ts';

const results = new Map<string, Map<string, Outcome>>();
function outcome(kernel: string, suite: string, run: string): Outcome {
  const key = `${kernel}/${suite}`;
  let m = results.get(key);
  if (!m) {
    const p = PROFILES.find((x) => x.name === kernel)!;
    m = new Map(runCow(p, SEED_MACHINE, findEdition(suite)!).results.map((r) => [r.run, r.outcome]));
    results.set(key, m);
  }
  const o = m.get(run);
  if (!o) throw new Error(`no case '${run}' in ${key}`);
  return o;
}

/** Asserts `run` fails on every profile in `fails` and passes on every one in `passes`. */
function claim(run: string, fails: string[], passes: string[], suite = 'v6.2') {
  for (const k of fails) assert.equal(outcome(k, suite, run), 'fail', `${run} on ${k}`);
  for (const k of passes) assert.equal(outcome(k, suite, run), 'pass', `${run} on ${k}`);
}

const names = PROFILES.map((p) => p.name);
const from = (k: string) => names.slice(names.indexOf(k));
const before = (k: string) => names.slice(0, names.indexOf(k));

test('CVE-2020-29374 (cow.c comment): vmsplice() + unmap in child leaks on 5.7, fixed from 5.8 on', () => {
  claim('vmsplice() + unmap in child ... with base page', ['v5.7'], from('v5.8'));
});

test('c145e0b47c77 (its commit message): the swapped-out variant leaks on 5.9-5.17, fixed in 5.18', () => {
  claim('vmsplice() + unmap in child ... with swapped out base page', ['v5.7', 'v5.9', 'v5.12'], ['v5.8', ...from('v5.18')]);
});

test('cow.c: the hugetlb vmsplice cases are expected to fail on every kernel since 5.9 (mapcount-based hugetlb reuse)', () => {
  for (const run of [
    'vmsplice() + unmap in child ... with hugetlb (2048 kB)',
    'vmsplice() before fork(), unmap in parent after fork() ... with hugetlb (2048 kB)',
    'vmsplice() + unmap in parent after fork() ... with hugetlb (1048576 kB)',
  ])
    claim(run, from('v5.9'), []);
  for (const k of from('v6.2')) assert.equal(outcome(k, 'latest', 'vmsplice() + unmap in child ... with hugetlb (2048 kB)'), 'xfail', k);
});

test('70e806e4e645 / d042035eaf5f / 4eae4efa2c29: fork() with an iouring fixed buffer passes from 5.9, hugetlb from 5.12', () => {
  claim('fork() with an iouring fixed buffer ... with base page', ['v5.7', 'v5.8'], from('v5.9'));
  claim('fork() with an iouring fixed buffer ... with THP', ['v5.7', 'v5.8'], from('v5.9'));
  claim('fork() with an iouring fixed buffer ... with hugetlb (2048 kB)', ['v5.7', 'v5.8', 'v5.9'], from('v5.12'));
});

test('a7f226604170: R/O pins of a shared anonymous page are reliable from 5.19 (and were on 5.8 through the forced COW)', () => {
  for (const v of ['base page', 'THP', 'PTE-mapped THP', 'hugetlb (2048 kB)']) {
    claim(`R/O GUP pin on R/O-mapped shared page ... with ${v}`, ['v5.7', 'v5.9', 'v5.12', 'v5.18'], ['v5.8', ...from('v5.19')]);
    claim(`R/O GUP-fast pin on R/O-mapped shared page ... with ${v}`, ['v5.7', 'v5.9', 'v5.12', 'v5.18'], ['v5.8', ...from('v5.19')]);
  }
});

test('the seed (84209e87c696) and its mail: the 12 non-anonymous R/O pin cases fail before 6.2, pass from 6.2 (5.8 forced COW aside)', () => {
  for (const pin of ['R/O longterm GUP pin', 'R/O longterm GUP-fast pin'])
    for (const v of ['shared zeropage', 'memfd', 'tmpfile', 'huge zeropage', 'memfd hugetlb (2048 kB)', 'memfd hugetlb (1048576 kB)'])
      claim(
        `${pin} ... with ${v}`,
        before('v6.2').filter((k) => k !== 'v5.8'),
        ['v5.8', ...from('v6.2')],
      );
});

test('3bff7e3f1f16 (5.18) made PMD-THP reuse refcount-based: the THP R/O pin on an exclusive page passed on 5.9-5.17 and fails on 5.18', () => {
  claim('R/O GUP pin on R/O-mapped exclusive page ... with THP', ['v5.18'], ['v5.7', 'v5.8', 'v5.9', 'v5.12', ...from('v5.19')]);
  claim('R/O GUP pin on R/O-mapped exclusive page ... with base page', ['v5.9', 'v5.12', 'v5.18'], ['v5.7', 'v5.8', ...from('v5.19')]);
});

test('Basic COW passes on every kernel, every variant', () => {
  for (const k of names) {
    const p = PROFILES.find((x) => x.name === k)!;
    for (const r of runCow(p, SEED_MACHINE, findEdition('v6.2')!).results)
      if (r.run.startsWith('Basic COW')) assert.equal(r.outcome, 'pass', `${r.run} on ${k}`);
  }
});
