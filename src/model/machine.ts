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

export interface Machine {
  /** PMD-sized THP available (transparent_hugepage/hpage_pmd_size readable) */
  thp: boolean;
  /** transparent_hugepage/enabled */
  thpEnabled: 'always' | 'madvise' | 'never';
  /** transparent_hugepage/use_zero_page */
  hugeZeroPage: boolean;
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
 * The seed mail's machine. The mail numbers the non-anonymous R/O pin tests 151..162: with the
 * cow.c of that time (14 anonymous cases with liburing, 12 without; 12 variants each with PMD THP
 * and two hugetlb sizes) that is only possible if cow.c was built without liburing
 * (12 * 12 + 6 = 150 tests before them), so liburing is off here; see docs/selftest.md.
 */
export const SEED_MACHINE: Machine = {
  thp: true,
  thpEnabled: 'madvise',
  hugeZeroPage: true,
  hugetlb: [
    { size: 2 * 1024 * 1024, nr: 2 },
    { size: 1024 * 1024 * 1024, nr: 2 },
  ],
  swap: true,
  liburing: false,
  gupTest: true,
  softDirty: true,
  memlockLimit: 8 * 1024 * 1024,
  capIpcLock: true,
};

export const THP_SIZE = PMD_SIZE;
