/**
 * A session with the native helper build/cowhost (native/cowhost.c): real processes, real system
 * calls, and what /proc shows after each step. One command at a time; each has a timeout, and a
 * timeout ends the session (the helper may be blocked in the kernel: only killing it is safe).
 * close() always kills the helper's whole process group (controller and scenario processes).
 *
 * Process ids (`p`) are the helper's small ids: 0 is the first process, fork returns new ones.
 * Addresses are the real addresses mmap returned. See docs/host.md for the protocol.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recoverStaleSettings } from './hostsafety.ts';

/** Path of the helper binary built by `npm ci` (scripts/build-native.mjs). */
export const COWHOST_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'cowhost');

/** Bytes read back, run-length coded: [byte value, count] pairs. */
export type ByteRuns = Array<[number, number]>;

export interface HostInfo {
  version: number;
  pid: number;
  uid: number;
  pageSize: number;
  memLimit: number;
  mapped: number;
  /** pagemap shows PFNs (CAP_SYS_ADMIN) */
  pfn: boolean;
  /** /proc/kpagecount and /proc/kpageflags are readable (root) */
  kpage: boolean;
  /** /sys/kernel/debug/gup_test is there (CONFIG_GUP_TEST, debugfs mounted) */
  gupTest: boolean;
  swapTotalKb: number;
}

/** One page as /proc/PID/pagemap (+ /proc/kpagecount, /proc/kpageflags when readable) shows it. */
export interface HostPage {
  present: boolean;
  swapped: boolean;
  /** bit 61: file page or shared anonymous (also the huge zeropage) */
  file: boolean;
  /** bit 56: mapped exactly once (mapcount-based, not PG_anon_exclusive) */
  exclusive: boolean;
  /** bit 55 */
  softDirty: boolean;
  /** bit 57 */
  uffdWp: boolean;
  /** only when PFNs are visible (root); compare by identity, never by value */
  pfn?: number;
  swapType?: number;
  swapOffset?: number;
  /** /proc/kpagecount: the page's mapcount (not its refcount) */
  count?: number;
  /** raw /proc/kpageflags word */
  kflags?: bigint;
  anon?: boolean;
  thp?: boolean;
  zero?: boolean;
  /** hugetlb */
  huge?: boolean;
  ksm?: boolean;
  head?: boolean;
  tail?: boolean;
  lru?: boolean;
  swapcache?: boolean;
  mlocked?: boolean;
  /** kpageflags bit 34 on an anonymous page: PG_anon_exclusive (of the folio's head page) */
  anonExclusive?: boolean;
  /** PAGEMAP_SCAN PAGE_IS_HUGE (6.7+): mapped by a PMD (THP) or a hugetlb entry; absent without PAGEMAP_SCAN */
  pmd?: boolean;
}

/** /proc/PID/status lines starting with Vm, Rss and HugetlbPages, in kB. */
export type HostStatus = Record<string, number> & { pid: number };

export type Prot = 'none' | 'r' | 'rw' | 'rwx' | 'w';
export type Advice =
  | 'normal'
  | 'dontneed'
  | 'free'
  | 'remove'
  | 'dontfork'
  | 'dofork'
  | 'mergeable'
  | 'unmergeable'
  | 'hugepage'
  | 'nohugepage'
  | 'dontdump'
  | 'wipeonfork'
  | 'keeponfork'
  | 'cold'
  | 'pageout'
  | 'populate_read'
  | 'populate_write'
  | 'collapse';

export interface HostMmapArgs {
  len: number;
  prot?: Prot;
  share?: 'private' | 'shared';
  /** file descriptor in that process; anonymous when absent */
  fd?: number;
  off?: number;
  /** align the start to this power of two (e.g. 2 MiB for THP) */
  align?: number;
  /** anonymous hugetlb mapping of this page size (MAP_HUGETLB) */
  hugetlb?: number;
  populate?: boolean;
  noreserve?: boolean;
}

