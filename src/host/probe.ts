/**
 * Reads the facts of the machine that cow.c (tools/testing/selftests/mm/cow.c, v6.18) detects, the
 * way cow.c reads them, so that `--machine host` can describe the machine the process runs on.
 * Synchronous fs reads only. Every path is prefixed with `root`, so a test can point the probe at
 * a fake sysfs/procfs tree. Nothing here writes anything.
 */
import { closeSync, existsSync, opendirSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface HostHugetlb {
  /** bytes */
  size: number;
  /** pages in the pool: hugepages-<kB>kB/nr_hugepages */
  nr: number;
  /** free pages: hugepages-<kB>kB/free_hugepages (cow.c needs 2 free per size, else it SKIPs) */
  free: number;
}

export interface HostFacts {
  /** getpagesize(): AT_PAGESZ from /proc/self/auxv, 4096 if that cannot be read */
  pageSize: number;
  /** transparent_hugepage/hpage_pmd_size, bytes; 0 if missing or empty (no THP: cow.c plans no THP tests) */
  pmdSize: number;
  /** THP sizes cow.c tests, bytes, ascending: the PMD size plus each order < 20 whose hugepages-<kB>kB/enabled is readable; [] if pmdSize is 0 */
  thpSizes: number[];
  /** transparent_hugepage/enabled (the bracketed choice); null if missing */
  thpEnabled: 'always' | 'madvise' | 'never' | null;
  /** transparent_hugepage/use_zero_page parses to 1 (cow.c's detect_huge_zeropage) */
  useZeroPage: boolean;
  /** /sys/kernel/mm/hugepages/hugepages-<kB>kB directories in readdir order (as cow.c counts them, at most 10) */
  hugetlb: HostHugetlb[];
  /** /proc/swaps lists at least one active swap area */
  swap: boolean;
  /** /sys/kernel/debug/gup_test exists (needs CONFIG_GUP_TEST and debugfs mounted) */
  gupTest: boolean;
  /** CONFIG_MEM_SOFT_DIRTY from /proc/config.gz or /boot/config-<release>; null if no config is readable */
  softDirty: boolean | null;
  /** RLIMIT_MEMLOCK soft limit of this process (/proc/self/limits), bytes or Infinity */
  memlockLimit: number;
  /** effective uid 0 (/proc/self/status) */
  isRoot: boolean;
  /** /proc/sys/kernel/io_uring_disabled (0 enabled, 1 root/group only, 2 disabled); null if missing */
  ioUringDisabled: number | null;
  /** liburing.h and liburing.so/.a are installed, so a cow.c build would define LOCAL_CONFIG_HAVE_LIBURING */
  liburing: boolean;
  /** anon read faults may map the shared zeropage: false when /proc/cmdline has pvm_no_zero_page=1
   *  (a PVM guest where mm_forbids_zeropage() is true: read faults allocate fresh pages) */
  zeroPage: boolean;
  /** hugepages-<kB>kB/enabled of each THP size (bytes -> always|madvise|never|inherit), 6.8+ */
  thpModes: Record<number, 'always' | 'madvise' | 'never' | 'inherit'>;
}

const THP = 'sys/kernel/mm/transparent_hugepage';
const HUGETLB = 'sys/kernel/mm/hugepages';
/** thp_settings.h NR_ORDERS: cow.c looks at orders 0..19 only */
const NR_ORDERS = 20;
/** cow.c: `static size_t hugetlbsizes[10]` */
const MAX_HUGETLB_SIZES = 10;
/** cow.c: `static size_t thpsizes[20]` */
const MAX_THP_SIZES = 20;
const AT_PAGESZ = 6n;

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return null;
  }
}

/** C strtoul(buf, NULL, 10) on the first bytes of a file: leading blanks, digits; 0 if none */
function strtoul(text: string | null): number {
  const m = /^\s*\+?(\d+)/.exec(text ?? '');
  return m ? Number(m[1]) : 0;
}

/** the value in brackets, e.g. "always [madvise] never" -> "madvise" */
function bracketed(text: string | null): string | null {
  const m = /\[([^\]]*)\]/.exec(text ?? '');
  return m ? m[1] : null;
}

