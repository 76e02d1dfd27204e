import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { cli } from './helpers.ts';

test('bad input: one clear line naming the valid choices, exit 2', () => {
  const cases: Array<[string[], RegExp]> = [
    [
      ['selftest', '--kernel', 'v9.9'],
      /unknown kernel profile 'v9\.9' \(valid: v5\.7, .*v6\.1, v6\.2, .*latest; add backports with \+SWITCH\)/,
    ],
    [['selftest', '--kernel', 'v6.1+nosuch'], /unknown switch 'nosuch' in 'v6\.1\+nosuch' \(valid: thp-cow-split, /],
    [['selftest', '--kernel', 'v5.9+gup-force-cow'], /gup-force-cow conflicts with wp-reuse-refcount/],
    [['diff', '--kernel', 'v6.1'], /give --kernel exactly twice \(got 1\)/],
    [['diff'], /required option '--kernel <profile\.\.\.>' not specified/],
    [['bisect', 'no such case text'], /no case of suite 'seed' matches 'no such case text'/],
    [['bisect', 'zeropage', '--kernels', 'v6.1,v7'], /unknown kernel profile 'v7'/],
    [['selftest', '--suite', 'nope'], /unknown suite 'nope' \(valid: seed, v6\.2, v6\.18, latest\)/],
    [['selftest', '--machine', 'swap=maybe'], /swap=maybe: expected on or off/],
    [['selftest', '--machine', 'colour=blue'], /unknown key 'colour'/],
    [['selftest', '--set', 'no-such-switch=on'], /unknown switch 'no-such-switch'/],
    [['selftest', '--kernel', 'v6.1', '--set', 'gup-unshare-noanon=on'], /gup-unshare-noanon requires unshare-fault-noanon/],
    [['selftest', '--frobnicate'], /unknown option '--frobnicate'/],
    [['nosuchcommand'], /unknown command 'nosuchcommand'/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, re);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.equal(r.out, '');
  }
});

test('switch overrides build a profile: v6.1 plus the seed passes the seed cases', () => {
  const r = cli([
    'selftest',
    '--kernel',
    'v6.1',
    '--set',
    'unshare-fault-noanon=on,gup-unshare-noanon=on',
    '--machine',
    'hugetlb=2048kB:2',
  ]);
  assert.match(r.out, /ok \d+ Longterm R\/O pin is reliable/);
  assert.doesNotMatch(r.out, /not ok \d+ Longterm R\/O pin/);
});

test('profiles lists switches with commits; --json parses', () => {
  const r = cli(['profiles', '--json']);
  const j = JSON.parse(r.out);
  assert.ok(j.switches['gup-unshare-noanon'].commits[0].startsWith('84209e87c696'));
  assert.deepEqual(
    j.profiles.map((p: { name: string }) => p.name),
    ['v5.7', 'v5.8', 'v5.9', 'v5.12', 'v5.18', 'v5.19', 'v6.1', 'v6.2', 'v6.5', 'v6.8', 'v6.13', 'v6.15', 'latest'],
  );
  assert.equal(j.switches['gup-force-cow'].until.split(' ')[0], 'v5.9');
});

test('a kernel spec with backports: v6.1+seed passes the seed cases and turns on what the seed requires', () => {
  const r = cli(['selftest', '--kernel', 'v6.1+seed']);
  assert.equal((r.out.match(/^ok 1(5[1-9]|6[0-2]) Longterm R\/O pin is reliable$/gm) ?? []).length, 12);
  const byCommit = cli(['selftest', '--kernel', 'v6.1+84209e87c696']);
  assert.equal(byCommit.out, r.out);
});

test('diff: the cases that change from v6.1 to v6.2 and the switch responsible; exit 1 when any changes', () => {
  const r = cli(['diff', '--kernel', 'v6.1', '--kernel', 'v6.2']);
  assert.equal(r.code, 1);
  assert.match(
    r.out,
    /^v6\.1 -> v6\.2\nswitches that differ: mprotect-upgrade-anon-pmd \(c27f479ef542; v6\.2\), unshare-fault-noanon \(8d6a0ac09a16; v6\.2\), gup-unshare-noanon \(84209e87c696; v6\.2\), hugetlb-no-force-write/,
  );
  assert.match(r.out, /12 cases change:/);
  const lines = r.out.split('\n').filter((l) => /^ +\d+ /.test(l));
  assert.equal(lines.length, 12);
  for (const l of lines) assert.match(l, /R\/O longterm GUP(-fast)? pin \.\.\. with .*not ok -> ok {2}\[gup-unshare-noanon\]$/);
  const same = cli(['diff', '--kernel', 'v6.1+seed', '--kernel', 'v6.2', '--json']);
  assert.equal(same.code, 0);
  assert.deepEqual(JSON.parse(same.out).changes, []);
  assert.deepEqual(JSON.parse(same.out).differing, ['mprotect-upgrade-anon-pmd', 'hugetlb-no-force-write']);
});

test('bisect: the first profile where a case passes, and the switch that made it pass', () => {
  const r = cli(['bisect', 'vmsplice() + unmap in child ... with base page', '--suite', 'v6.2', '--json']);
  assert.equal(r.code, 0);
  const [row] = JSON.parse(r.out);
  assert.equal(row.run, 'vmsplice() + unmap in child ... with base page');
  assert.equal(row.outcomes['v5.7'], 'fail');
  assert.equal(row.firstPass, 'v5.8');
  assert.deepEqual(row.switches, ['gup-force-cow']);
  const text = cli(['bisect', '151']);
  assert.match(text.out, /^151 R\/O longterm GUP pin \.\.\. with shared zeropage\n/);
  assert.match(text.out, /passes from v6\.2 on: gup-unshare-noanon \(84209e87c696; v6\.2\)/);
});

test('the installed command runs and reports bad input without a stack trace', () => {
  const bin = new URL('../../bin/cowlab.js', import.meta.url).pathname;
  const r = spawnSync(process.execPath, [bin, 'selftest', '--kernel', 'v0'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^cowlab: unknown kernel profile 'v0'/);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
});
