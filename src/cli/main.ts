/**
 * The cowlab command line. Bad input gets one line naming the valid choices and exit status 2.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { hostMachine } from '../host/machine.ts';
import { type Machine, SEED_MACHINE } from '../model/machine.ts';
import { missingRequirements, PROFILES, type Profile, profileNames, resolveKernel, SWITCHES, type SwitchName } from '../model/profile.ts';
import { InternalError, ScenarioError } from '../scenario/errors.ts';
import { formatTable, formatTrace, type ProfileRun } from '../scenario/format.ts';
import { toJson } from '../scenario/json.ts';
import { declaredOutcome, loadScenario, runOnModel } from '../scenario/load.ts';
import { printScenario } from '../scenario/printer.ts';
import { bisectCase, diffProfiles, historyTable } from '../selftest/compare.ts';
import { runCow } from '../selftest/cow.ts';
import { EDITIONS, type Edition, findEdition } from '../selftest/editions.ts';
import { hostCommand } from './host.ts';
import { bisectJson, diffJson, formatBisect, formatDiff } from './kernels.ts';

class UsageError extends Error {}

function usage(msg: string): never {
  throw new UsageError(msg);
}

function parseBool(name: string, v: string): boolean {
  if (v === 'on' || v === 'yes' || v === '1' || v === 'true') return true;
  if (v === 'off' || v === 'no' || v === '0' || v === 'false') return false;
  usage(`--machine ${name}=${v}: expected on or off`);
}

/** The on/off keys of --machine and the Machine field each sets. */
const BOOL_KEYS: Record<string, 'thp' | 'hugeZeroPage' | 'zeroPage' | 'swap' | 'liburing' | 'gupTest' | 'softDirty'> = {
  thp: 'thp',
  'huge-zeropage': 'hugeZeroPage',
  zeropage: 'zeroPage',
  swap: 'swap',
  liburing: 'liburing',
  'gup-test': 'gupTest',
  'soft-dirty': 'softDirty',
};

/** Every --machine key, for the messages that name them. */
const MACHINE_KEYS = 'thp, thp-sizes, huge-zeropage, zeropage, hugetlb, swap, liburing, gup-test, soft-dirty';

/** --machine key=value,...: the machine cow.c detects (defaults: the seed mail's machine). */
export function parseMachine(spec: string[]): Machine {
  let m: Machine = { ...SEED_MACHINE, hugetlb: SEED_MACHINE.hugetlb.map((h) => ({ ...h })) };
  for (const item of spec.flatMap((s) => s.split(','))) {
    if (!item) continue;
    if (item === 'host') {
      // this machine, as cow.c would detect it (src/host/machine.ts); later keys override
      m = hostMachine();
      continue;
    }
    const eq = item.indexOf('=');
    if (eq < 0) usage(`--machine ${item}: expected key=value (keys: ${MACHINE_KEYS})`);
    const key = item.slice(0, eq);
    const v = item.slice(eq + 1);
    if (Object.hasOwn(BOOL_KEYS, key)) {
      m[BOOL_KEYS[key]] = parseBool(key, v);
      continue;
    }
    switch (key) {
      case 'thp-sizes': {
        // thp-sizes=16kB+32kB+2048kB: the per-size THP directories (6.8+ kernels), PMD size included
        const sizes = v.split('+').map((part) => {
          const mt = /^(\d+)kB$/.exec(part);
          const n = mt ? Number(mt[1]) * 1024 : Number.NaN;
          if (!mt || n < 8192 || n > 2 * 1024 * 1024 || (n & (n - 1)) !== 0)
            usage(`--machine thp-sizes=${v}: expected power-of-two sizes from 8kB to 2048kB joined by '+', e.g. 16kB+64kB+2048kB`);
          return n;
        });
        m.thpSizes = [...new Set(sizes)].sort((a, b) => a - b);
        break;
      }
      case 'hugetlb': {
        // hugetlb=2048kB:2+1048576kB:0 (size:pages, in readdir order), or hugetlb=none
        m.hugetlb = [];
        if (v === 'none') break;
        for (const part of v.split('+')) {
          const mt = /^(\d+)kB(?::(\d+))?$/.exec(part);
          if (!mt) usage(`--machine hugetlb=${v}: expected SIZEkB:PAGES joined by '+', e.g. 2048kB:2+1048576kB:2, or none`);
          m.hugetlb.push({ size: Number(mt[1]) * 1024, nr: mt[2] === undefined ? 2 : Number(mt[2]) });
        }
        break;
      }
      default:
        usage(`--machine: unknown key '${key}' (valid: ${MACHINE_KEYS})`);
    }
  }
  return m;
}

