/**
 * The .cow parser: hand-written, one statement per line, every error at an exact 1-based
 * line:column with what was expected. `parseScenario` parses and then runs the semantic check
 * (check.ts), so what it returns can be run.
 */
import {
  ADVICES,
  type Advice,
  type Cmp,
  COUNTERS,
  type Counter,
  ERRORS,
  type ErrorName,
  type Expect,
  FIELDS,
  type Field,
  type Item,
  type MachineSpec,
  type Op,
  type Outcome,
  type Pos,
  PROPS,
  type ProcRange,
  type Prop,
  type Prot,
  type Range,
  type Run,
  type Scenario,
  type Source,
  type Step,
} from './ast.ts';
import { check } from './check.ts';
import { fail } from './errors.ts';
import { describe, lexLine, type Token } from './lexer.ts';

/** Words that cannot name a process, mapping, file, pipe, pin or variable. */
export const RESERVED = new Set(['pin', 'not', 'user-locked', 'expect', 'scenario', 'outcome', 'machine', 'process']);

const OPS = [
  'mmap',
  'memfd',
  'tmpfile',
  'store',
  'memset',
  'load',
  'read',
  'fork',
  'exit',
  'wait',
  'munmap',
  'mprotect',
  'madvise',
  'mremap',
  'pipe',
  'vmsplice',
  'close',
  'io_uring',
  'odirect',
  'pin',
  'unpin',
  'vfio',
  'pread',
  'pwrite',
  'clear_refs',
];

const MACHINE_BOOLS: Record<string, 'thp' | 'hugeZeropage' | 'zeroPage' | 'swap' | 'gupTest' | 'softDirty' | 'ipcLock'> = {
  thp: 'thp',
  'huge-zeropage': 'hugeZeropage',
  zeropage: 'zeroPage',
  swap: 'swap',
  'gup-test': 'gupTest',
  'soft-dirty': 'softDirty',
  'ipc-lock': 'ipcLock',
};
export const MACHINE_KEYS = [...Object.keys(MACHINE_BOOLS), 'hugetlb', 'memlock'];

type Kind = 'mapping' | 'file' | 'pipe' | 'var' | 'pin' | 'proc' | 'other';

/** Token cursor over one line. */
class Line {
  i = 0;
  constructor(
    readonly file: string,
    readonly toks: Token[],
  ) {}
  peek(k = 0): Token {
    return this.toks[Math.min(this.i + k, this.toks.length - 1)];
  }
  next(): Token {
    const t = this.peek();
    if (t.t !== 'eol') this.i++;
    return t;
  }
  at(): Pos {
    const t = this.peek();
    return { line: t.line, col: t.col };
  }
  err(what: string, tok: Token = this.peek()): never {
    fail(this.file, tok, `expected ${what}, found ${describe(tok)}`);
  }
  isWord(w: string, k = 0): boolean {
    const t = this.peek(k);
    return t.t === 'ident' && t.v === w;
  }
  isPunct(p: string, k = 0): boolean {
    const t = this.peek(k);
    return t.t === 'punct' && t.v === p;
  }
  word(w: string): void {
    if (!this.isWord(w)) this.err(`'${w}'`);
    this.next();
  }
  punct(p: string): void {
    if (!this.isPunct(p)) this.err(`'${p}'`);
    this.next();
  }
  /** One of a set of words. */
  oneOf<T extends string>(words: readonly T[], what?: string): T {
    const t = this.peek();
    if (t.t !== 'ident' || !words.includes(t.v as T)) this.err(what ?? words.map((w) => `'${w}'`).join(' or '));
    this.next();
    return t.v as T;
  }
  name(what: string): string {
    const t = this.peek();
    if (t.t !== 'ident') this.err(what);
    if (RESERVED.has(t.v)) fail(this.file, t, `'${t.v}' is a reserved word and cannot be used as a name`);
    this.next();
    return t.v;
  }
  size(what = 'a size like 4K, 2M, 1G'): number {
    const t = this.peek();
    if (t.t !== 'num') this.err(what);
    this.next();
    return t.v;
  }
  byte(): number {
    const t = this.peek();
    if (t.t !== 'num' || t.unit) this.err('a byte value 0..255 (like 0x11)');
    if (t.v > 255) fail(this.file, t, `byte value ${t.text} is out of range: expected 0..255 (a store fills memory with one byte value)`);
    this.next();
    return t.v;
  }
  int(what: string): number {
    const t = this.peek();
    if (t.t !== 'num' || t.unit) this.err(what);
    this.next();
    return t.v;
  }
  end(): void {
    if (this.peek().t !== 'eol') this.err('end of line');
  }
}

