/**
 * `cowlab host run` and `cowlab host diff`: a scenario on the real kernel (HostBackend) and, for a
 * diff, on the model (ModelBackend, on the machine probed from this host), compared observation
 * by observation after every step. The rules (docs/host.md, "Comparison rules"):
 *
 * - each step's error (errno or signal) and, for reads, pipe reads, preads, vmsplice and wait, its result
 * - each expectation's verdict, unless it asks what the host cannot observe (writable, pinned,
 *   refcount, pincount, user-locked)
 * - per watched page (the pages the scenario names) of each live process: present, swapped, and
 *   where both sides define them zeropage, huge, anon, exclusive, mappedOnce, mapcount
 * - page identity as an equivalence: model pages and host PFNs must pair one to one across the
 *   run (a pair is forgotten once neither side shows either page)
 * - VmPin and VmLck of each live process
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Profile } from '../model/profile.ts';
import type { Item, Scenario } from '../scenario/ast.ts';
import type { PageObs } from '../scenario/backend.ts';
import { InternalError } from '../scenario/errors.ts';
import { loadScenario } from '../scenario/load.ts';
import { ModelBackend } from '../scenario/model-backend.ts';
import { obsText, type RunResult, runScenario, type StepTrace, type TraceEntry, type Verdict } from '../scenario/runner.ts';
import { HostBackend, type HostBackendOptions, HostUnsupported } from './backend.ts';
import { HostSkip, withHugetlbReservedSync } from './hostsafety.ts';
import { type HostPlan, planForHost } from './machine.ts';
import { type HostFacts, khugepagedCollapsed, probeHost } from './probe.ts';
import { HostTimeoutError, hostUnavailable } from './session.ts';

/** The page fields compared where both sides define them (present and swapped always). */
export const PAGE_FIELDS = ['zeropage', 'huge', 'anon', 'exclusive', 'mappedOnce', 'mapcount'] as const;

/** Expectations about what user space cannot see: their verdicts are not compared. */
const HOST_BLIND_PROPS = new Set(['writable', 'pinned']);
const HOST_BLIND_FIELDS = new Set(['refcount', 'pincount']);

/** Step kinds whose result text (content, bytes, status) is compared; addresses and pids are not. */
const RESULT_OPS = new Set(['read', 'pipe-read', 'pread', 'vmsplice', 'wait']);

export interface FieldDiff {
  /** `A:buf+4K exclusive`, `A VmPin`, `result`, `verdict`, `identity` */
  what: string;
  model: string;
  host: string;
}

export interface Difference {
  line: number;
  col: number;
  /** the step or expectation text */
  text: string;
  diffs: FieldDiff[];
}

export interface DiffResult {
  file: string;
  title: string;
  status: 'agree' | 'disagree' | 'skip';
  /** skip: why */
  reason?: string;
  kernel: string;
  /** the first step or expectation where the two differ */
  first?: Difference;
  /** steps and expectations compared */
  compared: number;
  /** what was not compared, and why (expectations the host cannot observe, missing root) */
  notes: string[];
  model?: RunResult;
  host?: RunResult;
}

/** Page identity as an equivalence relation: model labels and host labels must pair one to one. */
export class Bijection {
  private readonly m2h = new Map<string, string>();
  private readonly h2m = new Map<string, string>();

  /**
   * One observation point: (where, model page, host page) for every page present on both sides.
   * Pairs neither side shows any more are forgotten first (a freed PFN may come back as another page).
   * Returns the first violation, or null.
   */
  observe(pairs: Array<{ where: string; m: string; h: string }>): FieldDiff | null {
    const ms = new Set(pairs.map((p) => p.m));
    const hs = new Set(pairs.map((p) => p.h));
    for (const [m, h] of [...this.m2h]) {
      if (ms.has(m) || hs.has(h)) continue;
      this.m2h.delete(m);
      this.h2m.delete(h);
    }
    for (const p of pairs) {
      const h0 = this.m2h.get(p.m);
      const m0 = this.h2m.get(p.h);
      if (h0 !== undefined && h0 !== p.h)
        return {
          what: `${p.where} identity`,
          model: `${p.m} (the same page as before)`,
          host: `${p.h} (before: ${h0}: another page)`,
        };
      if (m0 !== undefined && m0 !== p.m)
        return {
          what: `${p.where} identity`,
          model: `${p.m} (before: ${m0}: another page)`,
          host: `${p.h} (the same page as before)`,
        };
      this.m2h.set(p.m, p.h);
      this.h2m.set(p.h, p.m);
    }
    return null;
  }
}

