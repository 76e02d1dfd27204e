/**
 * The Backend over the model: every operation is a Sim method (the same user operations cow.c
 * runs through). Observations read the model state without changing it; they live in `inspect`
 * below, the one place that knows the state's shape (see the README's open point: a Sim.inspect).
 */
import type { Content } from '../model/access.ts';
import {
  ERRNO_NAME,
  MADV_COLLAPSE,
  MADV_DOFORK,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MADV_PAGEOUT,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../model/constants.ts';
import { findVma, folioMaybeDmaPinned, lookup, pageMapcount } from '../model/kernel.ts';
import { type Machine, SEED_MACHINE } from '../model/machine.ts';
import type { Profile } from '../model/profile.ts';
import { Sim } from '../model/sim.ts';
import type { Folio } from '../model/types.ts';
import type { MachineSpec } from './ast.ts';
import type { Advice, Backend, Bytes, Failure, KernelEvent, MmapRequest, PageObs, ProcCounters, Res } from './backend.ts';

const ADVICE: Record<Advice, number> = {
  dontneed: MADV_DONTNEED,
  pageout: MADV_PAGEOUT,
  dontfork: MADV_DONTFORK,
  dofork: MADV_DOFORK,
  hugepage: MADV_HUGEPAGE,
  nohugepage: MADV_NOHUGEPAGE,
  collapse: MADV_COLLAPSE,
};
const PROT = { none: PROT_NONE, r: PROT_READ, rw: PROT_READ | PROT_WRITE };

/** The model's machine for a scenario's `machine` line (defaults: the seed mail's machine). */
export function machineFromSpec(m: MachineSpec): Machine {
  return {
    ...SEED_MACHINE,
    thp: m.thp ?? SEED_MACHINE.thp,
    hugeZeroPage: m.hugeZeropage ?? SEED_MACHINE.hugeZeroPage,
    zeroPage: m.zeroPage ?? SEED_MACHINE.zeroPage,
    hugetlb: m.hugetlb ? m.hugetlb.map((h) => ({ size: h.size, nr: h.pages })) : SEED_MACHINE.hugetlb.map((h) => ({ ...h })),
    swap: m.swap ?? SEED_MACHINE.swap,
    gupTest: m.gupTest ?? SEED_MACHINE.gupTest,
    softDirty: m.softDirty ?? SEED_MACHINE.softDirty,
    memlockLimit: m.memlock ?? SEED_MACHINE.memlockLimit,
    capIpcLock: m.ipcLock ?? SEED_MACHINE.capIpcLock,
  };
}

const errno = (n: number): Failure => ({ fail: ERRNO_NAME[-n] ?? `errno ${-n}` });

function toBytes(c: Content): Bytes {
  return c.map(([t, n]) => [t, n * PAGE_SIZE]);
}

/** `folio#7` for a small folio, `folio#7+3` for page 3 of a large one; the zeropages by name. */
function label(f: Folio | -1 | -2, page4k: number): string {
  if (f === -1) return 'zeropage';
  if (f === -2) return `huge-zeropage+${page4k}`;
  return f.nr > 1 || f.hugetlb ? `folio#${f.id}+${page4k}` : `folio#${f.id}`;
}

export class ModelBackend implements Backend {
  readonly sim: Sim;
  readonly name: string;
  private seen = 0;

  constructor(profile: Profile, machine: Machine, opts: { check?: boolean } = {}) {
    this.sim = new Sim(profile, machine, { trace: true, check: opts.check ?? true });
    this.name = `model ${profile.name}`;
  }

  initial(): number {
    return 1;
  }

  createFile(_p: number, kind: 'memfd' | 'tmpfile', hugetlb: number, size: number): Res<number> {
    const f = kind === 'memfd' ? this.sim.memfdCreate(hugetlb) : this.sim.tmpfile();
    if (f < 0) return errno(f);
    const r = this.sim.fallocate(f, size);
    if (r < 0) {
      this.sim.closeFile(f);
      return errno(r);
    }
    return f;
  }
  closeFile(_p: number, file: number): Res<void> {
    this.sim.closeFile(file);
  }
  mmap(p: number, q: MmapRequest): Res<number> {
    let flags = q.shared ? MAP_SHARED : MAP_PRIVATE;
    if (q.file === undefined) flags |= MAP_ANONYMOUS;
    if (q.hugetlb && q.file === undefined) flags |= MAP_HUGETLB;
    const a = this.sim.mmap(p, {
      len: q.size,
      prot: PROT[q.prot],
      flags,
      file: q.file,
      offset: q.offset,
      hugetlbSize: q.hugetlb || undefined,
    });
    if (a < 0) return errno(a);
    if (q.hint) {
      const r = this.sim.madvise(p, a, q.size, q.hint === 'thp' ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
      if (r < 0) return errno(r);
    }
    return a;
  }
  munmap(p: number, addr: number, len: number): Res<void> {
    const r = this.sim.munmap(p, addr, len);
    if (r < 0) return errno(r);
  }
  mprotect(p: number, addr: number, len: number, prot: 'none' | 'r' | 'rw'): Res<void> {
    const r = this.sim.mprotect(p, addr, len, PROT[prot]);
    if (r < 0) return errno(r);
  }
  madvise(p: number, addr: number, len: number, advice: Advice): Res<void> {
    const r = this.sim.madvise(p, addr, len, ADVICE[advice]);
    if (r < 0) return errno(r);
  }
  mremap(p: number, addr: number, len: number, to: number): Res<void> {
    const r = this.sim.mremap(p, addr, len, to);
    if (r < 0) return errno(r);
  }
  store(p: number, addr: number, len: number, byte: number): Res<void> {
    const sig = this.sim.memset(p, addr, byte, len);
    if (sig) return { fail: sig };
  }
  load(p: number, addr: number, len: number): Res<void> {
    const r = this.sim.read(p, addr, len);
    if (typeof r === 'string') return { fail: r };
  }
  read(p: number, addr: number, len: number): Res<Bytes> {
    const r = this.sim.read(p, addr, len);
    return typeof r === 'string' ? { fail: r } : toBytes(r);
  }
  fork(p: number): Res<number> {
    const c = this.sim.fork(p);
    return c < 0 ? errno(c) : c;
  }
  exit(p: number, status: number): Res<void> {
    this.sim.exit(p, status);
  }
  wait(_p: number, child: number): Res<number> {
    const r = this.sim.wait(child);
    return r < 0 ? errno(r) : r;
  }
  pipe(_p: number): Res<number> {
    return this.sim.pipe();
  }
  vmsplice(p: number, pipe: number, addr: number, len: number): Res<number> {
    const r = this.sim.vmsplice(p, pipe, addr, len);
    return r < 0 ? errno(r) : r;
  }
  pipeRead(_p: number, pipe: number, len: number): Res<Bytes> {
    return toBytes(this.sim.pipeRead(pipe, len));
  }
  pipeClose(_p: number, pipe: number): Res<void> {
    this.sim.pipeClose(pipe);
  }
  pin(p: number, addr: number, len: number, write: boolean, fast: boolean): Res<number> {
    const r = this.sim.gupTestStart(p, addr, len, write, fast);
    if (r < 0) return errno(r);
    const set = [...this.sim.state.pins.values()].find((s) => s.user === 'gup_test' && s.owner === p);
    return set ? set.id : { fail: 'EINVAL' };
  }
  unpin(_p: number, pin: number): Res<void> {
    this.sim.unpin(pin);
  }
  uringRegister(p: number, addr: number, len: number): Res<number> {
    const r = this.sim.ioUringRegister(p, addr, len);
    return r < 0 ? errno(r) : r;
  }
  uringWriteFixed(_p: number, buf: number, file: number, offset: number): Res<void> {
    const r = this.sim.ioUringWriteFixed(buf, file, offset);
    if (r < 0) return errno(r);
  }
  uringUnregister(_p: number, buf: number): Res<void> {
    this.sim.unpin(buf);
  }
  vfioMap(p: number, addr: number, len: number, write: boolean): Res<number> {
    const r = this.sim.vfioMapDma(p, addr, len, write);
    return r < 0 ? errno(r) : r;
  }
  vfioUnmap(_p: number, dma: number): Res<void> {
    this.sim.unpin(dma);
  }
  odirect(p: number, file: number, offset: number, addr: number, len: number, toMemory: boolean): Res<void> {
    const r = this.sim.directIo(p, file, offset, addr, len, toMemory);
    if (r < 0) return errno(r);
  }
  pread(_p: number, file: number, offset: number, len: number): Res<Bytes> {
    const r = this.sim.pread(file, offset, len);
    return typeof r === 'number' ? errno(r) : toBytes(r);
  }
  pwrite(_p: number, file: number, offset: number, len: number, byte: number): Res<void> {
    const r = this.sim.pwrite(file, offset, len, byte);
    if (r < 0) return errno(r);
  }
  clearSoftDirty(p: number): Res<void> {
    this.sim.clearSoftDirty(p);
  }

  // ----- observations

  mapped(p: number, addr: number, len: number): boolean {
    const proc = this.sim.state.procs.get(p);
    if (!proc?.alive) return false;
    for (let a = addr; a < addr + len; ) {
      const v = findVma(proc.mm, a);
      if (!v) return false;
      a = v.end;
    }
    return true;
  }
  page(p: number, addr: number): PageObs {
    return inspect(this.sim, p, addr);
  }
  counters(p: number): ProcCounters {
    const mm = this.sim.state.procs.get(p).mm;
    return { VmPin: mm.pinnedVm * PAGE_SIZE, VmLck: mm.lockedVm * PAGE_SIZE };
  }
  userLocked(): number {
    return this.sim.state.userLockedVm * PAGE_SIZE;
  }
  pinRead(pin: number): Bytes {
    return toBytes(this.sim.pinContent(pin));
  }
  pinPages(pin: number): string[] {
    const out: string[] = [];
    for (const r of this.sim.state.pins.get(pin).runs) {
      const f = r.folio < 0 ? (r.folio as -1 | -2) : this.sim.state.folios.get(r.folio);
      for (let i = 0; i < r.n; i++) out.push(label(f, r.first + i));
    }
    return out;
  }
  drainEvents(): KernelEvent[] {
    const ev = this.sim.events;
    const out = ev.slice(this.seen).map((e) => ({ proc: e.pid, what: e.what, addr: e.addr, detail: e.detail }));
    ev.length = 0;
    this.seen = 0;
    return out;
  }
}

/** Pins of (folio, 4 KiB page), counted from the pin sets. */
function pinsOn(sim: Sim, folio: number, page4k: number): number {
  let n = 0;
  for (const s of sim.state.pins.values())
    for (const r of s.runs) if (r.folio === folio && page4k >= r.first && page4k < r.first + r.n) n++;
  return n;
}

/** What the model knows about the page at addr in process p (read-only). */
export function inspect(sim: Sim, p: number, addr: number): PageObs {
  const none: PageObs = { present: false, swapped: false };
  const proc = sim.state.procs.get(p);
  if (!proc?.alive) return none;
  const mm = proc.mm;
  const v = findVma(mm, addr);
  if (!v) return none;
  const e = lookup(mm, v, addr);
  const vpn = Math.floor(addr / PAGE_SIZE);
  const pm = sim.pagemap(p, addr);
  // a PMD-mapped THP or a hugetlb page keeps PG_anon_exclusive in unit 0 (the head); kernels
  // before 5.19 have no PG_anon_exclusive, so no page is reported exclusive there
  const hasFlag = sim.profile.switches['anon-exclusive'];
  const of = (f: Folio, unit: number, page4k: number, write: boolean, huge: boolean): PageObs => ({
    present: true,
    swapped: false,
    page: label(f, page4k),
    zeropage: false,
    huge,
    anon: f.kind === 'anon',
    write,
    exclusive: hasFlag && f.kind === 'anon' && f.exclusive[huge ? 0 : unit],
    mappedOnce: pm.exclusivelyMapped,
    refcount: f.refcount,
    mapcount: pageMapcount(f, unit),
    pincount: pinsOn(sim, f.id, page4k),
    pinned: folioMaybeDmaPinned(f),
  });
  const zero = (page: string, huge: boolean): PageObs => ({
    present: true,
    swapped: false,
    page,
    zeropage: true,
    huge,
    anon: false,
    write: false,
    exclusive: false,
    mappedOnce: false,
  });
  switch (e.level) {
    case 'none':
      return none;
    case 'pte': {
      const pte = e.pte;
      if (pte.t === 'swap') return { present: false, swapped: true };
      if (pte.t === 'zero') return zero('zeropage', false);
      const f = sim.state.folios.get(pte.folio);
      return of(f, pte.off, pte.off * f.sub, pte.write, false);
    }
    case 'pmd': {
      const page = vpn - e.vpn;
      if (e.leaf.t === 'hugezero') return zero(label(-2, page), true);
      return of(sim.state.folios.get(e.leaf.folio), page, page, e.leaf.write, true);
    }
    case 'huge':
      return of(sim.state.folios.get(e.leaf.folio), 0, vpn - e.vpn, e.leaf.write, true);
  }
}
