/**
 * Kernel profiles: a profile is a named set of behaviour switches. Each switch is documented once,
 * here, with the commit that introduced the behaviour; rules read switches, never version numbers.
 * docs/research/history.md has the evidence for every switch and every profile below.
 *
 * A switch is **on** for the behaviour its commit introduced. Behaviour that came and went is a
 * switch on only in its window (gup-force-cow: v5.8 only; hugetlb-no-force-write: v6.2-v6.13).
 * Where a switch is off, the rules do what the kernel did before the commit. PG_anon_exclusive is
 * tracked in every profile as a "mapped by one process" marker, but only profiles with
 * anon-exclusive let a rule decide on it.
 */

export interface SwitchDoc {
  /** what changes when the switch is on */
  summary: string;
  /** the kernel function(s) it changes */
  where: string;
  /** mainline commit(s) that introduced the 'on' behaviour */
  commits: string[];
  /** first release with the 'on' behaviour */
  since: string;
  /** the release (and commit) that removed the behaviour again, when it was removed */
  until?: string;
  /** switches that must also be on for this one to make sense */
  requires?: string[];
  /** switches that must be off when this one is on (alternatives) */
  conflicts?: string[];
  /** other names accepted after '+' in a kernel spec (e.g. 'seed') */
  aliases?: string[];
}