/** --kernel SPEC plus --set overrides, checked for consistency. */
function kernelFrom(spec: string, set: string[]): Profile {
  const p = resolveKernel(spec);
  if (typeof p === 'string') usage(p);
  const switches = { ...p.switches };
  for (const s of set.flatMap((x) => x.split(','))) {
    const [name, v] = s.split('=');
    if (!Object.hasOwn(SWITCHES, name)) usage(`--set: unknown switch '${name}' (valid: ${Object.keys(SWITCHES).join(', ')})`);
    if (v !== 'on' && v !== 'off') usage(`--set ${s}: expected ${name}=on or ${name}=off`);
    switches[name as SwitchName] = v === 'on';
  }
  const missing = missingRequirements(switches);
  if (missing.length) usage(`inconsistent switches: ${missing.join('; ')}`);
  return set.length ? { ...p, name: `${p.name} (${set.join(',')})`, switches } : p;
}

function editionFrom(name: string): Edition {
  const e = findEdition(name);
  if (!e) usage(`unknown suite '${name}' (valid: ${EDITIONS.map((x) => x.name).join(', ')})`);
  return e;
}

function readScenario(file: string) {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    usage(`cannot read '${file}': ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`);
  }
  return loadScenario(text, file);
}

/** `cowlab run`: exit 0 when the expectations hold (one kernel) or every verdict is the declared one (several). */
function runCommand(file: string, o: { kernel: string[]; json?: boolean }, out: (s: string) => void, color: boolean): number {
  const names = o.kernel.flatMap((k) => k.split(',')).flatMap((k) => (k === 'all' ? profileNames() : [k]));
  const profiles = names.map((n) => kernelFrom(n, []));
  const sc = readScenario(file);
  const runs: ProfileRun[] = profiles.map((p) => ({
    profile: p.name,
    result: runOnModel(sc, p, { file }),
    declared: declaredOutcome(sc, p.name),
  }));
  if (runs.length === 1) {
    const r = runs[0].result;
    out(
      o.json
        ? `${JSON.stringify({ file, kernel: runs[0].profile, declared: runs[0].declared ?? null, ...r }, null, 2)}\n`
        : formatTrace(r, color),
    );
    return r.pass ? 0 : 1;
  }
  if (o.json)
    out(
      `${JSON.stringify({ file, title: sc.title, runs: runs.map((r) => ({ kernel: r.profile, declared: r.declared ?? null, ...r.result })) }, null, 2)}\n`,
    );
  else out(formatTable(sc.title, runs, color));
  return runs.every((r) => r.result.pass === (r.declared ?? true)) ? 0 : 1;
}