/** Parses .cow text, then checks it (names, lifetimes, sizes). Throws ScenarioError. */
export function parseScenario(text: string, file = '<input>'): Scenario {
  return check(parseOnly(text, file), file);
}

/** Parses without the semantic check (for tools that want the raw AST). */
export function parseOnly(text: string, file = '<input>'): Scenario {
  const lines = text.split('\n');
  let title: string | undefined;
  let titleAt: Pos | undefined;
  let process: string | undefined;
  let processAt: Pos | undefined;
  const outcomes: Outcome[] = [];
  const machine: MachineSpec = {};
  const machinePos: Record<string, Pos> = {};
  const items: Item[] = [];
  const kinds = new Map<string, Kind>();

  for (let li = 0; li < lines.length; li++) {
    const toks = lexLine(file, lines[li], li + 1);
    if (toks[0].t === 'eol') continue;
    const L: Line = new Line(file, toks);
    const first = L.peek();
    const at = L.at();
    if (first.t !== 'ident') L.err('a statement (scenario, outcome, machine, process, expect, or PROCESS: operation)');
    const header = (what: string) => {
      if (items.length) fail(file, first, `'${what}' must come before the first step or expectation`);
    };
    if (first.v === 'scenario' && !L.isPunct(':', 1)) {
      header('scenario');
      if (title !== undefined) fail(file, first, `second 'scenario' line (the first is at line ${titleAt?.line})`);
      L.next();
      const s = L.peek();
      if (s.t !== 'str') L.err('a title in double quotes');
      L.next();
      L.end();
      title = s.v;
      titleAt = at;
      continue;
    }
    if (first.v === 'outcome' && !L.isPunct(':', 1)) {
      header('outcome');
      L.next();
      const pt = L.peek();
      if (pt.t !== 'ident') L.err('a kernel profile name like v6.2');
      L.next();
      const verdict = L.oneOf(['pass', 'fail'] as const);
      L.end();
      outcomes.push({ profile: pt.v, pass: verdict === 'pass', at, pos: { profile: { line: pt.line, col: pt.col } } });
      continue;
    }
    if (first.v === 'machine' && !L.isPunct(':', 1)) {
      header('machine');
      L.next();
      if (L.peek().t === 'eol') L.err(`a setting key=value (keys: ${MACHINE_KEYS.join(', ')})`);
      while (L.peek().t !== 'eol') parseMachineSetting(L, machine, machinePos);
      continue;
    }
    if (first.v === 'process' && !L.isPunct(':', 1)) {
      header('process');
      if (process !== undefined) fail(file, first, `second 'process' line: the other processes are created by fork (A: fork B)`);
      L.next();
      process = L.name('a process name');
      processAt = at;
      L.end();
      kinds.set(process, 'proc');
      continue;
    }
    if (first.v === 'expect' && !L.isPunct(':', 1)) {
      L.next();
      items.push(parseExpect(L, at));
      L.end();
      continue;
    }
    if (L.isPunct(':', 1)) {
      const proc = L.name('a process name');
      L.punct(':');
      const step = parseStep(L, proc, at, kinds);
      if (L.isPunct('!')) {
        L.next();
        const e = L.peek();
        if (e.t !== 'ident' || !ERRORS.includes(e.v as ErrorName)) L.err(`an error name (${ERRORS.join(', ')})`);
        L.next();
        step.fails = e.v as ErrorName;
        step.pos = { ...step.pos, fails: { line: e.line, col: e.col } };
      }
      L.end();
      items.push(step);
      continue;
    }
    L.err("a statement: 'scenario', 'outcome', 'machine', 'process', 'expect', or a step 'PROCESS: operation'", first);
  }
  if (title === undefined) fail(file, { line: 1, col: 1 }, 'missing \'scenario "TITLE"\' line');
  if (process === undefined) fail(file, { line: 1, col: 1 }, "missing 'process NAME' line (the first process; the others are forked)");
  const sc: Scenario = { title, outcomes, machine, process, items, at: titleAt, pos: { process: processAt as Pos, ...machinePos } };
  return sc;
}