export const SWITCHES = {
  'thp-cow-split': {
    summary:
      'a write to a THP that cannot be reused (or to the huge zeropage) splits the PMD and copies 4 KiB at PTE level; before, a whole new THP was allocated and the 2 MiB copied (a zeroed THP for the huge zeropage)',
    where: 'do_huge_pmd_wp_page',
    commits: ['3917c80280c9 thp: change CoW semantics for anon-THP'],
    since: 'v5.8',
  },
  'gup-force-cow': {
    summary:
      'every GUP that takes a reference or a pin (FOLL_GET or FOLL_PIN) in a COW mapping breaks COW like a write fault (FOLL_WRITE added after check_vma_flags); GUP-fast walks for write, so R/O entries fall back to the slow path',
    where: '__get_user_pages, internal_get_user_pages_fast',
    commits: ["17839856fd58 gup: document and work around 'COW can break either way' issue"],
    since: 'v5.8',
    until: 'v5.9 (a308c71bf1e6 mm/gup: Remove enfornced COW mechanism)',
    conflicts: ['wp-reuse-refcount'],
  },
  'wp-reuse-refcount': {
    summary:
      'do_wp_page reuses an anonymous page only when its refcount is 1 (GUP references, pins, pipe buffers and the swap cache all prevent reuse); before, reuse_swap_page() counted mappings plus swap entries and ignored the refcount (CVE-2020-29374)',
    where: 'do_wp_page',
    commits: ['09854ba94c6a mm: do_wp_page() simplification'],
    since: 'v5.9',
  },
  'fork-copy-pinned': {
    summary:
      'fork copies, for the child, anonymous pages that may be DMA-pinned (mm has pinned, folio_maybe_dma_pinned) instead of sharing them; a maybe-pinned PMD THP is split in the parent and copied at PTE level',
    where: 'copy_present_pte, copy_huge_pmd',
    commits: [
      '70e806e4e645 mm: Do early cow for pinned pages during fork() for ptes',
      '008cfe4418b3 mm: Introduce mm_struct.has_pinned',
      "d042035eaf5f mm/thp: Split huge pmds/puds if they're pinned when fork()",
    ],
    since: 'v5.9',
  },
  'softdirty-keep-pinned': {
    summary:
      'clear_refs (soft-dirty) leaves a writable PTE alone when its page may be DMA-pinned in a COW mapping of an mm that has pinned (pte_is_pinned): not write-protected, soft-dirty bit kept, so no write fault COWs the page away from its pin; PMD leaves are still write-protected',
    where: 'clear_soft_dirty (fs/proc/task_mmu.c), pte_is_pinned',
    commits: ["9348b73c2e1b mm: don't play games with pinned pages in clear_page_refs"],
    since: 'v5.11',
  },
  'reclaim-skip-pinned': {
    summary:
      'reclaim does not add a maybe-pinned anonymous page to the swap cache, so it stays mapped; before, it was unmapped into the swap cache like any page, and the next write fault (refcount > 1 from 5.9) could copy it away from its pin',
    where: 'shrink_folio_list (mm/vmscan.c)',
    commits: ["feb889fb40fa mm: don't put pinned pages into the swap cache"],
    since: 'v5.11',
  },
  'cow-free-swapcache': {
    summary:
      'a COW copy frees the old page from the swap cache when nothing maps it and no swap entry needs it; before, the idle swap-cache page (and its slot) stayed until reclaim',
    where: 'wp_page_copy (free_swap_cache)',
    commits: ['f4c4a3f48480 mm: free idle swap cache page after COW'],
    since: 'v5.14',
  },
  'fork-copy-pinned-hugetlb': {
    summary: 'fork copies maybe-pinned anonymous hugetlb pages for the child too',
    where: 'copy_hugetlb_page_range',
    commits: ['4eae4efa2c29 hugetlb: do early cow when page pinned on src mm'],
    since: 'v5.12',
    requires: ['fork-copy-pinned'],
  },
  'no-reuse-swap-page': {
    summary:
      'swap-in and THP write faults reuse by refcount too (reuse_swap_page is gone); do_wp_page tolerates and drops the swap cache reference; before, do_swap_page and do_huge_pmd_wp_page reused by mapcount + swap count, and do_wp_page never reused a page still in the swap cache',
    where: 'do_swap_page, do_huge_pmd_wp_page, do_wp_page',
    commits: [
      'c145e0b47c77 mm: streamline COW logic in do_swap_page()',
      '3bff7e3f1f16 mm/huge_memory: streamline COW logic in do_huge_pmd_wp_page()',
      '53a05ad9f21d mm: slightly clarify KSM logic in do_swap_page()',
      'd4c470970d45 mm: optimize do_wp_page() for fresh pages in local LRU pagevecs',
    ],
    since: 'v5.18',
    requires: ['wp-reuse-refcount'],
  },
  'anon-exclusive': {
    summary:
      'PG_anon_exclusive decides: an exclusive anonymous page is reused without looking at the refcount; fork copies a maybe-pinned page only if it is exclusive; swap PTEs carry the exclusive marker back to swap-in',
    where: 'do_wp_page, do_huge_pmd_wp_page, do_swap_page, copy_page_range (page_try_dup_anon_rmap)',
    commits: [
      '6c287605fd56 mm: remember exclusively mapped anonymous pages with PG_anon_exclusive',
      '1493a1913e34 mm/swap: remember PG_anon_exclusive via a swp pte bit',
      'fb3d824d1a46 mm/rmap: split page_dup_rmap() into page_dup_file_rmap() and page_try_dup_anon_rmap()',
      '78fbe906cc90 mm/page-flags: reuse PG_mappedtodisk as PG_anon_exclusive for PageAnon() pages',
    ],
    since: 'v5.19',
    requires: ['no-reuse-swap-page', 'fork-copy-pinned', 'fork-copy-pinned-hugetlb'],
  },
  'gup-unshare-anon': {
    summary:
      'a R/O FOLL_PIN of an anonymous page that is not exclusive first breaks COW with FAULT_FLAG_UNSHARE (GUP-fast falls back); before, R/O pins took whatever page was mapped',
    where: 'gup_must_unshare, follow_page_pte, do_wp_page (unshare)',
    commits: [
      'c89357e27f20 mm: support GUP-triggered unsharing of anonymous pages',
      'a7f226604170 mm/gup: trigger FAULT_FLAG_UNSHARE when R/O-pinning a possibly shared anonymous page',
    ],
    since: 'v5.19',
    requires: ['anon-exclusive'],
  },
  'mprotect-upgrade-anon': {
    summary: 'mprotect(PROT_WRITE) maps exclusive anonymous pages writable at once instead of leaving it to the next write fault',
    where: 'change_pte_range, can_change_pte_writable',
    commits: ['64fe24a3e05e mm/mprotect: try avoiding write faults for exclusive anonymous pages when changing protection'],
    since: 'v6.0',
    requires: ['anon-exclusive'],
  },
  'mprotect-upgrade-anon-pmd': {
    summary:
      'mprotect(PROT_WRITE) maps an exclusive anonymous PMD-mapped THP writable at once too (before, its PMD waited for the write fault)',
    where: 'change_huge_pmd, can_change_pmd_writable',
    commits: ['c27f479ef542 mm/huge_memory: try avoiding write faults when changing PMD protection'],
    since: 'v6.2',
    requires: ['mprotect-upgrade-anon'],
  },
  'unshare-fault-noanon': {
    summary:
      'FAULT_FLAG_UNSHARE breaks COW on anything mapped R/O in a COW mapping (page cache, shared zeropage, huge zeropage, hugetlb page cache), mapping an exclusive anonymous copy R/O; before, an unshare fault on a non-anonymous page did nothing',
    where: 'do_wp_page, do_huge_pmd_wp_page, hugetlb_wp',
    commits: ['8d6a0ac09a16 mm: extend FAULT_FLAG_UNSHARE support to anything in a COW mapping'],
    since: 'v6.2',
    requires: ['gup-unshare-anon'],
  },
  'gup-unshare-noanon': {
    summary:
      'gup_must_unshare() is true for R/O FOLL_LONGTERM pins of non-anonymous pages in COW mappings (and always in GUP-fast, which has no VMA, so GUP-fast falls back to the slow path)',
    where: 'gup_must_unshare (include/linux/mm.h), gup_pte_range/gup_huge_pmd, follow_page_pte',
    commits: ['84209e87c696 mm/gup: reliable R/O long-term pinning in COW mappings'],
    since: 'v6.2',
    requires: ['unshare-fault-noanon'],
    aliases: ['seed'],
  },
  'hugetlb-no-force-write': {
    summary: 'FOLL_FORCE|FOLL_WRITE is refused (EFAULT) on hugetlb VMAs that are not writable',
    where: 'check_vma_flags, hugetlb_wp',
    commits: ['f347454d0341 mm/hugetlb: disallow FOLL_FORCE|FOLL_WRITE on hugetlb'],
    since: 'v6.2',
    until: 'v6.14 (052ccfbcc6cd mm/hugetlb: support FOLL_FORCE|FOLL_WRITE)',
  },
  'hugetlb-wp-maybe-writable': {
    summary:
      'a FOLL_FORCE write fault on a R/O private hugetlb mapping (allowed again from 6.14) maps the exclusive page R/O, and GUP follows it anyway (can_follow_write_pmd); before 6.2 the same fault mapped it writable in the R/O mapping',
    where: 'hugetlb_wp (set_huge_ptep_maybe_writable)',
    commits: ['052ccfbcc6cd mm/hugetlb: support FOLL_FORCE|FOLL_WRITE'],
    since: 'v6.14',
  },
  'zeropage-pin-noref': {
    summary: 'pinning the shared zeropage leaves its refcount alone (unpin ignores it); before, each pin added GUP_PIN_COUNTING_BIAS',
    where: 'try_grab_folio, unpin_user_page',
    commits: ["c8070b787519 mm: Don't pin ZERO_PAGE in pin_user_pages()"],
    since: 'v6.5',
  },
  'odirect-foll-pin': {
    summary:
      'O_DIRECT pins the user pages with FOLL_PIN (iov_iter_extract_pages) instead of taking FOLL_GET references: a write to a file from a shared anonymous page unshares it first, and the mm is marked MMF_HAS_PINNED',
    where: 'bio_iov_iter_get_pages (block/bio.c: iomap and block-device direct I/O), dio_refill_pages (fs/direct-io.c)',
    commits: [
      'a7e689dd1c06 block: Convert bio_iov_iter_get_pages to use iov_iter_extract_pages',
      '1ccf164ec866 block: Use iov_iter_extract_pages() and page pinning in direct-io.c',
    ],
    since: 'v6.5',
  },
  'longterm-write-file-refused': {
    summary:
      'FOLL_LONGTERM|FOLL_WRITE on a shared file mapping that needs dirty tracking (a disk file, not shmem or hugetlbfs) fails with EFAULT; GUP-fast leaves such pages to the slow path',
    where: 'check_vma_flags (writable_file_mapping_allowed), gup_fast folio check',
    commits: [
      '8ac268436e6d mm/gup: disallow FOLL_LONGTERM GUP-nonfast writing to file-backed mappings',
      'a6e79df92e4a mm/gup: disallow FOLL_LONGTERM GUP-fast writing to file-backed mappings',
    ],
    since: 'v6.5',
  },
  'iouring-file-check-in-gup': {
    summary:
      "io_uring's buffer registration no longer refuses file-backed memory itself (it did after pinning: EOPNOTSUPP unless shmem or hugetlbfs); GUP decides (longterm-write-file-refused): EFAULT for dirty-tracked shared file mappings, while a private file mapping registers its COW copies",
    where: 'io_sqe_buffer_register, io_pin_pages (io_uring/rsrc.c)',
    commits: ['34ed8d0dcd69 io_uring: rsrc: delegate VMA file-backed check to GUP'],
    since: 'v6.5',
    requires: ['longterm-write-file-refused'],
  },
  'shmem-odirect': {
    summary:
      'tmpfs (and memfd) files accept O_DIRECT and do buffered I/O for it: a copy to or from user memory, no GUP; before, O_DIRECT on tmpfs failed with EINVAL (open refused it)',
    where: 'shmem_file_open (FMODE_CAN_ODIRECT), shmem_file_read_iter, shmem_file_write_iter',
    commits: ['e88e0d366f9c tmpfs: trivial support for direct IO'],
    since: 'v6.6',
  },
  'wp-no-large-reuse': {
    summary:
      'a write or unshare fault never reuses a page of a PTE-mapped large folio that is not PG_anon_exclusive: it copies, and the large folio can be freed sooner (until pte-thp-reuse, 6.15, decides by the MM owner instead)',
    where: 'wp_can_reuse_anon_folio',
    commits: ['781a3ca5c345 mm: prohibit the last subpage from reusing the entire large folio'],
    since: 'v6.9',
    requires: ['no-reuse-swap-page'],
  },
  'swapin-map-writable': {
    summary:
      'a read fault that swaps in an exclusive page maps it writable (clean) when the VMA is writable and soft-dirty tracking does not want the write fault; before, R/O, and the next write took a fault that reused it',
    where: 'do_swap_page',
    commits: [
      'c18160dba5ff mm: swap: reuse exclusive folio directly instead of wp page faults',
      '20dfa5b7adc5 mm: set pte writable while pte_soft_dirty() is true in do_swap_page()',
    ],
    since: 'v6.11',
    requires: ['anon-exclusive'],
  },
  mthp: {
    summary:
      'anonymous faults may allocate multi-size THPs (16 KiB up to below the PMD size), PTE-mapped, with per-size settings in transparent_hugepage/hugepages-<N>kB/enabled',
    where: 'do_anonymous_page (alloc_anon_folio), thp_vma_allowable_orders',
    commits: [
      '19eaf44954df mm: thp: support allocation of anonymous multi-size THP',
      '3485b88390b0 mm: thp: introduce multi-size THP sysfs interface',
    ],
    since: 'v6.8',
  },
  'huge-zero-wp-alloc': {
    summary:
      'a write or unshare fault on the huge zeropage allocates a new PMD THP (zeroed) instead of splitting the PMD into zeropage PTEs and copying 4 KiB',
    where: 'do_huge_zero_wp_pmd',
    commits: ['1ced09e0331f mm: allocate THP on hugezeropage wp-fault'],
    since: 'v6.13',
  },
  'pte-thp-reuse': {
    summary:
      'do_wp_page reuses a page of a PTE-mapped large anonymous folio when all its references are mappings of this mm (MM owner tracking); before, the refcount of the whole folio practically never allowed reuse',
    where: 'wp_can_reuse_anon_folio (__wp_can_reuse_large_anon_folio)',
    commits: ['1da190f4d0a6 mm: Copy-on-Write (COW) reuse support for PTE-mapped THP'],
    since: 'v6.15',
    requires: ['anon-exclusive'],
  },
} as const satisfies Record<string, SwitchDoc>;

