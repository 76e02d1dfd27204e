/**
 * npm run bench: the selftest on the model (invariant checks off, as a benchmark of the rules) and
 * clone + canonical hash of a typical state. Prints one line per figure. Times are CPU time of
 * this process (process.cpuUsage), median of several runs, so a busy machine disturbs them less.
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
  for (let i = 0; i < warm; i++) fn();
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    xs.push((c.user + c.system) / 1000);
  }
  xs.sort((a, b) => a - b);
  return xs[Math.floor(runs / 2)];
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
  const ms = cpuMs(() => runCow(profile, SEED_MACHINE, findEdition(suite)!, { check }), 7, 4);
  console.log(`selftest --suite ${suite} (invariants ${check ? 'on' : 'off'}), warm: ${ms.toFixed(1)} ms per run`);
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