const show = (v: unknown) => (v === undefined ? '?' : String(v));

/** Field-by-field differences of one page (fields one side does not define are skipped). */
export function comparePage(where: string, m: PageObs, h: PageObs): FieldDiff[] {
  const out: FieldDiff[] = [];
  if (m.present !== h.present || m.swapped !== h.swapped) {
    out.push({ what: where, model: obsText(m), host: obsText(h) });
    return out;
  }
  if (!m.present) return out;
  for (const f of PAGE_FIELDS) {
    const a = m[f];
    const b = h[f];
    if (a === undefined || b === undefined || a === b) continue;
    out.push({ what: `${where} ${f}`, model: show(a), host: show(b) });
  }
  return out;
}

function hostBlind(it: Item | undefined): string | null {
  if (it?.kind !== 'expect') return null;
  if (it.check === 'prop' && HOST_BLIND_PROPS.has(it.prop))
    return `'${it.prop}' (the PTE write bit and pins are not visible to user space)`;
  if (it.check === 'field' && HOST_BLIND_FIELDS.has(it.field))
    return `'${it.field}' (kpagecount is the mapcount; refcounts and pins are not visible)`;
  if (it.check === 'user-locked') return "'user-locked' (the user's locked_vm is not visible)";
  return null;
}

function itemsByPos(sc: Scenario): Map<string, Item> {
  const m = new Map<string, Item>();
  for (const it of sc.items) if (it.at) m.set(`${it.at.line}:${it.at.col}`, it);
  return m;
}

