/**
 * The worker-thread side of the synchronous bridge (bridge.ts): owns the HostSessions, runs each
 * request the main thread posts (a session id, a HostSession method and its arguments), writes the JSON
 * reply into the shared buffer, then wakes the main thread (Atomics.notify). One request at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { handoffViews, postReply } from './handoff.ts';
import { HostError, HostSession, type HostSessionOptions, HostTimeoutError } from './session.ts';

const { ctrl, data } = handoffViews(workerData.sab as SharedArrayBuffer);
const enc = new TextEncoder();
/** open sessions by id (one worker serves every SyncHostSession of the thread that made it) */
const sessions = new Map<number, HostSession>();

/** Answers request `id` (0: the ready message). */
function reply(id: number, r: unknown): void {
  let bytes = enc.encode(JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)));
  if (bytes.length > data.length)
    bytes = enc.encode(
      JSON.stringify({ ok: false, error: { name: 'Error', message: `reply of ${bytes.length} bytes exceeds the bridge buffer` } }),
    );
  postReply(ctrl, data, id, bytes);
}

function errorOf(e: unknown): Record<string, unknown> {
  if (e instanceof HostError)
    return { name: 'HostError', message: e.message, errno: e.errno, code: e.code, signal: e.signal, reply: e.reply };
  if (e instanceof HostTimeoutError) return { name: 'HostTimeoutError', message: e.message };
  return { name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e) };
}

parentPort?.on('message', async (req: { id: number; sid: number; method: string; args: unknown[] }) => {
  try {
    let value: unknown = null;
    const session = sessions.get(req.sid);
    if (req.method === 'open') {
      const s = await HostSession.open(req.args[0] as HostSessionOptions);
      sessions.set(req.sid, s);
      value = s.info;
    } else if (req.method === 'close') {
      await session?.close();
      sessions.delete(req.sid);
    } else {
      if (!session) throw new Error('no open session');
      const fn = (session as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[req.method];
      if (typeof fn !== 'function') throw new Error(`HostSession has no method ${req.method}`);
      value = await fn.apply(session, req.args);
    }
    reply(req.id, { ok: true, value: value === undefined ? null : value });
  } catch (e) {
    reply(req.id, { ok: false, error: errorOf(e) });
  }
});

// ready
reply(0, { ok: true, value: 'ready' });
