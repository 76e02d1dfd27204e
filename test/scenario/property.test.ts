/**
 * Property: for any text — generated from the grammar, or an example mutated at random — parsing and
 * running either succeed or throw a ScenarioError whose line:column lies inside the text. Never
 * another exception, never a hang (the test has a time limit).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { ScenarioError } from '../../src/scenario/errors.ts';
import { fromJson, toJson } from '../../src/scenario/json.ts';
import { profileOrThrow, runOnModel } from '../../src/scenario/load.ts';
import { parseScenario } from '../../src/scenario/parser.ts';
import { ALL_FORMS } from './fixtures.ts';

const dir = new URL('../../examples/', import.meta.url);
const EXAMPLES = [
  ALL_FORMS,
  ...readdirSync(dir)
    .filter((f) => f.endsWith('.cow'))
    .map((f) => readFileSync(new URL(f, dir), 'utf8')),
];
const PROFILES = [profileOrThrow('v6.1'), profileOrThrow('v6.2')];

/** Parse and run on both profiles; returns 'ok' or 'error', throws anything else. */
function attempt(text: string): 'ok' | 'error' {
  try {
    const sc = parseScenario(text, 'p.cow');
    for (const p of PROFILES) runOnModel(sc, p, { file: 'p.cow' });
    return 'ok';
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    const lines = text.split('\n');
    assert.ok(e.line >= 1 && e.line <= Math.max(1, lines.length), `line ${e.line} outside the text: ${e.format()}`);
    const len = (lines[e.line - 1] ?? '').length;
    assert.ok(e.col >= 1 && e.col <= len + 1, `column ${e.col} outside line ${e.line} (${len} chars): ${e.format()}`);
    assert.equal(e.file, 'p.cow');
    return 'error';
  }
}

// ----- scenarios from the grammar, mostly well-formed

const SIZES = ['4K', '8K', '16K', '2M', '4096', '0', '3K'];
const BYTES = ['0x00', '0x11', '0x22', '0xff', '7'];
const PROTS = ['r', 'rw', 'none'];
const ADV = ['dontneed', 'pageout', 'dontfork', 'dofork', 'hugepage', 'nohugepage', 'collapse'];
const ERRS = ['', '', '', ' ! EFAULT', ' ! SIGSEGV', ' ! ENOMEM', ' ! EINVAL'];

const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length];

