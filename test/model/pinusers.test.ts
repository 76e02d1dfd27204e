/**
 * The argument rules and per-version details of the pin users (io.ts): vmsplice's byte count,
 * gup_test's one system-wide pin set, io_uring's buffer validation and file check, VFIO's
 * alignment, O_DIRECT at the end of a file and on tmpfs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EFAULT, EINVAL, EOPNOTSUPP, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE } from '../../src/model/constants.ts';
import { anon, HUGE_2M, mkSim, pagePte, pte, RW } from './helpers.ts';

test('vmsplice returns the bytes it took, counts every page an unaligned range touches, and takes nothing for an empty range', () => {
  const sim = mkSim('latest');
  const a = anon(sim, 2 * PAGE_SIZE);
  sim.memset(1, a, 1, PAGE_SIZE);
  sim.memset(1, a + PAGE_SIZE, 2, PAGE_SIZE);
  const p = sim.pipe();
  assert.equal(sim.vmsplice(1, p, a, 100), 100);
  assert.equal(sim.vmsplice(1, p, a + 100, PAGE_SIZE), PAGE_SIZE, 'two pages, PAGE_SIZE bytes');
  assert.equal(
    sim.state.pipes.get(p).bufs.reduce((n, b) => n + b.n, 0),
    3,
  );
  assert.equal(sim.vmsplice(1, p, a, 0), 0);
  assert.equal(
    sim.state.pipes.get(p).bufs.reduce((n, b) => n + b.n, 0),
    3,
  );
});

test('gup_test has one pin set for the whole system: a second START fails from any process, READ and STOP work from any', () => {
  const sim = mkSim('latest');
  const a = anon(sim, PAGE_SIZE);
  sim.memset(1, a, 7, PAGE_SIZE);
  assert.equal(sim.gupTestStart(1, a, PAGE_SIZE, false, false), 0);
  const c = sim.fork(1);
  const b = anon(sim, PAGE_SIZE, RW, c);
  sim.memset(c, b, 8, PAGE_SIZE);
  assert.equal(sim.gupTestStart(c, b, PAGE_SIZE, false, false), -EINVAL);
  assert.deepEqual(sim.gupTestRead(c), [[7, 1]], "the child reads the parent's pinned page");
  assert.equal(sim.gupTestStop(c), 0);
  assert.equal(sim.gupTestRead(1), -EINVAL, 'stopped for everybody');
  assert.equal(sim.gupTestStart(c, b, PAGE_SIZE, false, false), 0, 'and free to start again');
});

test('io_uring refuses an empty buffer and one over 1 GiB (EFAULT), and pins every page an unaligned buffer touches', () => {
  const sim = mkSim('latest');
  const a = anon(sim, 2 * PAGE_SIZE);
  assert.equal(sim.ioUringRegister(1, a, 0), -EFAULT);
  assert.equal(sim.ioUringRegister(1, a, 2 ** 30 + PAGE_SIZE), -EFAULT);
  assert.ok(sim.ioUringRegister(1, a + 100, PAGE_SIZE) > 0);
  assert.equal(sim.state.procs.get(1).mm.pinnedVm, 2);
  assert.ok(pte(sim, 1, a + PAGE_SIZE), 'the second page was faulted in and pinned');
});

test('io_uring and file-backed memory: refused after pinning until 6.4 (EOPNOTSUPP), left to GUP from 6.5', () => {
  const setup = (kernel: string, flags: number) => {
    const sim = mkSim(kernel);
    const fd = sim.tmpfile();
    sim.pwrite(fd, 0, PAGE_SIZE, 3);
    const a = sim.mmap(1, { len: PAGE_SIZE, prot: RW, flags, file: fd });
    return { sim, a };
  };
  // v6.2: a private mapping of a disk file is refused, but only after the pin's write fault copied
  // the page (a COW copy stays mapped)
  let { sim, a } = setup('v6.2', MAP_PRIVATE);
  assert.equal(sim.ioUringRegister(1, a, PAGE_SIZE), -EOPNOTSUPP);
  assert.equal(sim.state.folios.get(pagePte(sim, 1, a).folio).kind, 'anon');
  assert.equal(sim.state.procs.get(1).mm.pinnedVm, 0);
  // latest: the private mapping registers its COW copy; a shared one is GUP's EFAULT
  ({ sim, a } = setup('latest', MAP_PRIVATE));
  assert.ok(sim.ioUringRegister(1, a, PAGE_SIZE) > 0);
  assert.equal(sim.state.procs.get(1).mm.pinnedVm, 1);
  ({ sim, a } = setup('latest', MAP_SHARED));
  assert.equal(sim.ioUringRegister(1, a, PAGE_SIZE), -EFAULT);
  // shmem is fine everywhere
  for (const kernel of ['v6.2', 'latest']) {
    const s = mkSim(kernel);
    const fd = s.memfdCreate();
    s.fallocate(fd, PAGE_SIZE);
    const m = s.mmap(1, { len: PAGE_SIZE, prot: RW, flags: MAP_SHARED, file: fd });
    assert.ok(s.ioUringRegister(1, m, PAGE_SIZE) > 0, kernel);
  }
});

test('VFIO MAP_DMA wants whole pages and a size (EINVAL)', () => {
  const sim = mkSim('latest');
  const a = anon(sim, 2 * PAGE_SIZE);
  assert.equal(sim.vfioMapDma(1, a, 0, false), -EINVAL);
  assert.equal(sim.vfioMapDma(1, a, 100, false), -EINVAL);
  assert.equal(sim.vfioMapDma(1, a + 1, PAGE_SIZE, false), -EINVAL);
  assert.ok(sim.vfioMapDma(1, a, PAGE_SIZE, false) > 0);
});

test('O_DIRECT: a read from the end of the file on is 0 and touches no memory', () => {
  const sim = mkSim('latest');
  const fd = sim.tmpfile();
  sim.pwrite(fd, 0, PAGE_SIZE, 3);
  const a = anon(sim, PAGE_SIZE);
  assert.equal(sim.directIo(1, fd, PAGE_SIZE, a, PAGE_SIZE, true), 0);
  assert.equal(pte(sim, 1, a), undefined);
  assert.equal(sim.directIo(1, fd, 0, a, PAGE_SIZE, true), PAGE_SIZE);
});

test('O_DIRECT on tmpfs: EINVAL before shmem-odirect (6.6); since, a buffered copy that pins nothing; never on hugetlbfs', () => {
  const setup = (kernel: string) => {
    const sim = mkSim(kernel);
    const fd = sim.memfdCreate();
    sim.fallocate(fd, PAGE_SIZE);
    const a = anon(sim, PAGE_SIZE);
    sim.memset(1, a, 5, PAGE_SIZE);
    return { sim, fd, a };
  };
  const old = setup('v6.5');
  assert.equal(old.sim.directIo(1, old.fd, 0, old.a, PAGE_SIZE, false), -EINVAL);
  // latest: a write from a page shared after fork does not unshare it (no GUP, no MMF_HAS_PINNED)
  const { sim, fd, a } = setup('latest');
  const c = sim.fork(1);
  const id = sim.pagemap(1, a).folio;
  assert.equal(sim.directIo(1, fd, 0, a, PAGE_SIZE, false), PAGE_SIZE);
  assert.deepEqual(sim.pread(fd, 0, PAGE_SIZE), [[5, 1]]);
  assert.equal(sim.pagemap(1, a).folio, id);
  assert.equal(sim.pagemap(c, a).folio, id, 'still shared with the child');
  assert.equal(sim.state.procs.get(1).mm.hasPinned, false);
  // a read into memory is a store: the shared page is copied by an ordinary write fault
  sim.pwrite(fd, 0, PAGE_SIZE, 6);
  assert.equal(sim.directIo(1, fd, 0, a, PAGE_SIZE, true), PAGE_SIZE);
  assert.notEqual(sim.pagemap(1, a).folio, id);
  assert.deepEqual(sim.read(1, a, PAGE_SIZE), [[6, 1]]);
  assert.deepEqual(sim.read(c, a, PAGE_SIZE), [[5, 1]]);
  // hugetlbfs: no O_DIRECT at all
  const h = mkSim('latest');
  const hf = h.memfdCreate(HUGE_2M);
  const b = anon(h, PAGE_SIZE);
  assert.equal(h.directIo(1, hf, 0, b, PAGE_SIZE, false), -EINVAL);
});
