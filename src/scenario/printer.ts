/**
 * AST -> canonical .cow text. parse(print(ast)) equals ast up to positions (the round-trip
 * property the tests check). Canonical form: header lines in a fixed order, sizes in the
 * largest exact unit (4K, 2M, 1G), bytes as 0xNN, one space between tokens.
 */
import type { Expect, Item, MachineSpec, ProcRange, Range, Run, Scenario, Step } from './ast.ts';
import { fmtSize } from './check.ts';

export const fmtByte = (b: number): string => `0x${b.toString(16).padStart(2, '0')}`;

export function fmtRange(r: Range): string {
  if (r.form === 'all') return r.name;
  if (r.form === 'page') return `${r.name}+${fmtSize(r.off)}`;
  return `${r.name}[${r.lo === undefined ? '' : fmtSize(r.lo)}:${r.hi === undefined ? '' : fmtSize(r.hi)}]`;
}

export const fmtProcRange = (p: ProcRange): string => `${p.proc}:${fmtRange(p.range)}`;

const huge = (size?: number) => (size ? ` hugetlb(${fmtSize(size)})` : '');
const onOff = (b: boolean) => (b ? 'on' : 'off');

export function fmtPattern(p: Run[]): string {
  return p.map((r) => (r.len === undefined ? fmtByte(r.value) : `${fmtByte(r.value)}*${fmtSize(r.len)}`)).join(', ');
}

function fmtMachine(m: MachineSpec): string {
  const parts: string[] = [];
  if (m.thp !== undefined) parts.push(`thp=${onOff(m.thp)}`);
  if (m.hugeZeropage !== undefined) parts.push(`huge-zeropage=${onOff(m.hugeZeropage)}`);
  if (m.zeroPage !== undefined) parts.push(`zeropage=${onOff(m.zeroPage)}`);
  if (m.hugetlb !== undefined)
    parts.push(`hugetlb=${m.hugetlb.length ? m.hugetlb.map((h) => `${fmtSize(h.size)}:${h.pages}`).join('+') : 'none'}`);
  if (m.swap !== undefined) parts.push(`swap=${onOff(m.swap)}`);
  if (m.gupTest !== undefined) parts.push(`gup-test=${onOff(m.gupTest)}`);
  if (m.softDirty !== undefined) parts.push(`soft-dirty=${onOff(m.softDirty)}`);
  if (m.memlock !== undefined) parts.push(`memlock=${fmtSize(m.memlock)}`);
  if (m.ipcLock !== undefined) parts.push(`ipc-lock=${onOff(m.ipcLock)}`);
  return parts.join(' ');
}

