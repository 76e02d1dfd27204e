/**
 * The users of GUP: vmsplice into a pipe (FOLL_GET), the gup_test PIN_LONGTERM_TEST ioctls,
 * io_uring fixed buffers, VFIO DMA mappings, O_DIRECT; plus pread/pwrite on files.
 */
import { access, type Content, pushContent } from './access.ts';
import { EFAULT, EINVAL, ENOENT, ENOMEM, EOPNOTSUPP, FOLL_GET, FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE, PAGE_SIZE } from './constants.ts';
import { fileToken, writeFileRange, writeFileToken } from './files.ts';
import { type GupResult, gup, release, releaseAll } from './gup.ts';
import { type Ctx, emit, findVma, folio, tokenAt } from './kernel.ts';
import { ownProc } from './state.ts';
import { ownTable } from './table.ts';
import { type File, HUGE_ZERO_FOLIO, type PageRun, type PinSet, type PinUser, type Proc, ZERO_FOLIO } from './types.ts';

/** PIPE_DEF_BUFFERS: a pipe holds 16 page buffers; vmsplice stops when it is full. */
export const PIPE_BUFFERS = 16;

/** The content of a run of pages, one token per 4 KiB page. */
export function runContent(k: Ctx, r: PageRun, out: Content): void {
  if (r.folio === ZERO_FOLIO || r.folio === HUGE_ZERO_FOLIO) {
    pushContent(out, 0, r.n);
    return;
  }
  const f = folio(k, r.folio);
  for (let i = 0; i < r.n; ) {
    const unit = Math.floor((r.first + i) / f.sub);
    const inUnit = Math.min(r.n - i, (unit + 1) * f.sub - (r.first + i));
    pushContent(out, f.dataAt(unit), inUnit);
    i += inUnit;
  }
}

export function pipeCreate(k: Ctx): number {
  const id = k.s.nextId++;
  ownTable(k.s, 'pipes').set(id, { id, bufs: [] });
  return id;
}

function bufferedPages(k: Ctx, pipeId: number): number {
  let n = 0;
  for (const b of k.s.pipes.get(pipeId).bufs) n += b.n;
  return n;
}

/**
 * vmsplice(pipe, {addr, len}) (iter_to_pipe): iov_iter_get_pages2 -> get_user_pages_fast without
 * FOLL_WRITE, i.e. plain FOLL_GET references (never an unshare) on every page the range touches,
 * as many as the pipe has room for (a buffer per page, the first one starting at addr's offset).
 * Returns the bytes transferred (0 for an empty range) or -errno. The model never blocks: a full
 * pipe is EINVAL.
 */
export function vmsplice(k: Ctx, p: Proc, pipeId: number, addr: number, len: number): number {
  const pipe = k.s.pipes.get(pipeId);
  if (!pipe) return -EINVAL;
  if (len === 0) return 0;
  const first = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
  const room = PIPE_BUFFERS - bufferedPages(k, pipeId);
  const pages = Math.min(room, Math.ceil((addr + len - first) / PAGE_SIZE));
  if (pages <= 0) return -EINVAL;
  const r = gup(k, p.mm, first, pages, FOLL_GET, true);
  if (r.nr < 0) return r.nr;
  ownTable(k.s, 'pipes').set(pipeId, { id: pipe.id, bufs: [...pipe.bufs, ...r.runs] });
  emit(k, p.pid, 'vmsplice', addr, `${r.nr} pages referenced (FOLL_GET)`);
  return Math.min(len, r.nr * PAGE_SIZE - (addr - first));
}