/** Compares two runs of one scenario entry by entry; the first difference, the count compared, notes. */
export function compareRuns(
  sc: Scenario,
  model: RunResult,
  host: RunResult,
  opts: { identity?: boolean } = {},
): { first?: Difference; compared: number; notes: string[] } {
  const items = itemsByPos(sc);
  const ids = new Bijection();
  const notes: string[] = [];
  let compared = 0;
  const n = Math.max(model.trace.length, host.trace.length);
  for (let i = 0; i < n; i++) {
    const a: TraceEntry | undefined = model.trace[i];
    const b: TraceEntry | undefined = host.trace[i];
    const at = a ?? b;
    const diff = (diffs: FieldDiff[]): Difference => ({ line: at.line, col: at.col, text: at.text, diffs });
    if (!a || !b || a.type !== b.type || a.line !== b.line || a.col !== b.col) {
      const desc = (e: TraceEntry | undefined) =>
        !e ? 'the run had ended' : `${e.line}: ${e.text}${e.type === 'step' ? (e.error ? ` -> ${e.error}` : '') : ''}`;
      return { first: diff([{ what: 'next entry', model: desc(a), host: desc(b) }]), compared, notes };
    }
    const it = items.get(`${a.line}:${a.col}`);
    if (a.type === 'expect') {
      const hv = b as Verdict;
      let blind = hostBlind(it);
      // without root: no PFNs (page identity) and no kpage* flags; the runner says "not observable"
      if (!blind && opts.identity === false && it?.kind === 'expect' && (it.check === 'same-page' || it.check === 'different-page'))
        blind = 'page identity (PFNs are hidden without root)';
      if (!blind && hv.ok === false && /is not observable on /.test(hv.detail ?? '')) blind = `what it asks (${hv.detail})`;
      if (blind) {
        notes.push(`line ${a.line}: verdict not compared: the host cannot observe ${blind}`);
        continue;
      }
      if (hv.ok !== a.ok)
        return {
          first: diff([
            {
              what: 'verdict',
              model: `${a.ok === null ? 'not reached' : a.ok ? 'holds' : 'fails'}${a.detail ? ` (${a.detail})` : ''}`,
              host: `${hv.ok === null ? 'not reached' : hv.ok ? 'holds' : 'fails'}${hv.detail ? ` (${hv.detail})` : ''}`,
            },
          ]),
          compared,
          notes,
        };
      compared++;
      continue;
    }
    const hs = b as StepTrace;
    const diffs: FieldDiff[] = [];
    if (a.error !== hs.error)
      diffs.push({ what: 'step', model: a.error ? `fails: ${a.error}` : 'succeeds', host: hs.error ? `fails: ${hs.error}` : 'succeeds' });
    else if (it?.kind === 'step' && RESULT_OPS.has(it.op) && a.result !== hs.result)
      diffs.push({ what: 'result', model: show(a.result), host: show(hs.result) });
    const mo = a.observed;
    const ho = hs.observed;
    if (mo && ho) {
      const keys = [...new Set([...Object.keys(mo.pages), ...Object.keys(ho.pages)])];
      const pairs: Array<{ where: string; m: string; h: string }> = [];
      for (const k of keys) {
        const x = mo.pages[k];
        const y = ho.pages[k];
        if (!x || !y) {
          diffs.push({ what: k, model: x ? obsText(x) : '(not observed)', host: y ? obsText(y) : '(not observed)' });
          continue;
        }
        const d = comparePage(k, x, y);
        if (d.length) diffs.push(...d, ...(d[0].what === k ? [] : [{ what: k, model: obsText(x), host: obsText(y) }]));
        if (x.present && y.present && x.page !== undefined && y.page !== undefined) pairs.push({ where: k, m: x.page, h: y.page });
      }
      if (!diffs.length) {
        const v = ids.observe(pairs);
        if (v) diffs.push(v);
      }
      for (const p of new Set([...Object.keys(mo.counters), ...Object.keys(ho.counters)])) {
        const x = mo.counters[p];
        const y = ho.counters[p];
        for (const c of ['VmPin', 'VmLck'] as const)
          if (x?.[c] !== y?.[c]) diffs.push({ what: `${p} ${c}`, model: show(x?.[c]), host: show(y?.[c]) });
      }
    }
    if (diffs.length) return { first: diff(diffs), compared, notes };
    compared++;
  }
  return { compared, notes };
}

export interface HostRunOptions {
  file?: string;
  /** host facts (default: probeHost()) */
  facts?: HostFacts;
  backend?: HostBackendOptions;
  /** khugepaged's collapse counter (default: khugepagedCollapsed(); tests inject one) */
  collapses?: () => number | undefined;
}

/**
 * How many runs a scenario gets on the real kernel before it is given up. khugepaged runs on its own
 * schedule (it scans a process as soon as MADV_HUGEPAGE registers it): a collapse in the middle of
 * a run replaces the pages of a split THP with a new one, which no model step predicts. Such a run
 * is discarded and made again.
 */
export const HOST_ATTEMPTS = 3;

/** Runs fn with the hugetlb pages the plan needs reserved (restored afterwards whatever happens). */
function withReservations<T>(plan: HostPlan, fn: () => T): T {
  const go = (i: number): T => {
    if (i >= plan.reserve.length) return fn();
    const r = plan.reserve[i];
    return withHugetlbReservedSync(r.size, r.pages, () => go(i + 1));
  };
  return go(0);
}

/** The reason a run on this host must be skipped (HostUnsupported, HostSkip), or null. */
function skipReason(e: unknown): string | null {
  const x = e instanceof InternalError ? e.original : e;
  if (x instanceof HostUnsupported || x instanceof HostSkip) return x.message;
  return null;
}

/**
 * Runs a scenario on the real kernel. Returns the run, or a skip reason; `discarded` counts the
 * runs thrown away because khugepaged collapsed pages during them (HOST_ATTEMPTS).
 */