/** A command the helper refused or that failed in the kernel. */
export class HostError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly signal?: string;
  readonly reply: Record<string, unknown>;
  constructor(cmd: string, reply: Record<string, unknown>) {
    super(`${cmd}: ${String(reply.error ?? 'failed')}`);
    this.errno = Number(reply.errno ?? 0);
    this.code = String(reply.code ?? 'E?');
    if (typeof reply.signal === 'string') this.signal = reply.signal;
    this.reply = reply;
  }
}

export class HostTimeoutError extends Error {}

export interface HostSessionOptions {
  binary?: string;
  /** per-command timeout (default 10 s); a timeout closes the session */
  timeoutMs?: number;
  /** bound on non-hugetlb mappings over all processes (default 1 GiB) */
  memLimit?: number;
  /** run every scenario process on one CPU (--one-cpu: no LRU-batch references out of a fault's reach) */
  oneCpu?: boolean;
}

type Reply = Record<string, unknown> & { ok: boolean; seq: number };
type ArgValue = string | number | boolean | undefined;

const live = new Set<ChildProcess>();
let exitHook = false;
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Why the real-kernel backend cannot run here, or null if it can be started. */
export function hostUnavailable(binary = COWHOST_PATH): string | null {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (!existsSync(binary)) return `${binary} is not built (no C compiler at npm install? run npm run build:native)`;
  return null;
}

export class HostSession {
  readonly info: HostInfo;
  private readonly child: ChildProcess;
  private readonly timeoutMs: number;
  private seq = 0;
  private buf = '';
  private waiting: { seq: number; resolve: (r: Reply) => void; reject: (e: Error) => void } | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private dead: Error | null = null;

  private constructor(child: ChildProcess, info: HostInfo, timeoutMs: number) {
    this.child = child;
    this.info = info;
    this.timeoutMs = timeoutMs;
  }

