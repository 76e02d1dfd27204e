/**
 * `cowlab selftest --kernel latest --suite latest --machine host` against the real cow.c TAP
 * recorded on this kind of machine (docs/research/host-6.18: Linux 6.18, 8 THP sizes, no swap, no
 * gup_test, only 2 MiB hugetlb pages). Runs where the host matches the recording, and says why
 * it skips elsewhere. 1 GiB pages cannot be reserved here (no hugepages-1048576kB directory).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { test } from 'node:test';
import { HostSkip, withHugetlbReserved } from '../../src/host/hostsafety.ts';
import { hostMachine } from '../../src/host/machine.ts';
import { findProfile } from '../../src/model/profile.ts';
import { runCow } from '../../src/selftest/cow.ts';
import { findEdition } from '../../src/selftest/editions.ts';

const recorded = (name: string) => readFileSync(new URL(`../../docs/research/host-6.18/${name}.tap`, import.meta.url), 'utf8');
const KiB = 1024;
const RECORDED_THP = [16, 32, 64, 128, 256, 512, 1024, 2048].map((k) => k * KiB);

/** Why this host is not the recorded machine, or null. */
function mismatch(): string | null {
  if (!/^6\.18\./.test(release())) return `kernel ${release()}, the recording is of 6.18`;
  const m = hostMachine();
  if (JSON.stringify(m.thpSizes) !== JSON.stringify(RECORDED_THP))
    return `THP sizes ${m.thpSizes?.map((s) => s / KiB).join('+')} kB differ from the recording`;
  if (m.swap || m.gupTest || m.softDirty) return 'this host has swap, gup_test or soft-dirty; the recording had none';
  if (m.hugetlb.map((h) => h.size).join() !== String(2048 * KiB)) return 'hugetlb sizes differ from the recording (2048 kB only)';
  if (m.thpEnabled !== 'madvise' || !m.hugeZeroPage || m.zeroPage) return 'THP/zeropage settings differ from the recording';
  return null;
}

function modelTap(): string {
  return runCow(findProfile('latest')!, hostMachine(), findEdition('latest')!).tap;
}

test('--machine host without free hugetlb pages: the real selftest TAP, byte for byte', (t) => {
  const why = mismatch();
  if (why) return t.skip(why);
  const m = hostMachine();
  if (m.hugetlb[0].nr !== 0) return t.skip(`${m.hugetlb[0].nr} free 2 MiB pages right now; the recording had none`);
  assert.equal(modelTap(), recorded(m.liburing ? 'nohugetlb-uring' : 'nohugetlb-nouring'));
});

test('--machine host with two 2 MiB pages reserved: the real selftest TAP, byte for byte', async (t) => {
  const why = mismatch();
  if (why) return t.skip(why);
  try {
    await withHugetlbReserved(2048 * KiB, 2, async () => {
      const m = hostMachine();
      assert.equal(m.hugetlb[0].nr, 2);
      assert.equal(modelTap(), recorded(m.liburing ? 'hugetlb2M-2-uring' : 'hugetlb2M-2-nouring'));
    });
  } catch (e) {
    if (e instanceof HostSkip) return t.skip(e.message);
    throw e;
  }
});
