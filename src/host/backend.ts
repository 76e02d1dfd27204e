/**
 * The Backend over the real kernel: each scenario operation is a system call in a real process of
 * build/cowhost, through a SyncHostSession (bridge.ts: the session in a worker thread, called
 * synchronously, so the scenario runner stays the one code path for model and kernel).
 *
 * Observations are what /proc shows (observationOf below): no refcount, pincount, PTE write bit
 * or pin membership; page identities are labels of PFNs (page#N, per first appearance), compared
 * only for equality. The kernel emits no events: drainEvents() is always empty.
 *
 * Operations the helper cannot perform here throw HostUnsupported (the diff turns it into a skip
 * with its reason); refused system calls return their errno name like the model does.
 */
import type { Advice, Backend, Bytes, Failure, KernelEvent, MmapRequest, PageObs, ProcCounters, Res } from '../scenario/backend.ts';
import { SyncHostSession } from './bridge.ts';
import { HostError, type HostPage, type HostSessionOptions } from './session.ts';

const PAGE = 4096;
const PMD = 2 << 20;

/** An operation the real-kernel backend cannot perform on this machine (a reason to skip, not a disagreement). */
export class HostUnsupported extends Error {
  override name = 'HostUnsupported';
}

/** Labels for PFNs by first appearance: page#1, page#2, ...; zeropages named so. */
export class PfnLabels {
  private readonly names = new Map<number, number>();
  label(h: HostPage): string | undefined {
    if (!h.present || h.pfn === undefined) return undefined;
    let n = this.names.get(h.pfn);
    if (n === undefined) {
      n = this.names.size + 1;
      this.names.set(h.pfn, n);
    }
    if (h.zero) return h.thp ? `huge-zeropage#${n}` : 'zeropage';
    return `page#${n}`;
  }
}

/**
 * A host page as a PageObs, defining only what user space can see and only where it means what the
 * model's field means (docs/host.md, "Comparison rules"):
 * - page: a PFN label (root only); zeropage, anon: kpageflags ZERO_PAGE / ANON (root only)
 * - huge: PAGEMAP_SCAN PAGE_IS_HUGE (a PMD-mapped THP or a hugetlb entry; 6.7+)
 * - exclusive: kpageflags bit 34 of an anon page; left out on a tail page of a large folio that is
 *   not PMD/hugetlb-mapped (the kernel reports the head's flags word there, not the page's bit)
 * - mappedOnce: pagemap bit 56; left out for a PMD-mapped page (not per page there), and where
 *   neither PAGEMAP_SCAN nor kpageflags can tell the page is not PMD-mapped
 * - mapcount: kpagecount of a page that is not a zeropage (kpagecount reads 0 there)
 * - write, refcount, pincount, pinned: never (not visible from user space)
 */
export function observationOf(h: HostPage, labels: PfnLabels): PageObs {
  if (!h.present) return { present: false, swapped: h.swapped };
  const o: PageObs = { present: true, swapped: false };
  const page = labels.label(h);
  if (page !== undefined) o.page = page;
  const kpage = h.count !== undefined;
  if (kpage) {
    o.zeropage = !!h.zero;
    o.anon = !!h.anon;
  }
  if (h.pmd !== undefined) o.huge = h.pmd;
  if (kpage && !h.zero) {
    // a tail page not mapped by a PMD or hugetlb entry: kpageflags shows the head's bit 34
    if (!(h.tail && h.pmd !== true)) o.exclusive = h.anon ? !!h.anonExclusive : false;
    o.mapcount = h.count as number;
  }
  // bit 56 of a PMD-mapped page is not per page; without PAGEMAP_SCAN, only a page kpageflags
  // shows small (root) is surely not PMD-mapped
  const maybeLarge = kpage ? !!(h.thp || h.huge) : true;
  if (h.pmd === false || (h.pmd === undefined && !maybeLarge)) o.mappedOnce = h.exclusive;
  return o;
}

interface FileInfo {
  /** the fd in the processes that have it (same number after fork) */
  fd: number;
  kind: 'memfd' | 'tmpfile';
  hugetlb: number;
}

interface PipeInfo {
  rfd: number;
  wfd: number;
}

interface PinInfo {
  kind: 'uring' | 'gup';
  owner: number;
  addr: number;
  len: number;
  /** labels of the pinned pages, taken right after pinning (PFNs do not change while pinned) */
  pages?: string[];
}

