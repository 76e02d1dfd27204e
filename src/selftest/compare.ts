/**
 * Comparing kernels on the selftest: which cases change between two profiles and which switch is
 * responsible, and for one case, the first profile where it passes. Everything is computed by
 * running the selftest on the model; nothing here knows an expected result.
 */
import type { Machine } from '../model/machine.ts';
import { type Profile, SWITCHES, type SwitchDoc, type Switches, type SwitchName, withSwitch } from '../model/profile.ts';
import { runCow } from './cow.ts';
import type { Edition } from './editions.ts';
import type { Outcome, TestResult } from './tap.ts';

export interface CaseChange {
  num: number;
  run: string;
  a: Outcome;
  b: Outcome;
  /** the switches that, flipped alone in A (with what they require), give B's result; when no
   *  single switch does, all switches that differ (they act together) */
  switches: SwitchName[];
  /** true when no single switch explains the change */
  together: boolean;
}

export interface ProfileDiff {
  a: Profile;
  b: Profile;
  /** switches whose value differs between A and B */
  differing: SwitchName[];
  changes: CaseChange[];
}

/** A's switches with `name` set to its value in B (turning a switch on brings what it requires). */
function flip(a: Switches, b: Switches, name: SwitchName): Switches {
  return b[name] ? withSwitch(a, name) : { ...a, [name]: false };
}

/** Invariant checks can be turned off for speed (the test suite runs them on every profile). */
export interface CompareOptions {
  check?: boolean;
  /** results already computed for a profile (same machine and edition), so that a table over many
   *  profiles runs each one once and not again in every diff */
  cache?: Map<Profile, TestResult[]>;
}

function results(p: Profile, machine: Machine, edition: Edition, opts: CompareOptions = {}): TestResult[] {
  const hit = opts.cache?.get(p);
  if (hit) return hit;
  const r = runCow(p, machine, edition, { check: opts.check ?? true }).results;
  opts.cache?.set(p, r);
  return r;
}

/** Pairs results of two runs of the same edition on the same machine: by number, then by case. */
function pair(ra: TestResult[], rb: TestResult[]): Array<[TestResult, TestResult]> {
  const out: Array<[TestResult, TestResult]> = [];
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) if (ra[i].run === rb[i].run) out.push([ra[i], rb[i]]);
  return out;
}

export function diffProfiles(a: Profile, b: Profile, machine: Machine, edition: Edition, opts: CompareOptions = {}): ProfileDiff {
  const differing = (Object.keys(SWITCHES) as SwitchName[]).filter((s) => a.switches[s] !== b.switches[s]);
  const ra = results(a, machine, edition, opts);
  const rb = results(b, machine, edition, opts);
  const changed = pair(ra, rb).filter(([x, y]) => x.outcome !== y.outcome);
  // one run per differing switch: A with that switch as in B
  const flipped = new Map<SwitchName, TestResult[]>();
  if (changed.length)
    for (const s of differing)
      flipped.set(s, results({ ...a, name: `${a.name}~${s}`, switches: flip(a.switches, b.switches, s) }, machine, edition, opts));
  // what each flip really changes: turning a switch on brings the switches it requires
  const brings = new Map(differing.map((s) => [s, differing.filter((t) => flip(a.switches, b.switches, s)[t] !== a.switches[t])]));
  const changes = changed.map(([x, y]): CaseChange => {
    const works = differing.filter((s) => flipped.get(s)?.[x.num - 1]?.outcome === y.outcome);
    // a flip that only works because it brought another working switch along is not the cause
    const alone = works.filter((s) => !works.some((t) => t !== s && brings.get(s)?.includes(t)));
    return { num: x.num, run: x.run, a: x.outcome, b: y.outcome, switches: alone.length ? alone : differing, together: !alone.length };
  });
  return { a, b, differing, changes };
}

export interface BisectRow {
  num: number;
  run: string;
  /** outcome per profile, in the order given */
  outcomes: Outcome[];
  /** index of the first profile from which on the case passes (or xfails) in every later
   *  profile, or -1 */
  firstPass: number;
  /** switches responsible for the change at firstPass (vs the profile before it) */
  switches: SwitchName[];
}

const good = (o: Outcome) => o === 'pass' || o === 'xfail';

/**
 * For every case whose [RUN] text contains `query` (or whose number is `query`), its outcome on
 * each profile and the first profile from which on it keeps passing.
 */