export type SwitchName = keyof typeof SWITCHES;
export type Switches = Record<SwitchName, boolean>;

export interface Profile {
  name: string;
  summary: string;
  switches: Switches;
}

/** Builds the switch set of a release: every switch on whose `since` is at most `version` and
 *  that was not removed by then. */
function at(version: string): Switches {
  const num = (v: string) => v.slice(1).split('.').map(Number);
  const le = (a: string, b: string) => {
    const [x, y] = [num(a), num(b)];
    return x[0] < y[0] || (x[0] === y[0] && x[1] <= y[1]);
  };
  const out = {} as Switches;
  for (const [name, d] of Object.entries(SWITCHES) as [SwitchName, SwitchDoc][]) {
    const until = d.until?.split(' ')[0];
    out[name] = le(d.since, version) && !(until && le(until, version));
  }
  return out;
}

const profile = (name: string, release: string, summary: string): Profile => ({ name, summary, switches: at(release) });

export const PROFILES: readonly Profile[] = [
  profile('v5.7', 'v5.7', 'Linux 5.7 (and older): reuse by mapcount (reuse_swap_page), R/O GUP takes a plain reference: CVE-2020-29374'),
  profile('v5.8', 'v5.8', 'Linux 5.8: every GUP in a COW mapping breaks COW (17839856fd58); THP COW splits'),
  profile(
    'v5.9',
    'v5.9',
    'Linux 5.9-5.10: reuse only at refcount 1; fork copies maybe-pinned pages (not hugetlb yet); 5.11 is v5.9+softdirty-keep-pinned+reclaim-skip-pinned',
  ),
  profile(
    'v5.12',
    'v5.12',
    'Linux 5.12-5.13: fork copies maybe-pinned hugetlb pages too; swap-in and THP still reuse by mapcount; 5.14-5.17 are v5.12+cow-free-swapcache',
  ),
  profile('v5.18', 'v5.18', 'Linux 5.18: COW fixes part 1, swap-in and THP reuse by refcount'),
  profile('v5.19', 'v5.19', 'Linux 5.19: COW fixes part 2, PG_anon_exclusive and unsharing R/O pins of anonymous pages'),
  profile(
    'v6.1',
    'v6.1',
    'Linux 6.0-6.1, the releases before the seed: R/O long-term pins of non-anonymous pages in COW mappings are not reliable',
  ),
  profile('v6.2', 'v6.2', 'Linux 6.2-6.4, with the seed "mm/gup: reliable R/O long-term pinning in COW mappings"'),
  profile(
    'v6.5',
    'v6.5',
    'Linux 6.5: zeropage pins take no reference; long-term write pins of dirty-tracked file pages refused; 6.6-6.7 are v6.5+shmem-odirect',
  ),
  profile(
    'v6.8',
    'v6.8',
    'Linux 6.8: multi-size anonymous THP (mTHP); 6.9-6.10 are v6.8+wp-no-large-reuse, 6.11-6.12 also +swapin-map-writable',
  ),
  profile('v6.13', 'v6.13', 'Linux 6.13: a write or unshare fault on the huge zeropage allocates a THP'),
  profile('v6.15', 'v6.15', 'Linux 6.15-6.17: PTE-mapped THPs can be reused; FOLL_FORCE writes to R/O hugetlb allowed again (6.14)'),
  profile('latest', 'v6.18', "Linux 6.18, this machine's kernel (same rules as v6.15)"),
];

