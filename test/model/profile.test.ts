import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PAGE_SIZE } from '../../src/model/constants.ts';
import { ModelBug } from '../../src/model/kernel.ts';
import { SEED_MACHINE } from '../../src/model/machine.ts';
import { findProfile, missingRequirements, PROFILES, type Profile, profileNames, SWITCHES } from '../../src/model/profile.ts';
import { Sim } from '../../src/model/sim.ts';
import { anon } from './helpers.ts';

const inconsistent: Profile = {
  name: 'broken',
  summary: 'gup-unshare-noanon without unshare-fault-noanon',
  switches: { ...findProfile('v6.2')!.switches, 'unshare-fault-noanon': false },
};

test('profiles from v5.7 to latest, each with every switch, switches only ever added in order (but for the two that went away)', () => {
  assert.deepEqual(profileNames(), [
    'v5.7',
    'v5.8',
    'v5.9',
    'v5.12',
    'v5.18',
    'v5.19',
    'v6.1',
    'v6.2',
    'v6.5',
    'v6.8',
    'v6.13',
    'v6.15',
    'latest',
  ]);
  assert.equal(findProfile('v9.9'), undefined);
  assert.ok(Object.values(findProfile('v5.7')!.switches).every((x) => !x));
  for (const p of PROFILES) assert.deepEqual(Object.keys(p.switches).sort(), Object.keys(SWITCHES).sort());
  // the seed's diff: v6.1 -> v6.2 turns on exactly the three 6.2 switches
  const on = (a: string, b: string) =>
    Object.keys(SWITCHES).filter(
      (s) => !findProfile(a)!.switches[s as keyof typeof SWITCHES] && findProfile(b)!.switches[s as keyof typeof SWITCHES],
    );
  assert.deepEqual(on('v6.1', 'v6.2'), [
    'mprotect-upgrade-anon-pmd',
    'unshare-fault-noanon',
    'gup-unshare-noanon',
    'hugetlb-no-force-write',
  ]);
  // gup-force-cow lives in v5.8 only; hugetlb-no-force-write from v6.2 to v6.13
  assert.deepEqual(
    PROFILES.filter((p) => p.switches['gup-force-cow']).map((p) => p.name),
    ['v5.8'],
  );
  assert.deepEqual(
    PROFILES.filter((p) => p.switches['hugetlb-no-force-write']).map((p) => p.name),
    ['v6.2', 'v6.5', 'v6.8', 'v6.13'],
  );
  for (let i = 1; i < PROFILES.length; i++) {
    for (const s of Object.keys(SWITCHES) as Array<keyof typeof SWITCHES>) {
      if (s === 'gup-force-cow' || s === 'hugetlb-no-force-write') continue;
      assert.ok(!PROFILES[i - 1].switches[s] || PROFILES[i].switches[s], `${s} switched off again in ${PROFILES[i].name}`);
    }
  }
});

test('missingRequirements is empty for the shipped profiles and flags gup-unshare-noanon without unshare-fault-noanon', () => {
  for (const p of PROFILES) assert.deepEqual(missingRequirements(p.switches), [], p.name);
  assert.deepEqual(missingRequirements(inconsistent.switches), ['gup-unshare-noanon requires unshare-fault-noanon']);
  assert.deepEqual(missingRequirements({ ...inconsistent.switches, 'gup-unshare-noanon': false }), []);
  const v57 = findProfile('v5.7')!.switches;
  assert.deepEqual(missingRequirements({ ...v57, 'gup-force-cow': true, 'wp-reuse-refcount': true }), [
    'gup-force-cow conflicts with wp-reuse-refcount',
  ]);
});

test('a Sim with the inconsistent switch set makes no progress pinning the zeropage R/O long-term (ModelBug)', () => {
  const sim = new Sim(inconsistent, SEED_MACHINE);
  const a = anon(sim, PAGE_SIZE);
  sim.read(1, a, PAGE_SIZE);
  assert.throws(
    () => sim.gupTestStart(1, a, PAGE_SIZE, false, false),
    (e: unknown) => e instanceof ModelBug && /no progress/.test(e.message),
  );
});
