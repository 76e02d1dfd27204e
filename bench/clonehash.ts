/**
 * npm run bench:clonehash: clone, canonical hash and clone+hash of the bench's typical state, the
 * best of 7 rounds of 500,000 each (CPU time), for comparing two versions of the state on this
 * noisy VM, where medians of a single run move by up to 2x. `npm run bench` reports medians.
 */
import { fingerprint } from '../src/model/canon.ts';
import { findProfile } from '../src/model/profile.ts';
import { cloneState } from '../src/model/state.ts';
import { typicalState } from './typical.ts';

// the same typical state as bench/run.ts
const s = typicalState(findProfile('v6.2')!).state;

let sink = 0;
const N = 500_000;
const rounds: Record<string, () => void> = {
  clone: () => {
    for (let i = 0; i < N; i++) sink += cloneState(s).nextId;
  },
  hash: () => {
    for (let i = 0; i < N; i++) sink += fingerprint(s)[0];
  },
  'clone+hash': () => {
    for (let i = 0; i < N; i++) sink += fingerprint(cloneState(s))[0];
  },
};
const best: Record<string, number> = {};
for (let r = 0; r < 7; r++)
  for (const [name, fn] of Object.entries(rounds)) {
    const c0 = process.cpuUsage();
    fn();
    const c1 = process.cpuUsage(c0);
    best[name] = Math.max(best[name] ?? 0, N / ((c1.user + c1.system) / 1e6));
  }
for (const [name, rate] of Object.entries(best)) console.log(`${name}: ${Math.round(rate).toLocaleString('en-US')} per second (best of 7)`);
if (sink === 0) console.log('');
