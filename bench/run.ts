/**
 * npm run bench: the selftest on the model (invariant checks off, as a benchmark of the rules) and
 * clone + canonical hash of a typical state. Prints one line per figure.
 */
import { SEED_MACHINE } from '../src/model/machine.ts';
import { findProfile } from '../src/model/profile.ts';
import { Sim } from '../src/model/sim.ts';
import { cloneState, hashState } from '../src/model/state.ts';
import { runCow } from '../src/selftest/cow.ts';
import { findEdition } from '../src/selftest/editions.ts';

const profile = findProfile('v6.2')!;
for (const [suite, check] of [
  ['latest', false],
  ['seed', false],
  ['latest', true],
] as const) {
  runCow(profile, SEED_MACHINE, findEdition(suite)!, { check }); // warm-up
  const n = 3;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) runCow(profile, SEED_MACHINE, findEdition(suite)!, { check });
  const ms = (performance.now() - t0) / n;
  console.log(`selftest --suite ${suite} (invariants ${check ? 'on' : 'off'}): ${ms.toFixed(1)} ms per run`);
}

// a typical explorer state: two processes after fork, a few small pages, a pipe, a pin
const sim = new Sim(profile, SEED_MACHINE, { check: false });
const a = sim.mmap(1, { len: 4 * 4096, prot: 3, flags: 0x22 });
sim.memset(1, a, 1, 2 * 4096);
sim.read(1, a + 2 * 4096, 4096);
const c = sim.fork(1);
const p = sim.pipe();
sim.vmsplice(c, p, a, 4096);
sim.gupTestStart(1, a + 4096, 4096, false, false);
const s = sim.state;
let sink = 0;
const N = 200_000;
const t1 = performance.now();
for (let i = 0; i < N; i++) sink += hashState(cloneState(s)).length;
const secs = (performance.now() - t1) / 1000;
console.log(
  `clone+hash of a ${JSON.stringify(s).length}-byte state: ${Math.round(N / secs).toLocaleString('en-US')} per second (one core)`,
);
if (sink === 0) console.log('');