/** Builds a scenario from a list of choices, referring mostly to names that exist. */
function build(choices: number[][]): string {
  const lines = ['scenario "gen"', 'process A'];
  const procs = ['A'];
  const maps: string[] = [];
  const pipes: string[] = [];
  const pins: string[] = [];
  const files: string[] = [];
  const vars: string[] = [];
  let n = 0;
  const any = (xs: string[], i: number, fallback: string) => (xs.length ? pick(xs, i) : fallback);
  const range = (i: number, j: number) => {
    const m = any(maps, i, 'nomap');
    return pick([m, `${m}+4K`, `${m}[:4K]`, `${m}[4K:]`, `${m}[4K:8K]`, m, m], j);
  };
  for (const [k, a, b, c, d] of choices) {
    const p = pick(procs, a);
    const err = pick(ERRS, d);
    switch (k % 22) {
      case 0:
      case 1: {
        const name = `m${n++}`;
        const src = pick(['anon', 'anon', 'anon hugetlb(2M)', 'memfd', 'tmpfile', files.length ? `file ${pick(files, c)}` : 'anon'], b);
        const sz = src.includes('hugetlb') ? '2M' : pick(SIZES, c);
        lines.push(
          `${p}: mmap ${name} ${src} ${pick(['private', 'shared'], d)} ${pick(PROTS, b + c)} ${sz}${pick(['', '', ' thp', ' nothp'], a)}${err}`,
        );
        if (!err) maps.push(name);
        break;
      }
      case 2:
      case 3:
        lines.push(`${p}: store ${range(b, c)} ${pick(BYTES, d)}${err}`);
        break;
      case 4:
        lines.push(`${p}: load ${range(b, c)}${err}`);
        break;
      case 5: {
        const v = `r${n++}`;
        lines.push(`${p}: read ${range(b, c)} -> ${v}${err}`);
        if (!err) vars.push(v);
        break;
      }
      case 6: {
        const child = `P${n++}`;
        lines.push(`${p}: fork ${child}`);
        procs.push(child);
        break;
      }
      case 7:
        if (p !== 'A') {
          lines.push(`${p}: exit`);
          procs.splice(procs.indexOf(p), 1);
          for (const pin of [...pins]) if (pin.startsWith(`${p}_`)) pins.splice(pins.indexOf(pin), 1);
        }
        break;
      case 8:
        lines.push(`${p}: munmap ${range(b, c)}`);
        break;
      case 9:
        lines.push(`${p}: mprotect ${range(b, c)} ${pick(PROTS, d)}${err}`);
        break;
      case 10:
        lines.push(`${p}: madvise ${range(b, c)} ${pick(ADV, d)}${err}`);
        break;
      case 11: {
        const name = `Q${n++}`;
        lines.push(`${p}: pipe ${name}`);
        pipes.push(name);
        break;
      }
      case 12:
        lines.push(`${p}: vmsplice ${range(b, c)} -> ${any(pipes, d, 'nopipe')}${err}`);
        break;
      case 13: {
        const v = `r${n++}`;
        lines.push(`${p}: read ${any(pipes, b, 'nopipe')}${pick(['', ' 4K', ' 8K'], c)} -> ${v}`);
        vars.push(v);
        break;
      }
      case 14: {
        const name = `${p}_p${n++}`;
        const op = pick(
          [
            `pin ${range(b, c)} ${pick(['ro', 'rw'], d)} longterm${pick(['', ' fast'], a)}`,
            `io_uring register ${range(b, c)}`,
            `vfio map ${range(b, c)} ${pick(['ro', 'rw'], d)}`,
          ],
          b + d,
        );
        lines.push(`${p}: ${op} -> ${name}${err}`);
        if (!err) pins.push(name);
        break;
      }
      case 15: {
        if (!pins.length) break;
        const pin = pick(pins, b);
        const owner = pin.split('_')[0];
        if (!procs.includes(owner)) break;
        lines.push(`expect pin ${pin} ${pick(['matches', '== 0x11', 'not matches'], c)}${c % 3 === 1 ? '' : ` ${owner}:${range(d, 0)}`}`);
        break;
      }
      case 16:
        lines.push(
          `expect ${p}:${range(b, c)} ${pick(['present', 'not present', 'exclusive', 'swapped', 'zeropage', 'thp', 'writable', 'pinned', 'refcount == 1', 'mapcount >= 1', 'pincount == 0', '== 0x11', `same-page A:${range(b, c)}`], d)}`,
        );
        break;
      case 17:
        lines.push(`expect ${any(vars, b, 'novar')} ${pick(['==', '!='], c)} ${pick(BYTES, d)}`);
        break;
      case 18:
        lines.push(`expect ${p} ${pick(['VmPin', 'VmLck'], b)} ${pick(['==', '>=', '<'], c)} ${pick(SIZES, d)}`);
        break;
      case 19: {
        const name = `F${n++}`;
        lines.push(`${p}: ${pick(['memfd', 'tmpfile'], b)} ${name} ${pick(SIZES, c)}`);
        files.push(name);
        break;
      }
      case 20:
        lines.push(
          `${p}: ${pick(['pwrite', 'pread'], b)} ${any(files, c, 'nofile')}${pick(['', '[:4K]', '+4K'], d)} ${b % 2 ? '-> x' : '0x33'}`,
        );
        break;
      default:
        lines.push(
          `${p}: ${pick(['clear_refs softdirty', `mremap ${range(b, c)} -> ${any(maps, d, 'nomap')}`, `odirect read ${any(files, c, 'nofile')} -> ${range(b, d)}`], a)}`,
        );
    }
  }
  return `${lines.join('\n')}\n`;
}