function parseMachineSetting(L: Line, m: MachineSpec, pos: Record<string, Pos>): void {
  const kt = L.peek();
  if (kt.t !== 'ident' || !MACHINE_KEYS.includes(kt.v)) L.err(`a machine setting (${MACHINE_KEYS.join(', ')})`);
  L.next();
  const key = kt.v;
  if (pos[`machine.${key}`]) fail(L.file, kt, `machine setting '${key}' is given twice`);
  pos[`machine.${key}`] = { line: kt.line, col: kt.col };
  L.punct('=');
  if (key in MACHINE_BOOLS) {
    m[MACHINE_BOOLS[key]] = L.oneOf(['on', 'off'] as const) === 'on';
  } else if (key === 'memlock') {
    m.memlock = L.size();
  } else {
    // hugetlb=2M:2+1G:2 or hugetlb=none
    m.hugetlb = [];
    if (L.isWord('none')) {
      L.next();
      return;
    }
    for (;;) {
      const st = L.peek();
      const size = L.size('a huge page size (2M or 1G)');
      if (size !== 2 * 1024 ** 2 && size !== 1024 ** 3) fail(L.file, st, `huge page size ${st.text}: expected 2M or 1G`);
      let pages = 2;
      if (L.isPunct(':')) {
        L.next();
        pages = L.int('a number of huge pages');
      }
      m.hugetlb.push({ size, pages });
      if (!L.isPunct('+')) break;
      L.next();
    }
  }
}

function prot(L: Line): Prot {
  return L.oneOf(['none', 'r', 'rw'] as const, "a protection ('r', 'rw' or 'none')");
}

/** NAME, NAME+OFF, NAME[LO:HI] (bounds optional). */
function range(L: Line, what = 'a mapping name'): { r: Range; at: Pos } {
  const at = L.at();
  const name = L.name(what);
  if (L.isPunct('+')) {
    L.next();
    return { r: { name, form: 'page', off: L.size('an offset like 4K') }, at };
  }
  if (L.isPunct('[')) {
    L.next();
    const r: Range = { name, form: 'slice' };
    if (!L.isPunct(':')) r.lo = L.size('an offset like 4K, or :');
    L.punct(':');
    if (!L.isPunct(']')) r.hi = L.size('an end offset like 8K, or ]');
    L.punct(']');
    return { r, at };
  }
  return { r: { name, form: 'all' }, at };
}

function procRange(L: Line): { pr: ProcRange; at: Pos } {
  const at = L.at();
  const proc = L.name('PROCESS:RANGE, like A:buf');
  L.punct(':');
  const { r } = range(L);
  return { pr: { proc, range: r }, at };
}

function hugetlbSize(L: Line): number {
  L.word('hugetlb');
  L.punct('(');
  const st = L.peek();
  const size = L.size('a huge page size (2M or 1G)');
  if (size !== 2 * 1024 ** 2 && size !== 1024 ** 3) fail(L.file, st, `huge page size ${st.text}: expected 2M or 1G`);
  L.punct(')');
  return size;
}

function arrowName(L: Line, what: string): { name: string; at: Pos } {
  L.punct('->');
  const at = L.at();
  return { name: L.name(what), at };
}

