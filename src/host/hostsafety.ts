/**
 * Changing machine settings for a real-kernel run, and always putting them back.
 *
 * Rule: before a sysfs write, the original value (and the value being set) is recorded in a
 * restore file (os.tmpdir()/cowlab-host-restore-PID.json, with the process start time against
 * PID reuse). Undoing a change: nr_hugepages by its delta (so concurrent runs on one machine do not
 * undo each other's pages), any other knob only if it still shows what this run set.
 * Normal paths restore in `finally` and delete the file; a process 'exit' hook restores what is
 * still changed; a run that was killed (SIGKILL, OOM, power) leaves its file, and the next start
 * (HostSession.open, withSysfs, withHugetlbReserved) restores from it once its process is gone.
 *
 * Settings: /sys/kernel/mm/hugepages/hugepages-*kB/nr_hugepages and the THP knobs under
 * /sys/kernel/mm/transparent_hugepage (only paths below these two roots are accepted).
 */
import { existsSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const HUGEPAGES_DIR = '/sys/kernel/mm/hugepages';
export const THP_DIR = '/sys/kernel/mm/transparent_hugepage';
const ALLOWED = [`${HUGEPAGES_DIR}/`, `${THP_DIR}/`];
const PREFIX = 'cowlab-host-restore-';
/** Hugetlb memory a run may reserve: 1 GiB, or a single 1 GiB page. */
export const HUGETLB_BOUND = 1 << 30;

/** A reason to skip: the machine cannot do what a test needs. Tests turn it into t.skip(reason). */
export class HostSkip extends Error {}

interface RestoreFile {
  pid: number;
  start: string;
  /** path -> the original value (first seen) and the value this run set */
  settings: Record<string, { original: string; set: string }>;
}

/** What this process changed (original values), mirrored in its restore file. */
let active: RestoreFile | null = null;
let hooked = false;

function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name (which may contain spaces): field 22 is starttime
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

function restorePath(pid = process.pid): string {
  return join(tmpdir(), `${PREFIX}${pid}.json`);
}

/** The value a sysfs knob shows: the bracketed choice of "always [madvise] never", else the text. */
export function readSetting(path: string): string {
  const text = readFileSync(path, 'utf8').trim();
  const m = /\[([^\]]+)\]/.exec(text);
  return m ? m[1] : text;
}

function checkPath(path: string): void {
  if (!ALLOWED.some((p) => path.startsWith(p)) || path.includes('..')) throw new Error(`not a setting cowlab may change: ${path}`);
}

function writeSetting(path: string, value: string): void {
  writeFileSync(path, value);
}

function loadFile(path: string): RestoreFile | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as RestoreFile;
  } catch {
    return null;
  }
}

function saveFile(f: RestoreFile): void {
  const path = restorePath(f.pid);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(f));
  renameSync(tmp, path);
}

/**
 * The value that undoes one change, given what the setting shows now. nr_hugepages is undone by
 * its delta (another run may have changed the pool meanwhile: its pages stay); any other knob is
 * put back only if it still shows what this run set (else null: someone else changed it since).
 */
export function undoValue(path: string, change: { original: string; set: string }, current: string): string | null {
  if (path.endsWith('/nr_hugepages')) {
    const v = Number(current) - (Number(change.set) - Number(change.original));
    return String(Math.max(0, v));
  }
  return current === change.set ? change.original : null;
}

/** Restores every setting of a restore file; returns the paths it could not restore. */
function applyRestore(f: RestoreFile): string[] {
  const failed: string[] = [];
  for (const [path, change] of Object.entries(f.settings)) {
    try {
      checkPath(path);
      const current = readSetting(path);
      const v = undoValue(path, change, current);
      if (v !== null && v !== current) writeSetting(path, v);
    } catch {
      failed.push(path);
    }
  }
  return failed;
}

/**
 * Restores the settings of runs that were killed (their process is gone). Returns the restored
 * paths. Files of live processes (a concurrent run) are left alone.
 */
