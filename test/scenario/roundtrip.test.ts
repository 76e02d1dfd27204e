/** Printer and JSON form: both round-trip to the same AST (positions aside). */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { stripPositions } from '../../src/scenario/ast.ts';
import { ScenarioError } from '../../src/scenario/errors.ts';
import { fromJson, toJson } from '../../src/scenario/json.ts';
import { parseScenario } from '../../src/scenario/parser.ts';
import { printScenario } from '../../src/scenario/printer.ts';
import { ALL_FORMS } from './fixtures.ts';

const dir = new URL('../../examples/', import.meta.url);
const texts: Array<[string, string]> = [
  ['all-forms', ALL_FORMS],
  ...readdirSync(dir)
    .filter((f) => f.endsWith('.cow'))
    .map((f): [string, string] => [f, readFileSync(new URL(f, dir), 'utf8')]),
];

test('printer: parse(print(ast)) == ast, and printing is idempotent', () => {
  for (const [name, text] of texts) {
    const ast = parseScenario(text, name);
    const printed = printScenario(ast);
    const again = parseScenario(printed, `${name} (printed)`);
    assert.deepEqual(stripPositions(again), stripPositions(ast), name);
    assert.equal(printScenario(again), printed, name);
  }
});

test('JSON form: fromJson(toJson(ast)) == ast', () => {
  for (const [name, text] of texts) {
    const ast = parseScenario(text, name);
    const json = JSON.stringify(toJson(ast), null, 2);
    assert.deepEqual(stripPositions(fromJson(json, `${name}.json`)), stripPositions(ast), name);
  }
});

function jsonError(text: string): ScenarioError {
  try {
    fromJson(text, 'x.json');
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  assert.fail(`no error for ${text}`);
}

test('JSON errors name the JSON path and point at the value', () => {
  const base = toJson(parseScenario('scenario "t"\nprocess A\nA: mmap buf anon private rw 4K\nA: store buf 0x11\n', 'x.cow'));
  const with_ = (f: (j: Record<string, unknown> & { items: Array<Record<string, unknown>> }) => void) => {
    const j = structuredClone(base) as Record<string, unknown> & { items: Array<Record<string, unknown>> };
    f(j);
    return JSON.stringify(j, null, 2);
  };
  const cases: Array<[string, RegExp]> = [
    [with_((j) => (j.items[1].value = 300)), /^\$\.items\[1\]\.value: expected a byte value 0\.\.255/],
    [with_((j) => (j.items[1].op = 'poke')), /^\$\.items\[1\]\.op: expected an operation/],
    [with_((j) => (j.items[0].size = -4096)), /^\$\.items\[0\]\.size: expected a positive integer/],
    [with_((j) => (j.items[0].colour = 'red')), /^\$\.items\[0\]\.colour: expected no key "colour" here/],
    [with_((j) => delete j.items[0].prot), /^\$\.items\[0\]: expected a key "prot"/],
    [
      with_((j) => (j.items[1].range = { name: 'buf', form: 'page', off: 1.5 })),
      /^\$\.items\[1\]\.range\.off: expected a non-negative integer/,
    ],
    [with_((j) => (j.items[1].proc = 'pin')), /^\$\.items\[1\]\.proc: expected a name/],
    [with_((j) => (j.title = 'a\nb')), /^\$\.title: expected a one-line string/],
    [with_((j) => (j.cowlab = 'scenario/9')), /^\$\.cowlab: expected "scenario\/1"/],
  ];
  for (const [text, re] of cases) {
    const e = jsonError(text);
    assert.match(e.message, re);
    assert.ok(e.line > 1 && e.col > 1, e.format());
  }
  // the semantic check runs too, at the JSON position of the field
  const e = jsonError(with_((j) => (j.items[1].range = { name: 'nope', form: 'all' })));
  assert.match(e.message, /unknown mapping 'nope'/);
  assert.ok(e.line > 1);
  // JSON syntax errors
  for (const [text, re, line, col] of [
    ['{"title": "t",\n  "items": [}', /expected a JSON value/, 2, 13],
    ['{"title": "t" "x"}', /expected ',' or '}'/, 1, 15],
    ['{"a": 1, "a": 2}', /duplicate key "a"/, 1, 14],
    ['[1, 2', /expected ',' or ']'/, 1, 6],
    ['', /unexpected end of the JSON text/, 1, 1],
  ] as const) {
    const x = jsonError(text);
    assert.match(x.message, re, text);
    assert.deepEqual([x.line, x.col], [line, col], `${text}: ${x.format()}`);
  }
});