export function profileNames(): string[] {
  return PROFILES.map((p) => p.name);
}

export function findProfile(name: string): Profile | undefined {
  return PROFILES.find((p) => p.name === name);
}

/** Inconsistencies of a switch set: a required switch off, or a conflicting one on. */
export function missingRequirements(sw: Switches): string[] {
  const out: string[] = [];
  for (const [name, doc] of Object.entries(SWITCHES) as [SwitchName, SwitchDoc][]) {
    if (!sw[name]) continue;
    for (const r of doc.requires ?? []) if (!sw[r as SwitchName]) out.push(`${name} requires ${r}`);
    for (const c of doc.conflicts ?? []) if (sw[c as SwitchName]) out.push(`${name} conflicts with ${c}`);
  }
  return out;
}

/** The switch a '+' item names: a switch, an alias, or the start (7+ hex digits) of a commit id. */
export function findSwitch(item: string): SwitchName | undefined {
  for (const [name, doc] of Object.entries(SWITCHES) as [SwitchName, SwitchDoc][]) {
    if (name === item || doc.aliases?.includes(item)) return name;
    if (/^[0-9a-f]{7,}$/.test(item) && doc.commits.some((c) => c.startsWith(item))) return name;
  }
  return undefined;
}

/** Turns `name` on together with everything it requires. */
export function withSwitch(sw: Switches, name: SwitchName): Switches {
  const out = { ...sw, [name]: true };
  for (const r of (SWITCHES[name] as SwitchDoc).requires ?? [])
    if (!out[r as SwitchName]) Object.assign(out, withSwitch(out, r as SwitchName));
  return out;
}

/**
 * A kernel spec: a profile name, optionally followed by backports, `v6.1+seed` or
 * `v6.1+gup-unshare-noanon+f347454d0341`. Each '+' item turns a switch on (with what it requires).
 * Returns the profile, or an error message naming the valid choices.
 */
export function resolveKernel(spec: string): Profile | string {
  const [base, ...items] = spec.split('+');
  const p = findProfile(base);
  if (!p) return `unknown kernel profile '${base}' (valid: ${profileNames().join(', ')}; add backports with +SWITCH)`;
  let sw = { ...p.switches };
  for (const item of items) {
    const name = findSwitch(item);
    if (!name)
      return `unknown switch '${item}' in '${spec}' (valid: ${Object.keys(SWITCHES).join(', ')}, an alias such as seed, or a commit id)`;
    sw = withSwitch(sw, name);
  }
  if (!items.length) return p;
  return { name: spec, summary: `${p.summary}; with ${items.join(', ')}`, switches: sw };
}
