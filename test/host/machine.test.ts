import assert from 'node:assert/strict';
import { test } from 'node:test';
import { machineFromFacts } from '../../src/host/machine.ts';
import type { HostFacts } from '../../src/host/probe.ts';

const facts: HostFacts = {
  pageSize: 4096,
  pmdSize: 2 << 20,
  thpSizes: [16 << 10, 64 << 10, 2 << 20],
  thpEnabled: 'madvise',
  useZeroPage: true,
  hugetlb: [{ size: 2 << 20, nr: 4, free: 3 }],
  swap: false,
  gupTest: false,
  softDirty: null,
  memlockLimit: 8 << 20,
  isRoot: true,
  ioUringDisabled: 0,
  liburing: true,
  zeroPage: false,
  thpModes: { [16 << 10]: 'never', [64 << 10]: 'always', [2 << 20]: 'inherit' },
};

test('the host facts become the model machine: free huge pages as the pool, soft-dirty unknown = off, root has CAP_IPC_LOCK', () => {
  const m = machineFromFacts(facts);
  assert.equal(m.thp, true);
  assert.deepEqual(m.thpSizes, [16 << 10, 64 << 10, 2 << 20]);
  assert.deepEqual(m.thpModes, { [16 << 10]: 'never', [64 << 10]: 'always', [2 << 20]: 'inherit' });
  assert.equal(m.zeroPage, false);
  assert.equal(m.hugeZeroPage, true);
  assert.deepEqual(m.hugetlb, [{ size: 2 << 20, nr: 3 }]);
  assert.equal(m.softDirty, false);
  assert.equal(m.capIpcLock, true);
  assert.equal(m.liburing, true);
  // a PMD size the model does not know (e.g. 64 KiB base pages) means no THP
  assert.equal(machineFromFacts({ ...facts, pmdSize: 512 << 20 }).thp, false);
  assert.equal(machineFromFacts({ ...facts, thpEnabled: null }).thpEnabled, 'never');
});