export function bisectCase(query: string, profiles: readonly Profile[], machine: Machine, edition: Edition): BisectRow[] {
  const opts: CompareOptions = { cache: new Map() };
  const runs = profiles.map((p) => results(p, machine, edition, opts));
  const base = runs[runs.length - 1];
  const wanted = base.filter((r) => (/^\d+$/.test(query) ? r.num === Number(query) : r.run.includes(query)));
  const diffs = new Map<number, ProfileDiff>();
  return wanted.map((r): BisectRow => {
    const outcomes = runs.map((rs) => rs.find((x) => x.num === r.num && x.run === r.run)?.outcome ?? 'skip');
    let firstPass = -1;
    for (let i = outcomes.length - 1; i >= 0 && good(outcomes[i]); i--) firstPass = i;
    let switches: SwitchName[] = [];
    if (firstPass > 0) {
      let d = diffs.get(firstPass);
      if (!d) {
        d = diffProfiles(profiles[firstPass - 1], profiles[firstPass], machine, edition, opts);
        diffs.set(firstPass, d);
      }
      switches = d.changes.find((c) => c.num === r.num && c.run === r.run)?.switches ?? d.differing;
    }
    return { num: r.num, run: r.run, outcomes, firstPass, switches };
  });
}

/**
 * The whole history as a markdown document: profiles x switches, then every case of `edition` x
 * profile, each change between neighbouring profiles labelled with the switch(es) responsible.
 */
export function historyTable(profiles: readonly Profile[], machine: Machine, edition: Edition, opts: CompareOptions = {}): string {
  const cached: CompareOptions = { ...opts, cache: opts.cache ?? new Map() };
  const runs = profiles.map((p) => results(p, machine, edition, cached));
  const diffs = profiles.slice(1).map((p, i) => diffProfiles(profiles[i], p, machine, edition, cached));
  const names = Object.keys(SWITCHES) as SwitchName[];
  const out: string[] = [];
  out.push('## Profiles and their switches', '');
  out.push(`| switch | since | ${profiles.map((p) => p.name).join(' | ')} |`);
  out.push(`|---|---|${profiles.map(() => ':-:').join('|')}|`);
  for (const n of names) {
    const d = SWITCHES[n] as SwitchDoc;
    out.push(
      `| \`${n}\` | ${d.since}${d.until ? ` (until ${d.until.split(' ')[0]})` : ''} | ${profiles.map((p) => (p.switches[n] ? 'on' : '·')).join(' | ')} |`,
    );
  }
  out.push('', '## Switches', '');
  for (const n of names) {
    const d = SWITCHES[n] as SwitchDoc;
    out.push(`- **\`${n}\`** (${d.since}${d.until ? `, until ${d.until}` : ''}; ${d.where}): ${d.summary}.`);
    out.push(
      `  Commits: ${d.commits.join('; ')}.${d.requires ? ` Requires ${d.requires.join(', ')}.` : ''}${d.conflicts ? ` Conflicts with ${d.conflicts.join(', ')}.` : ''}`,
    );
  }
  const show: Record<Outcome, string> = { pass: 'ok', fail: '**FAIL**', skip: 'skip', xfail: 'xfail' };
  out.push('', `## cow.c (${edition.name} edition) case by case`, '');
  out.push(
    'Each change between two neighbouring profiles names the switch whose flip alone gives the newer result ("+" when only the switches together do).',
    '',
  );
  out.push(`| # | case | ${profiles.map((p) => p.name).join(' | ')} | changes |`);
  out.push(`|---|---|${profiles.map(() => ':-:').join('|')}|---|`);
  for (const [i, r] of runs[runs.length - 1].entries()) {
    const row = runs.map((rs) => rs[i]?.outcome ?? 'skip');
    const changes: string[] = [];
    for (const [j, d] of diffs.entries()) {
      const c = d.changes.find((x) => x.num === r.num && x.run === r.run);
      if (c) changes.push(`${profiles[j + 1].name}: ${c.switches.join(c.together ? ' + ' : ' or ')}`);
    }
    out.push(`| ${r.num} | ${r.run.replace(/\|/g, '\\|')} | ${row.map((o) => show[o]).join(' | ')} | ${changes.join('; ')} |`);
  }
  return `${out.join('\n')}\n`;
}
