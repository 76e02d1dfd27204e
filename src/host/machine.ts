/**
 * The model's Machine for this host, and what a scenario needs of the host.
 * - machineFromFacts / hostMachine: what cow.c would detect here (probe.ts) plus what the model
 *   needs beyond cow.c's view (is the shared zeropage allowed at all): `--machine host`.
 * - planForHost: a scenario's `machine` line states requirements (not settings to pretend), and
 *   some operations need a machine feature (gup_test pins, swap for pageout, soft-dirty, VFIO,
 *   O_DIRECT). A scenario whose needs the host cannot meet is skipped with the reason; hugetlb pages
 *   it needs are reserved for the run (withHugetlbReservedSync: always restored).
 */
import { PMD_SIZE } from '../model/constants.ts';
import type { Machine } from '../model/machine.ts';
import type { MachineSpec, Scenario } from '../scenario/ast.ts';
import { fmtSize } from '../scenario/check.ts';
import { HUGETLB_BOUND } from './hostsafety.ts';
import { type HostFacts, probeHost } from './probe.ts';

/** The machine the model must be to be compared with this host (cow.c's view of it). */
export function machineFromFacts(f: HostFacts): Machine {
  return {
    thp: f.pmdSize === PMD_SIZE,
    thpEnabled: f.thpEnabled ?? 'never',
    thpSizes: f.thpSizes.filter((s) => s <= PMD_SIZE),
    thpModes: { ...f.thpModes },
    hugeZeroPage: f.useZeroPage,
    zeroPage: f.zeroPage,
    // cow.c lists every size, even with no free page; the model's pool starts with the free ones
    hugetlb: f.hugetlb.map((h) => ({ size: h.size, nr: h.free })),
    swap: f.swap,
    liburing: f.liburing,
    gupTest: f.gupTest,
    softDirty: f.softDirty ?? false,
    memlockLimit: f.memlockLimit,
    capIpcLock: f.isRoot,
  };
}

/** --machine host */
export function hostMachine(root = '/'): Machine {
  return machineFromFacts(probeHost(root));
}

/** io_uring is usable by this process (cowhost talks to it with raw system calls) */
function ioUringUsable(f: HostFacts): boolean {
  return f.ioUringDisabled !== 2 && !(f.ioUringDisabled === 1 && !f.isRoot);
}

export interface HostPlan {
  /** why the scenario cannot run here (null: it can) */
  skip: string | null;
  /** the model's machine: the host's, with the hugetlb pools the run reserves */
  machine: Machine;
  /** hugetlb pages to make free for the run: size -> pages */
  reserve: Array<{ size: number; pages: number }>;
}

const onOff = (b: boolean) => (b ? 'on' : 'off');

