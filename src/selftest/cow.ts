/**
 * tools/testing/selftests/mm/cow.c, re-told as a program against the model's user operations.
 * Nothing here knows an expected result: every ok / not ok comes from what the model's memory,
 * pipes and pins hold when the test compares, exactly where cow.c compares.
 *
 * Processes that cow.c synchronises with pipes (parent and child) are run here in the order the
 * pipes enforce. Editions (see editions.ts) switch the few places where cow.c changed over time.
 */
import { type Content, contentEqual, contentPrefix } from '../model/access.ts';
import {
  EINVAL,
  ERRNO_TEXT,
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
  PMD_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../model/constants.ts';
import type { Machine } from '../model/machine.ts';
import type { Profile } from '../model/profile.ts';
import { Sim } from '../model/sim.ts';
import type { Edition } from './editions.ts';
import { Ksft, type TestResult } from './tap.ts';

const RW = PROT_READ | PROT_WRITE;
const PARENT = 1;
const ps = PAGE_SIZE;

type AnonFn = (mem: number, size: number, isHugetlb: boolean) => void;
type NonAnonFn = (mem: number, smem: number, size: number) => void;

export interface CowResult {
  tap: string;
  exitCode: number;
  /** every result line with the [RUN] case it belongs to */
  results: TestResult[];
  counts: Ksft['cnt'];
}

function same(a: Content | string, b: Content | string): boolean {
  return typeof a !== 'string' && typeof b !== 'string' && contentEqual(a, b);
}

/** Runs the whole selftest of `edition` on a fresh model of `machine` with `profile`. */
export function runCow(profile: Profile, machine: Machine, edition: Edition, opts: { check?: boolean } = {}): CowResult {
  const sim = new Sim(profile, machine, { check: opts.check ?? true });
  const t = new Ksft();
  const ed = edition;
  const fill = ed.fill;
  const pmdsize = machine.thp ? PMD_SIZE : 0;
  // detect_thp_sizes(): per-size sysfs directories exist from 6.8 (mthp); the editions before the
  // per-size loop test the PMD size only
  const thpSizes = ed.thpSizeSuffix ? sim.thpSizes() : pmdsize ? [pmdsize] : [];
  const hugetlbSizes = machine.hugetlb.map((h) => h.size);
  const hasHugeZeropage = machine.thp && machine.hugeZeroPage;
  const gupAvailable = machine.gupTest;

  // ----- result reporting: fixed messages (older editions) or the test name (newer ones)
  let testName = '';
  const run = (name: string) => {
    testName = name;
    t.msg(`[RUN] ${name}`);
  };
  const ok = (okMsg: string) => (ed.resultIsName ? t.pass(testName) : t.pass(okMsg));
  const fail = (okMsg: string, diag: string) => {
    if (ed.resultIsName) {
      t.msg(diag);
      t.fail(testName);
    } else t.fail(okMsg);
  };
  const failMsg = (m: string) => {
    if (ed.resultIsName) {
      t.msg(m);
      t.fail(testName);
    } else t.fail(m);
  };
  const result = (cond: boolean, okMsg: string, diag: string) => (cond ? ok(okMsg) : fail(okMsg, diag));
  const skip = (m: string) => {
    if (ed.resultIsName) {
      t.msg(m);
      t.skip(testName);
    } else t.skip(m);
  };
  /** ksft_perror()-style reason in newer editions */
  const skipErr = (m: string, errno: number) => skip(ed.resultIsName ? `${m}: ${ERRNO_TEXT[errno]} (${errno})` : m);
  const leak = (okMsg: string, diag: string, xfail: boolean) => {
    if (ed.resultIsName && xfail) {
      t.msg(diag);
      t.xfail(testName);
    } else fail(okMsg, diag);
  };

  // ----- anonymous test functions

  function doTestCowInParent(mem: number, size: number, doMprotect: boolean, vmsplice: boolean, xfail: boolean) {
    const child = sim.fork(PARENT);
    // child: back up the content, optionally vmsplice + munmap
    const old = sim.read(child, mem, size);
    let status = 0;
    let pipe = -1;
    let transferred = 0;
    if (vmsplice) {
      pipe = sim.pipe();
      transferred = sim.vmsplice(child, pipe, mem, size);
      if (transferred < 0) status = 1;
      else if (transferred === 0) status = 1;
      else if (sim.munmap(child, mem, size) < 0) status = 1;
    }
    if (doMprotect) {
      const r = sim.mprotect(PARENT, mem, size, PROT_READ) | sim.mprotect(PARENT, mem, size, RW);
      if (r) {
        failMsg('mprotect() failed');
        if (pipe >= 0) sim.pipeClose(pipe);
        sim.exit(child, 0);
        sim.wait(child);
        return;
      }
    }
    sim.memset(PARENT, mem, 0xff, size);
    if (status === 0) {
      if (vmsplice) {
        const got = sim.pipeRead(pipe, transferred);
        const want = typeof old === 'string' ? old : contentPrefix(old, transferred / ps);
        status = same(got, want) ? 0 : 1;
      } else status = same(sim.read(child, mem, size), old) ? 0 : 1;
    }
    if (pipe >= 0) sim.pipeClose(pipe);
    sim.exit(child, status);
    const ret = sim.wait(child);
    if (ret === 0) ok('No leak from parent into child');
    else leak('No leak from parent into child', 'Leak from parent into child', xfail && vmsplice);
  }

  function doTestVmspliceInParent(mem: number, size: number, beforeFork: boolean, xfail: boolean) {
    const old = sim.read(PARENT, mem, size);
    const pipe = sim.pipe();
    let transferred = 0;
    if (beforeFork) {
      transferred = sim.vmsplice(PARENT, pipe, mem, size);
      if (transferred <= 0) {
        failMsg('vmsplice() failed');
        sim.pipeClose(pipe);
        return;
      }
    }
    const child = sim.fork(PARENT);
    if (!beforeFork) {
      transferred = sim.vmsplice(PARENT, pipe, mem, size);
      if (transferred <= 0) {
        failMsg('vmsplice() failed');
        sim.exit(child, 0);
        sim.wait(child);
        sim.pipeClose(pipe);
        return;
      }
    }
    if (sim.munmap(PARENT, mem, size) < 0) failMsg('munmap() failed');
    // child: modify the page content, then exit
    sim.memset(child, mem, 0xff, size);
    sim.exit(child, 0);
    sim.wait(child);
    const got = sim.pipeRead(pipe, transferred);
    const want = typeof old === 'string' ? old : contentPrefix(old, transferred / ps);
    if (same(got, want)) ok('No leak from child into parent');
    else leak('No leak from child into parent', 'Leak from child into parent', xfail);
    sim.pipeClose(pipe);
  }

  function doTestIouring(mem: number, size: number, useFork: boolean) {
    const file = sim.tmpfile();
    const buf = sim.ioUringRegister(PARENT, mem, size);
    if (buf < 0) {
      skip('io_uring_register_buffers() failed');
      sim.closeFile(file);
      return;
    }
    let child = -1;
    if (useFork) child = sim.fork(PARENT);
    else {
      let r = sim.mprotect(PARENT, mem, size, PROT_READ);
      sim.clearSoftDirty(PARENT);
      r |= sim.mprotect(PARENT, mem, size, RW);
      if (r) {
        failMsg('mprotect() failed');
        sim.unpin(buf);
        sim.closeFile(file);
        return;
      }
    }
    sim.memset(PARENT, mem, 0xff, size);
    const res = sim.ioUringWriteFixed(buf, file, 0);
    if (res !== size) failMsg('write_fixed failed');
    else {
      const tmp = sim.pread(file, 0, size);
      const cur = sim.read(PARENT, mem, size);
      result(typeof tmp !== 'number' && same(cur, tmp), 'Longterm R/W pin is reliable', 'Longtom R/W pin is not reliable');
    }
    if (useFork) {
      sim.exit(child, 0);
      sim.wait(child);
    }
    sim.unpin(buf);
    sim.closeFile(file);
  }

  type RoPin = 'plain' | 'shared' | 'previously-shared' | 'ro-exclusive';
  function doTestRoPin(mem: number, size: number, test: RoPin, fast: boolean) {
    if (!gupAvailable) {
      skip('gup_test not available');
      return;
    }
    let child = -1;
    if (test === 'shared' || test === 'previously-shared') {
      child = sim.fork(PARENT);
      if (test === 'previously-shared') {
        sim.exit(child, 0);
        sim.wait(child);
        child = -1;
      }
    } else if (test === 'ro-exclusive') {
      let r = sim.mprotect(PARENT, mem, size, PROT_READ);
      sim.clearSoftDirty(PARENT);
      r |= sim.mprotect(PARENT, mem, size, RW);
      if (r) {
        failMsg('mprotect() failed');
        return;
      }
    }
    const ret = sim.gupTestStart(PARENT, mem, size, false, fast);
    if (ret) {
      if (ret === -EINVAL) skipErr('PIN_LONGTERM_TEST_START failed', -ret);
      else failMsg(ed.resultIsName ? `PIN_LONGTERM_TEST_START failed: ${ERRNO_TEXT[-ret]} (${-ret})` : 'PIN_LONGTERM_TEST_START failed');
    } else {
      sim.memset(PARENT, mem, 0xff, size);
      const tmp = sim.gupTestRead(PARENT);
      const cur = sim.read(PARENT, mem, size);
      result(typeof tmp !== 'number' && same(cur, tmp), 'Longterm R/O pin is reliable', 'Longterm R/O pin is not reliable');
      sim.gupTestStop(PARENT);
    }
    if (child >= 0) {
      sim.exit(child, 0);
      sim.wait(child);
    }
  }

  function doTestAnonThpCollapse(mem: number, size: number, test: 'unshared' | 'fully' | 'lower' | 'upper') {
    if (sim.mprotect(PARENT, mem + ps, ps, PROT_READ) || sim.mprotect(PARENT, mem + ps, ps, RW)) {
      failMsg('mprotect() failed');
      return;
    }
    const collapseFailed = (r: number) =>
      skip(ed.resultIsName ? `MADV_COLLAPSE failed: ${ERRNO_TEXT[-r]} (${-r})` : `MADV_COLLAPSE failed: ${ERRNO_TEXT[-r]}`);
    if (test === 'unshared') {
      const r = sim.madvise(PARENT, mem, size, MADV_COLLAPSE);
      if (r) return collapseFailed(r);
    } else if (test === 'lower') sim.madvise(PARENT, mem + size / 2, size / 2, MADV_DONTFORK);
    else if (test === 'upper') sim.madvise(PARENT, mem, size / 2, MADV_DONTFORK);
    const child = sim.fork(PARENT);
    const cmpStart = test === 'upper' ? mem + size / 2 : mem;
    const cmpSize = test === 'lower' || test === 'upper' ? size / 2 : size;
    const old = sim.read(child, cmpStart, cmpSize);
    if (test !== 'unshared') {
      if (test !== 'fully') sim.madvise(PARENT, mem, size, MADV_DOFORK);
      const r = sim.madvise(PARENT, mem, size, MADV_COLLAPSE);
      if (r) {
        collapseFailed(r);
        sim.exit(child, 0);
        sim.wait(child);
        return;
      }
    }
    sim.memset(PARENT, mem, 0xff, size);
    sim.exit(child, same(sim.read(child, cmpStart, cmpSize), old) ? 0 : 1);
    if (sim.wait(child) === 0) ok('No leak from parent into child');
    else fail('No leak from parent into child', 'Leak from parent into child');
  }

  // ----- the anonymous cases, in cow.c's order

  const anonCases: Array<{ desc: string; fn: AnonFn }> = [
    { desc: 'Basic COW after fork()', fn: (m, s) => doTestCowInParent(m, s, false, false, false) },
  ];
  if (ed.mprotectCases)
    anonCases.push({
      desc: 'Basic COW after fork() with mprotect() optimization',
      fn: (m, s) => doTestCowInParent(m, s, true, false, false),
    });
  anonCases.push({ desc: 'vmsplice() + unmap in child', fn: (m, s, h) => doTestCowInParent(m, s, false, true, h) });
  if (ed.mprotectCases)
    anonCases.push({
      desc: 'vmsplice() + unmap in child with mprotect() optimization',
      fn: (m, s, h) => doTestCowInParent(m, s, true, true, h),
    });
  anonCases.push(
    { desc: 'vmsplice() before fork(), unmap in parent after fork()', fn: (m, s, h) => doTestVmspliceInParent(m, s, true, h) },
    { desc: 'vmsplice() + unmap in parent after fork()', fn: (m, s, h) => doTestVmspliceInParent(m, s, false, h) },
  );
  if (machine.liburing)
    anonCases.push(
      { desc: 'R/O-mapping a page registered as iouring fixed buffer', fn: (m, s) => doTestIouring(m, s, false) },
      { desc: 'fork() with an iouring fixed buffer', fn: (m, s) => doTestIouring(m, s, true) },
    );
  anonCases.push(
    { desc: 'R/O GUP pin on R/O-mapped shared page', fn: (m, s) => doTestRoPin(m, s, 'shared', false) },
    { desc: 'R/O GUP-fast pin on R/O-mapped shared page', fn: (m, s) => doTestRoPin(m, s, 'shared', true) },
    { desc: 'R/O GUP pin on R/O-mapped previously-shared page', fn: (m, s) => doTestRoPin(m, s, 'previously-shared', false) },
    { desc: 'R/O GUP-fast pin on R/O-mapped previously-shared page', fn: (m, s) => doTestRoPin(m, s, 'previously-shared', true) },
    { desc: 'R/O GUP pin on R/O-mapped exclusive page', fn: (m, s) => doTestRoPin(m, s, 'ro-exclusive', false) },
    { desc: 'R/O GUP-fast pin on R/O-mapped exclusive page', fn: (m, s) => doTestRoPin(m, s, 'ro-exclusive', true) },
  );

  const anonThpCases: Array<{ desc: string; fn: AnonFn }> = ed.collapseCases
    ? [
        { desc: 'Basic COW after fork() when collapsing before fork()', fn: (m, s) => doTestAnonThpCollapse(m, s, 'unshared') },
        { desc: 'Basic COW after fork() when collapsing after fork() (fully shared)', fn: (m, s) => doTestAnonThpCollapse(m, s, 'fully') },
        { desc: 'Basic COW after fork() when collapsing after fork() (lower shared)', fn: (m, s) => doTestAnonThpCollapse(m, s, 'lower') },
        { desc: 'Basic COW after fork() when collapsing after fork() (upper shared)', fn: (m, s) => doTestAnonThpCollapse(m, s, 'upper') },
      ]
    : [];

  // ----- runners

  const swapSkip = () => skip('MADV_PAGEOUT did not work, is swap enabled?');

  function runWithBasePage(fn: AnonFn, desc: string, swapout: boolean) {
    run(`${desc} ... ${swapout ? 'with swapped out base page' : 'with base page'}`);
    const mem = sim.mmap(PARENT, { len: ps, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    sim.madvise(PARENT, mem, ps, MADV_NOHUGEPAGE);
    sim.memset(PARENT, mem, fill, ps);
    if (swapout) {
      sim.madvise(PARENT, mem, ps, MADV_PAGEOUT);
      if (!sim.pagemap(PARENT, mem).swapped) {
        swapSkip();
        sim.munmap(PARENT, mem, ps);
        return;
      }
    }
    fn(mem, ps, false);
    sim.munmap(PARENT, mem, ps);
  }

  type ThpRun = 'pmd' | 'pmd-swap' | 'pte' | 'pte-swap' | 'single' | 'single-swap' | 'mremap' | 'shared';
  function doRunWithThp(fn: AnonFn, thpRun: ThpRun, S: number) {
    const mmapMem = sim.mmap(PARENT, { len: 2 * S, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const mem = Math.floor((mmapMem + S) / S) * S;
    let mremapMem = -1;
    const cleanup = () => {
      sim.munmap(PARENT, mmapMem, 2 * S);
      if (mremapMem >= 0) sim.munmap(PARENT, mremapMem, S / 2);
    };
    if (sim.madvise(PARENT, mem, S, MADV_HUGEPAGE)) {
      failMsg('MADV_HUGEPAGE failed');
      return cleanup();
    }
    sim.memset(PARENT, mem, fill, ps); // mem[0] = fill
    const probe = ed.thpProbeLast ? mem + S - ps : mem + ps;
    if (!sim.pagemap(PARENT, probe).present) {
      skip('Did not get a THP populated');
      return cleanup();
    }
    sim.memset(PARENT, mem, fill, S);
    let size = S;
    switch (thpRun) {
      case 'pte':
      case 'pte-swap':
        if (sim.mprotect(PARENT, mem + ps, ps, PROT_READ) || sim.mprotect(PARENT, mem + ps, ps, RW)) {
          failMsg('mprotect() failed');
          return cleanup();
        }
        break;
      case 'single':
      case 'single-swap':
        if (sim.madvise(PARENT, mem + ps, S - ps, MADV_DONTNEED)) {
          failMsg('MADV_DONTNEED failed');
          return cleanup();
        }
        size = ps;
        break;
      case 'mremap': {
        const half = S / 2;
        mremapMem = sim.mmap(PARENT, { len: half, prot: PROT_NONE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
        if (sim.mremap(PARENT, mem + half, half, mremapMem) !== mremapMem) {
          failMsg('mremap() failed');
          return cleanup();
        }
        size = half;
        break;
      }
      case 'shared': {
        sim.madvise(PARENT, mem + ps, S - ps, MADV_DONTFORK);
        const child = sim.fork(PARENT);
        sim.exit(child, 0);
        sim.wait(child);
        sim.madvise(PARENT, mem + ps, S - ps, MADV_DOFORK);
        break;
      }
      default:
        break;
    }
    if (thpRun === 'pmd-swap' || thpRun === 'pte-swap' || thpRun === 'single-swap') {
      sim.madvise(PARENT, mem, size, MADV_PAGEOUT);
      for (let a = mem; a < mem + size; a += ps) {
        if (!sim.pagemap(PARENT, a).swapped) {
          swapSkip();
          return cleanup();
        }
      }
    }
    fn(mem, size, false);
    cleanup();
  }

  function runWithHugetlb(fn: AnonFn, desc: string, hs: number) {
    run(`${desc} ... with hugetlb (${hs / 1024} kB)`);
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB;
    const mem = sim.mmap(PARENT, { len: hs, prot: RW, flags, hugetlbSize: hs });
    if (mem < 0) return skipErr('need more free huge pages', -mem);
    sim.memset(PARENT, mem, fill, hs);
    const dummy = sim.mmap(PARENT, { len: hs, prot: RW, flags, hugetlbSize: hs });
    if (dummy < 0) {
      skipErr('need more free huge pages', -dummy);
      sim.munmap(PARENT, mem, hs);
      return;
    }
    sim.munmap(PARENT, dummy, hs);
    fn(mem, hs, true);
    sim.munmap(PARENT, mem, hs);
  }

  const sz = (S: number) => (ed.thpSizeSuffix ? ` (${S / 1024} kB)` : '');
  function runAnonTestCase(c: { desc: string; fn: AnonFn }) {
    runWithBasePage(c.fn, c.desc, false);
    runWithBasePage(c.fn, c.desc, true);
    for (const S of thpSizes) {
      // thp_push_settings(): only size S, always (the PMD size never, unless S is the PMD size)
      const saved = ed.thpSizeSuffix ? [sim.setThpMode(pmdsize, 'never'), sim.setThpMode(S, 'always')] : [];
      const variants: Array<[string, ThpRun]> = [];
      if (S === pmdsize) variants.push([`with THP${sz(S)}`, 'pmd'], [`with swapped-out THP${sz(S)}`, 'pmd-swap']);
      variants.push(
        [`with PTE-mapped THP${sz(S)}`, 'pte'],
        [`with swapped-out, PTE-mapped THP${sz(S)}`, 'pte-swap'],
        [`with single PTE of THP${sz(S)}`, 'single'],
        [`with single PTE of swapped-out THP${sz(S)}`, 'single-swap'],
        [`with partially mremap()'ed THP${sz(S)}`, 'mremap'],
        [`with partially shared THP${sz(S)}`, 'shared'],
      );
      for (const [suffix, r] of variants) {
        run(`${c.desc} ... ${suffix}`);
        doRunWithThp(c.fn, r, S);
      }
      // thp_pop_settings()
      if (ed.thpSizeSuffix) {
        sim.setThpMode(S, saved[1]);
        sim.setThpMode(pmdsize, saved[0]);
      }
    }
    for (const hs of hugetlbSizes) runWithHugetlb(c.fn, c.desc, hs);
  }

  // ----- non-anonymous runners

  function runWithZeropage(fn: NonAnonFn, desc: string) {
    run(`${desc} ... with shared zeropage`);
    const mem = sim.mmap(PARENT, { len: ps, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const smem = sim.mmap(PARENT, { len: ps, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    sim.read(PARENT, mem, 1);
    sim.read(PARENT, smem, 1);
    fn(mem, smem, ps);
    sim.munmap(PARENT, mem, ps);
    sim.munmap(PARENT, smem, ps);
  }

  function runWithHugeZeropage(fn: NonAnonFn, desc: string) {
    run(`${desc} ... with huge zeropage`);
    if (!hasHugeZeropage) return skip('Huge zeropage not enabled');
    const S = pmdsize;
    const mmapMem = sim.mmap(PARENT, { len: 2 * S, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const mmapSmem = sim.mmap(PARENT, { len: 2 * S, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const mem = Math.floor((mmapMem + S) / S) * S;
    const smem = Math.floor((mmapSmem + S) / S) * S;
    sim.madvise(PARENT, mem, S, MADV_HUGEPAGE);
    sim.madvise(PARENT, smem, S, MADV_HUGEPAGE);
    if (ed.prefaultNonAnon) {
      sim.read(PARENT, mem, 1);
      sim.read(PARENT, smem, 1);
    }
    if (!sim.pagemap(PARENT, mem + ps).present || !sim.pagemap(PARENT, smem + ps).present) {
      t.skip('Did not get THPs populated');
    } else fn(mem, smem, S);
    sim.munmap(PARENT, mmapMem, 2 * S);
    sim.munmap(PARENT, mmapSmem, 2 * S);
  }

  function runWithFile(fn: NonAnonFn, desc: string, kind: 'memfd' | 'tmpfile') {
    run(`${desc} ... with ${kind}`);
    const fd = kind === 'memfd' ? sim.memfdCreate() : sim.tmpfile();
    if (sim.fallocate(fd, ps)) {
      failMsg('fallocate() failed');
      sim.closeFile(fd);
      return;
    }
    const mem = sim.mmap(PARENT, { len: ps, prot: RW, flags: MAP_PRIVATE, file: fd });
    const smem = sim.mmap(PARENT, { len: ps, prot: PROT_READ, flags: MAP_SHARED, file: fd });
    if (ed.prefaultNonAnon) {
      sim.read(PARENT, mem, 1);
      sim.read(PARENT, smem, 1);
    }
    fn(mem, smem, ps);
    sim.munmap(PARENT, mem, ps);
    sim.munmap(PARENT, smem, ps);
    sim.closeFile(fd);
  }

  function runWithMemfdHugetlb(fn: NonAnonFn, desc: string, hs: number) {
    run(`${desc} ... with memfd hugetlb (${hs / 1024} kB)`);
    const fd = sim.memfdCreate(hs);
    if (fd < 0) return skipErr('memfd_create() failed', -fd);
    const r = sim.fallocate(fd, hs);
    if (r) {
      skipErr('need more free huge pages', -r);
      sim.closeFile(fd);
      return;
    }
    const mem = sim.mmap(PARENT, { len: hs, prot: RW, flags: MAP_PRIVATE, file: fd });
    if (mem < 0) {
      skipErr('need more free huge pages', -mem);
      sim.closeFile(fd);
      return;
    }
    const smem = sim.mmap(PARENT, { len: hs, prot: PROT_READ, flags: MAP_SHARED, file: fd });
    if (ed.prefaultNonAnon) {
      sim.read(PARENT, mem, 1);
      sim.read(PARENT, smem, 1);
    }
    fn(mem, smem, hs);
    sim.munmap(PARENT, mem, hs);
    sim.munmap(PARENT, smem, hs);
    sim.closeFile(fd);
  }

  const testCow: NonAnonFn = (mem, smem, size) => {
    const old = sim.read(PARENT, smem, size);
    sim.memset(PARENT, mem, 0xff, size);
    result(same(sim.read(PARENT, smem, size), old), 'Other mapping not modified', 'Other mapping modified');
  };
  const nonAnonCases: Array<{ desc: string; fn: NonAnonFn }> = [
    { desc: 'Basic COW', fn: testCow },
    { desc: 'R/O longterm GUP pin', fn: (m, _s, size) => doTestRoPin(m, size, 'plain', false) },
    { desc: 'R/O longterm GUP-fast pin', fn: (m, _s, size) => doTestRoPin(m, size, 'plain', true) },
  ];

  // ----- main()

  const H = hugetlbSizes.length;
  const T = thpSizes.length;
  const perAnon = ed.thpSizeSuffix ? 2 + H + 6 * T + (pmdsize ? 2 : 0) : 2 + H + (pmdsize ? 8 : 0);
  const perNonAnon = 3 + H + (pmdsize ? 1 : 0);
  const plan = anonCases.length * perAnon + anonThpCases.length * (pmdsize ? 1 : 0) + nonAnonCases.length * perNonAnon;

  if (ed.headerFirst) t.header();
  if (ed.infoStyle === 'latest') {
    if (pmdsize) {
      t.msg(`[INFO] detected PMD size: ${pmdsize / 1024} KiB`);
      for (const S of thpSizes) t.msg(`[INFO] detected THP size: ${S / 1024} KiB`);
    }
    for (const hs of hugetlbSizes) t.msg(`[INFO] detected hugetlb page size: ${hs / 1024} KiB`);
  } else {
    if (pmdsize) t.msg(`[INFO] detected THP size: ${pmdsize / 1024} KiB`);
    for (const hs of hugetlbSizes) t.msg(`[INFO] detected hugetlb size: ${hs / 1024} KiB`);
    if (hasHugeZeropage) t.msg('[INFO] huge zeropage is enabled');
  }
  if (!ed.headerFirst) t.header();
  t.setPlan(plan);

  t.msg('[INFO] Anonymous memory tests in private mappings');
  for (const c of anonCases) runAnonTestCase(c);
  if (pmdsize && anonThpCases.length) {
    t.msg('[INFO] Anonymous THP tests');
    for (const c of anonThpCases) {
      run(c.desc);
      doRunWithThp(c.fn, 'pmd', pmdsize);
    }
  }
  t.msg('[RUN] Non-anonymous memory tests in private mappings');
  for (const c of nonAnonCases) {
    runWithZeropage(c.fn, c.desc);
    runWithFile(c.fn, c.desc, 'memfd');
    runWithFile(c.fn, c.desc, 'tmpfile');
    if (pmdsize) runWithHugeZeropage(c.fn, c.desc);
    for (const hs of hugetlbSizes) runWithMemfdHugetlb(c.fn, c.desc, hs);
  }

  let exitCode: number;
  if (ed.ending === 'finished') exitCode = t.finished();
  else if (t.cnt.fail) exitCode = t.exitFailMsg(`${t.cnt.fail} out of ${t.num()} tests failed`);
  else exitCode = t.exitPass();
  return { tap: t.text(), exitCode, counts: t.cnt, results: t.results };
}