export interface HostBackendOptions extends HostSessionOptions {
  /** directory for tmpfiles (default /tmp) */
  tmpDir?: string;
}

/** MADV_* names of the helper for the scenario language's advice. */
const ADVICE: Record<Advice, 'dontneed' | 'pageout' | 'dontfork' | 'dofork' | 'hugepage' | 'nohugepage' | 'collapse'> = {
  dontneed: 'dontneed',
  pageout: 'pageout',
  dontfork: 'dontfork',
  dofork: 'dofork',
  hugepage: 'hugepage',
  nohugepage: 'nohugepage',
  collapse: 'collapse',
};

function failure(e: unknown): Failure {
  if (e instanceof HostError) return { fail: e.signal ?? e.code };
  throw e;
}

export class HostBackend implements Backend {
  readonly name = 'host';
  readonly session: SyncHostSession;
  private readonly labels = new PfnLabels();
  private readonly tmpDir: string;
  private readonly files = new Map<number, FileInfo>();
  private readonly pipes = new Map<number, PipeInfo>();
  private readonly pins = new Map<number, PinInfo>();
  /** per process: file handle -> an O_DIRECT fd of that file (inherited by fork) */
  private readonly direct = new Map<number, Map<number, number>>();
  private readonly exitStatus = new Map<number, number>();
  private readonly alive = new Set<number>([0]);
  private nextHandle = 1;
  /** observations are cached until the next operation (reading /proc changes nothing) */
  private cache = new Map<string, PageObs>();

  constructor(opts: HostBackendOptions = {}) {
    this.session = new SyncHostSession(opts);
    this.tmpDir = opts.tmpDir ?? '/tmp';
  }

  close(): void {
    this.session.close();
  }

  private op<T>(fn: () => Res<T>): Res<T> {
    this.cache.clear();
    try {
      return fn();
    } catch (e) {
      return failure(e);
    }
  }

  initial(): number {
    return 0;
  }

  createFile(p: number, kind: 'memfd' | 'tmpfile', hugetlb: number, size: number): Res<number> {
    return this.op(() => {
      const fd = kind === 'memfd' ? this.session.call('memfd', p, hugetlb) : this.session.call('tmpfile', p, this.tmpDir, false);
      try {
        if (size) this.session.call('fallocate', p, fd, 0, size);
      } catch (e) {
        this.session.call('closeFd', p, fd);
        throw e;
      }
      const h = this.nextHandle++;
      this.files.set(h, { fd, kind, hugetlb });
      return h;
    });
  }
  closeFile(p: number, file: number): Res<void> {
    return this.op(() => {
      this.session.call('closeFd', p, this.fileFd(file));
      const d = this.direct.get(p)?.get(file);
      if (d !== undefined) {
        this.session.call('closeFd', p, d);
        this.direct.get(p)?.delete(file);
      }
    });
  }
  private fileFd(file: number): number {
    const f = this.files.get(file);
    if (!f) throw new Error(`no file handle ${file}`);
    return f.fd;
  }

  mmap(p: number, q: MmapRequest): Res<number> {
    return this.op(() => {
      const hugetlb = q.file === undefined && q.hugetlb ? q.hugetlb : undefined;
      const a = this.session.call('mmap', p, {
        len: q.size,
        prot: q.prot,
        share: q.shared ? 'shared' : 'private',
        fd: q.file === undefined ? undefined : this.fileFd(q.file),
        off: q.offset || undefined,
        hugetlb,
        // like the model: mappings of 2M and more start on a PMD boundary (hugetlb ones are aligned by the kernel)
        align: !hugetlb && q.size >= PMD ? PMD : undefined,
      });
      if (q.hint) this.session.call('madvise', p, a, q.size, q.hint === 'thp' ? 'hugepage' : 'nohugepage');
      return a;
    });
  }
  munmap(p: number, addr: number, len: number): Res<void> {
    return this.op(() => this.session.call('munmap', p, addr, len));
  }
  mprotect(p: number, addr: number, len: number, prot: 'none' | 'r' | 'rw'): Res<void> {
    return this.op(() => this.session.call('mprotect', p, addr, len, prot));
  }
  madvise(p: number, addr: number, len: number, advice: Advice): Res<void> {
    return this.op(() => {
      this.session.call('madvise', p, addr, len, ADVICE[advice]);
    });
  }
  mremap(p: number, addr: number, len: number, to: number): Res<void> {
    return this.op(() => {
      this.session.call('mremap', p, addr, len, to, len);
    });
  }

