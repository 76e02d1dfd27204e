import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeState } from '../../src/model/canon.ts';
import { EINVAL, ENOMEM, MADV_DONTNEED, MADV_PAGEOUT, PAGE_SIZE, PMD_SIZE, TASK_SIZE } from '../../src/model/constants.ts';
import { SEED_MACHINE } from '../../src/model/machine.ts';
import { Sim } from '../../src/model/sim.ts';
import { canonicalJson, cloneState, createState, hashState, ownProc } from '../../src/model/state.ts';
import { ownTable } from '../../src/model/table.ts';
import type { Proc, State } from '../../src/model/types.ts';
import { anon, applyOps, clearEvents, historyStart, mkSim, opArb, profile, thpArea } from './helpers.ts';

function build(token = 1) {
  const sim = mkSim('v6.2');
  const a = anon(sim, 4 * PAGE_SIZE);
  sim.memset(1, a, token, 4 * PAGE_SIZE);
  sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
  const fd = sim.tmpfile();
  sim.pwrite(fd, 0, 2 * PAGE_SIZE, 4);
  const pipe = sim.pipe();
  sim.vmsplice(1, pipe, a + PAGE_SIZE, PAGE_SIZE);
  sim.gupTestStart(1, a + 2 * PAGE_SIZE, PAGE_SIZE, false, false);
  const t = thpArea(sim);
  sim.memset(1, t, 2, PMD_SIZE);
  sim.fork(1);
  return { sim, a, t };
}

test('cloneState gives an equal state with an equal hash', () => {
  const { sim } = build();
  const c = cloneState(sim.state);
  // (internals such as a big table's look-up index may differ; the plain form may not)
  assert.equal(hashState(c), hashState(sim.state));
  assert.equal(canonicalJson(c), canonicalJson(sim.state));
});

test('cloneState: mutating the clone (processes through ownProc) leaves the original and its hash alone', () => {
  const { sim, a, t } = build();
  const h = hashState(sim.state);
  const json = canonicalJson(sim.state);
  const mutations: Array<(s: ReturnType<typeof cloneState>) => void> = [
    (s) => {
      s.folios.get(s.folios.keys()[0]).setData(0, 99);
    },
    (s) => {
      s.folios.get(s.folios.keys()[0]).setMapcount(0, 7);
    },
    (s) => {
      const f = s.folios.get(s.folios.keys()[0]);
      f.setExclusive(0, !f.exclusiveAt(0));
    },
    (s) => {
      const pt = own(s, 1).mm.pte;
      const p = pt.get(a / PAGE_SIZE + 1);
      if (p.t === 'page') pt.set(a / PAGE_SIZE + 1, { ...p, write: !p.write });
    },
    (s) => {
      const pt = own(s, 1).mm.pmd;
      const l = pt.get(t / PAGE_SIZE);
      pt.set(t / PAGE_SIZE, { ...l, dirty: !l.dirty });
    },
    (s) => {
      own(s, 1).mm.vmas[0].flags ^= 1;
    },
    (s) => {
      [...s.files.values()][0].disk[0][0] = 77;
    },
    (s) => {
      const pipe = [...s.pipes.values()][0]; // pipes and runs are immutable: a change replaces them
      s.pipes.set(pipe.id, { id: pipe.id, bufs: [{ ...pipe.bufs[0], n: 5 }, ...pipe.bufs.slice(1)] });
    },
    (s) => {
      const ps = [...s.pins.values()][0];
      s.pins.set(ps.id, { ...ps, runs: [{ ...ps.runs[0], n: 5 }, ...ps.runs.slice(1)] });
    },
    (s) => {
      [...s.swap.values()][0].data = 55;
    },
    (s) => {
      s.hugetlb = [{ ...s.hugetlb[0], free: 0 }, ...s.hugetlb.slice(1)];
    },
  ];
  for (const [i, m] of mutations.entries()) {
    const c = cloneState(sim.state);
    m(c);
    assert.notEqual(hashState(c), h, `mutation ${i} should change the clone's hash`);
    assert.equal(hashState(sim.state), h, `mutation ${i} leaked into the original`);
    assert.equal(canonicalJson(sim.state), json, `mutation ${i} leaked into the original`);
  }
});

const own = (s: State, pid: number) => ownProc(s, pid) as Proc;

test('cloneState shares process records until one side takes its own (ownProc), on either side', () => {
  const { sim } = build();
  const c = cloneState(sim.state);
  const shared = sim.state.procs.get(1);
  assert.equal(c.procs.get(1), shared, 'shared after the clone');
  const mine = own(c, 1);
  assert.notEqual(mine, shared, 'the clone copies on its first ownProc');
  assert.equal(own(c, 1), mine, 'and only once');
  assert.equal(sim.state.procs.get(1), shared, 'the original keeps its record');
  // the original must copy too before it writes: the clone may still share its other processes
  assert.notEqual(own(sim.state, 1), shared);
  assert.equal(c.procs.get(2), sim.state.procs.get(2), 'untouched processes stay shared');
  assert.equal(canonicalJson(c), canonicalJson(sim.state));
});

