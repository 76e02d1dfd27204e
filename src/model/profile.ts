/**
 * Kernel profiles: a profile is a named set of behaviour switches. Each switch is documented once,
 * here, with the commit that introduced the behaviour; rules read switches, never version numbers.
 *
 * The model's baseline is the 5.19+ COW design, which both v6.1 and v6.2 share: PG_anon_exclusive
 * (6c287605fd56), the swap-PTE exclusive marker (1493a1913e34), FAULT_FLAG_UNSHARE for anonymous
 * pages (c89357e27f20, a7f226604170), page_try_dup_anon_rmap at fork (fb3d824d1a46), copy at fork of
 * maybe-pinned pages (70e806e4e645, 5.9) and refcount-based reuse (09854ba94c6a, 5.9). Older
 * behaviour becomes switches when older profiles are added (issue 3).
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
  /** switches that must also be on for this one to make sense */
  requires?: string[];
}

export const SWITCHES = {
  'unshare-fault-noanon': {
    summary:
      'FAULT_FLAG_UNSHARE breaks COW on anything mapped R/O in a COW mapping (page cache, shared zeropage, huge zeropage, hugetlb page cache), mapping an exclusive anonymous copy R/O; before, an unshare fault on a non-anonymous page did nothing',
    where: 'do_wp_page, do_huge_pmd_wp_page, hugetlb_wp',
    commits: ['8d6a0ac09a16 mm: extend FAULT_FLAG_UNSHARE support to anything in a COW mapping'],
    since: 'v6.2',
  },
  'gup-unshare-noanon': {
    summary:
      'gup_must_unshare() is true for R/O FOLL_LONGTERM pins of non-anonymous pages in COW mappings (and always in GUP-fast, which has no VMA, so GUP-fast falls back to the slow path)',
    where: 'gup_must_unshare (include/linux/mm.h), gup_pte_range/gup_huge_pmd, follow_page_pte',
    commits: ['84209e87c696 mm/gup: reliable R/O long-term pinning in COW mappings'],
    since: 'v6.2',
    requires: ['unshare-fault-noanon'],
  },
  'hugetlb-no-force-write': {
    summary: 'FOLL_FORCE|FOLL_WRITE is refused (EFAULT) on hugetlb VMAs that are not writable',
    where: 'check_vma_flags',
    commits: ['f347454d0341 mm/hugetlb: disallow FOLL_FORCE|FOLL_WRITE on hugetlb'],
    since: 'v6.2',
  },
} as const satisfies Record<string, SwitchDoc>;

export type SwitchName = keyof typeof SWITCHES;
export type Switches = Record<SwitchName, boolean>;

export interface Profile {
  name: string;
  summary: string;
  switches: Switches;
}

const V6_1: Profile = {
  name: 'v6.1',
  summary: 'Linux 6.1, the release before the seed: R/O long-term pins of non-anonymous pages in COW mappings are not reliable',
  switches: { 'unshare-fault-noanon': false, 'gup-unshare-noanon': false, 'hugetlb-no-force-write': false },
};

const V6_2: Profile = {
  name: 'v6.2',
  summary: 'Linux 6.2, with the seed "mm/gup: reliable R/O long-term pinning in COW mappings"',
  switches: { 'unshare-fault-noanon': true, 'gup-unshare-noanon': true, 'hugetlb-no-force-write': true },
};

export const PROFILES: readonly Profile[] = [V6_1, V6_2];

export function profileNames(): string[] {
  return PROFILES.map((p) => p.name);
}

export function findProfile(name: string): Profile | undefined {
  return PROFILES.find((p) => p.name === name);
}

/** Returns the names of required switches that are off, for a consistency check. */
export function missingRequirements(sw: Switches): string[] {
  const out: string[] = [];
  for (const [name, doc] of Object.entries(SWITCHES) as [SwitchName, SwitchDoc][]) {
    if (!sw[name]) continue;
    for (const r of doc.requires ?? []) if (!sw[r as SwitchName]) out.push(`${name} requires ${r}`);
  }
  return out;
}
