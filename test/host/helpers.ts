/** Shared set-up of the real-kernel tests: a session per test, closed whatever happens. */
import { readFileSync } from 'node:fs';
import { type TestContext, test } from 'node:test';
import { HostSkip } from '../../src/host/hostsafety.ts';
import { HostSession, hostUnavailable } from '../../src/host/session.ts';

export const PAGE = 4096;
export const PMD = 2 << 20;
export const unavailable = hostUnavailable();

export interface HostTestOptions {
  /** needs PFNs and /proc/kpage* (root) */
  root?: boolean;
  /** per-command timeout */
  timeoutMs?: number;
  memLimit?: number;
}

/** A test with its own HostSession; skips (with the reason) when the backend or root is missing. */
export function hostTest(name: string, opts: HostTestOptions, fn: (s: HostSession, t: TestContext) => Promise<void>): void {
  test(name, async (t) => {
    if (unavailable) {
      t.skip(`real-kernel backend unavailable: ${unavailable}`);
      return;
    }
    // one CPU, as host scenario runs: a page still in another CPU's LRU-add batch holds a
    // reference the write fault's drain cannot reach, and the kernel then copies instead of
    // reusing (docs/host.md, "Nondeterminism"); 'child write copies...' failed so about 1 in 10
    const s = await HostSession.open({ timeoutMs: opts.timeoutMs ?? 10_000, memLimit: opts.memLimit, oneCpu: true });
    try {
      if (opts.root && !(s.info.pfn && s.info.kpage)) {
        t.skip('needs root: PFNs in pagemap and /proc/kpageflags are hidden from this user');
        return;
      }
      await fn(s, t);
    } catch (e) {
      if (e instanceof HostSkip) {
        t.skip(e.message);
        return;
      }
      throw e;
    } finally {
      await s.close();
    }
  });
}

/** The kernel command line (PVM guests can disable the shared zeropage: pvm_no_zero_page=1). */
export function cmdline(): string {
  try {
    return readFileSync('/proc/cmdline', 'utf8');
  } catch {
    return '';
  }
}
export const zeroPageDisabled = /\bpvm_no_zero_page=1\b/.test(cmdline());

/** THP for 2 MiB on MADV_HUGEPAGE regions, or why not. */
export function thpUnavailable(): string | null {
  try {
    const top = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
    if (/\[never\]/.test(top)) return 'THP is disabled ([never])';
    let pmd = 'inherit';
    try {
      pmd = /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled', 'utf8'))?.[1] ?? 'inherit';
    } catch {
      // kernels before mTHP: no per-size knob
    }
    if (pmd === 'never') return '2 MiB THP is disabled (hugepages-2048kB/enabled = never)';
    return null;
  } catch {
    return 'no THP support (no /sys/kernel/mm/transparent_hugepage)';
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // a zombie is as good as gone
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export async function waitGone(pids: number[], ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!pids.some(pidAlive)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !pids.some(pidAlive);
}