test("a clone writes to a process it did not touch yet only through its own copy: unpin of another process's set, the split of a folio another process maps", () => {
  // unpin: Sim.unpin works on the set; the owner's VmPin changes in the clone only
  {
    const sim = mkSim('v6.2');
    const a = anon(sim, 4 * PAGE_SIZE);
    assert.ok(sim.ioUringRegister(1, a, PAGE_SIZE) >= 0);
    const before = encodeState(sim.state);
    const other = mkSim('v6.2');
    other.k.s = cloneState(sim.state);
    other.unpin(other.state.pins.keys()[0]);
    assert.equal(other.state.procs.get(1).mm.pinnedVm, 0);
    assert.equal(sim.state.procs.get(1).mm.pinnedVm, 1);
    assert.deepEqual(encodeState(sim.state), before);
  }
  // split_huge_page from the parent's MADV_PAGEOUT rewrites the child's PTEs of the same folio
  {
    const sim = mkSim('v6.2');
    const t = thpArea(sim);
    sim.memset(1, t, 1, PMD_SIZE);
    const child = sim.fork(1);
    sim.madvise(1, t + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED); // the parent's PMD split, unit 1 dropped
    sim.madvise(child, t, PAGE_SIZE, MADV_DONTNEED); // the child's too, unit 0 dropped: unit 0 is the parent's alone
    const large = sim.pagemap(1, t).folio;
    const before = encodeState(sim.state);
    const other = mkSim('v6.2');
    other.k.s = cloneState(sim.state);
    clearEvents(other);
    other.madvise(1, t, PAGE_SIZE, MADV_PAGEOUT);
    assert.notEqual(other.pagemap(child, t + 2 * PAGE_SIZE).folio, large, "the clone's child maps the split-off small folios");
    assert.equal(sim.pagemap(child, t + 2 * PAGE_SIZE).folio, large, "the original's child still maps the large folio");
    assert.deepEqual(encodeState(sim.state), before);
  }
});

test("a clone and its original go on independently: neither side's operations show on the other, and each ends where an unshared run ends", () => {
  const p = profile('v6.2');
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 14 }), fc.array(opArb, { maxLength: 14 }), (before, after) => {
      const start = () => historyStart(p, true);
      // the reference: the whole history in one state
      const ref = start();
      applyOps(ref.sim, ref.a, ref.t, ref.pipe, [...before, ...after]);
      const want = encodeState(ref.sim.state);
      // the same history, cloned in the middle; the clone goes on, then the original
      const orig = start();
      applyOps(orig.sim, orig.a, orig.t, orig.pipe, before);
      const atClone = encodeState(orig.sim.state);
      const other = new Sim(p, SEED_MACHINE, { check: true });
      other.k.s = cloneState(orig.sim.state);
      applyOps(other, orig.a, orig.t, orig.pipe, after);
      assert.deepEqual(encodeState(orig.sim.state), atClone, 'the operations on the clone changed the original');
      assert.deepEqual(encodeState(other.state), want, 'the clone did not end where the unshared run ended');
      const cloneWords = encodeState(other.state);
      applyOps(orig.sim, orig.a, orig.t, orig.pipe, after);
      assert.deepEqual(encodeState(orig.sim.state), want, 'the original did not end where the unshared run ended');
      assert.deepEqual(encodeState(other.state), cloneWords, 'the operations on the original changed the clone');
    }),
    { numRuns: 150 },
  );
});

test('encodeState of a state longer than any encoded before: all its words, the first time too', () => {
  // 16 MiB of small pages: ~12,000 PTEs, far more words than any other state of this test file
  const sim = mkSim('v6.2');
  const len = 16 << 20;
  const a = anon(sim, len);
  sim.memset(1, a, 1, len);
  const first = encodeState(sim.state);
  const again = encodeState(sim.state);
  assert.ok(first.length > 4 * (len / PAGE_SIZE), `${first.length} words`);
  assert.deepEqual(first, again);
});

test('different states hash differently; equal histories hash equal', () => {
  assert.equal(hashState(build(1).sim.state), hashState(build(1).sim.state));
  assert.notEqual(hashState(build(1).sim.state), hashState(build(2).sim.state));
  const sim = mkSim('v6.2');
  const before = hashState(sim.state);
  const a = anon(sim, PAGE_SIZE);
  const mapped = hashState(sim.state);
  assert.notEqual(mapped, before);
  sim.read(1, a, PAGE_SIZE);
  assert.notEqual(hashState(sim.state), mapped);
  assert.equal(hashState(createState(SEED_MACHINE)), before);
  assert.match(before, /^[0-9a-f]{16}$/);
});

test('the fingerprint ignores the names the model hands out (folio ids, pids, slots)', () => {
  // the same state reached with different id counters: a pipe made and closed first shifts every id
  const plain = mkSim('v6.2');
  const shifted = mkSim('v6.2');
  shifted.pipeClose(shifted.pipe());
  for (const sim of [plain, shifted]) {
    const a = anon(sim, 2 * PAGE_SIZE);
    sim.memset(1, a, 7, 2 * PAGE_SIZE);
    sim.madvise(1, a, PAGE_SIZE, MADV_PAGEOUT);
    sim.fork(1);
  }
  assert.notEqual(canonicalJson(plain.state), canonicalJson(shifted.state));
  assert.equal(hashState(plain.state), hashState(shifted.state));
  assert.deepEqual(encodeState(plain.state), encodeState(shifted.state));
});

