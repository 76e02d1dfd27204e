/**
 * Runs a checked scenario on a Backend: the steps in program order, each expectation where it
 * stands, and per step a trace entry (the kernel's events, the changes of the watched pages and of
 * the memlock counters). A step that fails without a declared `! ERROR` ends the run (the process
 * would not go on either); expectations after it are "not reached" and count as failed.
 *
 * Runtime impossibilities that the static check cannot see (a step on an address the process has
 * no mapping at) are ScenarioErrors at the step; anything a backend throws otherwise is an
 * InternalError (for the model: a broken invariant, a cowlab bug).
 */
import { type Expect, type Pos, type ProcRange, posOf, type Range, type Run, type Scenario, type Step } from './ast.ts';
import {
  type Backend,
  type Bytes,
  bytesLength,
  fmtBytes,
  isFailure,
  type KernelEvent,
  type PageObs,
  type ProcCounters,
  pushBytes,
} from './backend.ts';
import { fmtSize, type ObjInfo, PAGE, resolveRange, symbols } from './check.ts';
import { fail, InternalError, ScenarioError } from './errors.ts';
import { fmtExpect, fmtPattern, fmtProcRange, fmtRange, fmtStep } from './printer.ts';

export interface Change {
  /** `A:buf+4K`, or a process for its counters */
  where: string;
  before: string;
  after: string;
}

/** A kernel event with the process by name and the address as NAME+OFFSET where it is in a mapping. */
export interface TraceEvent {
  proc?: string;
  what: string;
  where?: string;
  detail?: string;
}

export interface StepTrace {
  type: 'step';
  line: number;
  col: number;
  text: string;
  /** what the step returned (an address, bytes transferred, a handle), or its error */
  result?: string;
  error?: string;
  events: TraceEvent[];
  changes: Change[];
  /** with RunOptions.observe: every watched page (`A:buf+4K`) and each live process's counters after the step */
  observed?: Observed;
}

/** What a backend showed after a step, raw (for comparing two backends: src/host/diff.ts). */
export interface Observed {
  pages: Record<string, PageObs>;
  counters: Record<string, ProcCounters>;
}

/** The verdict of an expectation, of a `! ERROR` step, or of a step that failed unexpectedly. */
export interface Verdict {
  type: 'expect';
  line: number;
  col: number;
  text: string;
  /** null: not reached */
  ok: boolean | null;
  detail?: string;
}

export type TraceEntry = StepTrace | Verdict;

export interface RunResult {
  title: string;
  backend: string;
  pass: boolean;
  trace: TraceEntry[];
  verdicts: Verdict[];
  /** the step that failed unexpectedly and ended the run */
  stopped?: { line: number; col: number; message: string };
}

export interface RunOptions {
  /** for error messages */
  file?: string;
  /** record page and counter changes per step (default true) */
  watch?: boolean;
  /** keep the raw observations after each step in StepTrace.observed (default false) */
  observe?: boolean;
}

