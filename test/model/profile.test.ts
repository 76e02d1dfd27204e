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
  switches: { 'unshare-fault-noanon': false, 'gup-unshare-noanon': true, 'hugetlb-no-force-write': true },
};

test('profiles v6.1 and v6.2 exist with their switches', () => {
  assert.deepEqual(profileNames(), ['v6.1', 'v6.2']);
  assert.equal(findProfile('v9.9'), undefined);
  assert.ok(Object.values(findProfile('v6.2')!.switches).every((x) => x));
  assert.ok(Object.values(findProfile('v6.1')!.switches).every((x) => !x));
  for (const p of PROFILES) assert.deepEqual(Object.keys(p.switches).sort(), Object.keys(SWITCHES).sort());
});

test('missingRequirements is empty for the shipped profiles and flags gup-unshare-noanon without unshare-fault-noanon', () => {
  for (const p of PROFILES) assert.deepEqual(missingRequirements(p.switches), [], p.name);
  assert.deepEqual(missingRequirements(inconsistent.switches), ['gup-unshare-noanon requires unshare-fault-noanon']);
  assert.deepEqual(missingRequirements({ ...inconsistent.switches, 'gup-unshare-noanon': false }), []);
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
