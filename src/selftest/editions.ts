/**
 * Editions of cow.c: the places where the selftest's own code changed between the seed and today
 * (docs/research/cowc-latest.md has the history these flags come from).
 */
export interface Edition {
  name: string;
  summary: string;
  /** "Basic COW after fork() with mprotect() optimization" and the vmsplice twin */
  mprotectCases: boolean;
  /** "[INFO] Anonymous THP tests" (MADV_COLLAPSE), v6.3+ */
  collapseCases: boolean;
  /** ksft_print_header() before the [INFO] detection lines */
  headerFirst: boolean;
  /** 'old': detected THP size / detected hugetlb size / huge zeropage is enabled;
   *  'latest': detected PMD size / detected THP size per size / detected hugetlb page size */
  infoStyle: 'old' | 'latest';
  /** result lines carry the test name and a '# reason' line (log_test_result), not fixed messages;
   *  hugetlb vmsplice leaks are XFAIL */
  resultIsName: boolean;
  /** THP variant names end in " (N kB)" and are counted per THP size */
  thpSizeSuffix: boolean;
  /** the byte the runners populate memory with (memset 0 early, 1 later) */
  fill: number;
  /** the THP populated probe looks at the last subpage (else the second) */
  thpProbeLast: boolean;
  /** the non-anonymous runners fault the pages in before the test (the latest edition's
   *  FORCE_READ(mem) reads the pointer, not the memory, so it does not) */
  prefaultNonAnon: boolean;
  /** 'bailout': ksft_exit_fail_msg("%d out of %d tests failed") or ksft_exit_pass(); 'finished': ksft_finished() */
  ending: 'bailout' | 'finished';
}

const SEED: Edition = {
  name: 'seed',
  summary: 'cow.c as run for the seed series (RFC base, Nov 2022): no mprotect() cases, no collapse tests',
  mprotectCases: false,
  collapseCases: false,
  headerFirst: false,
  infoStyle: 'old',
  resultIsName: false,
  thpSizeSuffix: false,
  fill: 0,
  thpProbeLast: false,
  prefaultNonAnon: true,
  ending: 'bailout',
};

const V6_2: Edition = {
  ...SEED,
  name: 'v6.2',
  summary: 'tools/testing/selftests/vm/cow.c at the v6.2 tag: the seed edition plus the mprotect() optimization cases',
  mprotectCases: true,
};

const V6_18: Edition = {
  name: 'v6.18',
  summary:
    'tools/testing/selftests/mm/cow.c at v6.18 (49850bd02658): THP sizes, collapse tests, named results, XFAIL for hugetlb vmsplice; FORCE_READ(mem) reads the pointer, so the huge zeropage tests skip',
  mprotectCases: true,
  collapseCases: true,
  headerFirst: true,
  infoStyle: 'latest',
  resultIsName: true,
  thpSizeSuffix: true,
  fill: 1,
  thpProbeLast: true,
  prefaultNonAnon: false,
  ending: 'finished',
};

const LATEST: Edition = {
  ...V6_18,
  name: 'latest',
  summary:
    "cow.c as the 6.18.y stable kernels (this machine's) ship it: v6.18 plus bce1dabd310e 'selftests/mm: fix usage of FORCE_READ() in cow tests', so the huge zeropage tests run",
  prefaultNonAnon: true,
};

export const EDITIONS: readonly Edition[] = [SEED, V6_2, V6_18, LATEST];

export function findEdition(name: string): Edition | undefined {
  return EDITIONS.find((e) => e.name === name);
}