/** Pages the trace follows: per mapping, offsets of the pages named by ranges (at most 3 per range). */
function watchList(sc: Scenario, maps: Map<string, ObjInfo>): Array<{ map: string; off: number }> {
  const seen = new Set<string>();
  const out: Array<{ map: string; off: number }> = [];
  const add = (r: Range) => {
    const info = maps.get(r.name);
    if (!info) return;
    const { off, len } = resolveRange(r, info);
    const units = Math.max(1, Math.floor(len / info.unit));
    const picks = units <= 4 ? Array.from({ length: units }, (_, i) => i) : [0, 1, units - 1];
    for (const i of picks) {
      const o = off + i * info.unit;
      const key = `${r.name}+${o}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ map: r.name, off: o });
    }
  };
  for (const it of sc.items) {
    if (it.kind === 'step') {
      if ('range' in it && it.range) add(it.range);
    } else {
      for (const k of ['target', 'a', 'b'] as const) {
        const pr = (it as unknown as Record<string, ProcRange | undefined>)[k];
        if (pr?.range) add(pr.range);
      }
      if (it.check === 'content' && 'mem' in it.subject) add(it.subject.mem.range);
    }
  }
  return out;
}

export function obsText(o: PageObs): string {
  if (!o.present) return o.swapped ? 'swapped' : '-';
  const parts = [o.page ?? 'present'];
  if (o.write !== undefined) parts.push(o.write ? 'w' : 'ro');
  if (o.huge) parts.push('huge');
  if (o.exclusive) parts.push('excl');
  if (o.refcount !== undefined) parts.push(`ref=${o.refcount}`);
  if (o.mapcount !== undefined) parts.push(`map=${o.mapcount}`);
  if (o.pincount) parts.push(`pin=${o.pincount}`);
  return parts.join(' ');
}

function expand(pattern: Run[], total: number): Bytes | null {
  const out: Bytes = [];
  let used = 0;
  for (const r of pattern) {
    const n = r.len ?? total - used;
    if (n < 0) return null;
    pushBytes(out, r.value, n);
    used += n;
  }
  return used === total ? out : null;
}

function bytesEqual(a: Bytes, b: Bytes): boolean {
  return a.length === b.length && a.every((x, i) => x[0] === b[i][0] && x[1] === b[i][1]);
}

const CMP = {
  '==': (a: number, b: number) => a === b,
  '!=': (a: number, b: number) => a !== b,
  '<': (a: number, b: number) => a < b,
  '<=': (a: number, b: number) => a <= b,
  '>': (a: number, b: number) => a > b,
  '>=': (a: number, b: number) => a >= b,
};

/** Runs `sc` (already checked) on `b`. Throws ScenarioError or InternalError; otherwise returns the verdict. */
export function runScenario(sc: Scenario, b: Backend, opts: RunOptions = {}): RunResult {
  const file = opts.file ?? '<input>';
  const { maps, files: fileInfo } = symbols(sc);
  const procs = new Map<string, number>([[sc.process, b.initial()]]);
  const addrs = new Map<string, number>();
  const files = new Map<string, number>();
  const pipes = new Map<string, number>();
  const pins = new Map<string, number>();
  const vars = new Map<string, Bytes>();
  const trace: TraceEntry[] = [];
  const verdicts: Verdict[] = [];
  const watch = opts.watch === false ? [] : watchList(sc, maps);
  let stopped: RunResult['stopped'];

  const addr = (r: Range): { addr: number; len: number } => {
    const info = maps.get(r.name) as ObjInfo;
    const { off, len } = resolveRange(r, info);
    return { addr: (addrs.get(r.name) as number) + off, len };
  };
  const frange = (r: Range) => resolveRange(r, fileInfo.get(r.name) as ObjInfo);
  const proc = (name: string) => procs.get(name) as number;

  /** Runs fn, turning anything but a ScenarioError into an InternalError at `at`. */
  const guard = <T>(at: Pos | undefined, fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ScenarioError || e instanceof InternalError) throw e;
      const err = e instanceof Error ? e : new Error(String(e));
      throw new InternalError(file, at?.line ?? 1, at?.col ?? 1, `${err.name}: ${err.message}`, e);
    }
  };

  const snapshot = (raw?: Observed): Map<string, string> => {
    const snap = new Map<string, string>();
    for (const [pname, h] of procs) {
      if (!isAlive(pname)) continue;
      for (const w of watch) {
        const a = addrs.get(w.map);
        if (a === undefined) continue;
        const key = `${pname}:${w.map}${w.off ? `+${fmtSize(w.off)}` : ''}`;
        const o = b.page(h, a + w.off);
        if (raw) raw.pages[key] = o;
        snap.set(key, obsText(o));
      }
      const c = b.counters(h);
      if (raw) raw.counters[pname] = c;
      snap.set(`${pname} VmPin`, fmtSize(c.VmPin));
      snap.set(`${pname} VmLck`, fmtSize(c.VmLck));
    }
    const u = b.userLocked();
    if (u !== undefined) snap.set('user-locked', fmtSize(u));
    return snap;
  };
  const alive = new Set<string>([sc.process]);
  const isAlive = (p: string) => alive.has(p);

  const requireMapped = (st: Step, pname: string, r: Range) => {
    if (st.fails) return;
    const { addr: a, len } = addr(r);
    if (!b.mapped(proc(pname), a, len))
      fail(
        file,
        posOf(st, 'range'),
        `${fmtRange(r)} is not mapped in ${pname} (a step on an unmapped address; declare '! SIGSEGV' or the errno if that is the point)`,
      );
  };

  /** Performs one step; returns a result text or a failure name. */
  const perform = (st: Step): { result?: string; error?: string } => {
    const p = proc(st.proc);
    const R = <T>(x: T | { fail: string }, show?: (v: T) => string | undefined): { result?: string; error?: string; value?: T } =>
      isFailure(x) ? { error: x.fail } : { result: show ? show(x as T) : undefined, value: x as T };
    switch (st.op) {
      case 'mmap': {
        const src = st.source;
        let fileH: number | undefined;
        let hugetlb = 0;
        if (src.kind === 'file') fileH = files.get(src.file);
        else if (src.kind === 'memfd' || src.kind === 'tmpfile') {
          hugetlb = src.kind === 'memfd' ? (src.hugetlb ?? 0) : 0;
          const f = b.createFile(p, src.kind, hugetlb, st.size);
          if (isFailure(f)) return { error: f.fail };
          fileH = f;
          hugetlb = 0;
        } else hugetlb = src.hugetlb ?? 0;
        const r = R(
          b.mmap(p, {
            file: fileH,
            hugetlb,
            shared: st.sharing === 'shared',
            prot: st.prot,
            size: st.size,
            offset: st.offset ?? 0,
            hint: st.hint,
          }),
          (a) => `0x${a.toString(16)}`,
        );
        if (r.value !== undefined && !st.fails) addrs.set(st.name, r.value);
        return r;
      }
      case 'memfd':
      case 'tmpfile': {
        const r = R(b.createFile(p, st.op, st.op === 'memfd' ? (st.hugetlb ?? 0) : 0, st.size));
        if (r.value !== undefined && !st.fails) files.set(st.name, r.value);
        return r;
      }
      case 'store': {
        requireMapped(st, st.proc, st.range);
        const { addr: a, len } = addr(st.range);
        return R(b.store(p, a, len, st.value));
      }
      case 'load': {
        requireMapped(st, st.proc, st.range);
        const { addr: a, len } = addr(st.range);
        return R(b.load(p, a, len));
      }
      case 'read': {
        requireMapped(st, st.proc, st.range);
        const { addr: a, len } = addr(st.range);
        const r = R(b.read(p, a, len), fmtBytes);
        if (r.value !== undefined && !st.fails) vars.set(st.into, r.value);
        return r;
      }
      case 'pipe-read': {
        const r = R(b.pipeRead(p, pipes.get(st.pipe) as number, st.len ?? 16 * PAGE), fmtBytes);
        if (r.value !== undefined && !st.fails) vars.set(st.into, r.value);
        return r;
      }
      case 'fork': {
        const r = R(b.fork(p), (h) => `${st.child} is pid ${h}`);
        if (r.value !== undefined && !st.fails) {
          procs.set(st.child, r.value);
          alive.add(st.child);
        }
        return r;
      }
      case 'exit': {
        const r = R(b.exit(p, st.status));
        if (!r.error) alive.delete(st.proc);
        return r;
      }
      case 'wait': {
        const r = R(b.wait(p, proc(st.child)), (s) => `status ${s}`);
        if (!r.error) procs.delete(st.child);
        return r;
      }
      case 'munmap': {
        const { addr: a, len } = addr(st.range);
        return R(b.munmap(p, a, len));
      }
      case 'mprotect': {
        requireMapped(st, st.proc, st.range);
        const { addr: a, len } = addr(st.range);
        return R(b.mprotect(p, a, len, st.prot));
      }
      case 'madvise': {
        requireMapped(st, st.proc, st.range);
        const { addr: a, len } = addr(st.range);
        return R(b.madvise(p, a, len, st.advice));
      }
      case 'mremap': {
        requireMapped(st, st.proc, st.range);
        const { addr: a, len } = addr(st.range);
        return R(b.mremap(p, a, len, addrs.get(st.to) as number));
      }
      case 'pipe': {
        const r = R(b.pipe(p));
        if (r.value !== undefined && !st.fails) pipes.set(st.name, r.value);
        return r;
      }
      case 'vmsplice': {
        requireMapped(st, st.proc, st.range);
        const { addr: a, len } = addr(st.range);
        return R(b.vmsplice(p, pipes.get(st.pipe) as number, a, len), (n) => `${fmtSize(n) || 0} spliced`);
      }
      case 'close':
        if (pipes.has(st.name)) return R(b.pipeClose(p, pipes.get(st.name) as number));
        return R(b.closeFile(p, files.get(st.name) as number));
      case 'uring-register':
      case 'vfio-map':
      case 'pin': {
        requireMapped(st, st.proc, st.range);
        const { addr: a, len } = addr(st.range);
        const r =
          st.op === 'pin'
            ? R(b.pin(p, a, len, st.write, st.fast))
            : st.op === 'vfio-map'
              ? R(b.vfioMap(p, a, len, st.write))
              : R(b.uringRegister(p, a, len));
        if (r.value !== undefined && !st.fails) pins.set(st.name, r.value);
        return r;
      }
      case 'uring-write': {
        const { off } = frange(st.file);
        return R(b.uringWriteFixed(p, pins.get(st.buf) as number, files.get(st.file.name) as number, off));
      }
      case 'uring-unregister':
        return R(b.uringUnregister(p, pins.get(st.buf) as number));
      case 'unpin':
        return R(b.unpin(p, pins.get(st.pin) as number));
      case 'vfio-unmap':
        return R(b.vfioUnmap(p, pins.get(st.dma) as number));
      case 'odirect-read':
      case 'odirect-write': {
        requireMapped(st, st.proc, st.range);
        const { addr: a, len } = addr(st.range);
        const { off } = frange(st.file);
        return R(b.odirect(p, files.get(st.file.name) as number, off, a, len, st.op === 'odirect-read'));
      }
      case 'pread': {
        const { off, len } = frange(st.file);
        const r = R(b.pread(p, files.get(st.file.name) as number, off, len), fmtBytes);
        if (r.value !== undefined && !st.fails) vars.set(st.into, r.value);
        return r;
      }
      case 'pwrite': {
        const { off, len } = frange(st.file);
        return R(b.pwrite(p, files.get(st.file.name) as number, off, len, st.value));
      }
      case 'clear-softdirty':
        return R(b.clearSoftDirty(p));
    }
  };

  /** The 4 KiB page addresses of a range at which pages are observed (one per page unit). */
  const unitAddrs = (r: Range): number[] => {
    const info = maps.get(r.name) as ObjInfo;
    const { addr: a, len } = addr(r);
    const out: number[] = [];
    for (let x = a; x < a + len; x += info.unit) out.push(x);
    return out;
  };

  const readMem = (e: Expect, pr: ProcRange, field: string): Bytes | string => {
    const { addr: a, len } = addr(pr.range);
    const p = proc(pr.proc);
    if (!b.mapped(p, a, len)) fail(file, posOf(e, field), `${fmtProcRange(pr)} is not mapped in ${pr.proc}: nothing to read`);
    const r = b.read(p, a, len);
    return isFailure(r) ? `reading ${fmtProcRange(pr)}: ${r.fail}` : r;
  };

  const evaluate = (e: Expect): { ok: boolean; detail?: string } => {
    switch (e.check) {
      case 'content': {
        const s = e.subject;
        let got: Bytes | string;
        if ('var' in s) got = vars.get(s.var) ?? 'unset';
        else if ('pin' in s) got = b.pinRead(pins.get(s.pin) as number);
        else got = readMem(e, s.mem, 'target');
        if (typeof got === 'string') return { ok: false, detail: got };
        const want = expand(e.pattern, bytesLength(got));
        const equal = want !== null && bytesEqual(got, want);
        return {
          ok: e.cmp === '==' ? equal : !equal,
          detail: `read ${fmtBytes(got)}${e.cmp === '==' ? `, expected ${fmtPattern(e.pattern)}` : ''}`,
        };
      }
      case 'matches': {
        const h = pins.get(e.pin) as number;
        const pinned = b.pinRead(h);
        const mem = readMem(e, e.target, 'target');
        if (typeof mem === 'string') return { ok: false, detail: mem };
        let ok = bytesEqual(pinned, mem);
        let detail = `${e.pin} reads ${fmtBytes(pinned)}; ${fmtProcRange(e.target)} reads ${fmtBytes(mem)}`;
        const ids = b.pinPages(h);
        if (ids) {
          const { addr: a } = addr(e.target.range);
          const p = proc(e.target.proc);
          const i = ids.findIndex((id, k) => b.page(p, a + k * PAGE).page !== id);
          if (i >= 0) {
            ok = false;
            detail += `; page ${i}: pinned ${ids[i]}, mapped ${b.page(p, a + i * PAGE).page ?? 'nothing'}`;
          } else detail += `; same pages (${ids[0]}${ids.length > 1 ? ', ...' : ''})`;
        }
        return { ok: e.not ? !ok : ok, detail };
      }
      case 'same-page':
      case 'different-page': {
        const { addr: a, len } = addr(e.a.range);
        const { addr: c } = addr(e.b.range);
        const pa = proc(e.a.proc);
        const pb = proc(e.b.proc);
        let same = 0;
        let first = '';
        for (let k = 0; k < len; k += PAGE) {
          const x = b.page(pa, a + k);
          const y = b.page(pb, c + k);
          const s = x.present && y.present && x.page !== undefined && x.page === y.page;
          if (s) same++;
          if (!first && s !== (e.check === 'same-page')) first = `at +${fmtSize(k) || 0}: ${obsText(x)} vs ${obsText(y)}`;
        }
        const pages = len / PAGE;
        const ok = e.check === 'same-page' ? same === pages : same === 0;
        return { ok, detail: ok ? `${same} of ${pages} pages shared` : first };
      }
      case 'prop': {
        const p = proc(e.target.proc);
        for (const a of unitAddrs(e.target.range)) {
          const o = b.page(p, a);
          const v = propOf(o, e.prop);
          if (v === undefined) return { ok: false, detail: `${e.prop} is not observable on ${b.name}` };
          if (v === !!e.not) return { ok: false, detail: `at 0x${a.toString(16)}: ${obsText(o)}` };
        }
        return { ok: true };
      }
      case 'field': {
        const p = proc(e.target.proc);
        for (const a of unitAddrs(e.target.range)) {
          const o = b.page(p, a);
          const v = o.present ? o[e.field] : undefined;
          if (v === undefined) return { ok: false, detail: o.present ? `${e.field} is not observable on ${b.name}` : 'page not present' };
          if (!CMP[e.cmp](v, e.value)) return { ok: false, detail: `${e.field} is ${v} (${obsText(o)})` };
        }
        return { ok: true };
      }
      case 'counter': {
        const v = b.counters(proc(e.proc))[e.counter];
        return { ok: CMP[e.cmp](v, e.value), detail: `${e.proc} ${e.counter} is ${fmtSize(v) || 0}` };
      }
      case 'user-locked': {
        const v = b.userLocked();
        if (v === undefined) return { ok: false, detail: `not observable on ${b.name}` };
        return { ok: CMP[e.cmp](v, e.value), detail: `user-locked is ${fmtSize(v) || 0}` };
      }
    }
  };

  const nameEvent = (ev: KernelEvent): TraceEvent => {
    const out: TraceEvent = { what: ev.what };
    for (const [n, h] of procs) if (h === ev.proc) out.proc = n;
    if (ev.addr !== undefined) {
      out.where = `0x${ev.addr.toString(16)}`;
      for (const [n, a] of addrs) {
        const size = (maps.get(n) as ObjInfo).size;
        if (ev.addr >= a && ev.addr < a + size) out.where = ev.addr === a ? n : `${n}+${fmtSize(ev.addr - a)}`;
      }
    }
    if (ev.detail) out.detail = ev.detail;
    return out;
  };

  for (const it of sc.items) {
    const at = it.at ?? { line: 1, col: 1 };
    if (stopped) {
      if (it.kind === 'expect' || it.fails) {
        const v: Verdict = {
          type: 'expect',
          line: at.line,
          col: at.col,
          text: it.kind === 'expect' ? fmtExpect(it) : fmtStep(it),
          ok: null,
          detail: 'not reached',
        };
        verdicts.push(v);
      }
      continue;
    }
    if (it.kind === 'expect') {
      const r = guard(at, () => evaluate(it));
      const v: Verdict = { type: 'expect', line: at.line, col: at.col, text: fmtExpect(it), ok: r.ok, detail: r.detail };
      trace.push(v);
      verdicts.push(v);
      continue;
    }
    const before = guard(at, () => snapshot());
    const r = guard(at, () => perform(it));
    const observed: Observed | undefined = opts.observe ? { pages: {}, counters: {} } : undefined;
    const after = guard(at, () => snapshot(observed));
    const events = guard(at, () => b.drainEvents()).map((ev) => nameEvent(ev));
    const changes: Change[] = [];
    for (const [k, v] of after) {
      const old = before.get(k) ?? (/ Vm(Pin|Lck)$/.test(k) ? '0' : '-');
      if (old !== v) changes.push({ where: k, before: old, after: v });
    }
    const entry: StepTrace = { type: 'step', line: at.line, col: at.col, text: fmtStep(it), events, changes };
    if (r.result !== undefined) entry.result = r.result;
    if (r.error !== undefined) entry.error = r.error;
    if (observed) entry.observed = observed;
    trace.push(entry);
    if (it.fails) {
      const ok = r.error === it.fails;
      const v: Verdict = {
        type: 'expect',
        line: at.line,
        col: at.col,
        text: fmtStep(it),
        ok,
        detail: r.error ? `failed with ${r.error}` : 'succeeded',
      };
      trace.push(v);
      verdicts.push(v);
    } else if (r.error) {
      const v: Verdict = {
        type: 'expect',
        line: at.line,
        col: at.col,
        text: `${fmtStep(it)} (succeeds)`,
        ok: false,
        detail: `failed with ${r.error}`,
      };
      trace.push(v);
      verdicts.push(v);
      stopped = { line: at.line, col: at.col, message: `${fmtStep(it)}: ${r.error}` };
    }
  }
  const pass = verdicts.every((v) => v.ok === true);
  return { title: sc.title, backend: b.name, pass, trace, verdicts, stopped };
}

function propOf(o: PageObs, prop: string): boolean | undefined {
  switch (prop) {
    case 'present':
      return o.present;
    case 'swapped':
      return o.swapped;
    case 'writable':
      return o.present ? o.write : false;
    case 'exclusive':
      return o.present ? o.exclusive : false;
    case 'mapped-once':
      return o.present ? o.mappedOnce : false;
    case 'zeropage':
      return o.present ? (o.zeropage ?? false) : false;
    case 'thp':
      return o.present ? o.huge : false;
    case 'anon':
      return o.present ? o.anon : false;
    case 'pinned':
      return o.present ? o.pinned : false;
  }
  return undefined;
}