/** read(pipe, len): copies the referenced pages' current content, dropping the references. */
export function pipeRead(k: Ctx, pipeId: number, len: number): Content {
  const pipe = k.s.pipes.get(pipeId);
  const out: Content = [];
  const bufs = pipe.bufs.slice();
  let want = Math.ceil(len / PAGE_SIZE);
  while (want > 0 && bufs.length) {
    const b = bufs[0];
    const n = Math.min(b.n, want);
    runContent(k, { folio: b.folio, first: b.first, n }, out);
    release(k, { folio: b.folio, first: b.first, n }, FOLL_GET);
    if (n === b.n) bufs.shift();
    else bufs[0] = { folio: b.folio, first: b.first + n, n: b.n - n };
    want -= n;
  }
  ownTable(k.s, 'pipes').set(pipeId, { id: pipe.id, bufs });
  return out;
}

export function pipeClose(k: Ctx, pipeId: number): void {
  const pipe = k.s.pipes.get(pipeId);
  if (!pipe) return;
  for (const b of pipe.bufs) release(k, b, FOLL_GET);
  k.s.pipes.delete(pipeId);
}

/**
 * GUP of all `nr` pages or nothing: a partial result is released again (callers such as
 * io_uring, VFIO, gup_test and O_DIRECT treat it as failure). Returns the runs or -errno.
 */
function gupAll(k: Ctx, p: Proc, addr: number, nr: number, flags: number, fast: boolean): GupResult | number {
  const r = gup(k, p.mm, addr, nr, flags, fast);
  if (r.nr === nr) return r;
  releaseAll(k, r.runs, flags);
  return r.nr < 0 ? r.nr : -EFAULT;
}

// ---------------------------------------------------------------------------------------------
// pin sets

/** A new pin set with what it accounted (pinned_vm, locked_vm, the user's locked_vm). */
function newPinSet(
  k: Ctx,
  user: PinUser,
  owner: number,
  flags: number,
  runs: PageRun[],
  accounted: { pinned?: number; locked?: number; user?: number } = {},
): PinSet {
  const id = k.s.nextId++;
  const ps: PinSet = {
    id,
    user,
    owner,
    flags,
    runs,
    accountedPinned: accounted.pinned ?? 0,
    accountedLocked: accounted.locked ?? 0,
    accountedUser: accounted.user ?? 0,
  };
  ownTable(k.s, 'pins').set(id, ps);
  return ps;
}

/** Unpins every page and undoes the set's memlock accounting. */
export function unpinSet(k: Ctx, id: number): void {
  const ps = k.s.pins.get(id);
  if (!ps) return;
  releaseAll(k, ps.runs, ps.flags);
  const owner = ownProc(k.s, ps.owner);
  if (owner) {
    owner.mm.pinnedVm -= ps.accountedPinned;
    owner.mm.lockedVm -= ps.accountedLocked;
  }
  k.s.userLockedVm -= ps.accountedUser;
  k.s.pins.delete(id);
  emit(k, ps.owner, `unpin (${ps.user})`);
}

export function pinContent(k: Ctx, id: number): Content {
  const out: Content = [];
  for (const r of k.s.pins.get(id).runs) runContent(k, r, out);
  return out;
}

function pinnedPages(runs: readonly PageRun[]): number {
  let n = 0;
  for (const r of runs) n += r.n;
  return n;
}

// ---------------------------------------------------------------------------------------------
// gup_test (CONFIG_GUP_TEST, mm/gup_test.c): PIN_LONGTERM_TEST_START / READ / STOP

/**
 * PIN_LONGTERM_TEST_START: pin_user_pages[_fast](FOLL_LONGTERM [| FOLL_WRITE]) of the whole range,
 * looping until everything is pinned. -ENOENT when the machine has no gup_test, -EINVAL when a
 * test pin is already active: gup_test keeps one set of pinned pages for the whole system (a
 * static in mm/gup_test.c), whichever process started it; READ and STOP act on that set.
 */
