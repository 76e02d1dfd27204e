/**
 * The JSON form of a scenario: the AST without positions, with `"cowlab": "scenario/1"`. The
 * loader parses JSON itself (to know the line:column of every value), checks the schema, reporting
 * the JSON path of a bad value (`$.items[3].range.off: expected ...`) at that value's position, then
 * runs the same semantic check as the .cow parser.
 */
import { ADVICES, COUNTERS, ERRORS, FIELDS, type Item, type MachineSpec, type Pos, PROPS, type Scenario, stripPositions } from './ast.ts';
import { check } from './check.ts';
import { fail } from './errors.ts';
import { MAX_NUMBER } from './lexer.ts';
import { RESERVED } from './parser.ts';

export const JSON_FORMAT = 'scenario/1';

/** The JSON form (an object ready for JSON.stringify). */
export function toJson(sc: Scenario): Record<string, unknown> {
  return { cowlab: JSON_FORMAT, ...stripPositions(sc) };
}

// ---------------------------------------------------------------------------------------------
// a JSON parser that remembers where each value is

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function parseJson(text: string, file: string, where: Map<string, Pos>): Json {
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const pos = (): Pos => ({ line, col: i - lineStart + 1 });
  const err = (msg: string): never => fail(file, pos(), msg);
  const ws = () => {
    for (;;) {
      const c = text[i];
      if (c === '\n') {
        i++;
        line++;
        lineStart = i;
      } else if (c === ' ' || c === '\t' || c === '\r') i++;
      else break;
    }
  };
  const value = (path: string, depth: number): Json => {
    if (depth > 64) err('JSON nested too deeply');
    ws();
    where.set(path, pos());
    const c = text[i];
    if (c === '{') {
      i++;
      const o: { [k: string]: Json } = {};
      ws();
      if (text[i] === '}') {
        i++;
        return o;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') err('expected a "key" in the JSON object');
        const k = str();
        ws();
        if (text[i] !== ':') err("expected ':' after the key");
        i++;
        if (Object.hasOwn(o, k)) err(`duplicate key "${k}"`);
        o[k] = value(`${path}.${k}`, depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return o;
        }
        err("expected ',' or '}' in the JSON object");
      }
    }
    if (c === '[') {
      i++;
      const a: Json[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return a;
      }
      for (;;) {
        a.push(value(`${path}[${a.length}]`, depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return a;
        }
        err("expected ',' or ']' in the JSON array");
      }
    }
    if (c === '"') return str();
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (m?.[0]) {
      i += m[0].length;
      return Number(m[0]);
    }
    for (const [w, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const)
      if (text.startsWith(w, i)) {
        i += w.length;
        return v;
      }
    return err(i >= text.length ? 'unexpected end of the JSON text' : 'expected a JSON value');
  };
  const str = (): string => {
    i++;
    let s = '';
    for (;;) {
      const c = text[i];
      if (c === undefined || c === '\n') err('unterminated JSON string');
      if (c === '"') {
        i++;
        return s;
      }
      if (c === '\\') {
        const e = text[i + 1];
        const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e in simple) {
          s += simple[e];
          i += 2;
        } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          s += String.fromCharCode(Number.parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else err('bad escape in JSON string');
        continue;
      }
      if (c < ' ') err('control character in JSON string');
      s += c;
      i++;
    }
  };
  const v = value('$', 0);
  ws();
  if (i < text.length) err('unexpected text after the JSON value');
  return v;
}

// ---------------------------------------------------------------------------------------------
// the schema

type Ty =
  | 'name'
  | 'size'
  | 'off'
  | 'byte'
  | 'int'
  | 'bool'
  | 'range'
  | 'procrange'
  | 'prot'
  | 'sharing'
  | 'advice'
  | 'source'
  | 'hint'
  | 'huge'
  | 'error'
  | 'subject'
  | 'pattern'
  | 'eqcmp'
  | 'cmp'
  | 'prop'
  | 'field'
  | 'counter';

/** field -> type; a trailing '?' marks optional fields */
const OPS: Record<string, Record<string, string>> = {
  mmap: { name: 'name', source: 'source', sharing: 'sharing', prot: 'prot', size: 'size', offset: 'off?', hint: 'hint?' },
  memfd: { name: 'name', size: 'size', hugetlb: 'huge?' },
  tmpfile: { name: 'name', size: 'size' },
  store: { range: 'range', value: 'byte' },
  load: { range: 'range' },
  read: { range: 'range', into: 'name' },
  'pipe-read': { pipe: 'name', len: 'size?', into: 'name' },
  fork: { child: 'name' },
  exit: { status: 'int' },
  wait: { child: 'name' },
  munmap: { range: 'range' },
  mprotect: { range: 'range', prot: 'prot' },
  madvise: { range: 'range', advice: 'advice' },
  mremap: { range: 'range', to: 'name' },
  pipe: { name: 'name' },
  vmsplice: { range: 'range', pipe: 'name' },
  close: { name: 'name' },
  'uring-register': { range: 'range', name: 'name' },
  'uring-write': { buf: 'name', file: 'range' },
  'uring-unregister': { buf: 'name' },
  'odirect-read': { file: 'range', range: 'range' },
  'odirect-write': { range: 'range', file: 'range' },
  pin: { range: 'range', write: 'bool', fast: 'bool', name: 'name' },
  unpin: { pin: 'name' },
  'vfio-map': { range: 'range', write: 'bool', name: 'name' },
  'vfio-unmap': { dma: 'name' },
  pread: { file: 'range', into: 'name' },
  pwrite: { file: 'range', value: 'byte' },
  'clear-softdirty': {},
};

const CHECKS: Record<string, Record<string, string>> = {
  content: { subject: 'subject', cmp: 'eqcmp', pattern: 'pattern' },
  matches: { pin: 'name', target: 'procrange', not: 'bool?' },
  'same-page': { a: 'procrange', b: 'procrange' },
  'different-page': { a: 'procrange', b: 'procrange' },
  prop: { target: 'procrange', prop: 'prop', not: 'bool?' },
  field: { target: 'procrange', field: 'field', cmp: 'cmp', value: 'int' },
  counter: { proc: 'name', counter: 'counter', cmp: 'cmp', value: 'off' },
  'user-locked': { cmp: 'cmp', value: 'off' },
};

const NAME_RE = /^[A-Za-z_](?:[A-Za-z0-9_]|[-.](?=[A-Za-z0-9_]))*$/;
const HUGE = [2 * 1024 ** 2, 1024 ** 3];
const ENUMS: Partial<Record<Ty, readonly string[]>> = {
  prot: ['none', 'r', 'rw'],
  sharing: ['private', 'shared'],
  advice: ADVICES,
  hint: ['thp', 'nothp'],
  error: ERRORS,
  eqcmp: ['==', '!='],
  cmp: ['==', '!=', '<', '<=', '>', '>='],
  prop: PROPS,
  field: FIELDS,
  counter: COUNTERS,
};

/** Loads the JSON form: schema errors name the JSON path and point at the value. */
export function fromJson(text: string, file = '<input>'): Scenario {
  const where = new Map<string, Pos>();
  const root = parseJson(text, file, where);
  const at = (path: string): Pos => where.get(path) ?? { line: 1, col: 1 };
  const bad = (path: string, what: string): never => fail(file, at(path), `${path}: expected ${what}`);
  const isObj = (v: Json): v is { [k: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);
  const obj = (v: Json, path: string, what = 'an object'): { [k: string]: Json } => (isObj(v) ? v : bad(path, what));
  const int = (v: Json, path: string, min: number, what: string): number =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= MAX_NUMBER ? v : bad(path, what);

  const typed = (ty: Ty, v: Json, path: string): unknown => {
    const e = ENUMS[ty];
    if (e) return typeof v === 'string' && e.includes(v) ? v : bad(path, `one of ${e.map((x) => JSON.stringify(x)).join(', ')}`);
    switch (ty) {
      case 'name':
        return typeof v === 'string' && NAME_RE.test(v) && !RESERVED.has(v)
          ? v
          : bad(path, 'a name (letters, digits, _, - and ., not a reserved word)');
      case 'size':
        return int(v, path, 1, 'a positive integer number of bytes');
      case 'off':
        return int(v, path, 0, 'a non-negative integer number of bytes');
      case 'int':
        return int(v, path, 0, 'a non-negative integer');
      case 'byte':
        return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 255 ? v : bad(path, 'a byte value 0..255');
      case 'bool':
        return typeof v === 'boolean' ? v : bad(path, 'true or false');
      case 'huge':
        return typeof v === 'number' && HUGE.includes(v) ? v : bad(path, `a huge page size (${HUGE.join(' or ')})`);
      case 'range': {
        const o = obj(v, path, 'a range object {"name", "form": "all"|"page"|"slice", ...}');
        const form = o.form;
        if (form === 'all') return fields(o, path, { name: 'name', form: 'form' });
        if (form === 'page') return fields(o, path, { name: 'name', form: 'form', off: 'off' });
        if (form === 'slice') return fields(o, path, { name: 'name', form: 'form', lo: 'off?', hi: 'off?' });
        return bad(`${path}.form`, '"all", "page" or "slice"');
      }
      case 'procrange':
        return fields(obj(v, path), path, { proc: 'name', range: 'range' });
      case 'source': {
        const o = obj(v, path, 'a source object {"kind": "anon"|"memfd"|"tmpfile"|"file", ...}');
        if (o.kind === 'anon' || o.kind === 'memfd') return fields(o, path, { kind: 'form', hugetlb: 'huge?' });
        if (o.kind === 'tmpfile') return fields(o, path, { kind: 'form' });
        if (o.kind === 'file') return fields(o, path, { kind: 'form', file: 'name' });
        return bad(`${path}.kind`, '"anon", "memfd", "tmpfile" or "file"');
      }
      case 'subject': {
        const o = obj(v, path, 'a subject object {"var"} or {"pin"} or {"mem"}');
        if ('var' in o) return fields(o, path, { var: 'name' });
        if ('pin' in o) return fields(o, path, { pin: 'name' });
        if ('mem' in o) return fields(o, path, { mem: 'procrange' });
        return bad(path, 'a subject object {"var"} or {"pin"} or {"mem"}');
      }
      case 'pattern': {
        if (!Array.isArray(v) || !v.length) return bad(path, 'a non-empty array of {"value", "len"?}');
        return v.map((r, i) => {
          const p = fields(obj(r, `${path}[${i}]`), `${path}[${i}]`, { value: 'byte', len: 'size?' }) as { len?: number };
          if (p.len === undefined && i !== v.length - 1) bad(`${path}[${i}]`, 'a "len" (only the last part may leave it out)');
          return p;
        });
      }
      default:
        return v;
    }
  };
  /** Copies the listed fields with their types; unknown keys are errors. 'form' = copy as is. */
  const fields = (o: { [k: string]: Json }, path: string, spec: Record<string, string>, extra: string[] = []): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o))
      if (!(k in spec) && !extra.includes(k))
        bad(`${path}.${k}`, `no key "${k}" here (keys: ${[...Object.keys(spec), ...extra].join(', ')})`);
    for (const [k, t] of Object.entries(spec)) {
      const opt = t.endsWith('?');
      const ty = (opt ? t.slice(0, -1) : t) as Ty | 'form';
      if (!(k in o)) {
        if (!opt) bad(path, `a key "${k}"`);
        continue;
      }
      out[k] = ty === 'form' ? o[k] : typed(ty, o[k], `${path}.${k}`);
    }
    return out;
  };
  const posMap = (path: string, keys: string[]): Record<string, Pos> => {
    const m: Record<string, Pos> = {};
    for (const k of keys) if (where.has(`${path}.${k}`)) m[k] = at(`${path}.${k}`);
    return m;
  };

  const top = obj(root, '$', 'a scenario object');
  if (top.cowlab !== undefined && top.cowlab !== JSON_FORMAT) bad('$.cowlab', JSON.stringify(JSON_FORMAT));
  const known = ['cowlab', 'title', 'outcomes', 'machine', 'process', 'items'];
  for (const k of Object.keys(top)) if (!known.includes(k)) bad(`$.${k}`, `no key "${k}" here (keys: ${known.join(', ')})`);
  if (typeof top.title !== 'string' || [...top.title].some((c) => c < ' ')) bad('$.title', 'a one-line string');
  const process = typed('name', top.process ?? bad('$', 'a key "process"'), '$.process') as string;
  const outcomes = (Array.isArray(top.outcomes) ? top.outcomes : top.outcomes === undefined ? [] : bad('$.outcomes', 'an array')).map(
    (o, i) => {
      const p = `$.outcomes[${i}]`;
      const x = obj(o, p);
      const f = fields(x, p, { profile: 'name', pass: 'bool' }) as { profile: string; pass: boolean };
      return { ...f, at: at(p), pos: posMap(p, ['profile']) };
    },
  );
  const m = top.machine === undefined ? {} : obj(top.machine, '$.machine');
  const machine = fields(
    m,
    '$.machine',
    {
      thp: 'bool?',
      hugeZeropage: 'bool?',
      zeroPage: 'bool?',
      swap: 'bool?',
      gupTest: 'bool?',
      softDirty: 'bool?',
      memlock: 'off?',
      ipcLock: 'bool?',
    },
    ['hugetlb'],
  ) as MachineSpec;
  if (m.hugetlb !== undefined) {
    const hs = Array.isArray(m.hugetlb) ? m.hugetlb : bad('$.machine.hugetlb', 'an array of {"size", "pages"}');
    machine.hugetlb = hs.map(
      (h, i) =>
        fields(obj(h, `$.machine.hugetlb[${i}]`), `$.machine.hugetlb[${i}]`, { size: 'huge', pages: 'int' }) as {
          size: number;
          pages: number;
        },
    );
  }
  if (!Array.isArray(top.items)) bad('$.items', 'an array of steps and expectations');
  const items = (top.items as Json[]).map((it, i): Item => {
    const p = `$.items[${i}]`;
    const o = obj(it, p, 'a step {"kind": "step", ...} or an expectation {"kind": "expect", ...}');
    if (o.kind === 'step') {
      const spec =
        typeof o.op === 'string' && Object.hasOwn(OPS, o.op) ? OPS[o.op] : bad(`${p}.op`, `an operation (${Object.keys(OPS).join(', ')})`);
      const f = fields(o, p, { kind: 'form', proc: 'name', op: 'form', fails: 'error?', ...spec });
      return { ...f, at: at(p), pos: posMap(p, Object.keys(spec).concat('fails')) } as unknown as Item;
    }
    if (o.kind === 'expect') {
      const spec =
        typeof o.check === 'string' && Object.hasOwn(CHECKS, o.check)
          ? CHECKS[o.check]
          : bad(`${p}.check`, `a check (${Object.keys(CHECKS).join(', ')})`);
      const f = fields(o, p, { kind: 'form', check: 'form', ...spec });
      const pos = posMap(p, Object.keys(spec));
      if (f.check === 'counter' && pos.proc) pos.subject = pos.proc;
      return { ...f, at: at(p), pos } as unknown as Item;
    }
    return bad(`${p}.kind`, '"step" or "expect"');
  });
  const sc: Scenario = { title: top.title as string, outcomes, machine, process, items, at: at('$'), pos: { process: at('$.process') } };
  return check(sc, file);
}
