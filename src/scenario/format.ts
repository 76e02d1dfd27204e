/**
 * Text renderings of run results: the per-step trace of one run, and the expectation x profile
 * table of several. Colour (ANSI) only when asked for (the CLI asks when stdout is a terminal and
 * NO_COLOR is unset).
 */
import type { RunResult, Verdict } from './runner.ts';

export interface Style {
  ok(s: string): string;
  bad(s: string): string;
  dim(s: string): string;
  hi(s: string): string;
  bold(s: string): string;
}

const plain: Style = { ok: (s) => s, bad: (s) => s, dim: (s) => s, hi: (s) => s, bold: (s) => s };
const ansi = (code: string) => (s: string) => `\x1b[${code}m${s}\x1b[0m`;
const colour: Style = { ok: ansi('32'), bad: ansi('31;1'), dim: ansi('2'), hi: ansi('33'), bold: ansi('1') };

export const style = (color: boolean): Style => (color ? colour : plain);

function verdictWord(v: Verdict, st: Style): string {
  if (v.ok === true) return st.ok('ok');
  if (v.ok === false) return st.bad('FAIL');
  return st.bad('not reached');
}

/** The trace of one run: each step with its events and page changes, each expectation's verdict. */
export function formatTrace(r: RunResult, color = false): string {
  const st = style(color);
  const out: string[] = [];
  out.push(st.bold(`${r.title}`));
  out.push(st.dim(`on ${r.backend}`));
  for (const e of r.trace) {
    const ln = String(e.line).padStart(4);
    if (e.type === 'step') {
      let head = `${ln}  ${e.text}`;
      if (e.error) head += `  ${st.bad(`-> ${e.error}`)}`;
      else if (e.result) head += st.dim(`  -> ${e.result}`);
      out.push(head);
      for (const ev of e.events) {
        const parts = [ev.what, ev.proc ? `in ${ev.proc}` : '', ev.where ? `at ${ev.where}` : '', ev.detail ? `(${ev.detail})` : ''];
        out.push(`        ${st.dim('kernel:')} ${parts.filter(Boolean).join(' ')}`);
      }
      const w = Math.max(0, ...e.changes.map((c) => c.where.length));
      for (const c of e.changes) out.push(`        ${c.where.padEnd(w)}  ${st.dim(c.before)} ${st.dim('->')} ${st.hi(c.after)}`);
    } else {
      out.push(`${ln}  ${e.text}  ${verdictWord(e, st)}${e.detail ? st.dim(`  (${e.detail})`) : ''}`);
    }
  }
  for (const v of r.verdicts) if (v.ok === null) out.push(`${String(v.line).padStart(4)}  ${v.text}  ${verdictWord(v, st)}`);
  const held = r.verdicts.filter((v) => v.ok === true).length;
  const summary = `${r.pass ? 'pass' : 'fail'}: ${held} of ${r.verdicts.length} expectations hold`;
  out.push(
    r.pass ? st.ok(summary) : st.bad(summary) + (r.stopped ? st.dim(` (stopped at line ${r.stopped.line}: ${r.stopped.message})`) : ''),
  );
  return `${out.join('\n')}\n`;
}

export interface ProfileRun {
  profile: string;
  result: RunResult;
  /** the scenario's `outcome` line for this profile, if any */
  declared?: boolean;
}

/** Expectations (rows) x profiles (columns), then the verdicts and the declared outcomes. */
export function formatTable(title: string, runs: ProfileRun[], color = false): string {
  const st = style(color);
  const rows = new Map<string, { line: number; text: string }>();
  for (const { result } of runs) for (const v of result.verdicts) rows.set(`${v.line}:${v.text}`, { line: v.line, text: v.text });
  const keys = [...rows.keys()].sort((a, b) => (rows.get(a)?.line ?? 0) - (rows.get(b)?.line ?? 0));
  const labels = keys.map((k) => {
    const r = rows.get(k) as { line: number; text: string };
    return `${String(r.line).padStart(4)}  ${r.text}`;
  });
  const w = Math.max(12, ...labels.map((l) => l.length));
  const cw = Math.max(6, ...runs.map((r) => r.profile.length + 1));
  const cell = (s: string, f: (x: string) => string) => f(s) + ' '.repeat(Math.max(0, cw - s.length));
  const out: string[] = [st.bold(title), ''];
  out.push(`${''.padEnd(w)}  ${runs.map((r) => cell(r.profile, st.bold)).join('')}`);
  keys.forEach((k, i) => {
    const cells = runs.map(({ result }) => {
      const v = result.verdicts.find((x) => `${x.line}:${x.text}` === k);
      // a step that failed on another profile only: here it succeeded, unless the run stopped before
      if (!v) return result.stopped && result.stopped.line < (rows.get(k)?.line ?? 0) ? cell('-', st.dim) : cell('ok', st.ok);
      if (v.ok === true) return cell('ok', st.ok);
      if (v.ok === false) return cell('FAIL', st.bad);
      return cell('-', st.dim);
    });
    out.push(`${labels[i].padEnd(w)}  ${cells.join('')}`);
  });
  out.push('');
  out.push(`${'verdict'.padEnd(w)}  ${runs.map((r) => cell(r.result.pass ? 'pass' : 'fail', r.result.pass ? st.ok : st.bad)).join('')}`);
  out.push(
    `${'declared outcome'.padEnd(w)}  ${runs
      .map((r) =>
        r.declared === undefined ? cell('-', st.dim) : cell(r.declared ? 'pass' : 'fail', r.declared === r.result.pass ? st.ok : st.bad),
      )
      .join('')}`,
  );
  return `${out.map((l) => l.trimEnd()).join('\n')}\n`;
}