export function gupTestStart(k: Ctx, p: Proc, addr: number, size: number, write: boolean, fast: boolean): number {
  if (!k.m.gupTest) return -ENOENT;
  if (gupTestSet(k)) return -EINVAL;
  if (addr % PAGE_SIZE || size % PAGE_SIZE || size === 0) return -EINVAL;
  const flags = FOLL_PIN | FOLL_LONGTERM | (write ? FOLL_WRITE : 0);
  const r = gupAll(k, p, addr, size / PAGE_SIZE, flags, fast);
  if (typeof r === 'number') return r;
  newPinSet(k, 'gup_test', p.pid, flags, r.runs);
  emit(k, p.pid, `gup_test: pinned ${r.nr} pages`, addr, fast ? `${r.fast} by GUP-fast` : 'slow path');
  return 0;
}

/** The system's gup_test pin set, if one is active. */
function gupTestSet(k: Ctx): PinSet | undefined {
  return k.s.pins.values().find((s) => s.user === 'gup_test');
}

/** PIN_LONGTERM_TEST_READ: the content of the pinned pages, as the kernel reads it through them
 *  (from any process). */
export function gupTestRead(k: Ctx, _p: Proc): Content | number {
  const s = gupTestSet(k);
  if (!s) return -EINVAL;
  return pinContent(k, s.id);
}