test('page tables are visited in address order whatever order the faults came in', () => {
  const order = (pages: number[]) => {
    const sim = mkSim('v6.2');
    const a = anon(sim, 3 * PAGE_SIZE);
    for (const i of pages) sim.memset(1, a + i * PAGE_SIZE, 1, PAGE_SIZE);
    return sim.state;
  };
  const up = order([0, 1, 2]);
  const down = order([2, 1, 0]);
  // the folios got other ids (first fault first), yet the canonical form is the same
  assert.equal(hashState(up), hashState(down));
  // (the keys of the page table, not the own fields of its object, which Object.keys listed)
  const keys = down.procs.get(1).mm.pte.keys();
  assert.equal(keys.length, 3);
  assert.deepEqual(keys, up.procs.get(1).mm.pte.keys());
  assert.deepEqual(
    keys,
    [...keys].sort((x, y) => x - y),
  );
});

test('the canonical form still tells apart which page a PTE maps', () => {
  // two private pages with equal contents; swap which PTE maps the pinned one
  const build2 = (pinFirst: boolean) => {
    const sim = mkSim('v6.2');
    const a = anon(sim, 2 * PAGE_SIZE);
    sim.memset(1, a, 3, 2 * PAGE_SIZE);
    sim.gupTestStart(1, a + (pinFirst ? 0 : PAGE_SIZE), PAGE_SIZE, false, false);
    return sim.state;
  };
  assert.notEqual(hashState(build2(true)), hashState(build2(false)));
});

test('addresses stay below TASK_SIZE, so page-table keys stay array indices', () => {
  const sim = mkSim('v6.2');
  const a = anon(sim, PAGE_SIZE);
  assert.ok(a + PAGE_SIZE <= TASK_SIZE && a / PAGE_SIZE < 2 ** 32 - 1);
  assert.equal(sim.mremap(1, a, PAGE_SIZE, TASK_SIZE - PAGE_SIZE + PAGE_SIZE), -EINVAL);
  assert.equal(sim.mmap(1, { len: TASK_SIZE, prot: 3, flags: 0x22 }), -ENOMEM);
});

test('a folio or swap slot nothing refers to still counts in the canonical form (only a leak leaves one)', () => {
  const { sim } = build();
  const h = hashState(sim.state);
  const leakFolio = cloneState(sim.state);
  leakFolio.folios.alloc(9999, 'anon', 1, 0, 1, [42], -1, 0).refcount = 1;
  assert.notEqual(hashState(leakFolio), h);
  const leakSlot = cloneState(sim.state);
  ownTable(leakSlot, 'swap').set(9999, { count: 0, data: 42 });
  assert.notEqual(hashState(leakSlot), h);
  assert.notEqual(hashState(leakSlot), hashState(leakFolio));
});

/**
 * The canonical form is the explorer's notion of "the same state": a change of the model's storage
 * must not change it. These fingerprints were taken with the compact form of session 5 (the one
 * before it, from session 2, survived session 3's change to packed tables and folio records; the
 * new one kept its equalities: the same states hash equal across kernels). Regenerate
 * (UPDATE_GOLDEN=1) only for a deliberate change of the canonical form, or of a rule that makes
 * these states differently (session 5 again: a read fault no longer sets a PTE's soft-dirty bit).
 */
test('fingerprints of fixed states stay as recorded (test/golden/fingerprints.txt)', () => {
  const lines: string[] = [];
  for (const kernel of ['v5.7', 'v5.9', 'v6.1', 'v6.2', 'latest']) {
    const k = mkSim(kernel);
    const a = anon(k, 4 * PAGE_SIZE);
    k.memset(1, a, 1, 2 * PAGE_SIZE);
    k.read(1, a + 2 * PAGE_SIZE, PAGE_SIZE);
    const c = k.fork(1);
    const p = k.pipe();
    k.vmsplice(c, p, a, PAGE_SIZE);
    k.gupTestStart(1, a + PAGE_SIZE, PAGE_SIZE, false, false);
    lines.push(`${kernel} small ${hashState(k.state)} ${encodeState(k.state).length}`);
    const t = thpArea(k);
    k.memset(1, t, 2, PMD_SIZE);
    k.fork(1);
    k.madvise(1, t, PMD_SIZE, MADV_PAGEOUT);
    lines.push(`${kernel} thp+swap ${hashState(k.state)} ${encodeState(k.state).length}`);
    const fd = k.tmpfile();
    k.pwrite(fd, 0, 2 * PAGE_SIZE, 4);
    lines.push(`${kernel} file ${hashState(k.state)} ${encodeState(k.state).length}`);
  }
  const got = `${lines.join('\n')}\n`;
  const file = new URL('../golden/fingerprints.txt', import.meta.url);
  if (process.env.UPDATE_GOLDEN) writeFileSync(file, got);
  assert.equal(got, readFileSync(file, 'utf8'));
});