  store(p: number, addr: number, len: number, byte: number): Res<void> {
    return this.op(() => {
      const sig = this.session.call('write', p, addr, len, byte);
      if (sig) return { fail: sig };
    });
  }
  load(p: number, addr: number, len: number): Res<void> {
    const r = this.read(p, addr, len);
    if (typeof r === 'object' && 'fail' in r) return r;
  }
  read(p: number, addr: number, len: number): Res<Bytes> {
    return this.op(() => {
      const r = this.session.call('read', p, addr, len);
      return typeof r === 'string' ? { fail: r } : (r as Bytes);
    });
  }

  fork(p: number): Res<number> {
    return this.op(() => {
      const c = this.session.call('fork', p).p;
      this.alive.add(c);
      const d = this.direct.get(p);
      if (d) this.direct.set(c, new Map(d));
      return c;
    });
  }
  exit(p: number, status: number): Res<void> {
    return this.op(() => {
      // the model releases a process's pins at exit; the kernel does it when the ring (or the
      // gup_test file) is torn down, asynchronously: unregister first so that the next step sees
      // the pins gone, as after the teardown
      for (const [h, pin] of this.pins) {
        if (pin.owner !== p) continue;
        try {
          if (pin.kind === 'uring') this.session.call('uringUnregister', p);
          else this.session.call('gupStop', p);
        } catch {
          // already released
        }
        this.pins.delete(h);
      }
      this.exitStatus.set(p, this.session.call('exit', p, status));
      this.alive.delete(p);
    });
  }
  wait(_p: number, child: number): Res<number> {
    const s = this.exitStatus.get(child);
    if (s === undefined) return { fail: 'ECHILD' };
    this.exitStatus.delete(child);
    return s;
  }

  pipe(p: number): Res<number> {
    return this.op(() => {
      const r = this.session.call('pipe', p, undefined);
      const h = this.nextHandle++;
      this.pipes.set(h, { rfd: r.rfd, wfd: r.wfd });
      return h;
    });
  }
  vmsplice(p: number, pipe: number, addr: number, len: number): Res<number> {
    return this.op(() => this.session.call('vmsplice', p, this.pipeOf(pipe).wfd, addr, len));
  }
  pipeRead(p: number, pipe: number, len: number): Res<Bytes> {
    return this.op(() => this.session.call('pipeRead', p, this.pipeOf(pipe).rfd, len).data as Bytes);
  }
  pipeClose(p: number, pipe: number): Res<void> {
    return this.op(() => {
      const { rfd, wfd } = this.pipeOf(pipe);
      this.session.call('closeFd', p, rfd);
      this.session.call('closeFd', p, wfd);
    });
  }
  private pipeOf(h: number): PipeInfo {
    const x = this.pipes.get(h);
    if (!x) throw new Error(`no pipe handle ${h}`);
    return x;
  }