export function main(argv: string[], out: (s: string) => void, err: (s: string) => void, opts: { color?: boolean } = {}): number {
  const program = new Command();
  program
    .name('cowlab')
    .description('An executable model of Linux copy-on-write and page pinning (GUP)')
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: err, outputError: (s) => err(s) });
  let code = 0;

  const kernelHelp = `kernel profile (${profileNames().join(', ')}), optionally with backports: v6.1+seed`;
  const suiteOption = () => new Option('--suite <edition>', `cow.c edition (${EDITIONS.map((e) => e.name).join(', ')})`).default('seed');
  const machineHelp = "machine cow.c runs on, e.g. swap=off,hugetlb=2048kB:2 (default: the seed mail's machine)";

  program
    .command('selftest')
    .description("run the kernel's COW selftest (tools/testing/selftests/mm/cow.c) on the model and print its TAP")
    .addOption(new Option('--kernel <profile>', kernelHelp).default('v6.2'))
    .addOption(suiteOption())
    .option('--machine <key=value...>', `${machineHelp}; 'host' for this machine`, [])
    .option('--set <switch=on|off...>', 'override profile switches (see `cowlab profiles`)', [])
    .action((o: { kernel: string; suite: string; machine: string[]; set: string[] }) => {
      const profile = kernelFrom(o.kernel, o.set);
      const r = runCow(profile, parseMachine(o.machine), editionFrom(o.suite));
      out(r.tap);
      code = r.exitCode;
    });

  program
    .command('diff')
    .description('the selftest cases whose result differs between two kernels, and the switches responsible (exit 1 when any differs)')
    .requiredOption('--kernel <profile...>', `${kernelHelp}; give it twice`)
    .addOption(suiteOption())
    .option('--machine <key=value...>', machineHelp, [])
    .option('--json', 'machine-readable output')
    .action((o: { kernel: string[]; suite: string; machine: string[]; json?: boolean }) => {
      if (o.kernel.length !== 2) usage(`diff: give --kernel exactly twice (got ${o.kernel.length})`);
      const [a, b] = o.kernel.map((k) => kernelFrom(k, []));
      const d = diffProfiles(a, b, parseMachine(o.machine), editionFrom(o.suite));
      out(o.json ? diffJson(d) : formatDiff(d));
      code = d.changes.length ? 1 : 0;
    });

  program
    .command('history')
    .description(
      'markdown: every profile with its switches, and every selftest case on every profile with the switch that changes it (docs/profiles.md)',
    )
    .addOption(new Option('--suite <edition>', `cow.c edition (${EDITIONS.map((e) => e.name).join(', ')})`).default('v6.2'))
    .option('--machine <key=value...>', machineHelp, [])
    .action((o: { suite: string; machine: string[] }) => {
      out(historyTable(PROFILES, parseMachine(o.machine), editionFrom(o.suite), { check: false }));
    });

  program
    .command('bisect')
    .description(
      'for the selftest cases matching CASE (text of the [RUN] line, or a test number): the result on every profile and the first profile where it passes',
    )
    .argument('<case>', "part of the case's [RUN] text, e.g. 'R/O longterm GUP pin ... with memfd', or its number")
    .addOption(suiteOption())
    .option('--machine <key=value...>', machineHelp, [])
    .option('--kernels <list>', `profiles to compare, oldest first (default: ${profileNames().join(',')})`)
    .option('--json', 'machine-readable output')
    .action((query: string, o: { suite: string; machine: string[]; kernels?: string; json?: boolean }) => {
      const profiles: Profile[] = o.kernels ? o.kernels.split(',').map((k) => kernelFrom(k, [])) : [...PROFILES];
      const rows = bisectCase(query, profiles, parseMachine(o.machine), editionFrom(o.suite));
      if (!rows.length) usage(`bisect: no case of suite '${o.suite}' matches '${query}'`);
      out(o.json ? bisectJson(rows, profiles) : formatBisect(rows, profiles));
    });

  program
    .command('profiles')
    .description('list the kernel profiles and their switches')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) => {
      if (o.json) {
        out(`${JSON.stringify({ switches: SWITCHES, profiles: PROFILES }, null, 2)}\n`);
        return;
      }
      for (const p of PROFILES) {
        out(`${p.name}: ${p.summary}\n`);
        for (const [name, on] of Object.entries(p.switches)) out(`  ${on ? 'on ' : 'off'} ${name}\n`);
      }
      out('\nswitches:\n');
      for (const [name, d] of Object.entries(SWITCHES)) out(`  ${name} (since ${d.since}; ${d.commits.join(', ')})\n    ${d.summary}\n`);
    });

  program
    .command('run')
    .description('run a scenario (.cow or its JSON form) on the model: trace, expectations, exit 1 when one fails')
    .argument('<file>', 'scenario file')
    .option('--kernel <profile...>', `kernel profile(s) (${profileNames().join(', ')}) or all; several print a table`, ['v6.2'])
    .option('--json', 'machine-readable trace')
    .action((file: string, o: { kernel: string[]; json?: boolean }) => {
      code = runCommand(file, o, out, opts.color ?? false);
    });

  program
    .command('convert')
    .description('print a scenario in canonical .cow text or in its JSON form')
    .argument('<file>', 'scenario file (.cow or .json)')
    .addOption(new Option('--to <format>', 'output format').choices(['cow', 'json']).default('json'))
    .action((file: string, o: { to: string }) => {
      const sc = readScenario(file);
      out(o.to === 'json' ? `${JSON.stringify(toJson(sc), null, 2)}\n` : printScenario(sc));
    });

  hostCommand(program, {
    out,
    err,
    color: opts.color ?? false,
    kernel: (name) => kernelFrom(name, []),
    scenario: readScenario,
    usage,
    setCode: (c) => {
      code = c;
    },
  });

  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof ScenarioError) {
      err(`${e.format()}\n`);
      return 2;
    }
    if (e instanceof InternalError) {
      err(`${e.format()}\n`);
      return 3;
    }
    if (e instanceof UsageError) {
      err(`cowlab: ${e.message}\n`);
      return 2;
    }
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    throw e;
  }
  return code;
}