/** PIN_LONGTERM_TEST_STOP: unpins the set (from any process); 0 also when none is active. */
export function gupTestStop(k: Ctx, _p: Proc): number {
  const s = gupTestSet(k);
  if (s) unpinSet(k, s.id);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// io_uring fixed buffers (io_uring/rsrc.c, 6.x)

/**
 * IORING_REGISTER_BUFFERS (io_sqe_buffer_register): io_buffer_validate() refuses an empty buffer
 * and one over 1 GiB (EFAULT); io_pin_pages() pins every page the range touches with
 * pin_user_pages(FOLL_WRITE | FOLL_LONGTERM). Before iouring-file-check-in-gup (6.5) io_uring then
 * refuses file-backed memory other than shmem and hugetlbfs itself (EOPNOTSUPP, the pages pinned
 * and faulted in by then are released); since, GUP's own check decides. Then accounting: a
 * compound page counts once with its full size; without CAP_IPC_LOCK the user's locked memory is
 * checked against RLIMIT_MEMLOCK (ENOMEM); the mm's pinned_vm (VmPin) always grows. Returns the
 * buffer id or -errno.
 */
export function ioUringRegister(k: Ctx, p: Proc, addr: number, len: number): number {
  if (len <= 0 || len > IO_BUFFER_MAX) return -EFAULT;
  const flags = FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM;
  const first = Math.floor(addr / PAGE_SIZE) * PAGE_SIZE;
  const nr = Math.ceil((addr + len - first) / PAGE_SIZE);
  const r = gupAll(k, p, first, nr, flags, false);
  if (typeof r === 'number') return r;
  if (!k.sw['iouring-file-check-in-gup'] && mapsDiskFile(k, p, first, nr)) {
    releaseAll(k, r.runs, flags);
    return -EOPNOTSUPP;
  }
  const seen = new Set<number>();
  let acct = 0;
  for (const run of r.runs) {
    if (run.folio < 0) {
      acct += run.n;
      continue;
    }
    const f = folio(k, run.folio);
    if (f.nr > 1 || f.hugetlb) {
      if (!seen.has(f.id)) acct += f.nr * f.sub;
      seen.add(f.id);
    } else acct += run.n;
  }
  const limit = Math.floor(p.memlockLimit / PAGE_SIZE);
  if (!p.capIpcLock && k.s.userLockedVm + acct > limit) {
    releaseAll(k, r.runs, flags);
    return -ENOMEM;
  }
  if (!p.capIpcLock) k.s.userLockedVm += acct;
  p.mm.pinnedVm += acct;
  const ps = newPinSet(k, 'io_uring', p.pid, flags, r.runs, { pinned: acct, user: p.capIpcLock ? 0 : acct });
  emit(k, p.pid, `io_uring: registered ${nr} pages`, addr, `VmPin +${acct} pages`);
  return ps.id;
}

/** io_buffer_validate()'s limit on one fixed buffer. */
const IO_BUFFER_MAX = 1 << 30;

/** Is any page of the range in a VMA of a file other than shmem and hugetlbfs (a disk file)? */
function mapsDiskFile(k: Ctx, p: Proc, addr: number, nr: number): boolean {
  for (let a = addr; a < addr + nr * PAGE_SIZE; ) {
    const v = findVma(p.mm, a);
    if (!v) return false;
    if (v.file >= 0 && k.s.files.get(v.file)?.kind === 'disk') return true;
    a = v.end;
  }
  return false;
}

/** IORING_OP_WRITE_FIXED: write what the pinned pages hold into a file. */
export function ioUringWriteFixed(k: Ctx, buf: number, fileId: number, offset: number): number {
  const ps = k.s.pins.get(buf);
  const file = k.s.files.get(fileId);
  if (!ps || !file) return -EINVAL;
  const content = pinContent(k, buf);
  let page = offset / PAGE_SIZE;
  for (const [t, n] of content) {
    writeFileRange(k, file, page, n, t);
    page += n;
  }
  return pinnedPages(ps.runs) * PAGE_SIZE;
}

// ---------------------------------------------------------------------------------------------
// VFIO type1 (drivers/vfio/vfio_iommu_type1.c)

/**
 * VFIO_IOMMU_MAP_DMA: pin_user_pages_remote(FOLL_LONGTERM [| FOLL_WRITE with IOMMU_WRITE]). Pages of
 * the shared zeropage are reserved pfns: unpinned at once and not accounted (6.0, 873aefb376bb).
 * Every other page counts into mm->locked_vm (VmLck), checked against RLIMIT_MEMLOCK without
 * CAP_IPC_LOCK. Returns the DMA mapping id or -errno.
 */
export function vfioMapDma(k: Ctx, p: Proc, addr: number, len: number, write: boolean): number {
  // vfio_dma_do_map(): size and vaddr must be whole pages, the size not 0
  if (len <= 0 || len % PAGE_SIZE || addr % PAGE_SIZE) return -EINVAL;
  const flags = FOLL_PIN | FOLL_LONGTERM | (write ? FOLL_WRITE : 0);
  const nr = len / PAGE_SIZE;
  const r = gupAll(k, p, addr, nr, flags, false);
  if (typeof r === 'number') return r;
  const kept: PageRun[] = [];
  let acct = 0;
  for (const run of r.runs) {
    if (run.folio === ZERO_FOLIO) release(k, run, flags);
    else {
      kept.push(run);
      acct += run.n;
    }
  }
  const limit = Math.floor(p.memlockLimit / PAGE_SIZE);
  if (!p.capIpcLock && p.mm.lockedVm + acct > limit) {
    releaseAll(k, kept, flags);
    emit(k, p.pid, 'vfio: RLIMIT_MEMLOCK exceeded', addr);
    return -ENOMEM;
  }
  p.mm.lockedVm += acct;
  const ps = newPinSet(k, 'vfio', p.pid, flags, kept, { locked: acct });
  emit(k, p.pid, `vfio: mapped ${nr} pages`, addr, `VmLck +${acct} pages`);
  return ps.id;
}

// ---------------------------------------------------------------------------------------------
// O_DIRECT and plain file I/O

/**
 * O_DIRECT read(file -> memory) / write(memory -> file) through bio_iov_iter_get_pages: plain
 * FOLL_GET references before odirect-foll-pin, short-term FOLL_PIN pins after (so a write to the
 * file from a shared anonymous page unshares it first, and the mm gets MMF_HAS_PINNED);
 * FOLL_WRITE for a read into memory. The I/O completes synchronously and the pages are released.
 * A read from the end of the file on returns 0 at once (iomap_dio_rw). hugetlbfs has no O_DIRECT
 * (EINVAL); tmpfs neither before shmem-odirect (6.6), and since it copies like read()/write().
 */
export function directIo(k: Ctx, p: Proc, fileId: number, offset: number, addr: number, len: number, toMemory: boolean): number {
  const file = k.s.files.get(fileId);
  if (!file || addr % PAGE_SIZE || len % PAGE_SIZE || offset % PAGE_SIZE) return -EINVAL;
  if (file.kind === 'hugetlbfs' || (file.kind === 'shmem' && !k.sw['shmem-odirect'])) return -EINVAL;
  if (toMemory && offset >= file.size) return 0;
  if (file.kind === 'shmem') return bufferedIo(k, p, file, offset, addr, len, toMemory);
  const flags = (k.sw['odirect-foll-pin'] ? FOLL_PIN : FOLL_GET) | (toMemory ? FOLL_WRITE : 0);
  const nr = len / PAGE_SIZE;
  const r = gupAll(k, p, addr, nr, flags, true);
  if (typeof r === 'number') return r;
  let page = offset / PAGE_SIZE;
  for (const run of r.runs) {
    for (let i = 0; i < run.n; i++, page++) {
      if (toMemory) {
        if (run.folio >= 0) {
          const f = folio(k, run.folio);
          f.setData(Math.floor((run.first + i) / f.sub), fileToken(k, file, page));
        }
      } else
        writeFileToken(k, file, page, tokenAt(k, run.folio, run.folio >= 0 ? Math.floor((run.first + i) / folio(k, run.folio).sub) : 0));
    }
    release(k, run, flags);
  }
  emit(k, p.pid, toMemory ? 'O_DIRECT read' : 'O_DIRECT write', addr, `${nr} pages`);
  return len;
}

/** read()/write() between a file and user memory, as CPU accesses (copy_to_user/copy_from_user:
 *  ordinary faults, no GUP). Returns the bytes copied, or -EFAULT when nothing could be. */
function bufferedIo(k: Ctx, p: Proc, file: File, offset: number, addr: number, len: number, toMemory: boolean): number {
  const last = toMemory ? Math.min(len, file.size - offset) : len;
  let done = 0;
  for (; done < last; done += PAGE_SIZE) {
    const page = (offset + done) / PAGE_SIZE;
    const got = access(k, p, addr + done, toMemory ? fileToken(k, file, page) : undefined);
    if (typeof got === 'string') break; // a signal: the copy stops short
    if (!toMemory) writeFileToken(k, file, page, got);
  }
  if (done)
    emit(
      k,
      p.pid,
      toMemory ? 'O_DIRECT read (buffered on tmpfs)' : 'O_DIRECT write (buffered on tmpfs)',
      addr,
      `${done / PAGE_SIZE} pages`,
    );
  return done ? Math.min(done, last) : -EFAULT;
}

/** pread(): the file's content from the page cache (or disk). */
export function pread(k: Ctx, fileId: number, offset: number, len: number): Content | number {
  const file = k.s.files.get(fileId);
  if (!file) return -EINVAL;
  const out: Content = [];
  const end = Math.min(offset + len, file.size);
  if (file.kind === 'disk' && file.cache.size === 0 && offset % PAGE_SIZE === 0) {
    // nothing cached: the run-length disk content directly
    let at = 0;
    const first = offset / PAGE_SIZE;
    const last = Math.ceil(end / PAGE_SIZE);
    for (const [t, n] of file.disk) {
      pushContent(out, t, Math.min(at + n, last) - Math.max(at, first));
      at += n;
    }
    pushContent(out, 0, last - Math.max(at, first));
    return out;
  }
  for (let a = offset; a < end; a += PAGE_SIZE) pushContent(out, fileToken(k, file, a / PAGE_SIZE), 1);
  return out;
}

/** pwrite(): write a token into whole pages of the file through the page cache. */
export function pwrite(k: Ctx, fileId: number, offset: number, len: number, token: number): number {
  const file = k.s.files.get(fileId);
  if (!file || offset % PAGE_SIZE) return -EINVAL;
  for (let a = offset; a < offset + len; a += PAGE_SIZE) writeFileToken(k, file, a / PAGE_SIZE, token);
  return len;
}
