/**
 * The reply hand-off of the synchronous bridge (bridge.ts, bridge-worker.ts): one SharedArrayBuffer,
 * a control block of Int32 words, then the reply's UTF-8 bytes.
 *
 *   ctrl[STATE]  IDLE, BUSY (a request is out) or DONE (a reply is in data)
 *   ctrl[LENGTH] the reply's length in bytes
 *   ctrl[ID]     the id of the request the reply answers
 *
 * The waiting side trusts the state word, never a wake-up alone: the worker stores DONE, then
 * notifies, and if it is descheduled between the two, the caller may already have seen DONE, taken
 * the reply and posted its next request when that late notify arrives. A wait that returned on it
 * would read the previous reply as the answer to the new request, and every later call would get
 * the answer of the one before (seen under load: a fork "returned" a status reply, a pagemap null).
 * So awaitReply waits until the state word says DONE, and checks the reply's id.
 *
 * bridge-worker.mjs writes one reply by hand (the worker failed to load): it follows this layout.
 */

export const STATE = 0;
export const LENGTH = 1;
export const ID = 2;
/** Int32 words of the control block (the fourth keeps data 8-byte aligned) */
export const CTRL_WORDS = 4;
export const DATA_OFFSET = CTRL_WORDS * 4;

export const IDLE = 0;
export const BUSY = 1;
export const DONE = 2;

/** The views of a hand-off buffer. */
export function handoffViews(sab: SharedArrayBuffer): { ctrl: Int32Array; data: Uint8Array } {
  return { ctrl: new Int32Array(sab, 0, CTRL_WORDS), data: new Uint8Array(sab, DATA_OFFSET) };
}

/** Worker side: publishes the reply to request `id` (bytes must fit data; the caller checks). */
export function postReply(ctrl: Int32Array, data: Uint8Array, id: number, bytes: Uint8Array): void {
  data.set(bytes);
  ctrl[LENGTH] = bytes.length;
  ctrl[ID] = id;
  Atomics.store(ctrl, STATE, DONE);
  Atomics.notify(ctrl, STATE);
}

/** Caller side: marks a request as out (before posting it). */
export function markBusy(ctrl: Int32Array): void {
  Atomics.store(ctrl, STATE, BUSY);
}

/**
 * Caller side: blocks until the reply to request `id` is in, then returns a copy of its bytes and
 * marks the buffer IDLE; 'timed-out' after `ms` without one. A reply to another request is a broken
 * bridge (an Error), never an answer.
 */
export function awaitReply(ctrl: Int32Array, data: Uint8Array, id: number, ms: number): Uint8Array | 'timed-out' {
  const deadline = performance.now() + ms;
  while (Atomics.load(ctrl, STATE) !== DONE) {
    const left = deadline - performance.now();
    if (left <= 0) return 'timed-out';
    Atomics.wait(ctrl, STATE, BUSY, left);
  }
  const got = ctrl[ID];
  const bytes = data.slice(0, ctrl[LENGTH]);
  Atomics.store(ctrl, STATE, IDLE);
  if (got !== id) throw new Error(`the host bridge answered request ${got} while request ${id} was out`);
  return bytes;
}
