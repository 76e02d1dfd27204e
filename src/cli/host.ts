/**
 * `cowlab host run FILE` (the trace of the real kernel, as `cowlab run` prints the model's) and
 * `cowlab host diff FILE|DIR` (the model against the real kernel, observation by observation).
 * Exit: 0 agree (or skipped, with a SKIP line and the reason), 1 a disagreement (or, for run, an
 * expectation fails), 2 bad input.
 */
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { type DiffResult, formatDiffResult, hostDiff, hostRun, scenarioFiles } from '../host/diff.ts';
import { probeHost } from '../host/probe.ts';
import { hostUnavailable } from '../host/session.ts';
import type { Profile } from '../model/profile.ts';
import type { Scenario } from '../scenario/ast.ts';
import { formatTrace } from '../scenario/format.ts';

export interface HostCli {
  out: (s: string) => void;
  err: (s: string) => void;
  color: boolean;
  kernel: (name: string) => Profile;
  scenario: (file: string) => Scenario;
  usage: (msg: string) => never;
  setCode: (c: number) => void;
}

function rootNote(cli: HostCli, json?: boolean): void {
  if (json) return;
  if (process.getuid?.() !== 0)
    cli.err('cowlab host: not root: PFNs and /proc/kpage* are hidden, hugetlb pages cannot be reserved; what needs them is skipped\n');
}

function summaryTable(rs: DiffResult[]): string {
  const w = Math.max(8, ...rs.map((r) => basename(r.file).length));
  const out = [`${'scenario'.padEnd(w)}  ${'result'.padEnd(8)}  detail`];
  for (const r of rs) {
    const detail =
      r.status === 'skip'
        ? (r.reason ?? '')
        : r.status === 'agree'
          ? `${r.compared} steps and expectations compared`
          : `line ${r.first?.line}: ${r.first?.text}: ${r.first?.diffs.map((d) => d.what).join(', ')}`;
    out.push(`${basename(r.file).padEnd(w)}  ${r.status.padEnd(8)}  ${detail}`);
  }
  const n = (s: string) => rs.filter((r) => r.status === s).length;
  out.push('');
  out.push(`${rs.length} scenarios: ${n('agree')} agree, ${n('skip')} skipped, ${n('disagree')} disagree`);
  return `${out.join('\n')}\n`;
}

export function hostCommand(program: Command, cli: HostCli): void {
  const host = program.command('host').description('run scenarios on the real kernel (build/cowhost), and compare them with the model');

  host
    .command('run')
    .description(
      'run a scenario on the real kernel: the trace in the format of `cowlab run` (observations only: the kernel emits no events)',
    )
    .argument('<file>', 'scenario file (.cow or .json)')
    .option('--json', 'machine-readable trace')
    .action((file: string, o: { json?: boolean }) => {
      const sc = cli.scenario(file);
      const why = hostUnavailable();
      if (why) cli.usage(`host: the real-kernel backend is unavailable: ${why}`);
      rootNote(cli, o.json);
      const r = hostRun(sc, { file, facts: probeHost() });
      if (!r.result) {
        cli.out(o.json ? `${JSON.stringify({ file, status: 'skip', reason: r.skip }, null, 2)}\n` : `SKIP ${file}: ${r.skip}\n`);
        cli.setCode(0);
        return;
      }
      if (o.json) {
        const { trace, ...rest } = r.result;
        const extra = r.discarded ? { discarded: r.discarded } : {};
        cli.out(
          `${JSON.stringify({ file, ...rest, ...extra, trace: trace.map((e) => ('observed' in e ? { ...e, observed: undefined } : e)) }, null, 2)}\n`,
        );
      } else {
        if (r.discarded)
          cli.err(`cowlab host: khugepaged collapsed pages during ${r.discarded} earlier run(s) of this scenario; they were discarded\n`);
        cli.out(formatTrace(r.result, cli.color));
      }
      cli.setCode(r.result.pass ? 0 : 1);
    });

  host
    .command('diff')
    .description(
      'the model against the real kernel, step by step (exit 1 on any disagreement); a directory: every scenario in it, and a summary',
    )
    .argument('<path>', 'scenario file, or a directory of them')
    .option('--kernel <profile>', 'model profile to compare with', 'latest')
    .option('--json', 'machine-readable result')
    .option('--verbose', 'also list what was not compared')
    .action((path: string, o: { kernel: string; json?: boolean; verbose?: boolean }) => {
      const profile = cli.kernel(o.kernel);
      if (!existsSync(path)) cli.usage(`cannot read '${path}': no such file or directory`);
      const dir = statSync(path).isDirectory();
      const files = dir ? scenarioFiles(path) : [path];
      if (dir && !files.length) cli.usage(`host diff: no .cow or .json scenarios in '${path}'`);
      const scenarios = files.map((f) => ({ file: f, sc: cli.scenario(f) })); // bad input first: exit 2 before any run
      const why = hostUnavailable();
      if (why) cli.usage(`host: the real-kernel backend is unavailable: ${why}`);
      rootNote(cli, o.json);
      const facts = probeHost();
      const results: DiffResult[] = [];
      for (const { file, sc } of scenarios) {
        const r = hostDiff(sc, profile, { file, facts });
        results.push(r);
        if (!o.json && !dir) cli.out(formatDiffResult(r, o.verbose));
      }
      if (o.json) {
        const strip = (r: DiffResult) => ({ ...r, model: undefined, host: undefined });
        cli.out(`${JSON.stringify(dir ? results.map(strip) : strip(results[0]), null, 2)}\n`);
      } else if (dir) {
        cli.out(summaryTable(results));
        for (const r of results) if (r.status === 'disagree' || o.verbose) cli.out(`\n${formatDiffResult(r, o.verbose)}`);
      }
      cli.setCode(results.some((r) => r.status === 'disagree') ? 1 : 0);
    });
}
