/**
 * The model's Machine for this host: what cow.c would detect here (probe.ts) plus the facts the
 * model needs beyond cow.c's view (is the shared zeropage allowed at all).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PMD_SIZE } from '../model/constants.ts';
import type { Machine } from '../model/machine.ts';
import { type HostFacts, probeHost } from './probe.ts';

/**
 * mm_forbids_zeropage(): a PVM guest booted with pvm_no_zero_page=1 (this machine) never maps the
 * shared zeropage or the huge zeropage; anonymous read faults allocate pages.
 */
export function zeroPageForbidden(cmdline: string): boolean {
  return /(^|\s)pvm_no_zero_page=(1|y|on)(\s|$)/.test(cmdline);
}

export function machineFromFacts(f: HostFacts, cmdline: string): Machine {
  return {
    thp: f.pmdSize === PMD_SIZE,
    thpEnabled: f.thpEnabled ?? 'never',
    thpSizes: f.thpSizes.filter((s) => s <= PMD_SIZE),
    hugeZeroPage: f.useZeroPage,
    zeroPage: !zeroPageForbidden(cmdline),
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
  let cmdline = '';
  try {
    cmdline = readFileSync(join(root, 'proc/cmdline'), 'utf8');
  } catch {
    // no /proc/cmdline: assume the zeropage is allowed
  }
  return machineFromFacts(probeHost(root), cmdline);
}