/** Checks the scenario's needs against the host; the machine to run the model with. */
export function planForHost(sc: Scenario, f: HostFacts, opts: { root?: boolean } = {}): HostPlan {
  const m = machineFromFacts(f);
  const root = opts.root ?? f.isRoot;
  const reserve: HostPlan['reserve'] = [];
  const skip = (why: string): HostPlan => ({ skip: why, machine: m, reserve: [] });
  const spec: MachineSpec = sc.machine;

  const reasons: string[] = [];
  const listed = new Set<string>();
  const bools: Array<[keyof MachineSpec, string, boolean]> = [
    ['thp', 'thp', m.thp],
    ['hugeZeropage', 'huge-zeropage', m.hugeZeroPage],
    ['zeroPage', 'zeropage', m.zeroPage],
    ['swap', 'swap', m.swap],
    ['gupTest', 'gup-test', m.gupTest],
    ['softDirty', 'soft-dirty', m.softDirty],
    ['ipcLock', 'ipc-lock', m.capIpcLock],
  ];
  const why: Record<string, string> = {
    'zeropage=on': 'read faults allocate fresh pages here (pvm_no_zero_page=1 on the kernel command line)',
    'swap=on': 'no swap device (/proc/swaps is empty)',
    'gup-test=on': 'no /sys/kernel/debug/gup_test (CONFIG_GUP_TEST off)',
    'soft-dirty=on': 'CONFIG_MEM_SOFT_DIRTY is off',
    'ipc-lock=off': 'the run has CAP_IPC_LOCK (root)',
    'ipc-lock=on': 'the run lacks CAP_IPC_LOCK (not root)',
    'thp=on': 'no PMD THP (transparent_hugepage disabled)',
  };
  for (const [k, key, host] of bools) {
    const want = spec[k] as boolean | undefined;
    if (want === undefined || want === host) continue;
    const w = `${key}=${onOff(want)}`;
    listed.add(key);
    reasons.push(`needs ${w}; this host has ${key}=${onOff(host)}${why[w] ? ` (${why[w]})` : ''}`);
  }
  if (spec.memlock !== undefined && !(spec.ipcLock ?? m.capIpcLock) && spec.memlock !== m.memlockLimit)
    reasons.push(`needs RLIMIT_MEMLOCK ${fmtSize(spec.memlock)}; this host's is ${fmtSize(m.memlockLimit)}`);
  if (spec.memlock !== undefined) m.memlockLimit = spec.memlock;

  // operations that need a feature
  const ops = new Set(sc.items.flatMap((it) => (it.kind === 'step' ? [it.op] : [])));
  const advices = new Set(sc.items.flatMap((it) => (it.kind === 'step' && it.op === 'madvise' ? [it.advice] : [])));
  if (ops.has('vfio-map')) reasons.push('uses VFIO (vfio map): no VFIO device (IOMMU group bound to vfio-pci) is available to cowhost');
  if (ops.has('pin') && !m.gupTest && !listed.has('gup-test'))
    reasons.push('uses gup_test pins (pin): no /sys/kernel/debug/gup_test (CONFIG_GUP_TEST off)');
  if (advices.has('pageout') && !m.swap && !listed.has('swap'))
    reasons.push('uses MADV_PAGEOUT: no swap device here, anonymous pages cannot be swapped out');
  if (ops.has('clear-softdirty') && !m.softDirty && !listed.has('soft-dirty'))
    reasons.push('uses clear_refs softdirty: CONFIG_MEM_SOFT_DIRTY is off (pagemap bit 55 never set)');
  if ((ops.has('uring-register') || ops.has('uring-write')) && !ioUringUsable(f)) reasons.push('uses io_uring: io_uring is disabled here');
  const hugetlbMemfds = new Set<string>();
  for (const it of sc.items)
    if (it.kind === 'step' && it.op === 'memfd' && it.hugetlb) hugetlbMemfds.add(it.name);
    else if (it.kind === 'step' && (it.op === 'memfd' || it.op === 'tmpfile')) hugetlbMemfds.delete(it.name);
  for (const it of sc.items)
    if (it.kind === 'step' && (it.op === 'odirect-read' || it.op === 'odirect-write') && hugetlbMemfds.has(it.file.name))
      reasons.push(`O_DIRECT on hugetlbfs memfd ${it.file.name}: hugetlbfs has no O_DIRECT (open fails)`);

  // hugetlb: sizes used, pages stated by the machine line
  const used = new Set<number>();
  for (const it of sc.items) {
    if (it.kind !== 'step') continue;
    if (it.op === 'mmap' && (it.source.kind === 'anon' || it.source.kind === 'memfd') && it.source.hugetlb) used.add(it.source.hugetlb);
    if (it.op === 'memfd' && it.hugetlb) used.add(it.hugetlb);
  }
  for (const size of used) {
    const hostSize = f.hugetlb.find((h) => h.size === size);
    if (!hostSize) {
      reasons.push(`uses ${fmtSize(size)} hugetlb pages: this kernel has none (no hugepages-${size / 1024}kB)`);
      continue;
    }
    const stated = spec.hugetlb?.find((h) => h.size === size);
    if (!stated) {
      reasons.push(`uses ${fmtSize(size)} hugetlb pages but its machine line states no pool (hugetlb=${fmtSize(size)}:N)`);
      continue;
    }
    if (stated.pages * size > HUGETLB_BOUND && !(size === HUGETLB_BOUND && stated.pages === 1))
      reasons.push(`hugetlb=${fmtSize(size)}:${stated.pages} exceeds the bound of 1G of hugetlb memory per run`);
    else if (hostSize.free < stated.pages) {
      if (!root)
        reasons.push(`needs ${stated.pages} free ${fmtSize(size)} hugetlb pages (${hostSize.free} free); reserving them needs root`);
      else reserve.push({ size, pages: stated.pages });
    }
  }
  if (reasons.length) return skip(reasons.join('; '));
  // the model's pools: the stated sizes with their pages, the host's other sizes as they are
  m.hugetlb = f.hugetlb.map((h) => {
    const stated = spec.hugetlb?.find((x) => x.size === h.size);
    return { size: h.size, nr: stated && used.has(h.size) ? stated.pages : h.free };
  });
  return { skip: null, machine: m, reserve };
}
