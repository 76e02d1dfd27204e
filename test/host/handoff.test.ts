// The bridge's reply hand-off (src/host/handoff.ts): a wake-up is not a reply.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { awaitReply, BUSY, DATA_OFFSET, DONE, handoffViews, ID, IDLE, LENGTH, markBusy, postReply, STATE } from '../../src/host/handoff.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A thread that keeps notifying the state word for `strayMs` while it still says BUSY (the late
 * notify of an earlier reply), then publishes `text` as the reply to request `id` the way
 * postReply does. Posts back how many waiters its stray notifies woke.
 */
function lateReplier(sab: SharedArrayBuffer, strayMs: number, id: number, text: string | null): Promise<number> {
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const { sab, strayMs, id, text, off } = workerData;
    const ctrl = new Int32Array(sab, 0, 4);
    const data = new Uint8Array(sab, off);
    const nap = new Int32Array(new SharedArrayBuffer(4));
    let woke = 0;
    const end = Date.now() + strayMs;
    while (Date.now() < end) { woke += Atomics.notify(ctrl, 0); Atomics.wait(nap, 0, 0, 2); }
    if (text !== null) {
      const bytes = new TextEncoder().encode(text);
      data.set(bytes); ctrl[1] = bytes.length; ctrl[2] = id;
      Atomics.store(ctrl, 0, 2); Atomics.notify(ctrl, 0);
    }
    parentPort.postMessage(woke);
  `;
  const w = new Worker(code, { eval: true, workerData: { sab, strayMs, id, text, off: DATA_OFFSET } });
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

/** A buffer holding the (already taken) reply to request 1, now BUSY for request 2. */
function afterFirstReply(): { sab: SharedArrayBuffer; ctrl: Int32Array; data: Uint8Array } {
  const sab = new SharedArrayBuffer(DATA_OFFSET + 1024);
  const { ctrl, data } = handoffViews(sab);
  markBusy(ctrl);
  postReply(ctrl, data, 1, enc.encode('reply-1'));
  assert.equal(dec.decode(awaitReply(ctrl, data, 1, 1000) as Uint8Array), 'reply-1');
  assert.equal(ctrl[STATE], IDLE);
  markBusy(ctrl);
  return { sab, ctrl, data };
}

test('awaitReply: a stray notify while the request is out does not end the wait; the reply to this request does', async () => {
  const { sab, ctrl, data } = afterFirstReply();
  const woke = lateReplier(sab, 150, 2, 'reply-2');
  const got = awaitReply(ctrl, data, 2, 10_000);
  assert.ok(got !== 'timed-out');
  assert.equal(dec.decode(got), 'reply-2', 'the answer to request 2, not the stale reply-1 still in the buffer');
  assert.ok((await woke) > 0, 'the stray notifies did wake the waiting thread (else this test proves nothing)');
  assert.equal(ctrl[STATE], IDLE);
});

test('awaitReply: times out after ms though stray notifies keep coming, and leaves the request out', async () => {
  const { sab, ctrl, data } = afterFirstReply();
  const woke = lateReplier(sab, 300, 2, null);
  const t0 = performance.now();
  assert.equal(awaitReply(ctrl, data, 2, 120), 'timed-out');
  assert.ok(performance.now() - t0 >= 119, 'waited the whole time');
  await woke;
  assert.equal(ctrl[STATE], BUSY);
});

test('awaitReply: a reply to another request is an error, not an answer', () => {
  const { ctrl, data } = afterFirstReply();
  postReply(ctrl, data, 7, enc.encode('reply-7'));
  assert.equal(ctrl[ID], 7);
  assert.equal(ctrl[LENGTH], 7);
  assert.equal(ctrl[STATE], DONE);
  assert.throws(() => awaitReply(ctrl, data, 2, 1000), /answered request 7 while request 2 was out/);
});
