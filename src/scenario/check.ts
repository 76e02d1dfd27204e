/**
 * The semantic check, shared by the .cow parser and the JSON loader: every name refers to an
 * object of the right kind that exists at that point of the program (processes alive, pins not
 * yet released, pipes and files open), ranges fit their mappings and are page aligned, sizes fit
 * the model. Errors point at the offending field.
 */
import { SEED_MACHINE } from '../model/machine.ts';
import { findProfile, profileNames } from '../model/profile.ts';
import { type Pos, posOf, type Range, type Scenario, type Step } from './ast.ts';
import { fail } from './errors.ts';

export const PAGE = 4096;
/** Largest mapping or file that is not hugetlb: keeps every run to a few thousand faults per step. */
export const MAX_SMALL = 64 * 1024 * 1024;
/** Largest number of huge pages in one hugetlb mapping or file. */
export const MAX_HUGE_PAGES = 64;

export interface ObjInfo {
  /** bytes */
  size: number;
  /** page unit: 4K, or the hugetlb page size */
  unit: number;
}

/** Every mapping and file the scenario names, with size and page unit (names are never reused). */
export interface Symbols {
  maps: Map<string, ObjInfo>;
  files: Map<string, ObjInfo>;
}

/** [off, off+len) of a range of an object of `size` bytes. */
export function resolveRange(r: Range, info: ObjInfo): { off: number; len: number } {
  if (r.form === 'all') return { off: 0, len: info.size };
  if (r.form === 'page') return { off: r.off, len: info.unit };
  const lo = r.lo ?? 0;
  const hi = r.hi ?? info.size;
  return { off: lo, len: hi - lo };
}

export function fmtSize(n: number): string {
  for (const [u, s] of [
    [1024 ** 3, 'G'],
    [1024 ** 2, 'M'],
    [1024, 'K'],
  ] as const)
    if (n !== 0 && n % u === 0) return `${n / u}${s}`;
  return String(n);
}

type Sym =
  | { k: 'proc'; state: 'alive' | 'exited' | 'reaped'; parent?: string; at?: Pos; endAt?: Pos }
  | { k: 'mapping'; info: ObjInfo; at?: Pos }
  | { k: 'file'; info: ObjInfo; open: boolean; at?: Pos; endAt?: Pos }
  | { k: 'pipe'; open: boolean; at?: Pos; endAt?: Pos }
  | { k: 'var'; at?: Pos }
  | { k: 'pin'; user: 'pin' | 'io_uring' | 'vfio'; owner: string; live: boolean; len: number; at?: Pos; endAt?: Pos };

const KIND_TEXT: Record<Sym['k'], string> = {
  proc: 'a process',
  mapping: 'a mapping',
  file: 'a file',
  pipe: 'a pipe',
  var: 'a variable',
  pin: 'a pin',
};

const line = (p?: Pos) => (p ? ` (line ${p.line})` : '');