export function recoverStaleSettings(): string[] {
  const restored: string[] = [];
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith(PREFIX) && n.endsWith('.json'));
  } catch {
    return restored;
  }
  for (const name of names) {
    const path = join(tmpdir(), name);
    const f = loadFile(path);
    if (!f) continue;
    // a live process's file (this process included: another thread of it, e.g. a HostSession in a
    // worker thread, may start while the main thread holds a reservation) is never stale
    const alive = startTime(f.pid);
    if (alive !== null && alive === f.start) continue;
    const failed = applyRestore(f);
    restored.push(...Object.keys(f.settings).filter((p) => !failed.includes(p)));
    if (failed.length === 0) unlinkSync(path);
  }
  return restored;
}

function ensureFile(): RestoreFile {
  if (!active) {
    active = { pid: process.pid, start: startTime(process.pid) ?? '', settings: {} };
    if (!hooked) {
      hooked = true;
      process.once('exit', () => restoreAll());
    }
  }
  return active;
}

/** Restores everything this process changed and removes its restore file. */
export function restoreAll(): string[] {
  if (!active) return [];
  const failed = applyRestore(active);
  if (failed.length === 0) {
    try {
      unlinkSync(restorePath());
    } catch {
      // already gone
    }
    active = null;
  }
  return failed;
}

/**
 * Changes a setting, recording its original value first (in memory and in the restore file).
 * Throws HostSkip without root.
 */
export function changeSetting(path: string, value: string): void {
  checkPath(path);
  if (!existsSync(path)) throw new HostSkip(`${path} does not exist on this kernel`);
  if (process.getuid?.() !== 0) throw new HostSkip(`changing ${path} needs root`);
  const f = ensureFile();
  const change = f.settings[path] ?? { original: readSetting(path), set: value };
  change.set = value;
  f.settings[path] = change;
  saveFile(f); // on disk before the change
  try {
    writeSetting(path, value);
  } finally {
    // what the kernel actually applied (a pool may grow by fewer pages than asked)
    change.set = readSetting(path);
    saveFile(f);
  }
}

/** Puts one setting back to its recorded original value. */
export function restoreSetting(path: string): void {
  if (!active || !(path in active.settings)) return;
  const current = readSetting(path);
  const v = undoValue(path, active.settings[path], current);
  if (v !== null && v !== current) writeSetting(path, v);
  delete active.settings[path];
  if (Object.keys(active.settings).length === 0) {
    try {
      unlinkSync(restorePath());
    } catch {
      // already gone
    }
    active = null;
  } else saveFile(active);
}

/** Runs fn with the given settings, restoring them afterwards whatever happens. */
export async function withSysfs<T>(settings: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  recoverStaleSettings();
  const changed: string[] = [];
  try {
    for (const [path, value] of Object.entries(settings)) {
      changeSetting(path, value);
      changed.push(path);
    }
    return await fn();
  } finally {
    for (const path of changed.reverse()) restoreSetting(path);
  }
}

export function hugepageDir(size: number): string {
  return `${HUGEPAGES_DIR}/hugepages-${size / 1024}kB`;
}

/** The hugetlb page sizes this kernel offers, in bytes. */
export function hugetlbSizes(): number[] {
  try {
    return readdirSync(HUGEPAGES_DIR)
      .map((n) => /^hugepages-(\d+)kB$/.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]) * 1024)
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}

export interface HugetlbPool {
  size: number;
  nr: number;
  free: number;
  resv: number;
  surplus: number;
}

export function hugetlbPool(size: number): HugetlbPool {
  const d = hugepageDir(size);
  const n = (f: string) => Number(readFileSync(`${d}/${f}`, 'utf8').trim());
  return { size, nr: n('nr_hugepages'), free: n('free_hugepages'), resv: n('resv_hugepages'), surplus: n('surplus_hugepages') };
}

