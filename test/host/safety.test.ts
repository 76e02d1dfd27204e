/** Undo rules of hostsafety (pure), and withSysfs on a harmless THP knob (root). */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { readSetting, THP_DIR, undoValue, withSysfs } from '../../src/host/hostsafety.ts';

const NR = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages';
const KNOB = `${THP_DIR}/enabled`;

test('nr_hugepages is undone by its delta, so concurrent runs keep their pages', () => {
  assert.equal(undoValue(NR, { original: '0', set: '2' }, '2'), '0');
  assert.equal(undoValue(NR, { original: '0', set: '2' }, '5'), '3', 'another run added 3 meanwhile');
  assert.equal(undoValue(NR, { original: '0', set: '2' }, '1'), '0', 'never below 0');
});

test('a THP knob is put back only if it still shows what this run set', () => {
  assert.equal(undoValue(KNOB, { original: 'madvise', set: 'always' }, 'always'), 'madvise');
  assert.equal(undoValue(KNOB, { original: 'madvise', set: 'always' }, 'never'), null);
});

test('withSysfs changes a THP knob and restores it, also when the function throws', async (t) => {
  const knob = `${THP_DIR}/khugepaged/scan_sleep_millisecs`;
  if (!existsSync(knob) || process.getuid?.() !== 0) {
    t.skip(process.getuid?.() !== 0 ? 'needs root' : `${knob} does not exist`);
    return;
  }
  const before = readSetting(knob);
  const other = String(Number(before) + 1);
  await withSysfs({ [knob]: other }, async () => assert.equal(readSetting(knob), other));
  assert.equal(readSetting(knob), before);
  await assert.rejects(
    withSysfs({ [knob]: other }, async () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(readSetting(knob), before);
  await assert.rejects(
    withSysfs({ '/proc/sys/vm/swappiness': '1' }, async () => {}),
    /not a setting cowlab may change/,
  );
});