const choice = fc.tuple(fc.nat(40), fc.nat(40), fc.nat(40), fc.nat(40), fc.nat(40)).map((t) => [...t]);

test('property: grammar-built scenarios parse and run, or fail with a ScenarioError inside the text', { timeout: 60_000 }, () => {
  const seen = { ok: 0, error: 0 };
  fc.assert(
    fc.property(fc.array(choice, { maxLength: 25 }), (cs) => {
      seen[attempt(build(cs))]++;
    }),
    { numRuns: 200, seed: 20240601 },
  );
  assert.ok(seen.ok >= 20, `too few valid scenarios: ${JSON.stringify(seen)}`);
  if (process.env.COWLAB_SHOW) console.log(seen);
});

// ----- examples mutated at random

const TOKENS = [
  'A',
  'B',
  ':',
  '->',
  '+',
  '[',
  ']',
  '(',
  ')',
  '"',
  '#',
  '!',
  '4K',
  '0x11',
  '2M',
  'buf',
  'expect',
  'pin',
  'mmap',
  '==',
  ' ',
  '\n',
  '\t',
  'é',
  '\u0000',
];
const mutation = fc.oneof(
  fc.tuple(fc.constant('delete'), fc.nat(), fc.nat(8)),
  fc.tuple(fc.constant('insert'), fc.nat(), fc.constantFrom(...TOKENS)),
  fc.tuple(fc.constant('swap-lines'), fc.nat(), fc.nat()),
  fc.tuple(fc.constant('drop-line'), fc.nat(), fc.nat()),
  fc.tuple(fc.constant('number'), fc.nat(), fc.constantFrom('0', '1', '5000', '64M', '1G', '256', '0x1000', '99999999999999999999')),
);

function mutate(text: string, ms: Array<[string, number, unknown]>): string {
  let t = text;
  for (const [kind, at, x] of ms) {
    const i = t.length ? at % t.length : 0;
    if (kind === 'delete') t = t.slice(0, i) + t.slice(i + 1 + (x as number));
    else if (kind === 'insert') t = t.slice(0, i) + String(x) + t.slice(i);
    else if (kind === 'number')
      t = t.replace(/\b(?:\d+[KMG]?|0x[0-9a-f]+)\b/g, (m, off: number) => (off >= i && off < i + 40 ? String(x) : m));
    else {
      const lines = t.split('\n');
      const a = at % lines.length;
      const b = (x as number) % lines.length;
      if (kind === 'swap-lines') [lines[a], lines[b]] = [lines[b], lines[a]];
      else lines.splice(a, 1);
      t = lines.join('\n');
    }
  }
  return t;
}

test('property: mutated examples parse and run, or fail with a ScenarioError inside the text', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(fc.nat(EXAMPLES.length - 1), fc.array(mutation, { minLength: 1, maxLength: 4 }), (e, ms) => {
      attempt(mutate(EXAMPLES[e], ms as Array<[string, number, unknown]>));
    }),
    { numRuns: 200, seed: 20240602 },
  );
});

test('property: any string at all is a ScenarioError or a scenario', { timeout: 30_000 }, () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (s) => {
      attempt(s);
      attempt(`scenario "x"\nprocess A\n${s}`);
    }),
    { numRuns: 200, seed: 20240603 },
  );
});

test('property: mutated JSON forms load or fail with a ScenarioError', { timeout: 30_000 }, () => {
  const json = JSON.stringify(toJson(parseScenario(EXAMPLES[1], 'e.cow')), null, 1);
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
      const text = mutate(json, ms as Array<[string, number, unknown]>);
      try {
        fromJson(text, 'p.json');
      } catch (e) {
        if (!(e instanceof ScenarioError)) throw e;
        assert.ok(e.line >= 1 && e.line <= text.split('\n').length, e.format());
      }
    }),
    { numRuns: 200, seed: 20240604 },
  );
});
