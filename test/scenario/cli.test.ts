/** `cowlab run` and `cowlab convert`: exit codes 0/1/2, messages, JSON output. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli } from '../cli/helpers.ts';

const ex = (f: string) => new URL(`../../examples/${f}`, import.meta.url).pathname;
const bin = new URL('../../bin/cowlab.js', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'cowlab-'));
const file = (name: string, text: string) => {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
};

test('run: 0 when the expectations hold, 1 when one fails; the trace on stdout', () => {
  const ok = cli(['run', ex('cve-2020-29374-vmsplice.cow')]);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /on model v6\.2/);
  assert.match(ok.out, /COW: copy in A at buf/);
  assert.match(ok.out, /pass: 2 of 2 expectations hold/);
  const bad = cli(['run', ex('seed-ro-pin-zeropage.cow'), '--kernel', 'v6.1']);
  assert.equal(bad.code, 1);
  assert.match(bad.out, /expect pin p matches A:mem {2}FAIL/);
});

test('run --kernel all: the table, exit 0 when every verdict is the declared one', () => {
  const r = cli(['run', ex('seed-ro-pin-pagecache.cow'), '--kernel', 'all']);
  assert.equal(r.code, 0, r.out);
  // v5.7 fail, v5.8 pass (forced COW), v5.9 .. v6.1 fail, v6.2 .. latest pass
  assert.match(r.out, /^verdict +fail +pass +fail +fail +fail +fail +fail +pass +pass +pass +pass +pass +pass$/m);
  const undeclared = file(
    'u.cow',
    'scenario "u"\noutcome v6.2 pass\nprocess A\nA: mmap m anon private rw 4K\nA: load m\nA: pin m ro longterm -> p\nA: store m 1\nexpect pin p matches A:m\n',
  );
  assert.equal(cli(['run', undeclared, '--kernel', 'v6.1', 'v6.2']).code, 1, 'v6.1 has no outcome line: expected to pass, fails');
});

test('run --json: one result object, or one per kernel', () => {
  const one = JSON.parse(cli(['run', ex('fork-pinned-page.cow'), '--json']).out);
  assert.equal(one.kernel, 'v6.2');
  assert.equal(one.pass, true);
  assert.ok(
    one.trace.some((e: { type: string; events?: Array<{ what: string }> }) =>
      e.events?.some((x) => x.what === 'fork: copy maybe-pinned page'),
    ),
  );
  const all = JSON.parse(cli(['run', ex('seed-memlock-cost.cow'), '--json', '--kernel', 'all']).out);
  assert.deepEqual(
    all.runs.map((r: { kernel: string; pass: boolean; declared: boolean }) => [r.kernel, r.pass, r.declared]),
    [
      ['v5.7', true, true],
      ['v5.8', false, false],
      ['v5.9', true, true],
      ['v5.12', true, true],
      ['v5.18', true, true],
      ['v5.19', true, true],
      ['v6.1', true, true],
      ['v6.2', false, false],
      ['v6.5', false, false],
      ['v6.8', false, false],
      ['v6.13', false, false],
      ['v6.15', false, false],
      ['latest', false, false],
    ],
  );
});

test('bad input: FILE:LINE:COL: error: MESSAGE and exit 2, nothing on stdout', () => {
  const cases: Array<[string[], RegExp]> = [
    [['run', file('s.cow', 'scenario "x"\nprocess A\nA: fly away\n')], /s\.cow:3:4: error: expected an operation/],
    [
      ['run', file('u.cow', 'scenario "x"\nprocess A\nA: mmap b anon private rw 4K\nA: munmap b\nA: load b\n')],
      /u\.cow:5:9: error: b is not mapped in A/,
    ],
    [['run', file('j.json', '{"title": 1}')], /j\.json:1:11: error: \$\.title: expected a one-line string/],
    [['run', join(tmp, 'missing.cow')], /^cowlab: cannot read '.*missing\.cow': no such file$/],
    [
      ['run', ex('cve-2020-29374-vmsplice.cow'), '--kernel', 'v9'],
      /unknown kernel profile 'v9' \(valid: v5\.7, .*, latest; add backports with \+SWITCH\)/,
    ],
    [['run'], /missing required argument 'file'/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err.trim(), re);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.equal(r.out, '');
  }
});

test('convert: canonical text and JSON', () => {
  const j = cli(['convert', ex('cve-2020-29374-vmsplice.cow')]);
  assert.equal(j.code, 0);
  const json = JSON.parse(j.out);
  assert.equal(json.cowlab, 'scenario/1');
  const back = cli(['convert', file('c.json', j.out), '--to', 'cow']);
  assert.match(back.out, /^scenario "CVE-2020-29374/);
  assert.match(back.out, /^B: vmsplice buf -> P$/m);
});

test('the installed command: exit codes 0, 1, 2 and no stack trace', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  const ok = run(['run', ex('swap-pin-loss.cow')]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(!ok.stdout.includes('\u001b['), 'no colour when stdout is not a terminal');
  assert.equal(run(['run', ex('hugetlb-vmsplice-leak.cow')]).status, 1);
  const bad = run(['run', file('b.cow', 'scenario "b"\nprocess A\nA: store nothing 0x11\n')]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /b\.cow:3:10: error: unknown mapping 'nothing'/);
  assert.doesNotMatch(bad.stderr, /at .*\.ts:\d+/);
});
