/** The helper's protocol and process safety (no root needed). */
import assert from 'node:assert/strict';
import { HostError, HostSession, HostTimeoutError } from '../../src/host/session.ts';
import { hostTest, PAGE, pidAlive, waitGone } from './helpers.ts';

hostTest('greeting, unknown commands, faults reported as signals without killing the process', {}, async (s) => {
  assert.equal(s.info.version, 1);
  assert.equal(s.info.pageSize, PAGE);
  await assert.rejects(s.call('frobnicate'), (e: HostError) => e instanceof HostError && e.code === 'ENOSYS');
  await assert.rejects(s.call('mmap', { p: 0, len: 'x' }), (e: HostError) => e.code === 'EINVAL');
  const a = await s.mmap(0, { len: 2 * PAGE, prot: 'r' });
  assert.equal(await s.write(0, a, PAGE, 1), 'SIGSEGV');
  await s.munmap(0, a, 2 * PAGE);
  assert.equal(await s.read(0, a, PAGE), 'SIGSEGV');
  const b = await s.mmap(0, { len: PAGE });
  assert.equal(await s.write(0, b, PAGE, 7), null, 'the process lives on');
  await s.mprotect(0, b, PAGE, 'none');
  assert.equal(await s.read(0, b, 1), 'SIGSEGV');
  await s.mprotect(0, b, PAGE, 'r');
  assert.deepEqual(await s.read(0, b, PAGE), [[7, PAGE]]);
  await assert.rejects(s.call('status', { p: 9 }), (e: HostError) => e.code === 'ESRCH');
});

hostTest('reads are run-length coded over bytes', {}, async (s) => {
  const a = await s.mmap(0, { len: 2 << 20 });
  await s.write(0, a + PAGE, 3, 0xab);
  assert.deepEqual(await s.read(0, a, 2 << 20), [
    [0, PAGE],
    [0xab, 3],
    [0, (2 << 20) - PAGE - 3],
  ]);
});

hostTest('fork and exit: real processes with their own pids; exit status is reported', {}, async (s) => {
  const c = await s.fork(0);
  assert.ok(c.pid > 0 && c.pid !== s.info.pid);
  const g = await s.fork(c.p);
  assert.equal((await s.procs()).length, 3);
  assert.equal(await s.exit(c.p, 3), 3);
  // a grandchild outlives its parent (all workers are children of the controller)
  assert.equal((await s.status(g.p)).pid, g.pid);
  assert.equal(await s.exit(g.p, 0), 0);
  await assert.rejects(s.fork(c.p), (e: HostError) => e.code === 'ESRCH');
});

hostTest('memory bound: mappings over the limit are refused, fork counts the parent again', { memLimit: 64 << 20 }, async (s) => {
  await assert.rejects(s.mmap(0, { len: 65 << 20 }), (e: HostError) => e.code === 'ENOMEM');
  await s.mmap(0, { len: 40 << 20 });
  await assert.rejects(s.fork(0), (e: HostError) => e.code === 'ENOMEM');
  assert.equal((await s.procs()).length, 1);
});

hostTest('a command timeout ends the session and kills every process', {}, async (s) => {
  const c = await s.fork(0);
  const pids = [s.info.pid, 0, c.pid].filter((p) => p > 0);
  const a = await s.mmap(0, { len: 512 << 20 });
  await assert.rejects(s.request('write', { p: 0, addr: a, len: 512 << 20, byte: 1 }, 1), HostTimeoutError);
  assert.equal(s.closed, true);
  assert.ok(await waitGone(pids), 'controller and processes gone');
  await assert.rejects(s.call('procs'), HostTimeoutError, 'later commands fail with the cause');
});

hostTest('close() kills the whole process tree', {}, async (s) => {
  const c = await s.fork(0);
  const g = await s.fork(c.p);
  const pids = [s.info.pid, ...(await s.procs()).map((p) => p.pid)];
  assert.equal(pids.length, 4);
  assert.ok(pids.every(pidAlive));
  await s.close();
  assert.ok(await waitGone(pids));
  assert.ok(g.pid > 0);
});

hostTest('the scenario processes die with the controller (PR_SET_PDEATHSIG), even when it is SIGKILLed', {}, async (s) => {
  const c = await s.fork(0);
  await s.fork(c.p);
  const workers = (await s.procs()).map((p) => p.pid);
  process.kill(s.info.pid, 'SIGKILL');
  assert.ok(await waitGone([s.info.pid, ...workers]));
  await assert.rejects(s.call('procs'));
});

hostTest('sessions are independent', {}, async (s) => {
  const t = await HostSession.open();
  try {
    assert.notEqual(t.info.pid, s.info.pid);
    assert.equal((await t.procs()).length, 1);
  } finally {
    await t.close();
  }
});