  pin(p: number, addr: number, len: number, write: boolean, fast: boolean): Res<number> {
    if (!this.session.info.gupTest) throw new HostUnsupported('gup_test pins need /sys/kernel/debug/gup_test (CONFIG_GUP_TEST)');
    return this.op(() => {
      this.session.call('gupStart', p, addr, len, write, fast);
      return this.addPin({ kind: 'gup', owner: p, addr, len });
    });
  }
  unpin(p: number, pin: number): Res<void> {
    return this.op(() => {
      const x = this.pinOf(pin);
      this.session.call('gupStop', x.owner ?? p);
      this.pins.delete(pin);
    });
  }
  uringRegister(p: number, addr: number, len: number): Res<number> {
    return this.op(() => {
      this.session.call('uringRegister', p, addr, len);
      return this.addPin({ kind: 'uring', owner: p, addr, len });
    });
  }
  uringWriteFixed(_p: number, buf: number, file: number, offset: number): Res<void> {
    return this.op(() => {
      const x = this.pinOf(buf);
      this.session.call('uringWriteFixed', x.owner, this.fileFd(file), offset, undefined, undefined);
    });
  }
  uringUnregister(_p: number, buf: number): Res<void> {
    return this.op(() => {
      this.session.call('uringUnregister', this.pinOf(buf).owner);
      this.pins.delete(buf);
    });
  }
  private addPin(x: PinInfo): number {
    const pages = this.session.call('pagemap', x.owner, x.addr, Math.max(1, Math.ceil(x.len / PAGE)));
    x.pages = pages.map((h) => this.labels.label(h) ?? '?');
    if (x.pages.includes('?')) x.pages = undefined;
    const h = this.nextHandle++;
    this.pins.set(h, x);
    return h;
  }
  private pinOf(h: number): PinInfo {
    const x = this.pins.get(h);
    if (!x) throw new Error(`no pin handle ${h}`);
    return x;
  }
  vfioMap(): Res<number> {
    throw new HostUnsupported('VFIO DMA mappings need a VFIO device (IOMMU group) bound to vfio-pci; cowhost has none');
  }
  vfioUnmap(): Res<void> {
    throw new HostUnsupported('VFIO is not available to cowhost');
  }
  odirect(p: number, file: number, offset: number, addr: number, len: number, toMemory: boolean): Res<void> {
    const f = this.files.get(file);
    if (f?.hugetlb) throw new HostUnsupported('hugetlbfs has no O_DIRECT (open fails with EINVAL); the host does not run it');
    return this.op(() => {
      let m = this.direct.get(p);
      if (!m) {
        m = new Map();
        this.direct.set(p, m);
      }
      let fd = m.get(file);
      if (fd === undefined) {
        try {
          fd = this.session.call('reopen', p, this.fileFd(file), true);
        } catch (e) {
          throw new HostUnsupported(`O_DIRECT is not available on ${this.tmpDir}: ${(e as Error).message}`);
        }
        m.set(file, fd);
      }
      const n = toMemory ? this.session.call('fdRead', p, fd, offset, addr, len) : this.session.call('fdWrite', p, fd, offset, addr, len);
      if (n !== len) return { fail: 'EIO' };
    });
  }
  pread(p: number, file: number, offset: number, len: number): Res<Bytes> {
    return this.op(() => this.session.call('pread', p, this.fileFd(file), offset, len) as Bytes);
  }
  pwrite(p: number, file: number, offset: number, len: number, byte: number): Res<void> {
    return this.op(() => {
      this.session.call('pwrite', p, this.fileFd(file), offset, len, byte);
    });
  }
  clearSoftDirty(p: number): Res<void> {
    return this.op(() => this.session.call('clearRefs', p, 4));
  }

  // ----- observations

  mapped(p: number, addr: number, len: number): boolean {
    if (!this.alive.has(p)) return false;
    for (let a = addr; a < addr + len; ) {
      let end: number;
      try {
        end = Number(this.session.call('smaps', p, a).end);
      } catch {
        return false;
      }
      if (!(end > a)) return false;
      a = end;
    }
    return true;
  }
  /** The raw pagemap/kpage* view of a page (for tools and tests). */
  hostPage(p: number, addr: number): HostPage {
    return this.session.call('page', p, addr);
  }
  page(p: number, addr: number): PageObs {
    if (!this.alive.has(p)) return { present: false, swapped: false };
    const key = `${p}:${addr}`;
    let o = this.cache.get(key);
    if (!o) {
      o = observationOf(this.hostPage(p, addr), this.labels);
      this.cache.set(key, o);
    }
    return o;
  }
  counters(p: number): ProcCounters {
    if (!this.alive.has(p)) return { VmPin: 0, VmLck: 0 };
    const s = this.session.call('status', p);
    return { VmPin: (s.VmPin ?? 0) * 1024, VmLck: (s.VmLck ?? 0) * 1024 };
  }
  userLocked(): number | undefined {
    return undefined;
  }
  pinRead(pin: number): Bytes {
    const x = this.pinOf(pin);
    this.cache.clear();
    if (x.kind === 'gup') return this.session.call('gupRead', x.owner, x.len) as Bytes;
    // io_uring: what the device would read: WRITE_FIXED of the buffer into a scratch tmpfile
    const fd = this.session.call('tmpfile', x.owner, this.tmpDir, false);
    try {
      this.session.call('uringWriteFixed', x.owner, fd, 0, undefined, undefined);
      return this.session.call('pread', x.owner, fd, 0, x.len) as Bytes;
    } finally {
      this.session.call('closeFd', x.owner, fd);
    }
  }
  pinPages(pin: number): string[] | undefined {
    return this.pinOf(pin).pages;
  }
  drainEvents(): KernelEvent[] {
    return [];
  }
}
