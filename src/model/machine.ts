/**
 * The machine the model pretends to be: what cow.c detects from sysfs and what the build had.
 * Defaults are the machine of the seed mail: PMD THP, hugetlb 2048 kB and 1048576 kB, swap,
 * gup_test. liburing: see `SEED_MACHINE`.
 */
import { PMD_SIZE } from './constants.ts';

export interface HugetlbSize {
  /** bytes */
  size: number;
  /** huge pages reserved in the pool (nr_hugepages) */
  nr: number;
}

/** transparent_hugepage/hugepages-<N>kB/enabled; 'inherit' follows the global `enabled`. */
export type ThpMode = 'always' | 'madvise' | 'never' | 'inherit';

export interface Machine {
  /** PMD-sized THP available (transparent_hugepage/hpage_pmd_size readable) */
  thp: boolean;
  /** transparent_hugepage/enabled */
  thpEnabled: 'always' | 'madvise' | 'never';
  /** anonymous THP sizes in bytes the kernel offers per size (hugepages-<N>kB/enabled, 6.8+),
   *  ascending, PMD size included; absent: the PMD size only */
  thpSizes?: number[];
  /** per-size enabled settings (6.8+); absent sizes: 'inherit' for the PMD size, else 'never' */
  thpModes?: Record<number, ThpMode>;
  /** transparent_hugepage/use_zero_page */
  hugeZeroPage: boolean;
  /** read faults may map the shared zeropage (and the huge zeropage): false where
   *  mm_forbids_zeropage() is true, e.g. a PVM guest booted with pvm_no_zero_page=1 (this machine) */
  zeroPage: boolean;
  /** hugetlb sizes in the order readdir() lists /sys/kernel/mm/hugepages */
  hugetlb: HugetlbSize[];
  /** a swap device is configured (MADV_PAGEOUT can swap) */
  swap: boolean;
  /** cow.c was built with liburing (LOCAL_CONFIG_HAVE_LIBURING) */
  liburing: boolean;
  /** CONFIG_GUP_TEST: /sys/kernel/debug/gup_test exists */
  gupTest: boolean;
  /** CONFIG_MEM_SOFT_DIRTY */
  softDirty: boolean;
  /** RLIMIT_MEMLOCK of the test process, bytes */
  memlockLimit: number;
  /** the test process has CAP_IPC_LOCK (runs as root) */
  capIpcLock: boolean;
}

/**
 * The seed mail's machine. The mail numbers the non-anonymous R/O pin tests 151..162. Those
 * numbers were produced on the RFC base of the series (7 Nov 2022), whose cow.c had 12 anonymous
 * cases only when built with liburing (4 fork/vmsplice + 2 io_uring + 6 R/O pin), 12 variants
 * each with PMD THP and two hugetlb sizes: 144 tests before them. So liburing is on here, and the
 * `seed` edition is that RFC base; see docs/selftest.md.
 */
export const SEED_MACHINE: Machine = {
  thp: true,
  thpEnabled: 'madvise',
  hugeZeroPage: true,
  zeroPage: true,
  hugetlb: [
    { size: 2 * 1024 * 1024, nr: 2 },
    { size: 1024 * 1024 * 1024, nr: 2 },
  ],
  swap: true,
  liburing: true,
  gupTest: true,
  softDirty: true,
  memlockLimit: 8 * 1024 * 1024,
  capIpcLock: true,
};

export const THP_SIZE = PMD_SIZE;
