/**
 * A synchronous HostSession: the scenario runner's Backend interface is synchronous (the model is,
 * and the runner stays one code path), while HostSession talks to build/cowhost asynchronously.
 * Sessions live in a worker thread; `call` posts a request to it and blocks the calling thread in
 * Atomics.wait on a SharedArrayBuffer until the worker has written the JSON reply there.
 *
 * One worker serves every session of the process (starting one costs ~0.5 s: it loads the
 * TypeScript sources); it is unref'd, so it never keeps the process alive.
 *
 * Time: each command has HostSession's own timeout (a timeout ends that session); the wait here
 * has a backstop a few seconds longer, after which the helper's process group is SIGKILLed and
 * the worker terminated (the next session starts a new one). close() ends the session and with
 * it every scenario process of that session.
 */
import { Worker } from 'node:worker_threads';
import { awaitReply, DATA_OFFSET, handoffViews, markBusy } from './handoff.ts';
import { HostError, type HostInfo, type HostSession, type HostSessionOptions, HostTimeoutError } from './session.ts';

/** 4 MiB of reply: a pagemap of 8192 pages is well below it. */
const BUFFER = 4 << 20;

type Methods = {
  [K in keyof HostSession]: HostSession[K] extends (...a: infer A) => Promise<infer R> ? (...a: A) => R : never;
};

interface Reply {
  ok: boolean;
  value?: unknown;
  error?: { name: string; message: string; reply?: Record<string, unknown> };
}

/** The worker thread and its shared buffer (handoff.ts: the layout and the waiting rule). */
class BridgeWorker {
  readonly worker: Worker;
  private readonly ctrl: Int32Array;
  private readonly data: Uint8Array;
  private readonly dec = new TextDecoder();
  /** id of the last request posted; the worker's "ready" answers id 0 */
  private id = 0;
  broken = false;

  constructor() {
    const sab = new SharedArrayBuffer(DATA_OFFSET + BUFFER);
    ({ ctrl: this.ctrl, data: this.data } = handoffViews(sab));
    markBusy(this.ctrl);
    this.worker = new Worker(new URL('./bridge-worker.mjs', import.meta.url), { workerData: { sab } });
    this.worker.unref();
    const ready = this.take(30_000);
    if (!ready.ok) {
      this.kill();
      throw new Error(ready.error?.message ?? 'the host worker did not start');
    }
  }

  /** Posts a request and blocks until its reply (a BridgeTimeout error reply: the worker was then terminated). */
  request(sid: number, method: string, args: unknown[], ms: number): Reply {
    const id = ++this.id;
    markBusy(this.ctrl);
    this.worker.postMessage({ id, sid, method, args });
    return this.take(ms);
  }

  private take(ms: number): Reply {
    let bytes: Uint8Array | 'timed-out';
    try {
      bytes = awaitReply(this.ctrl, this.data, this.id, ms);
    } catch (e) {
      this.kill();
      throw e;
    }
    if (bytes === 'timed-out') {
      this.kill();
      return { ok: false, error: { name: 'BridgeTimeout', message: `the host worker did not answer within ${ms} ms` } };
    }
    return JSON.parse(this.dec.decode(bytes)) as Reply;
  }

  kill(): void {
    this.broken = true;
    void this.worker.terminate();
    if (shared === this) shared = null;
  }
}

let shared: BridgeWorker | null = null;
let nextSid = 1;
const open = new Set<SyncHostSession>();
let hooked = false;

function bridge(): BridgeWorker {
  if (!shared || shared.broken) shared = new BridgeWorker();
  return shared;
}

export class SyncHostSession {
  readonly info: HostInfo;
  private readonly bridge: BridgeWorker;
  private readonly sid = nextSid++;
  private readonly backstopMs: number;
  private dead: Error | null = null;

  constructor(opts: HostSessionOptions = {}) {
    this.backstopMs = (opts.timeoutMs ?? 10_000) + 5000;
    this.bridge = bridge();
    if (!hooked) {
      hooked = true;
      process.once('exit', () => {
        for (const s of open) s.killHelper();
      });
    }
    this.info = this.request('open', [opts], Math.max(30_000, this.backstopMs)) as HostInfo;
    open.add(this);
  }

  get closed(): boolean {
    return this.dead !== null;
  }

  /** Calls a HostSession method synchronously: its value, or the error it threw (HostError, HostTimeoutError, Error). */
  call<K extends keyof Methods>(method: K, ...args: Parameters<Methods[K]>): ReturnType<Methods[K]> {
    return this.request(method, args, this.backstopMs) as ReturnType<Methods[K]>;
  }

  private request(method: string, args: unknown[], ms: number): unknown {
    if (this.dead) throw this.dead;
    if (this.bridge.broken) {
      this.dead = new HostTimeoutError(`${method}: the host worker was terminated (session closed)`);
      throw this.dead;
    }
    let reply: Reply;
    try {
      reply = this.bridge.request(this.sid, method, args, ms);
    } catch (e) {
      // a broken hand-off (the worker is terminated): nothing this session gets can be trusted
      this.dead = e instanceof Error ? e : new Error(String(e));
      this.killHelper();
      open.delete(this);
      throw this.dead;
    }
    if (reply.error?.name === 'BridgeTimeout') {
      this.dead = new HostTimeoutError(`${method}: ${reply.error.message} (session killed)`);
      this.killHelper();
      open.delete(this);
      throw this.dead;
    }
    if (reply.ok) return reply.value;
    const err = reply.error ?? { name: 'Error', message: 'unknown error' };
    if (err.name === 'HostError') throw new HostError(method, err.reply ?? { error: err.message });
    if (err.name === 'HostTimeoutError') {
      this.dead = new HostTimeoutError(err.message);
      open.delete(this);
      throw this.dead;
    }
    throw new Error(err.message);
  }

  /** SIGKILLs the helper's process group (the helper runs in its own group, whose id is its pid). */
  killHelper(): void {
    const pid = this.info?.pid;
    if (!pid) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }

  /** Ends the session and all its scenario processes. Never throws; safe to call twice. */
  close(): void {
    if (!this.dead) {
      try {
        this.request('close', [], this.backstopMs);
      } catch {
        this.killHelper();
      }
      this.dead = new Error('session closed');
    }
    open.delete(this);
  }
}

/** Terminates the shared worker (tests; the worker never keeps a process alive anyway). */
export function stopBridge(): void {
  shared?.kill();
}