function readPageSize(root: string): number {
  let buf: Buffer;
  try {
    buf = readFileSync(join(root, 'proc/self/auxv'));
  } catch {
    return 4096;
  }
  for (let off = 0; off + 16 <= buf.length; off += 16) {
    const type = buf.readBigUInt64LE(off);
    if (type === 0n) break;
    if (type === AT_PAGESZ) return Number(buf.readBigUInt64LE(off + 8));
  }
  return 4096;
}

/** vm_util.c read_pmd_pagesize(): strtoul of up to 19 bytes, 0 if missing or empty */
function readPmdSize(root: string): number {
  const text = readText(join(root, THP, 'hpage_pmd_size'));
  return text ? strtoul(text.slice(0, 19)) : 0;
}

/** thp_settings.c read_file() succeeds (returns > 0) only if at least one byte was read */
function readable(path: string): boolean {
  const text = readText(path);
  return text !== null && text.length > 0;
}

/** __builtin_ctzll(n) for n > 0 */
function ctz(n: number): number {
  let i = 0;
  while (n > 0 && n % 2 === 0) {
    n /= 2;
    i++;
  }
  return i;
}

/** cow.c detect_thp_sizes(): PMD order | thp_supported_orders(), walked from order 0 upward */
function detectThpSizes(root: string, pmdSize: number, pageSize: number): number[] {
  if (!pmdSize) return [];
  const kbPerPage = Math.floor(pageSize / 1024);
  const orders = new Set<number>([ctz(Math.floor(pmdSize / pageSize))]);
  for (let i = 0; i < NR_ORDERS; i++) {
    if (readable(join(root, THP, `hugepages-${kbPerPage * 2 ** i}kB`, 'enabled'))) orders.add(i);
  }
  return [...orders]
    .sort((a, b) => a - b)
    .slice(0, MAX_THP_SIZES)
    .map((o) => kbPerPage * 2 ** o * 1024);
}

/** The per-size setting of each THP size (what `cat hugepages-<kB>kB/enabled` shows bracketed). */
function detectThpModes(root: string, sizes: number[]): HostFacts['thpModes'] {
  const out: HostFacts['thpModes'] = {};
  for (const size of sizes) {
    const mode = bracketed(readText(join(root, THP, `hugepages-${size / 1024}kB`, 'enabled')));
    if (mode === 'always' || mode === 'madvise' || mode === 'never' || mode === 'inherit') out[size] = mode;
  }
  return out;
}

/** vm_util.c detect_hugetlb_page_sizes(): raw readdir order, DT_DIR entries that sscanf "hugepages-%zukB" accepts */
function detectHugetlb(root: string): HostHugetlb[] {
  const dirPath = join(root, HUGETLB);
  const out: HostHugetlb[] = [];
  let dir: ReturnType<typeof opendirSync>;
  try {
    // opendir/readdir keep the kernel's order; fs.readdirSync would sort the names.
    dir = opendirSync(dirPath);
  } catch {
    return out;
  }
  try {
    for (let entry = dir.readSync(); entry !== null && out.length < MAX_HUGETLB_SIZES; entry = dir.readSync()) {
      if (!entry.isDirectory()) continue;
      const m = /^hugepages-\s*\+?(\d+)/.exec(entry.name);
      if (!m) continue;
      const sub = join(dirPath, entry.name);
      out.push({
        size: Number(m[1]) * 1024,
        nr: strtoul(readText(join(sub, 'nr_hugepages'))),
        free: strtoul(readText(join(sub, 'free_hugepages'))),
      });
    }
  } finally {
    dir.closeSync();
  }
  return out;
}

function detectSwap(root: string): boolean {
  const text = readText(join(root, 'proc/swaps'));
  if (!text) return false;
  return text
    .split('\n')
    .slice(1)
    .some((line) => line.trim() !== '');
}

function kernelConfig(root: string): string | null {
  try {
    return gunzipSync(readFileSync(join(root, 'proc/config.gz'))).toString('latin1');
  } catch {
    // fall through to /boot
  }
  const release = readText(join(root, 'proc/sys/kernel/osrelease'))?.trim();
  if (release) {
    const text = readText(join(root, 'boot', `config-${release}`));
    if (text !== null) return text;
  }
  return null;
}