/** The operation of a step, without the process prefix and the `! ERR` suffix. */
export function fmtOp(s: Step): string {
  switch (s.op) {
    case 'mmap': {
      const src = s.source;
      const source = src.kind === 'file' ? `file ${src.file}` : src.kind === 'tmpfile' ? 'tmpfile' : `${src.kind}${huge(src.hugetlb)}`;
      let t = `mmap ${s.name} ${source} ${s.sharing} ${s.prot} ${fmtSize(s.size)}`;
      if (s.offset !== undefined) t += ` offset ${fmtSize(s.offset)}`;
      if (s.hint) t += ` ${s.hint}`;
      return t;
    }
    case 'memfd':
      return `memfd ${s.name} ${fmtSize(s.size)}${huge(s.hugetlb)}`;
    case 'tmpfile':
      return `tmpfile ${s.name} ${fmtSize(s.size)}`;
    case 'store':
      return `store ${fmtRange(s.range)} ${fmtByte(s.value)}`;
    case 'load':
      return `load ${fmtRange(s.range)}`;
    case 'read':
      return `read ${fmtRange(s.range)} -> ${s.into}`;
    case 'pipe-read':
      return `read ${s.pipe}${s.len === undefined ? '' : ` ${fmtSize(s.len)}`} -> ${s.into}`;
    case 'fork':
      return `fork ${s.child}`;
    case 'exit':
      return s.status ? `exit ${s.status}` : 'exit';
    case 'wait':
      return `wait ${s.child}`;
    case 'munmap':
      return `munmap ${fmtRange(s.range)}`;
    case 'mprotect':
      return `mprotect ${fmtRange(s.range)} ${s.prot}`;
    case 'madvise':
      return `madvise ${fmtRange(s.range)} ${s.advice}`;
    case 'mremap':
      return `mremap ${fmtRange(s.range)} -> ${s.to}`;
    case 'pipe':
      return `pipe ${s.name}`;
    case 'vmsplice':
      return `vmsplice ${fmtRange(s.range)} -> ${s.pipe}`;
    case 'close':
      return `close ${s.name}`;
    case 'uring-register':
      return `io_uring register ${fmtRange(s.range)} -> ${s.name}`;
    case 'uring-write':
      return `io_uring write_fixed ${s.buf} -> ${fmtRange(s.file)}`;
    case 'uring-unregister':
      return `io_uring unregister ${s.buf}`;
    case 'odirect-read':
      return `odirect read ${fmtRange(s.file)} -> ${fmtRange(s.range)}`;
    case 'odirect-write':
      return `odirect write ${fmtRange(s.range)} -> ${fmtRange(s.file)}`;
    case 'pin':
      return `pin ${fmtRange(s.range)} ${s.write ? 'rw' : 'ro'} longterm${s.fast ? ' fast' : ''} -> ${s.name}`;
    case 'unpin':
      return `unpin ${s.pin}`;
    case 'vfio-map':
      return `vfio map ${fmtRange(s.range)} ${s.write ? 'rw' : 'ro'} -> ${s.name}`;
    case 'vfio-unmap':
      return `vfio unmap ${s.dma}`;
    case 'pread':
      return `pread ${fmtRange(s.file)} -> ${s.into}`;
    case 'pwrite':
      return `pwrite ${fmtRange(s.file)} ${fmtByte(s.value)}`;
    case 'clear-softdirty':
      return 'clear_refs softdirty';
  }
}

export function fmtStep(s: Step): string {
  return `${s.proc}: ${fmtOp(s)}${s.fails ? ` ! ${s.fails}` : ''}`;
}

export function fmtExpect(e: Expect): string {
  const not = 'not' in e && e.not ? 'not ' : '';
  switch (e.check) {
    case 'content': {
      const s = e.subject;
      const subj = 'var' in s ? s.var : 'pin' in s ? `pin ${s.pin}` : fmtProcRange(s.mem);
      return `expect ${subj} ${e.cmp} ${fmtPattern(e.pattern)}`;
    }
    case 'matches':
      return `expect pin ${e.pin} ${not}matches ${fmtProcRange(e.target)}`;
    case 'same-page':
    case 'different-page':
      return `expect ${fmtProcRange(e.a)} ${e.check} ${fmtProcRange(e.b)}`;
    case 'prop':
      return `expect ${fmtProcRange(e.target)} ${not}${e.prop}`;
    case 'field':
      return `expect ${fmtProcRange(e.target)} ${e.field} ${e.cmp} ${e.value}`;
    case 'counter':
      return `expect ${e.proc} ${e.counter} ${e.cmp} ${fmtSize(e.value)}`;
    case 'user-locked':
      return `expect user-locked ${e.cmp} ${fmtSize(e.value)}`;
  }
}

export const fmtItem = (it: Item): string => (it.kind === 'step' ? fmtStep(it) : fmtExpect(it));

const quote = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** The canonical .cow text of a scenario. */
export function printScenario(sc: Scenario): string {
  const out = [`scenario ${quote(sc.title)}`];
  for (const o of sc.outcomes) out.push(`outcome ${o.profile} ${o.pass ? 'pass' : 'fail'}`);
  const m = fmtMachine(sc.machine);
  if (m) out.push(`machine ${m}`);
  out.push(`process ${sc.process}`);
  for (const it of sc.items) out.push(fmtItem(it));
  return `${out.join('\n')}\n`;
}
