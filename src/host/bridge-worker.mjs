// Entry of the HostSession worker thread (src/host/bridge.ts). Plain JavaScript, so the worker starts
// whether or not the parent registered a TypeScript loader; it registers tsx and loads the TS side.
// A load failure is written into the shared buffer at once, so the blocked caller does not wait
// for its timeout.
import { workerData } from 'node:worker_threads';

try {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./bridge-worker.ts');
} catch (e) {
  // handoff.ts's layout: ctrl = [state, length, id, -], data from byte 16; DONE = 2, ready's id = 0
  const ctrl = new Int32Array(workerData.sab, 0, 4);
  const data = new Uint8Array(workerData.sab, 16);
  const msg = new TextEncoder().encode(
    JSON.stringify({ ok: false, error: { name: 'Error', message: `host worker failed to load: ${e}` } }),
  );
  const n = Math.min(msg.length, data.length);
  data.set(msg.subarray(0, n));
  ctrl[1] = n;
  ctrl[2] = 0;
  Atomics.store(ctrl, 0, 2);
  Atomics.notify(ctrl, 0);
}
