/** The .cow parser and checker: what they accept, and every kind of error at its exact line:column. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ScenarioError } from '../../src/scenario/errors.ts';
import { parseScenario } from '../../src/scenario/parser.ts';
import { ALL_FORMS } from './fixtures.ts';

const HEAD = 'scenario "t"\nprocess A\n';

function errorOf(text: string): ScenarioError {
  try {
    parseScenario(text, 'x.cow');
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  assert.fail(`no error for:\n${text}`);
}

test('parses the sketch of the issue into steps and expectations', () => {
  const sc = parseScenario(
    `scenario "CVE"
# comment
outcome v6.1 pass   # trailing comment
process A
A: mmap buf anon private rw 4K
A: store buf 0x11
A: fork B
B: pipe P
B: vmsplice buf[:4K] -> P
B: munmap buf
A: store buf 0x22
B: read P 4K -> r
expect r == 0x11
`,
    'cve.cow',
  );
  assert.equal(sc.title, 'CVE');
  assert.deepEqual(
    sc.outcomes.map((o) => [o.profile, o.pass]),
    [['v6.1', true]],
  );
  assert.equal(sc.process, 'A');
  assert.equal(sc.items.length, 9);
  const read = sc.items[7];
  assert.equal(read.kind === 'step' && read.op, 'pipe-read');
  assert.deepEqual(sc.items[0].at, { line: 5, col: 1 });
  const vs = sc.items[4];
  assert.ok(vs.kind === 'step' && vs.op === 'vmsplice');
  assert.deepEqual(vs.range, { name: 'buf', form: 'slice', hi: 4096 });
  assert.deepEqual(vs.pos?.range, { line: 9, col: 13 });
});

test('every statement form parses', () => {
  const sc = parseScenario(ALL_FORMS, 'all.cow');
  assert.equal(sc.machine.memlock, 8 * 1024 * 1024);
  assert.equal(sc.machine.zeroPage, true);
  assert.deepEqual(sc.machine.hugetlb, [
    { size: 2 * 1024 * 1024, pages: 4 },
    { size: 1024 ** 3, pages: 1 },
  ]);
  assert.equal(sc.title, 'all forms "quoted"');
  const ops = new Set(sc.items.flatMap((i) => (i.kind === 'step' ? [i.op] : [])));
  for (const op of ['mmap', 'memfd', 'tmpfile', 'store', 'load', 'read', 'pipe-read', 'fork', 'exit', 'wait', 'munmap'].filter(
    (o) => o !== 'munmap',
  ))
    assert.ok(ops.has(op as never), op);
  const checks = new Set(sc.items.flatMap((i) => (i.kind === 'expect' ? [i.check] : [])));
  assert.deepEqual([...checks].sort(), ['content', 'counter', 'different-page', 'field', 'matches', 'prop', 'same-page', 'user-locked']);
});

/** [text after the header, line, col, message] — lines count the two header lines. */
const ERRORS: Array<[string, number, number, RegExp]> = [
  // lexer
  ['A: mmap buf anon private rw 4K\nA: store buf 0x11 $', 4, 19, /unexpected character '\$'/],
  ['A: mmap buf anon private rw 4Q', 3, 29, /bad number '4Q': expected a decimal or 0x hex number, or a size like 4K/],
  ['A: mmap buf anon private rw 99999999999999999999', 3, 29, /too large/],
  // syntax
  ['A mmap buf', 3, 1, /expected a statement/],
  ['A: frobnicate buf', 3, 4, /expected an operation \(mmap, memfd/],
  ['A: mmap buf anon private rw', 3, 28, /expected a size like 4K, 2M, 1G, found end of line/],
  ['A: mmap buf anon privat rw 4K', 3, 18, /expected 'private' or 'shared', found 'privat'/],
  ['A: mmap buf anon private rwx 4K', 3, 26, /expected a protection \('r', 'rw' or 'none'\)/],
  ['A: mmap buf anon private rw 4K thp thp', 3, 36, /a second THP hint/],
  ['A: mmap buf anon private rw 4K extra', 3, 32, /expected 'thp', 'nothp', 'offset OFF' or end of line/],
  ['A: mmap buf anon hugetlb(4M) private rw 4M', 3, 26, /huge page size 4M: expected 2M or 1G/],
  ['A: mmap buf anon private rw 4K\nA: store buf 256', 4, 14, /byte value 256 is out of range/],
  ['A: mmap buf anon private rw 4K\nA: store buf 4K', 4, 14, /expected a byte value 0\.\.255/],
  ['A: mmap buf anon private rw 4K\nA: store buf[4K 0x11', 4, 17, /expected ':'/],
  ['A: mmap buf anon private rw 4K\nA: store buf 0x11 ! EWHAT', 4, 21, /expected an error name \(EPERM/],
  ['A: mmap buf anon private rw 4K\nexpect A:buf sparkly', 4, 14, /expected '==', '!=', 'same-page', 'different-page', a page property/],
  ['A: mmap buf anon private rw 4K\nexpect A:buf not sparkly', 4, 18, /expected a page property/],
  ['expect 17', 3, 8, /expected what to check/],
  ['expect r', 3, 9, /expected '==' or '!=' after a variable, or VmPin or VmLck after a process/],
  [
    'A: mmap buf anon private rw 4K\nA: read buf -> r\nexpect r == 0x11, 0x22',
    5,
    13,
    /only the last part of a pattern may leave out its length/,
  ],
  ['A: mmap pin anon private rw 4K', 3, 9, /'pin' is a reserved word/],
  ['A: mmap buf anon private rw 4K\nA: pin buf ro -> p', 4, 15, /expected 'longterm'/],
  ['scenario "u', 3, 10, /unterminated string/],
  ['A: mmap buf anon private rw 4K\nscenario "again"', 4, 1, /'scenario' must come before the first step/],
  // header
  ['outcome v9.9 pass', 3, 9, /unknown kernel profile 'v9\.9' \(valid: v5\.7, v5\.8, .*, v6\.1, v6\.2, .*latest\)/],
  ['outcome v6.1 pass\noutcome v6.1 fail', 4, 9, /second outcome line for v6\.1/],
  ['outcome v6.1 maybe', 3, 14, /expected 'pass' or 'fail'/],
  ['machine colour=blue', 3, 9, /expected a machine setting \(thp, huge-zeropage/],
  ['machine swap=maybe', 3, 14, /expected 'on' or 'off'/],
  ['machine swap=on swap=off', 3, 17, /machine setting 'swap' is given twice/],
  ['machine hugetlb=3M:1', 3, 17, /huge page size 3M: expected 2M or 1G/],
  ['machine memlock=100', 3, 9, /memlock=100 is not a multiple of 4K/],
  ['process B', 3, 1, /second 'process' line/],
  // names and lifetimes
  ['B: mmap buf anon private rw 4K', 3, 1, /unknown process 'B'/],
  ['A: store buf 0x11', 3, 10, /unknown mapping 'buf'/],
  ['A: mmap buf anon private rw 4K\nA: mmap buf anon private rw 4K', 4, 9, /'buf' is already defined as a mapping \(line 3\)/],
  ['A: pipe P\nA: store P 0x11', 4, 10, /'P' is a pipe \(line 3\), expected a mapping/],
  ['A: mmap buf anon private rw 4K\nA: vmsplice buf -> Q', 4, 20, /unknown pipe 'Q'/],
  ['A: fork B\nB: exit\nB: pipe P', 5, 1, /process B has exited \(line 4\)/],
  ['A: fork B\nA: wait B', 4, 9, /B has not exited: wait would block forever/],
  ['A: fork B\nB: fork C\nC: exit\nA: wait C', 6, 9, /C is not a child of A/],
  ['A: mmap buf anon private rw 4K\nA: pin buf ro longterm -> p\nA: unpin p\nA: unpin p', 6, 10, /p was already released \(line 5\)/],
  [
    'A: mmap buf anon private rw 4K\nA: fork B\nB: pin buf ro longterm -> p\nB: exit\nexpect pin p == 0',
    7,
    12,
    /p was already released \(line 6\)/,
  ],
  ['A: mmap buf anon private rw 4K\nA: fork B\nA: pin buf ro longterm -> p\nB: unpin p', 6, 10, /p belongs to A, not B/],
  [
    'A: mmap buf anon private rw 4K\nA: io_uring register buf -> b\nA: unpin b',
    5,
    10,
    /'b' is a io_uring pin \(line 4\), expected a pin one/,
  ],
  ['A: pipe P\nA: close P\nA: close P', 5, 10, /P is already closed \(line 4\)/],
  ['A: mmap buf anon private rw 4K\nA: close buf', 4, 10, /expected a pipe or a file/],
  ['A: mmap buf anon private rw 4K ! ENOMEM\nA: store buf 0x11', 4, 10, /unknown mapping 'buf'/],
  ['A: mmap buf anon private rw 4K\nA: read buf -> r\nA: read buf -> r\nexpect q == 0x11', 6, 8, /unknown variable 'q'/],
  // sizes
  ['A: mmap buf anon private rw 0', 3, 29, /mapping size must be positive/],
  ['A: mmap buf anon private rw 5000', 3, 29, /mapping size 5000 is not a multiple of its page size 4K/],
  ['A: mmap buf anon private rw 1G', 3, 29, /too large for a scenario \(at most 64M\)/],
  ['A: mmap buf anon hugetlb(2M) private rw 4K', 3, 41, /not a multiple of its page size 2M/],
  ['A: mmap buf anon private rw 8K\nA: store buf+8K 0x11', 4, 10, /range does not fit: buf is a 8K mapping \(offset 8K, length 4K\)/],
  ['A: mmap buf anon private rw 8K\nA: store buf[4K:4K] 0x11', 4, 10, /empty range buf\[4K:4K\]/],
  ['A: mmap buf anon private rw 8K\nA: store buf[:100] 0x11', 4, 10, /not aligned to 4K/],
  ['A: mmap h anon hugetlb(2M) private rw 2M\nA: munmap h[:4K]', 4, 11, /not aligned to its page size 2M/],
  ['machine hugetlb=2M:1\nA: mmap h anon hugetlb(1G) private rw 1G', 4, 11, /this machine has no 1G huge pages \(machine hugetlb=2M\)/],
  ['A: memfd F 4K\nA: mmap m file F private rw 8K', 4, 29, /mapping does not fit the file: F is 4K, mapping 8K at offset 0/],
  ['A: mmap m anon private rw 4K offset 4K', 3, 37, /'offset' needs a file mapping/],
  ['A: mmap h anon hugetlb(2M) private rw 2M thp', 3, 4, /THP hints do not apply to hugetlb mappings/],
  ['A: mmap buf anon private rw 8K\nA: pin buf ro longterm -> p\nexpect pin p matches A:buf+4K', 5, 22, /p pins 8K, the range is 4K/],
  ['A: mmap a anon private rw 8K\nA: mmap b anon private rw 4K\nexpect A:a same-page A:b', 5, 22, /ranges of different lengths/],
  [
    'A: mmap a anon private rw 8K\nA: mmap b anon private rw 4K\nA: mremap a -> b',
    5,
    16,
    /b \(4K\) is smaller than the range moved \(8K\)/,
  ],
  ['A: pipe P\nA: read P 100 -> r', 4, 11, /pipe read length 100: expected a positive multiple of 4K/],
];

test('every error has the exact line:column and says what was expected', () => {
  const wrong: string[] = [];
  for (const [body, line, col, re] of ERRORS) {
    const e = errorOf(HEAD + body);
    if (!re.test(e.message) || e.line !== line || e.col !== col || e.file !== 'x.cow')
      wrong.push(`${JSON.stringify(body)}: want ${line}:${col} ${re}, got ${e.format()}`);
    assert.match(e.format(), new RegExp(`^x\\.cow:${e.line}:${e.col}: error: `));
  }
  assert.deepEqual(wrong, []);
});

test('missing scenario or process line, and an empty file', () => {
  assert.match(errorOf('process A\n').message, /missing 'scenario "TITLE"' line/);
  assert.match(errorOf('scenario "x"\n').message, /missing 'process NAME' line/);
  const e = errorOf('');
  assert.deepEqual([e.line, e.col], [1, 1]);
});

test('CRLF line ends and tabs are accepted', () => {
  const sc = parseScenario('scenario "t"\r\nprocess A\r\n\tA: mmap buf anon private rw 4K\r\n', 'x.cow');
  assert.equal(sc.items.length, 1);
  assert.deepEqual(sc.items[0].at, { line: 3, col: 2 });
});
