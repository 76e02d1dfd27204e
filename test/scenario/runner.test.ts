/** The runner on small scenarios: verdicts, trace contents, step failures, runtime errors. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend } from '../../src/scenario/backend.ts';
import { InternalError, ScenarioError } from '../../src/scenario/errors.ts';
import { formatTable, formatTrace } from '../../src/scenario/format.ts';
import { fromJson, toJson } from '../../src/scenario/json.ts';
import { profileOrThrow, runOnModel } from '../../src/scenario/load.ts';
import { ModelBackend, machineFromSpec } from '../../src/scenario/model-backend.ts';
import { parseScenario } from '../../src/scenario/parser.ts';
import { printScenario } from '../../src/scenario/printer.ts';
import { runScenario, type StepTrace } from '../../src/scenario/runner.ts';

const run = (body: string, kernel = 'v6.2') => {
  const sc = parseScenario(`scenario "t"\nprocess A\n${body}`, 't.cow');
  return runOnModel(sc, profileOrThrow(kernel), { file: 't.cow' });
};
const steps = (r: ReturnType<typeof run>) => r.trace.filter((e): e is StepTrace => e.type === 'step');

test('a fork then a write: the trace names the COW copy and the page changes', () => {
  const r = run(
    'A: mmap buf anon private rw 4K\nA: store buf 0x11\nA: fork B\nA: store buf 0x22\nexpect A:buf different-page B:buf\nexpect B:buf == 0x11\n',
  );
  assert.equal(r.pass, true);
  const [, store, fork, write] = steps(r);
  assert.deepEqual(store.changes, [{ where: 'A:buf', before: '-', after: 'folio#2 w excl ref=1 map=1' }]);
  assert.ok(fork.changes.some((c) => c.where === 'B:buf' && c.after === 'folio#2 ro ref=2 map=2'));
  assert.ok(write.events.some((e) => e.what === 'COW: copy' && e.proc === 'A' && e.where === 'buf'));
  assert.ok(write.changes.some((c) => c.where === 'A:buf' && /^folio#\d+ w excl ref=1 map=1$/.test(c.after)));
  const text = formatTrace(r);
  assert.match(text, /kernel: COW: copy in A at buf/);
  assert.match(text, /pass: 2 of 2 expectations hold/);
  assert.ok(!text.includes('\u001b['), 'no colour unless asked');
  assert.ok(formatTrace(r, true).includes('\u001b[32mok\u001b[0m'));
});

test('failing expectations make the run fail and say what was seen', () => {
  const r = run('A: mmap buf anon private rw 4K\nA: store buf 0x11\nexpect A:buf == 0x22\nexpect A:buf not present\n');
  assert.equal(r.pass, false);
  assert.deepEqual(
    r.verdicts.map((v) => v.ok),
    [false, false],
  );
  assert.match(r.verdicts[0].detail ?? '', /read 0x11\*4K, expected 0x22/);
});

test('a step failing without ! stops the run; later expectations are not reached', () => {
  const r = run('A: mmap buf anon private r 4K\nA: store buf 0x11\nexpect A:buf == 0x11\n');
  assert.equal(r.pass, false);
  assert.equal(r.stopped?.line, 4);
  assert.deepEqual(
    r.verdicts.map((v) => v.ok),
    [false, null],
  );
  assert.match(formatTrace(r), /not reached/);
});

test('! ERROR: the step must fail with exactly that error', () => {
  assert.equal(run('A: mmap buf anon private r 4K\nA: store buf 0x11 ! SIGSEGV\nexpect A:buf == 0\n').pass, true);
  const wrong = run('A: mmap buf anon private r 4K\nA: store buf 0x11 ! EFAULT\n');
  assert.equal(wrong.pass, false);
  assert.match(wrong.verdicts[0].detail ?? '', /failed with SIGSEGV/);
  const ok = run('A: mmap buf anon private rw 4K\nA: store buf 0x11 ! SIGSEGV\n');
  assert.equal(ok.verdicts[0].detail, 'succeeded');
  // the memlock limit: v6.2 refuses, v6.1 maps the zeropage
  const body = 'A: mmap buf anon private rw 64K\nA: vfio map buf ro -> d ! ENOMEM\n';
  const sc = parseScenario(`scenario "m"\nmachine memlock=32K ipc-lock=off\nprocess A\n${body}`, 'm.cow');
  assert.equal(runOnModel(sc, profileOrThrow('v6.2')).pass, true);
  assert.equal(runOnModel(sc, profileOrThrow('v6.1')).pass, false);
});

test('a step on an address the process does not map is a ScenarioError at the range', () => {
  assert.throws(
    () => run('A: mmap buf anon private rw 8K\nA: munmap buf+4K\nA: store buf 0x11\n'),
    (e: unknown) => e instanceof ScenarioError && e.line === 5 && e.col === 10 && /buf is not mapped in A/.test(e.message),
  );
  assert.throws(
    () => run('A: mmap buf anon private rw 4K\nA: fork B\nB: munmap buf\nexpect B:buf == 0\n'),
    (e: unknown) => e instanceof ScenarioError && e.line === 6 && /not mapped in B: nothing to read/.test(e.message),
  );
  // observations of unmapped memory are fine
  assert.equal(run('A: mmap buf anon private rw 4K\nA: munmap buf\nexpect A:buf not present\n').pass, true);
});

test('page observations: zeropage, THP, swap, pins, counters', () => {
  const r = run(
    [
      'A: mmap z anon private rw 8K',
      'A: load z',
      'expect A:z zeropage',
      'expect A:z not writable',
      'A: mmap t anon private rw 2M thp',
      'A: store t 0x01',
      'expect A:t thp',
      'expect A:t+4K exclusive',
      'A: mmap s anon private rw 4K',
      'A: store s 0x02',
      'A: madvise s pageout',
      'expect A:s swapped',
      'A: mmap p anon private rw 8K',
      'A: io_uring register p -> ring',
      'expect A:p pinned',
      'expect A:p pincount == 1',
      'expect A:p refcount == 1025',
      'expect A VmPin == 8K',
      'A: io_uring unregister ring',
      'expect A VmPin == 0',
      '',
    ].join('\n'),
  );
  assert.deepEqual(
    r.verdicts.filter((v) => !v.ok).map((v) => `${v.text}: ${v.detail}`),
    [],
  );
});

test('the table: rows per expectation, columns per profile, verdicts and declared outcomes', () => {
  const sc = parseScenario(
    'scenario "seed"\noutcome v6.1 fail\noutcome v6.2 pass\nprocess A\nA: mmap m anon private rw 4K\nA: load m\nA: pin m ro longterm -> p\nA: store m 0x22\nexpect pin p matches A:m\n',
    's.cow',
  );
  const runs = ['v6.1', 'v6.2'].map((k) => ({ profile: k, result: runOnModel(sc, profileOrThrow(k)), declared: k === 'v6.2' }));
  const t = formatTable(sc.title, runs);
  assert.match(t, /^\s+9 {2}expect pin p matches A:m +FAIL +ok$/m);
  assert.match(t, /^verdict +fail +pass$/m);
  assert.match(t, /^declared outcome +fail +pass$/m);
});

test('a backend that throws is an internal error at the step, not a ScenarioError', () => {
  const sc = parseScenario('scenario "t"\nprocess A\nA: mmap buf anon private rw 4K\nA: store buf 0x11\n', 't.cow');
  const b = new ModelBackend(profileOrThrow('v6.2'), machineFromSpec(sc.machine));
  const broken: Backend = Object.assign(Object.create(b), {
    store: () => {
      throw new Error('boom');
    },
  });
  assert.throws(
    () => runScenario(sc, broken, { file: 't.cow' }),
    (e: unknown) => e instanceof InternalError && e.line === 4 && /^t\.cow:4:1: internal error: Error: boom$/.test(e.format()),
  );
});

test('machine zeropage=off: an anonymous read fault allocates a fresh exclusive page (pvm_no_zero_page=1 guests)', () => {
  const text = (z: string) =>
    `scenario "z"\nmachine zeropage=${z}\nprocess A\nA: mmap m anon private rw 8K\nA: load m\nexpect A:m zeropage\nexpect A:m different-page A:m\n`;
  const off = parseScenario(text('off'), 'z.cow');
  assert.equal(off.machine.zeroPage, false);
  assert.equal(machineFromSpec(off.machine).zeroPage, false);
  const r = runOnModel(off, profileOrThrow('latest'));
  assert.equal(r.verdicts[0].ok, false, 'no zeropage');
  const on = runOnModel(parseScenario(text('on'), 'z.cow'), profileOrThrow('latest'));
  assert.equal(on.verdicts[0].ok, true, 'the shared zeropage');
  assert.match(printScenario(off), /^machine zeropage=off$/m);
  assert.deepEqual(fromJson(JSON.stringify(toJson(off)), 'z.json').machine, { zeroPage: false });
});