function parseStep(L: Line, proc: string, at: Pos, kinds: Map<string, Kind>): Step {
  const opTok = L.peek();
  if (opTok.t !== 'ident' || !OPS.includes(opTok.v)) L.err(`an operation (${OPS.join(', ')})`);
  L.next();
  const pos: Record<string, Pos> = { proc: at, op: { line: opTok.line, col: opTok.col } };
  const bind = (name: string, k: Kind) => kinds.set(name, kinds.get(name) ?? k);
  let op: Op;
  switch (opTok.v) {
    case 'mmap': {
      pos.name = L.at();
      const name = L.name('a name for the mapping');
      pos.source = L.at();
      const kind = L.oneOf(['anon', 'memfd', 'tmpfile', 'file'] as const, "a source ('anon', 'memfd', 'tmpfile' or 'file NAME')");
      let source: Source;
      if (kind === 'file') {
        pos.file = L.at();
        source = { kind: 'file', file: L.name('a file name') };
      } else if (kind === 'tmpfile') source = { kind };
      else source = L.isWord('hugetlb') ? { kind, hugetlb: hugetlbSize(L) } : { kind };
      const sharing = L.oneOf(['private', 'shared'] as const);
      pos.prot = L.at();
      const p = prot(L);
      pos.size = L.at();
      const size = L.size();
      const m: Op = { op: 'mmap', name, source, sharing, prot: p, size };
      while (L.peek().t === 'ident') {
        const t = L.peek();
        if (t.v === 'thp' || t.v === 'nothp') {
          if (m.hint) fail(L.file, t, 'a second THP hint');
          L.next();
          m.hint = t.v;
        } else if (t.v === 'offset') {
          if (m.offset !== undefined) fail(L.file, t, "a second 'offset'");
          L.next();
          pos.offset = L.at();
          m.offset = L.size('a file offset like 4K');
        } else L.err("'thp', 'nothp', 'offset OFF' or end of line");
      }
      bind(name, 'mapping');
      op = m;
      break;
    }
    case 'memfd': {
      pos.name = L.at();
      const name = L.name('a name for the file');
      pos.size = L.at();
      const size = L.size();
      op = L.isWord('hugetlb') ? { op: 'memfd', name, size, hugetlb: hugetlbSize(L) } : { op: 'memfd', name, size };
      bind(name, 'file');
      break;
    }
    case 'tmpfile': {
      pos.name = L.at();
      const name = L.name('a name for the file');
      pos.size = L.at();
      op = { op: 'tmpfile', name, size: L.size() };
      bind(name, 'file');
      break;
    }
    case 'store':
    case 'memset': {
      const { r, at: ra } = range(L);
      pos.range = ra;
      pos.value = L.at();
      op = { op: 'store', range: r, value: L.byte() };
      break;
    }
    case 'load': {
      const { r, at: ra } = range(L);
      pos.range = ra;
      op = { op: 'load', range: r };
      break;
    }
    case 'read': {
      const nt = L.peek();
      if (nt.t === 'ident' && kinds.get(nt.v) === 'pipe') {
        pos.pipe = L.at();
        const pipe = L.name('a pipe');
        let len: number | undefined;
        if (L.peek().t === 'num') {
          pos.len = L.at();
          len = L.size();
        }
        const into = arrowName(L, 'a variable name');
        pos.into = into.at;
        op = len === undefined ? { op: 'pipe-read', pipe, into: into.name } : { op: 'pipe-read', pipe, len, into: into.name };
        bind(into.name, 'var');
      } else {
        const { r, at: ra } = range(L, 'a mapping or pipe name');
        pos.range = ra;
        const into = arrowName(L, 'a variable name');
        pos.into = into.at;
        op = { op: 'read', range: r, into: into.name };
        bind(into.name, 'var');
      }
      break;
    }
    case 'fork': {
      pos.child = L.at();
      const child = L.name('a name for the child process');
      op = { op: 'fork', child };
      bind(child, 'proc');
      break;
    }
    case 'exit':
      op = { op: 'exit', status: L.peek().t === 'num' ? L.int('an exit status') : 0 };
      break;
    case 'wait':
      pos.child = L.at();
      op = { op: 'wait', child: L.name('a child process') };
      break;
    case 'munmap': {
      const { r, at: ra } = range(L);
      pos.range = ra;
      op = { op: 'munmap', range: r };
      break;
    }
    case 'mprotect': {
      const { r, at: ra } = range(L);
      pos.range = ra;
      op = { op: 'mprotect', range: r, prot: prot(L) };
      break;
    }
    case 'madvise': {
      const { r, at: ra } = range(L);
      pos.range = ra;
      op = { op: 'madvise', range: r, advice: L.oneOf(ADVICES, `an advice (${ADVICES.join(', ')})`) as Advice };
      break;
    }
    case 'mremap': {
      const { r, at: ra } = range(L);
      pos.range = ra;
      const to = arrowName(L, 'the mapping to move onto');
      pos.to = to.at;
      op = { op: 'mremap', range: r, to: to.name };
      break;
    }
    case 'pipe': {
      pos.name = L.at();
      const name = L.name('a name for the pipe');
      op = { op: 'pipe', name };
      bind(name, 'pipe');
      break;
    }
    case 'vmsplice': {
      const { r, at: ra } = range(L);
      pos.range = ra;
      const p = arrowName(L, 'a pipe');
      pos.pipe = p.at;
      op = { op: 'vmsplice', range: r, pipe: p.name };
      break;
    }
    case 'close':
      pos.name = L.at();
      op = { op: 'close', name: L.name('a pipe or file') };
      break;
    case 'io_uring': {
      const sub = L.oneOf(['register', 'write_fixed', 'unregister'] as const);
      if (sub === 'register') {
        const { r, at: ra } = range(L);
        pos.range = ra;
        const b = arrowName(L, 'a name for the fixed buffer');
        pos.name = b.at;
        op = { op: 'uring-register', range: r, name: b.name };
        bind(b.name, 'pin');
      } else if (sub === 'write_fixed') {
        pos.buf = L.at();
        const buf = L.name('a fixed buffer');
        L.punct('->');
        const { r, at: fa } = range(L, 'a file');
        pos.file = fa;
        op = { op: 'uring-write', buf, file: r };
      } else {
        pos.buf = L.at();
        op = { op: 'uring-unregister', buf: L.name('a fixed buffer') };
      }
      break;
    }
    case 'odirect': {
      const dir = L.oneOf(['read', 'write'] as const);
      if (dir === 'read') {
        const f = range(L, 'a file');
        pos.file = f.at;
        L.punct('->');
        const m = range(L);
        pos.range = m.at;
        op = { op: 'odirect-read', file: f.r, range: m.r };
      } else {
        const m = range(L);
        pos.range = m.at;
        L.punct('->');
        const f = range(L, 'a file');
        pos.file = f.at;
        op = { op: 'odirect-write', range: m.r, file: f.r };
      }
      break;
    }
    case 'pin': {
      const { r, at: ra } = range(L);
      pos.range = ra;
      const rw = L.oneOf(['ro', 'rw'] as const);
      L.word('longterm');
      let fast = false;
      if (L.isWord('fast')) {
        L.next();
        fast = true;
      }
      const n = arrowName(L, 'a name for the pin');
      pos.name = n.at;
      op = { op: 'pin', range: r, write: rw === 'rw', fast, name: n.name };
      bind(n.name, 'pin');
      break;
    }
    case 'unpin':
      pos.pin = L.at();
      op = { op: 'unpin', pin: L.name('a pin') };
      break;
    case 'vfio': {
      const sub = L.oneOf(['map', 'unmap'] as const);
      if (sub === 'map') {
        const { r, at: ra } = range(L);
        pos.range = ra;
        const rw = L.oneOf(['ro', 'rw'] as const);
        const n = arrowName(L, 'a name for the DMA mapping');
        pos.name = n.at;
        op = { op: 'vfio-map', range: r, write: rw === 'rw', name: n.name };
        bind(n.name, 'pin');
      } else {
        pos.dma = L.at();
        op = { op: 'vfio-unmap', dma: L.name('a DMA mapping') };
      }
      break;
    }
    case 'pread': {
      const f = range(L, 'a file');
      pos.file = f.at;
      const into = arrowName(L, 'a variable name');
      pos.into = into.at;
      op = { op: 'pread', file: f.r, into: into.name };
      bind(into.name, 'var');
      break;
    }
    case 'pwrite': {
      const f = range(L, 'a file');
      pos.file = f.at;
      pos.value = L.at();
      op = { op: 'pwrite', file: f.r, value: L.byte() };
      break;
    }
    default: // clear_refs
      L.word('softdirty');
      op = { op: 'clear-softdirty' };
  }
  return { kind: 'step', proc, ...op, at, pos } as Step;
}