/** Checks a parsed or loaded scenario; returns it unchanged or throws ScenarioError. */
export function check(sc: Scenario, file: string): Scenario {
  const env = new Map<string, Sym>();
  const seenProfiles = new Set<string>();
  for (const o of sc.outcomes) {
    if (!findProfile(o.profile))
      fail(file, posOf(o, 'profile'), `unknown kernel profile '${o.profile}' (valid: ${profileNames().join(', ')})`);
    if (seenProfiles.has(o.profile)) fail(file, posOf(o, 'profile'), `second outcome line for ${o.profile}`);
    seenProfiles.add(o.profile);
  }
  const hugeSizes = (sc.machine.hugetlb ?? SEED_MACHINE.hugetlb.map((h) => ({ size: h.size, pages: h.nr }))).map((h) => h.size);
  if (sc.machine.memlock !== undefined && sc.machine.memlock % PAGE)
    fail(file, sc.pos?.['machine.memlock'], `memlock=${sc.machine.memlock} is not a multiple of 4K`);
  env.set(sc.process, { k: 'proc', state: 'alive', at: sc.pos?.process });

  const define = (name: string, sym: Sym, at: Pos | undefined) => {
    const old = env.get(name);
    if (old && !(old.k === 'var' && sym.k === 'var'))
      fail(file, at, `'${name}' is already defined as ${KIND_TEXT[old.k]}${line(old.at)}; names are never reused`);
    env.set(name, sym);
  };
  const get = <K extends Sym['k']>(name: string, k: K, at: Pos | undefined): Extract<Sym, { k: K }> => {
    const s = env.get(name);
    if (!s) fail(file, at, `unknown ${KIND_TEXT[k].slice(2)} '${name}'`);
    if (s.k !== k) fail(file, at, `'${name}' is ${KIND_TEXT[s.k]}${line(s.at)}, expected ${KIND_TEXT[k]}`);
    return s as Extract<Sym, { k: K }>;
  };
  const liveProc = (name: string, at: Pos | undefined) => {
    const p = get(name, 'proc', at);
    if (p.state !== 'alive') fail(file, at, `process ${name} has exited${line(p.endAt)}`);
    return p;
  };
  /** Ranges are 4K aligned; whole huge pages where `wholeUnits` (munmap, mprotect, madvise of hugetlb). */
  const checkRange = (r: Range, info: ObjInfo, at: Pos | undefined, what = 'mapping', wholeUnits = false) => {
    const { off, len } = resolveRange(r, info);
    if (r.form === 'slice' && r.lo !== undefined && r.hi !== undefined && r.hi <= r.lo)
      fail(file, at, `empty range ${r.name}[${fmtSize(r.lo)}:${fmtSize(r.hi)}]: expected LO < HI`);
    const align = wholeUnits || r.form === 'page' ? info.unit : PAGE;
    if (off % align || len % align)
      fail(
        file,
        at,
        `range of ${r.name} is not aligned to ${wholeUnits || r.form === 'page' ? 'its page size ' : ''}${fmtSize(align)} (offset ${fmtSize(off)}, length ${fmtSize(len)})`,
      );
    if (len <= 0 || off + len > info.size)
      fail(file, at, `range does not fit: ${r.name} is a ${fmtSize(info.size)} ${what} (offset ${fmtSize(off)}, length ${fmtSize(len)})`);
    return { off, len };
  };
  const mapRange = (r: Range, at: Pos | undefined, wholeUnits = false) => {
    const m = get(r.name, 'mapping', at);
    return { ...checkRange(r, m.info, at, 'mapping', wholeUnits), info: m.info };
  };
  const fileRange = (r: Range, at: Pos | undefined) => {
    const f = get(r.name, 'file', at);
    if (!f.open) fail(file, at, `file ${r.name} is closed${line(f.endAt)}`);
    return { ...checkRange(r, { size: f.info.size, unit: PAGE }, at, 'file'), info: f.info };
  };
  const livePin = (name: string, at: Pos | undefined, user?: 'pin' | 'io_uring' | 'vfio') => {
    const p = get(name, 'pin', at);
    if (user && p.user !== user) fail(file, at, `'${name}' is a ${p.user} pin${line(p.at)}, expected a ${user} one`);
    if (!p.live) fail(file, at, `${name} was already released${line(p.endAt)}`);
    return p;
  };
  const checkSize = (size: number, unit: number, at: Pos | undefined, what: string) => {
    if (size <= 0) fail(file, at, `${what} size must be positive`);
    if (size % unit) fail(file, at, `${what} size ${fmtSize(size)} is not a multiple of its page size ${fmtSize(unit)}`);
    if (unit === PAGE ? size > MAX_SMALL : size / unit > MAX_HUGE_PAGES)
      fail(
        file,
        at,
        `${what} size ${fmtSize(size)} is too large for a scenario (at most ${unit === PAGE ? '64M' : `${MAX_HUGE_PAGES} huge pages`})`,
      );
  };
  const hugeOk = (size: number | undefined, at: Pos | undefined) => {
    if (size && !hugeSizes.includes(size))
      fail(file, at, `this machine has no ${fmtSize(size)} huge pages (machine hugetlb=${hugeSizes.map(fmtSize).join('+') || 'none'})`);
  };

  for (const it of sc.items) {
    if (it.kind === 'expect') {
      const pr = (x: { proc: string; range: Range }, f: string) => {
        liveProc(x.proc, posOf(it, f));
        mapRange(x.range, posOf(it, f));
      };
      switch (it.check) {
        case 'content':
          if ('var' in it.subject) get(it.subject.var, 'var', posOf(it, 'subject'));
          else if ('pin' in it.subject) livePin(it.subject.pin, posOf(it, 'pin'));
          else pr(it.subject.mem, 'target');
          for (const r of it.pattern) {
            if (!Number.isInteger(r.value) || r.value < 0 || r.value > 255) fail(file, it.at, `byte value ${r.value}: expected 0..255`);
            if (r.len !== undefined && r.len <= 0) fail(file, it.at, 'pattern lengths must be positive');
          }
          break;
        case 'matches': {
          const p = livePin(it.pin, posOf(it, 'pin'));
          pr(it.target, 'target');
          const len = resolveRange(it.target.range, get(it.target.range.name, 'mapping', it.at).info).len;
          if (len !== p.len)
            fail(file, posOf(it, 'target'), `${it.pin} pins ${fmtSize(p.len)}, the range is ${fmtSize(len)}: expected the same length`);
          break;
        }
        case 'same-page':
        case 'different-page': {
          pr(it.a, 'target');
          pr(it.b, 'b');
          const la = resolveRange(it.a.range, get(it.a.range.name, 'mapping', it.at).info).len;
          const lb = resolveRange(it.b.range, get(it.b.range.name, 'mapping', it.at).info).len;
          if (la !== lb)
            fail(file, posOf(it, 'b'), `ranges of different lengths (${fmtSize(la)} and ${fmtSize(lb)}) cannot be compared page by page`);
          break;
        }
        case 'prop':
        case 'field':
          pr(it.target, 'target');
          break;
        case 'counter':
          liveProc(it.proc, posOf(it, 'subject'));
          break;
        case 'user-locked':
          break;
      }
      continue;
    }
    const st: Step = it;
    const at = (f: string) => posOf(st, f);
    const proc = liveProc(st.proc, st.at);
    const bound = st.fails === undefined; // a step expected to fail binds nothing
    const bind = (name: string, sym: Sym, f: string) => {
      if (bound) define(name, sym, at(f));
      else if (env.has(name)) define(name, sym, at(f)); // still reports a clash
    };
    switch (st.op) {
      case 'mmap': {
        let unit = PAGE;
        const src = st.source;
        if (src.kind === 'file') {
          const f = get(src.file, 'file', at('file'));
          if (!f.open) fail(file, at('file'), `file ${src.file} is closed${line(f.endAt)}`);
          unit = f.info.unit;
          const off = st.offset ?? 0;
          if (off % unit) fail(file, at('offset'), `offset ${fmtSize(off)} is not a multiple of the file's page size ${fmtSize(unit)}`);
          checkSize(st.size, unit, at('size'), 'mapping');
          if (off + st.size > f.info.size)
            fail(
              file,
              at('size'),
              `mapping does not fit the file: ${src.file} is ${fmtSize(f.info.size)}, mapping ${fmtSize(st.size)} at offset ${fmtSize(off)}`,
            );
        } else {
          if (st.offset !== undefined) fail(file, at('offset'), "'offset' needs a file mapping (file NAME)");
          if ('hugetlb' in src && src.hugetlb) {
            hugeOk(src.hugetlb, at('source'));
            unit = src.hugetlb;
          }
          checkSize(st.size, unit, at('size'), 'mapping');
        }
        if (st.hint && unit !== PAGE) fail(file, at('op'), `THP hints do not apply to hugetlb mappings`);
        bind(st.name, { k: 'mapping', info: { size: st.size, unit }, at: st.at }, 'name');
        break;
      }
      case 'memfd':
      case 'tmpfile': {
        const unit = st.op === 'memfd' && st.hugetlb ? st.hugetlb : PAGE;
        if (st.op === 'memfd') hugeOk(st.hugetlb, at('op'));
        checkSize(st.size, unit, at('size'), 'file');
        bind(st.name, { k: 'file', info: { size: st.size, unit }, open: true, at: st.at }, 'name');
        break;
      }
      case 'store':
      case 'load':
        mapRange(st.range, at('range'));
        if (st.op === 'store' && (!Number.isInteger(st.value) || st.value < 0 || st.value > 255))
          fail(file, at('value'), `byte value ${st.value}: expected 0..255`);
        break;
      case 'read':
        mapRange(st.range, at('range'));
        bind(st.into, { k: 'var', at: st.at }, 'into');
        break;
      case 'pipe-read': {
        const p = get(st.pipe, 'pipe', at('pipe'));
        if (!p.open) fail(file, at('pipe'), `pipe ${st.pipe} is closed${line(p.endAt)}`);
        if (st.len !== undefined && (st.len <= 0 || st.len % PAGE))
          fail(file, at('len'), `pipe read length ${st.len}: expected a positive multiple of 4K`);
        bind(st.into, { k: 'var', at: st.at }, 'into');
        break;
      }
      case 'fork':
        bind(st.child, { k: 'proc', state: 'alive', parent: st.proc, at: st.at }, 'child');
        break;
      case 'exit':
        if (!Number.isInteger(st.status) || st.status < 0 || st.status > 255)
          fail(file, st.at, `exit status ${st.status}: expected 0..255`);
        if (bound) {
          proc.state = 'exited';
          proc.endAt = st.at;
          for (const s of env.values())
            if (s.k === 'pin' && s.owner === st.proc && s.live) {
              s.live = false;
              s.endAt = st.at;
            }
        }
        break;
      case 'wait': {
        const c = get(st.child, 'proc', at('child'));
        if (c.parent !== st.proc) fail(file, at('child'), `${st.child} is not a child of ${st.proc}`);
        if (c.state === 'alive')
          fail(file, at('child'), `${st.child} has not exited: wait would block forever (add '${st.child}: exit' before)`);
        if (c.state === 'reaped') fail(file, at('child'), `${st.child} was already waited for${line(c.endAt)}`);
        if (bound) c.state = 'reaped';
        break;
      }
      case 'munmap':
      case 'mprotect':
      case 'madvise':
        mapRange(st.range, at('range'), true);
        break;
      case 'mremap': {
        const src = mapRange(st.range, at('range'));
        if (src.info.unit !== PAGE) fail(file, at('range'), 'mremap of hugetlb mappings is not modelled');
        const dst = get(st.to, 'mapping', at('to'));
        if (dst.info.unit !== PAGE) fail(file, at('to'), 'mremap onto a hugetlb mapping is not modelled');
        if (st.to === st.range.name) fail(file, at('to'), 'mremap onto the same mapping');
        if (src.len > dst.info.size)
          fail(file, at('to'), `${st.to} (${fmtSize(dst.info.size)}) is smaller than the range moved (${fmtSize(src.len)})`);
        break;
      }
      case 'pipe':
        bind(st.name, { k: 'pipe', open: true, at: st.at }, 'name');
        break;
      case 'vmsplice': {
        mapRange(st.range, at('range'));
        const p = get(st.pipe, 'pipe', at('pipe'));
        if (!p.open) fail(file, at('pipe'), `pipe ${st.pipe} is closed${line(p.endAt)}`);
        break;
      }
      case 'close': {
        const s = env.get(st.name);
        if (!s) fail(file, at('name'), `unknown pipe or file '${st.name}'`);
        if (s.k !== 'pipe' && s.k !== 'file')
          fail(file, at('name'), `'${st.name}' is ${KIND_TEXT[s.k]}${line(s.at)}, expected a pipe or a file`);
        if (!s.open) fail(file, at('name'), `${st.name} is already closed${line(s.endAt)}`);
        if (bound) {
          s.open = false;
          s.endAt = st.at;
        }
        break;
      }
      case 'uring-register':
      case 'vfio-map':
      case 'pin':
        {
          const { len } = mapRange(st.range, at('range'));
          const user = st.op === 'pin' ? 'pin' : st.op === 'vfio-map' ? 'vfio' : 'io_uring';
          bind(st.name, { k: 'pin', user, owner: st.proc, live: true, len, at: st.at }, 'name');
        }
        break;
      case 'uring-write': {
        livePin(st.buf, at('buf'), 'io_uring');
        const f = get(st.file.name, 'file', at('file'));
        if (!f.open) fail(file, at('file'), `file ${st.file.name} is closed${line(f.endAt)}`);
        const { off } = resolveRange(st.file, { size: f.info.size, unit: PAGE });
        if (off % PAGE || off > f.info.size)
          fail(file, at('file'), `file offset ${fmtSize(off)}: expected a multiple of 4K within the file`);
        break;
      }
      case 'uring-unregister':
      case 'unpin':
      case 'vfio-unmap': {
        const name = st.op === 'uring-unregister' ? st.buf : st.op === 'unpin' ? st.pin : st.dma;
        const f = st.op === 'uring-unregister' ? 'buf' : st.op === 'unpin' ? 'pin' : 'dma';
        const p = livePin(name, at(f), st.op === 'uring-unregister' ? 'io_uring' : st.op === 'unpin' ? 'pin' : 'vfio');
        if (p.owner !== st.proc) fail(file, at(f), `${name} belongs to ${p.owner}, not ${st.proc}`);
        if (bound) {
          p.live = false;
          p.endAt = st.at;
        }
        break;
      }
      case 'odirect-read':
      case 'odirect-write': {
        const m = mapRange(st.range, at('range'));
        const f = fileRange(st.file, at('file'));
        if (f.info.unit !== PAGE) fail(file, at('file'), 'O_DIRECT on hugetlbfs files is not modelled');
        if (st.file.form !== 'all' && f.len !== m.len)
          fail(file, at('file'), `file range (${fmtSize(f.len)}) and memory range (${fmtSize(m.len)}) differ in length`);
        if (st.file.form === 'all' && m.len > f.info.size)
          fail(file, at('file'), `file ${st.file.name} (${fmtSize(f.info.size)}) is smaller than the memory range`);
        break;
      }
      case 'pread':
        fileRange(st.file, at('file'));
        bind(st.into, { k: 'var', at: st.at }, 'into');
        break;
      case 'pwrite':
        fileRange(st.file, at('file'));
        if (!Number.isInteger(st.value) || st.value < 0 || st.value > 255)
          fail(file, at('value'), `byte value ${st.value}: expected 0..255`);
        break;
      case 'clear-softdirty':
        break;
    }
  }
  return sc;
}

/** The mappings and files of a checked scenario. */
export function symbols(sc: Scenario): Symbols {
  const maps = new Map<string, ObjInfo>();
  const files = new Map<string, ObjInfo>();
  for (const it of sc.items) {
    if (it.kind !== 'step') continue;
    if (it.op === 'memfd') files.set(it.name, { size: it.size, unit: it.hugetlb || PAGE });
    if (it.op === 'tmpfile') files.set(it.name, { size: it.size, unit: PAGE });
  }
  for (const it of sc.items) {
    if (it.kind !== 'step' || it.op !== 'mmap') continue;
    const src = it.source;
    const unit = src.kind === 'file' ? (files.get(src.file)?.unit ?? PAGE) : 'hugetlb' in src && src.hugetlb ? src.hugetlb : PAGE;
    maps.set(it.name, { size: it.size, unit });
  }
  return { maps, files };
}
