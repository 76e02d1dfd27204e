import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { main } from '../../src/cli/main.ts';

function cli(args: string[]) {
  let out = '';
  let err = '';
  const code = main(
    args,
    (s) => (out += s),
    (s) => (err += s),
  );
  return { code, out, err };
}

test('bad input: one clear line naming the valid choices, exit 2', () => {
  const cases: Array<[string[], RegExp]> = [
    [['selftest', '--kernel', 'v9.9'], /unknown kernel profile 'v9\.9' \(valid: v6\.1, v6\.2\)/],
    [['selftest', '--suite', 'nope'], /unknown suite 'nope' \(valid: seed, v6\.2, latest\)/],
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
    ['v6.1', 'v6.2'],
  );
});

test('the installed command runs and reports bad input without a stack trace', () => {
  const bin = new URL('../../bin/cowlab.js', import.meta.url).pathname;
  const r = spawnSync(process.execPath, [bin, 'selftest', '--kernel', 'v0'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^cowlab: unknown kernel profile 'v0'/);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
});
