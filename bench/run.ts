/**
 * npm run bench: the selftest on the model (invariant checks off, as a benchmark of the rules) and
 * clone + canonical hash of a typical state. Prints one line per figure, each a median of several
 * runs. The selftest: wall-clock time, and CPU time of the process beside it; the clone and hash
 * rates: CPU time of the process (process.cpuUsage), which a busy machine disturbs less.
 */

import { fingerprint } from '../src/model/canon.ts';
import { SEED_MACHINE } from '../src/model/machine.ts';
import { findProfile } from '../src/model/profile.ts';
import { Sim } from '../src/model/sim.ts';
import { canonicalJson, cloneState } from '../src/model/state.ts';
import { runCow } from '../src/selftest/cow.ts';
import { findEdition } from '../src/selftest/editions.ts';
import { typicalState } from './typical.ts';

/** CPU milliseconds of one call. */
function cpuOnce(fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

/** Median CPU milliseconds of `runs` calls of fn, after `warm` warm-up calls (V8 needs a few runs
 *  of the selftest before its code is optimised: the first runs in a process cost several times more). */
function cpuMs(fn: () => void, runs: number, warm = 1): number {
  return timed(fn, runs, warm).cpu;
}

/** Medians of wall-clock and CPU milliseconds of `runs` calls of fn after `warm` warm-up calls.
 *  CPU time counts every thread of the process: V8's garbage collector and optimising compiler
 *  work on the other core too, so it exceeds the wall-clock time on this 2-CPU machine. */
function timed(fn: () => void, runs: number, warm: number): { wall: number; cpu: number } {
  for (let i = 0; i < warm; i++) fn();
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    walls.push(performance.now() - t0);
    cpus.push((c.user + c.system) / 1000);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(runs / 2)];
  return { wall: median(walls), cpu: median(cpus) };
}

const profile = findProfile('v6.2')!;
// what one `cowlab selftest` pays: the first run in a fresh process (no warm-up)
const cold = cpuOnce(() => runCow(profile, SEED_MACHINE, findEdition('latest')!, { check: true }));
console.log(`selftest --suite latest, first run in this process (invariants on, as cowlab selftest): ${cold.toFixed(1)} ms`);
for (const [suite, check] of [
  ['latest', false],
  ['seed', false],
  ['latest', true],
] as const) {
  const t = timed(() => runCow(profile, SEED_MACHINE, findEdition(suite)!, { check }), 11, 10);
  console.log(
    `selftest --suite ${suite} (invariants ${check ? 'on' : 'off'}), warm: ${t.wall.toFixed(1)} ms per run (CPU time of all threads: ${t.cpu.toFixed(1)} ms)`,
  );
}

// a typical explorer state (bench/typical.ts)
const { state: s, addr: a } = typicalState(profile);
let sink = 0;
const N = 100_000;
const rate = (fn: () => void, n = N) =>
  Math.round(
    n /
      (cpuMs(() => {
        for (let i = 0; i < n; i++) fn();
      }, 5) /
        1000),
  );
const fmt = (x: number) => x.toLocaleString('en-US');
const size = canonicalJson(s).length;
console.log(
  `clone of a ${size}-byte state: ${fmt(
    rate(() => {
      sink += cloneState(s).nextId;
    }),
  )} per second (one core)`,
);
console.log(
  `canonical hash (64-bit fingerprint, as the explorer uses it): ${fmt(
    rate(() => {
      sink += fingerprint(s)[0];
    }),
  )} per second`,
);
console.log(
  `clone+hash: ${fmt(
    rate(() => {
      sink += fingerprint(cloneState(s))[0];
    }),
  )} per second`,
);
// what a successor costs the explorer: clone, one user operation (a store that write-faults on the
// zeropage of pid 1's third page: a new folio), canonical hash
const step = new Sim(profile, SEED_MACHINE, { check: false });
console.log(
  `clone + one store (write fault) + hash: ${fmt(
    rate(() => {
      step.k.s = cloneState(s);
      step.memset(1, a + 2 * 4096, 7, 16);
      sink += fingerprint(step.state)[0];
    }, N / 4),
  )} per second`,
);
if (sink === 0) console.log('');