/**
 * Makes at least n free hugetlb pages of `size` bytes available while fn runs, then puts
 * nr_hugepages back (also on failure; a killed run is restored on the next start). The caller
 * must release its hugetlb memory (close its HostSession) inside fn; pages that stay in use a
 * little longer (a pin dropped asynchronously, like an io_uring ring's buffers) are waited for
 * before the pool shrinks (awaitHugetlbReleased). Throws HostSkip when the size does not exist,
 * without root, above the bound, or when the kernel cannot allocate the pages.
 */
export async function withHugetlbReserved<T>(size: number, n: number, fn: (pool: HugetlbPool) => Promise<T>): Promise<T> {
  const r = reserveHugetlb(size, n);
  try {
    return await fn(hugetlbPool(size));
  } finally {
    awaitHugetlbReleased(() => hugetlbPool(size), r.inUse);
    if (r.path) restoreSetting(r.path);
  }
}

/** withHugetlbReserved for synchronous callers (the scenario runner over HostBackend). */
export function withHugetlbReservedSync<T>(size: number, n: number, fn: (pool: HugetlbPool) => T): T {
  const r = reserveHugetlb(size, n);
  try {
    return fn(hugetlbPool(size));
  } finally {
    awaitHugetlbReleased(() => hugetlbPool(size), r.inUse);
    if (r.path) restoreSetting(r.path);
  }
}

/** How long a run's hugetlb pages may take to come back after its processes are gone. */
export const HUGETLB_RELEASE_MS = 5000;

/**
 * Waits (polling, at most `ms`) until no more hugetlb pages are in use than `inUse` (those of
 * others before the run) and the reservation count is sane again; returns whether it got there.
 *
 * Why: a page still in use when nr_hugepages is lowered becomes a surplus page; a run that then
 * grows the pool again turns that surplus page into a persistent one, and its restore (by delta)
 * leaves it behind: one page leaked per such pair of runs. Seen on 6.18 with an io_uring fixed
 * buffer in a private hugetlb mapping (differential/hugetlb-fork-pinned-enomem.cow): the pin is
 * dropped only when the ring is torn down, after the processes are gone, and until then
 * resv_huge_pages reads 2^64 - 1 (it has gone below zero; docs/host.md).
 */
export function awaitHugetlbReleased(read: () => HugetlbPool, inUse: number, ms = HUGETLB_RELEASE_MS): boolean {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + ms;
  for (;;) {
    const p = read();
    if (p.nr - p.free <= inUse && p.resv <= p.nr) return true;
    if (performance.now() >= deadline) return false;
    Atomics.wait(nap, 0, 0, 10);
  }
}

/**
 * Grows the pool so that n pages are free; returns the changed setting's path (null: nothing
 * changed) and the pages in use before (by others).
 */
function reserveHugetlb(size: number, n: number): { path: string | null; inUse: number } {
  recoverStaleSettings();
  if (!hugetlbSizes().includes(size)) throw new HostSkip(`no ${size / 1024} kB hugetlb pages on this kernel`);
  if (n * size > HUGETLB_BOUND && !(size === HUGETLB_BOUND && n === 1))
    throw new HostSkip(`${n} x ${size / 1024} kB exceeds the hugetlb bound of 1 GiB`);
  if (process.getuid?.() !== 0) throw new HostSkip('reserving hugetlb pages needs root');
  const path = `${hugepageDir(size)}/nr_hugepages`;
  const before = hugetlbPool(size);
  const inUse = before.nr - before.free;
  const need = Math.max(0, n - before.free);
  if (need === 0) return { path: null, inUse };
  try {
    changeSetting(path, String(before.nr + need));
    const now = hugetlbPool(size);
    if (now.free < n) throw new HostSkip(`the kernel gave only ${now.free} of ${n} free ${size / 1024} kB hugetlb pages`);
  } catch (e) {
    restoreSetting(path);
    throw e;
  }
  return { path, inUse };
}