function detectSoftDirty(root: string): boolean | null {
  const config = kernelConfig(root);
  if (config === null) return null;
  return /^CONFIG_MEM_SOFT_DIRTY=y$/m.test(config);
}

function detectMemlock(root: string): number {
  const text = readText(join(root, 'proc/self/limits'));
  const m = /^Max locked memory\s+(\S+)/m.exec(text ?? '');
  if (!m) return Number.POSITIVE_INFINITY;
  return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

function detectRoot(root: string): boolean {
  const m = /^Uid:\s+\d+\s+(\d+)/m.exec(readText(join(root, 'proc/self/status')) ?? '');
  if (m) return m[1] === '0';
  return root === '/' && process.geteuid?.() === 0;
}

function detectIoUringDisabled(root: string): number | null {
  const text = readText(join(root, 'proc/sys/kernel/io_uring_disabled'));
  return text === null ? null : strtoul(text);
}

/** what the kernel's check_config.sh needs: `#include <liburing.h>` compiles and `-luring` links */
function detectLiburing(root: string): boolean {
  const header = ['usr/include', 'usr/local/include'].some((d) => existsSync(join(root, d, 'liburing.h')));
  if (!header) return false;
  const libDirs = ['usr/lib', 'usr/lib64', 'usr/local/lib', 'usr/local/lib64', 'lib', 'lib64'];
  for (const base of ['usr/lib', 'lib']) {
    try {
      for (const name of readdirSync(join(root, base))) if (name.endsWith('-linux-gnu')) libDirs.push(join(base, name));
    } catch {
      // no such dir
    }
  }
  return libDirs.some((d) => existsSync(join(root, d, 'liburing.so')) || existsSync(join(root, d, 'liburing.a')));
}

/** reads at most 15 bytes like detect_huge_zeropage(): strtoul(buf) == 1 */
function detectUseZeroPage(root: string): boolean {
  let fd: number;
  try {
    fd = openSync(join(root, THP, 'use_zero_page'), 'r');
  } catch {
    return false;
  }
  try {
    const buf = Buffer.alloc(15);
    const n = readSync(fd, buf, 0, 15, 0);
    return n > 0 && n < 15 && strtoul(buf.toString('latin1', 0, n)) === 1;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/** mm_forbids_zeropage(): known only for PVM guests booted with pvm_no_zero_page=1 */
function detectZeroPage(root: string): boolean {
  return !/(^|\s)pvm_no_zero_page=1(\s|$)/.test(readText(join(root, 'proc/cmdline')) ?? '');
}

/**
 * khugepaged's count of collapses (khugepaged/pages_collapsed; undefined without THP). Since
 * MADV_COLLAPSE came (v6.1) only khugepaged_scan_mm_slot() counts here, so a change during a run
 * means khugepaged itself replaced pages of some process behind its back.
 */
export function khugepagedCollapsed(root = '/'): number | undefined {
  const text = readText(join(root, THP, 'khugepaged/pages_collapsed'));
  return text === null ? undefined : strtoul(text);
}

export function probeHost(root = '/'): HostFacts {
  const pageSize = readPageSize(root);
  const pmdSize = readPmdSize(root);
  const enabled = bracketed(readText(join(root, THP, 'enabled')));
  const thpSizes = detectThpSizes(root, pmdSize, pageSize);
  return {
    pageSize,
    pmdSize,
    thpSizes,
    thpEnabled: enabled === 'always' || enabled === 'madvise' || enabled === 'never' ? enabled : null,
    useZeroPage: detectUseZeroPage(root),
    hugetlb: detectHugetlb(root),
    swap: detectSwap(root),
    gupTest: existsSync(join(root, 'sys/kernel/debug/gup_test')),
    softDirty: detectSoftDirty(root),
    memlockLimit: detectMemlock(root),
    isRoot: detectRoot(root),
    ioUringDisabled: detectIoUringDisabled(root),
    liburing: detectLiburing(root),
    zeroPage: detectZeroPage(root),
    thpModes: detectThpModes(root, thpSizes),
  };
}
