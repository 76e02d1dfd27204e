/**
 * `cowlab diff` and `cowlab bisect`: kernels compared on the selftest (selftest/compare.ts), as
 * text for people and JSON for tools.
 */
import { type Profile, SWITCHES, type SwitchDoc, type SwitchName } from '../model/profile.ts';
import type { BisectRow, ProfileDiff } from '../selftest/compare.ts';
import type { Outcome } from '../selftest/tap.ts';

const SHOW: Record<Outcome, string> = { pass: 'ok', fail: 'not ok', skip: 'skip', xfail: 'xfail' };

/** "name (commit, since)" for a switch. */
export function switchLabel(name: SwitchName): string {
  const d = SWITCHES[name] as SwitchDoc;
  return `${name} (${d.commits.map((c) => c.split(' ')[0]).join(', ')}; ${d.since})`;
}

export function formatDiff(d: ProfileDiff): string {
  const lines = [`${d.a.name} -> ${d.b.name}`];
  lines.push(d.differing.length ? `switches that differ: ${d.differing.map(switchLabel).join(', ')}` : 'switches that differ: none');
  if (!d.changes.length) {
    lines.push('no case changes its result');
    return `${lines.join('\n')}\n`;
  }
  lines.push(`${d.changes.length} case${d.changes.length === 1 ? '' : 's'} change${d.changes.length === 1 ? 's' : ''}:`);
  const w = Math.max(...d.changes.map((c) => c.run.length));
  for (const c of d.changes) {
    const why = c.together ? `${c.switches.join(' + ')} (together)` : c.switches.join(' or ');
    lines.push(`  ${String(c.num).padStart(3)} ${c.run.padEnd(w)}  ${SHOW[c.a]} -> ${SHOW[c.b]}  [${why}]`);
  }
  return `${lines.join('\n')}\n`;
}

export function diffJson(d: ProfileDiff): string {
  return `${JSON.stringify({ a: d.a.name, b: d.b.name, differing: d.differing, changes: d.changes }, null, 2)}\n`;
}

export function formatBisect(rows: BisectRow[], profiles: readonly Profile[]): string {
  const out: string[] = [];
  const w = Math.max(...profiles.map((p) => p.name.length));
  for (const r of rows) {
    out.push(`${r.num} ${r.run}`);
    for (const [i, p] of profiles.entries()) out.push(`  ${p.name.padEnd(w)}  ${SHOW[r.outcomes[i]]}`);
    if (r.firstPass < 0) out.push('  does not pass on the newest profile');
    else if (r.firstPass === 0) out.push(`  passes on every profile from ${profiles[0].name} on`);
    else out.push(`  passes from ${profiles[r.firstPass].name} on: ${r.switches.map(switchLabel).join(', ')}`);
  }
  return `${out.join('\n')}\n`;
}

export function bisectJson(rows: BisectRow[], profiles: readonly Profile[]): string {
  return `${JSON.stringify(
    rows.map((r) => ({
      num: r.num,
      run: r.run,
      outcomes: Object.fromEntries(profiles.map((p, i) => [p.name, r.outcomes[i]])),
      firstPass: r.firstPass >= 0 ? profiles[r.firstPass].name : null,
      switches: r.switches,
    })),
    null,
    2,
  )}\n`;
}