export function hostRun(
  sc: Scenario,
  opts: HostRunOptions = {},
): { result?: RunResult; skip?: string; plan: HostPlan; discarded?: number } {
  const facts = opts.facts ?? probeHost();
  const plan = planForHost(sc, facts);
  const why = hostUnavailable();
  if (why) return { skip: `real-kernel backend unavailable: ${why}`, plan };
  if (plan.skip) return { skip: plan.skip, plan };
  const collapses = opts.collapses ?? (() => khugepagedCollapsed());
  try {
    for (let attempt = 1; ; attempt++) {
      const before = collapses();
      const result = withReservations(plan, () => {
        const b = new HostBackend({ memLimit: 512 << 20, oneCpu: true, ...opts.backend });
        try {
          return runScenario(sc, b, { file: opts.file, observe: true });
        } finally {
          b.close();
        }
      });
      const after = collapses();
      const discarded = attempt - 1;
      if (before === after) return discarded ? { result, plan, discarded } : { result, plan };
      if (attempt === HOST_ATTEMPTS)
        return {
          skip: `khugepaged collapsed pages during each of ${HOST_ATTEMPTS} runs (its pages_collapsed went ${before} -> ${after} in the last): the runs do not show this scenario alone`,
          plan,
          discarded: attempt,
        };
    }
  } catch (e) {
    const r = skipReason(e);
    if (r) return { skip: r, plan };
    throw e;
  }
}

/** The model (profile) against the real kernel on one scenario. */
export function hostDiff(sc: Scenario, profile: Profile, opts: HostRunOptions = {}): DiffResult {
  const file = opts.file ?? '<input>';
  const base: DiffResult = { file, title: sc.title, status: 'skip', kernel: profile.name, compared: 0, notes: [] };
  const facts = opts.facts ?? probeHost();
  const h = hostRun(sc, { ...opts, facts });
  if (h.skip || !h.result) return { ...base, reason: h.skip ?? 'no result' };
  const model = runScenario(sc, new ModelBackend(profile, h.plan.machine), { file, observe: true });
  const { first, compared, notes } = compareRuns(sc, model, h.result, { identity: facts.isRoot });
  if (h.discarded) notes.unshift(`khugepaged collapsed pages during ${h.discarded} earlier run(s) of this scenario; they were discarded`);
  if (!facts.isRoot)
    notes.unshift('not root: PFNs and /proc/kpage* are hidden, so page identity, zeropage, anon, exclusive and mapcount were not compared');
  return { ...base, status: first ? 'disagree' : 'agree', first, compared, notes, model, host: h.result };
}

/** The .cow (and .json) files of a directory, sorted. */
export function scenarioFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.cow') || n.endsWith('.json'))
    .sort()
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile());
}

export function loadFile(file: string): Scenario {
  return loadScenario(readFileSync(file, 'utf8'), file);
}

/** Text for one diff result. */
export function formatDiffResult(r: DiffResult, verbose = false): string {
  const out: string[] = [];
  if (r.status === 'skip') out.push(`SKIP ${r.file}: ${r.reason}`);
  else if (r.status === 'agree')
    out.push(`AGREE ${r.file}: model ${r.kernel} and this kernel agree on ${r.compared} steps and expectations`);
  else {
    const f = r.first as Difference;
    out.push(`DISAGREE ${r.file}: model ${r.kernel} and this kernel differ`);
    out.push(`  first difference at ${r.file}:${f.line}:${f.col}  ${f.text}`);
    const w = Math.max(10, ...f.diffs.map((d) => d.what.length));
    const mw = Math.max(5, ...f.diffs.map((d) => d.model.length));
    out.push(`    ${''.padEnd(w)}  ${`model ${r.kernel}`.padEnd(mw)}  host`);
    for (const d of f.diffs) out.push(`    ${d.what.padEnd(w)}  ${d.model.padEnd(mw)}  ${d.host}`);
  }
  if (verbose) for (const n of r.notes) out.push(`  note: ${n}`);
  return `${out.join('\n')}\n`;
}

/** Known hosts errors that end a run: a timeout is reported, not thrown at the user as a stack. */
export function isHostFailure(e: unknown): e is Error {
  const x = e instanceof InternalError ? e.original : e;
  return x instanceof HostTimeoutError;
}