  /** Starts the helper (restoring sysfs settings a killed earlier run left changed). */
  static async open(opts: HostSessionOptions = {}): Promise<HostSession> {
    const binary = opts.binary ?? COWHOST_PATH;
    const why = hostUnavailable(binary);
    if (why) throw new Error(`real-kernel backend unavailable: ${why}`);
    recoverStaleSettings();
    const args = opts.memLimit ? [`--mem-limit=${opts.memLimit}`] : [];
    if (opts.oneCpu) args.push('--one-cpu');
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    live.add(child);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const c of live) killGroup(c);
      });
    }
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const greeting = new Promise<Reply>((resolve, reject) => {
      let early = '';
      const onData = (d: Buffer) => {
        early += d.toString('utf8');
        const nl = early.indexOf('\n');
        if (nl < 0) return;
        child.stdout?.off('data', onData);
        try {
          resolve(JSON.parse(early.slice(0, nl)) as Reply);
        } catch (e) {
          reject(e as Error);
        }
      };
      child.stdout?.on('data', onData);
      child.once('error', reject);
      child.once('exit', (code, sig) => reject(new Error(`cowhost exited at start (${code ?? sig})`)));
      setTimeout(() => reject(new HostTimeoutError('cowhost did not greet')), Math.max(timeoutMs, 5000)).unref();
    });
    let hello: Reply;
    try {
      hello = await greeting;
    } catch (e) {
      killGroup(child);
      live.delete(child);
      throw e;
    }
    if (!hello.ok) {
      killGroup(child);
      live.delete(child);
      throw new Error(`cowhost failed to start: ${String(hello.error)}`);
    }
    const { seq: _seq, ok: _ok, ...info } = hello;
    const session = new HostSession(child, info as unknown as HostInfo, timeoutMs);
    child.stdout?.on('data', (d: Buffer) => session.onData(d.toString('utf8')));
    child.once('exit', (code, sig) => session.fail(new Error(`cowhost exited (${code ?? sig})`)));
    child.stdin?.on('error', () => {});
    return session;
  }

  get closed(): boolean {
    return this.dead !== null;
  }

  private onData(text: string): void {
    this.buf += text;
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) return;
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let r: Reply;
      try {
        r = JSON.parse(line) as Reply;
      } catch {
        this.fail(new Error(`cowhost sent a malformed line: ${line.slice(0, 200)}`));
        return;
      }
      const w = this.waiting;
      if (w && r.seq === w.seq) {
        this.waiting = null;
        w.resolve(r);
      }
    }
  }

  private fail(e: Error): void {
    if (!this.dead) this.dead = e;
    const w = this.waiting;
    this.waiting = null;
    if (w) w.reject(e);
    killGroup(this.child);
    live.delete(this.child);
  }

  /** Sends one command and returns its reply as it came (ok or not). Serialised. */
  request(cmd: string, args: Record<string, ArgValue> = {}, timeoutMs = this.timeoutMs): Promise<Reply> {
    const run = async (): Promise<Reply> => {
      if (this.dead) throw this.dead;
      const seq = ++this.seq;
      const parts = [String(seq), cmd];
      for (const [k, v] of Object.entries(args)) {
        if (v === undefined) continue;
        const s = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
        if (/\s/.test(s) || s === '') throw new Error(`bad argument ${k}=${JSON.stringify(s)}`);
        parts.push(`${k}=${s}`);
      }
      return await new Promise<Reply>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.fail(new HostTimeoutError(`${cmd}: no reply within ${timeoutMs} ms (session closed)`));
        }, timeoutMs);
        this.waiting = {
          seq,
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        this.child.stdin?.write(`${parts.join(' ')}\n`);
      });
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }

  /** Like request, but throws HostError unless ok. */
  async call(cmd: string, args: Record<string, ArgValue> = {}, timeoutMs?: number): Promise<Reply> {
    const r = await this.request(cmd, args, timeoutMs);
    if (!r.ok) throw new HostError(cmd, r);
    return r;
  }

  /** Ends the helper and all scenario processes. Never throws; safe to call twice. */
  async close(): Promise<void> {
    if (this.dead && this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) resolve();
      else this.child.once('exit', () => resolve());
    });
    try {
      this.child.stdin?.end();
    } catch {
      // ignore
    }
    const t = setTimeout(() => killGroup(this.child), 2000);
    await exited;
    clearTimeout(t);
    killGroup(this.child); // scenario processes that outlived the controller, if any
    live.delete(this.child);
    if (!this.dead) this.dead = new Error('session closed');
  }

  // ---------------------------------------------------------------- processes

  async fork(p: number): Promise<{ p: number; pid: number }> {
    const r = await this.call('fork', { p });
    return { p: Number(r.p), pid: Number(r.pid) };
  }
  /** exit(status) in process p; the helper reaps it. Returns the exit status. */
  async exit(p: number, status = 0): Promise<number> {
    const r = await this.call('exit', { p, status });
    return Number(r.status ?? -1);
  }
  async kill(p: number): Promise<void> {
    await this.call('kill', { p });
  }
  async procs(): Promise<Array<{ p: number; pid: number; mapped: number }>> {
    return (await this.call('procs')).procs as Array<{ p: number; pid: number; mapped: number }>;
  }

  // ---------------------------------------------------------------- memory

  async mmap(p: number, a: HostMmapArgs): Promise<number> {
    const r = await this.call('mmap', {
      p,
      len: a.len,
      prot: a.prot,
      share: a.share,
      fd: a.fd,
      off: a.off,
      align: a.align,
      hugetlb: a.hugetlb,
      populate: a.populate,
      noreserve: a.noreserve,
    });
    return Number(r.addr);
  }
  async munmap(p: number, addr: number, len: number): Promise<void> {
    await this.call('munmap', { p, addr, len });
  }
  async mprotect(p: number, addr: number, len: number, prot: Prot): Promise<void> {
    await this.call('mprotect', { p, addr, len, prot });
  }
  /** madvise; for pageout the reply counts present and swapped pages of the range afterwards. */
  async madvise(p: number, addr: number, len: number, advice: Advice): Promise<{ present?: number; swapped?: number }> {
    const r = await this.call('madvise', { p, addr, len, advice });
    return r.present === undefined ? {} : { present: Number(r.present), swapped: Number(r.swapped) };
  }
  async mremap(p: number, addr: number, len: number, to?: number, newlen?: number): Promise<number> {
    return Number((await this.call('mremap', { p, addr, len, to, newlen })).addr);
  }
  async mlock(p: number, addr: number, len: number): Promise<void> {
    await this.call('mlock', { p, addr, len });
  }
  async munlock(p: number, addr: number, len: number): Promise<void> {
    await this.call('munlock', { p, addr, len });
  }
  /** Stores `byte` into [addr, addr+len); returns the signal name if an access faulted, else null. */
  async write(p: number, addr: number, len: number, byte: number): Promise<string | null> {
    const r = await this.request('write', { p, addr, len, byte });
    if (r.ok) return null;
    if (typeof r.signal === 'string') return r.signal;
    throw new HostError('write', r);
  }
  /** Loads [addr, addr+len): the bytes as runs, or the signal name if an access faulted. */
  async read(p: number, addr: number, len: number): Promise<ByteRuns | string> {
    const r = await this.request('read', { p, addr, len });
    if (r.ok) return r.data as ByteRuns;
    if (typeof r.signal === 'string') return r.signal;
    throw new HostError('read', r);
  }

  // ---------------------------------------------------------------- files, pipes, I/O

  async memfd(p: number, hugetlb = 0): Promise<number> {
    return Number((await this.call('memfd', { p, hugetlb: hugetlb || undefined })).fd);
  }
  /** open(dir, O_TMPFILE|O_RDWR[|O_DIRECT]) */
  async tmpfile(p: number, dir: string, direct = false): Promise<number> {
    return Number((await this.call('tmpfile', { p, dir, direct })).fd);
  }
  /** open(/proc/self/fd/FD) again, O_RDWR (| O_DIRECT): a second open file description of the same file */
  async reopen(p: number, fd: number, direct: boolean): Promise<number> {
    return Number((await this.call('reopen', { p, fd, direct })).fd);
  }
  async ftruncate(p: number, fd: number, len: number): Promise<void> {
    await this.call('ftruncate', { p, fd, len });
  }
  async fallocate(p: number, fd: number, off: number, len: number): Promise<void> {
    await this.call('fallocate', { p, fd, off, len });
  }
  async closeFd(p: number, fd: number): Promise<void> {
    await this.call('close', { p, fd });
  }
  /** pwrite of `len` bytes of value `byte` from a helper buffer (not scenario memory). */
  async pwrite(p: number, fd: number, off: number, len: number, byte: number): Promise<number> {
    return Number((await this.call('pwrite', { p, fd, off, len, byte })).bytes);
  }
  /** pread into a helper buffer; returns the bytes read as runs. */
  async pread(p: number, fd: number, off: number, len: number): Promise<ByteRuns> {
    return (await this.call('pread', { p, fd, off, len })).data as ByteRuns;
  }
  /** pread(fd, addr, len, off): file to scenario memory (O_DIRECT when the fd has it). */
  async fdRead(p: number, fd: number, off: number, addr: number, len: number): Promise<number> {
    return Number((await this.call('fdread', { p, fd, off, addr, len })).bytes);
  }
  /** pwrite(fd, addr, len, off): scenario memory to file (O_DIRECT when the fd has it). */
  async fdWrite(p: number, fd: number, off: number, addr: number, len: number): Promise<number> {
    return Number((await this.call('fdwrite', { p, fd, off, addr, len })).bytes);
  }
  /** A non-blocking pipe; size sets F_SETPIPE_SZ. */
  async pipe(p: number, size?: number): Promise<{ rfd: number; wfd: number; size: number }> {
    const r = await this.call('pipe', { p, size });
    return { rfd: Number(r.rfd), wfd: Number(r.wfd), size: Number(r.size) };
  }
  /** vmsplice (SPLICE_F_NONBLOCK); returns bytes spliced. */
  async vmsplice(p: number, wfd: number, addr: number, len: number): Promise<number> {
    return Number((await this.call('vmsplice', { p, fd: wfd, addr, len })).bytes);
  }
  /** Reads up to len bytes from a pipe without blocking. */
  async pipeRead(p: number, rfd: number, len: number): Promise<{ bytes: number; data: ByteRuns }> {
    const r = await this.call('piperead', { p, fd: rfd, len });
    return { bytes: Number(r.bytes), data: r.data as ByteRuns };
  }

  // ---------------------------------------------------------------- pins

  /** io_uring: set up a ring (once per process) and register [addr, addr+len) as fixed buffer 0. */
  async uringRegister(p: number, addr: number, len: number): Promise<void> {
    await this.call('uring_register', { p, addr, len });
  }
  async uringUnregister(p: number): Promise<void> {
    await this.call('uring_unregister', { p });
  }
  /** IORING_OP_WRITE_FIXED from the registered buffer to fd at off; returns bytes written. */
  async uringWriteFixed(p: number, fd: number, off: number, addr?: number, len?: number): Promise<number> {
    return Number((await this.call('uring_write_fixed', { p, fd, off, addr, len })).bytes);
  }
  async uringClose(p: number): Promise<void> {
    await this.call('uring_close', { p });
  }
  /** gup_test PIN_LONGTERM_TEST_START (needs /sys/kernel/debug/gup_test). */
  async gupStart(p: number, addr: number, len: number, write: boolean, fast: boolean): Promise<void> {
    await this.call('gup_start', { p, addr, len, write, fast });
  }
  async gupRead(p: number, len: number): Promise<ByteRuns> {
    return (await this.call('gup_read', { p, len })).data as ByteRuns;
  }
  async gupStop(p: number): Promise<void> {
    await this.call('gup_stop', { p });
  }

  // ---------------------------------------------------------------- observations

  /** /proc/PID/pagemap (+ kpagecount/kpageflags) for n pages from addr (n <= 8192). */
  async pagemap(p: number, addr: number, n = 1): Promise<HostPage[]> {
    const r = await this.call('pagemap', { p, addr, n });
    return (r.pages as Array<Record<string, unknown>>).map((x) => {
      const { kflags, ...rest } = x;
      return (typeof kflags === 'string' ? { ...rest, kflags: BigInt(kflags) } : rest) as unknown as HostPage;
    });
  }
  async page(p: number, addr: number): Promise<HostPage> {
    return (await this.pagemap(p, addr, 1))[0];
  }
  /** /proc/PID/status: Vm*, Rss*, HugetlbPages (kB), e.g. VmPin, VmLck. */
  async status(p: number): Promise<HostStatus> {
    const { seq: _s, ok: _o, ...rest } = await this.call('status', { p });
    return rest as HostStatus;
  }
  /** The /proc/PID/smaps entry of the mapping containing addr (kB numbers; VmFlags etc. as strings). */
  async smaps(p: number, addr: number): Promise<Record<string, number | string>> {
    const { seq: _s, ok: _o, ...rest } = await this.call('smaps', { p, addr });
    return rest as Record<string, number | string>;
  }
  async meminfo(): Promise<Record<string, number | string>> {
    const { seq: _s, ok: _o, ...rest } = await this.call('meminfo');
    return rest as Record<string, number | string>;
  }
  /** write to /proc/PID/clear_refs (4 = clear soft-dirty bits). */
  async clearRefs(p: number, value = 4): Promise<void> {
    await this.call('clear_refs', { p, value });
  }
}

/** Names PFNs by first appearance (A, B, ...): PFN values are never compared, only identities. */
export class PfnNames {
  private readonly names = new Map<number, string>();
  name(page: HostPage): string {
    if (!page.present) return page.swapped ? 'swap' : '-';
    if (page.pfn === undefined) return '?';
    let n = this.names.get(page.pfn);
    if (!n) {
      const i = this.names.size;
      n = i < 26 ? String.fromCharCode(65 + i) : `P${i}`;
      this.names.set(page.pfn, n);
    }
    return n;
  }
}