function cmp(L: Line): Cmp {
  const t = L.peek();
  if (t.t !== 'punct' || !['==', '!=', '<', '<=', '>', '>='].includes(t.v)) L.err('a comparison (==, !=, <, <=, >, >=)');
  L.next();
  return t.v as Cmp;
}

function pattern(L: Line): Run[] {
  const out: Run[] = [];
  for (;;) {
    const bt = L.peek();
    const value = L.byte();
    if (L.isPunct('*')) {
      L.next();
      out.push({ value, len: L.size('a length like 4K') });
    } else out.push({ value });
    if (!L.isPunct(',')) break;
    if (out[out.length - 1].len === undefined)
      fail(L.file, bt, `only the last part of a pattern may leave out its length ('${bt.text}*4K')`);
    L.next();
  }
  return out;
}

function parseExpect(L: Line, at: Pos): Expect {
  const pos: Record<string, Pos> = {};
  const t0 = L.peek();
  if (t0.t === 'ident' && t0.v === 'pin') {
    L.next();
    pos.pin = L.at();
    const pin = L.name('a pin name');
    if (L.isPunct('==') || L.isPunct('!=')) {
      const c = L.next().v as '==' | '!=';
      return { kind: 'expect', check: 'content', subject: { pin }, cmp: c, pattern: pattern(L), at, pos };
    }
    let not = false;
    if (L.isWord('not')) {
      L.next();
      not = true;
    }
    if (!L.isWord('matches')) L.err(not ? "'matches'" : "'==', '!=', 'matches' or 'not matches'");
    L.next();
    const { pr, at: ta } = procRange(L);
    pos.target = ta;
    const e: Expect = { kind: 'expect', check: 'matches', pin, target: pr, at, pos };
    if (not) e.not = true;
    return e;
  }
  if (t0.t === 'ident' && t0.v === 'user-locked') {
    L.next();
    const c = cmp(L);
    pos.value = L.at();
    return { kind: 'expect', check: 'user-locked', cmp: c, value: L.size(), at, pos };
  }
  if (t0.t !== 'ident') L.err('what to check: VAR, pin NAME, PROCESS:RANGE, PROCESS VmPin|VmLck, or user-locked');
  if (L.isPunct(':', 1)) {
    const { pr, at: ta } = procRange(L);
    pos.target = ta;
    if (L.isPunct('==') || L.isPunct('!=')) {
      const c = L.next().v as '==' | '!=';
      return { kind: 'expect', check: 'content', subject: { mem: pr }, cmp: c, pattern: pattern(L), at, pos };
    }
    const w = L.peek();
    if (w.t === 'ident' && (w.v === 'same-page' || w.v === 'different-page')) {
      L.next();
      const { pr: b, at: ba } = procRange(L);
      pos.b = ba;
      return { kind: 'expect', check: w.v, a: pr, b, at, pos };
    }
    if (w.t === 'ident' && FIELDS.includes(w.v as Field)) {
      L.next();
      const c = cmp(L);
      pos.value = L.at();
      return { kind: 'expect', check: 'field', target: pr, field: w.v as Field, cmp: c, value: L.int('a number'), at, pos };
    }
    let not = false;
    if (L.isWord('not')) {
      L.next();
      not = true;
    }
    const p = L.peek();
    if (p.t !== 'ident' || !PROPS.includes(p.v as Prop))
      L.err(
        not
          ? `a page property (${PROPS.join(', ')})`
          : `'==', '!=', 'same-page', 'different-page', a page property (${PROPS.join(', ')}), or a count (${FIELDS.join(', ')})`,
      );
    L.next();
    const e: Expect = { kind: 'expect', check: 'prop', target: pr, prop: p.v as Prop, at, pos };
    if (not) e.not = true;
    return e;
  }
  pos.subject = L.at();
  const name = L.name('a variable or process name');
  if (L.isPunct('==') || L.isPunct('!=')) {
    const c = L.next().v as '==' | '!=';
    return { kind: 'expect', check: 'content', subject: { var: name }, cmp: c, pattern: pattern(L), at, pos };
  }
  const ct = L.peek();
  if (ct.t === 'ident' && COUNTERS.includes(ct.v as Counter)) {
    L.next();
    const c = cmp(L);
    pos.value = L.at();
    return { kind: 'expect', check: 'counter', proc: name, counter: ct.v as Counter, cmp: c, value: L.size(), at, pos };
  }
  return L.err(`'==' or '!=' after a variable, or ${COUNTERS.join(' or ')} after a process`);
}
