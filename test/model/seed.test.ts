/**
 * The seed (84209e87c696 + 8d6a0ac09a16): R/O long-term pins of non-anonymous pages in COW
 * mappings unshare on v6.2 and are unreliable on v6.1.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FOLL_PIN, HPAGE_PMD_NR, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PMD_SIZE, PROT_READ } from '../../src/model/constants.ts';
import { gup } from '../../src/model/gup.ts';
import type { Sim } from '../../src/model/sim.ts';
import { HUGE_ZERO_FOLIO, ZERO_FOLIO } from '../../src/model/types.ts';
import { anon, clearEvents, HUGE_2M, has, hasLike, mkSim, pinSets, RW, thpArea } from './helpers.ts';

interface Case {
  name: string;
  /** maps the memory, reads it, returns the address and the length to pin */
  setup: (sim: Sim) => { addr: number; len: number; before: number };
}

const CASES: Case[] = [
  {
    name: 'shared zeropage',
    setup: (sim) => {
      const addr = anon(sim, PAGE_SIZE);
      sim.read(1, addr, PAGE_SIZE);
      return { addr, len: PAGE_SIZE, before: ZERO_FOLIO };
    },
  },
  {
    name: 'memfd page cache mapped MAP_PRIVATE',
    setup: (sim) => {
      const fd = sim.memfdCreate();
      sim.fallocate(fd, PAGE_SIZE);
      const addr = sim.mmap(1, { len: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE, file: fd });
      sim.read(1, addr, PAGE_SIZE);
      return { addr, len: PAGE_SIZE, before: sim.state.files.get(fd).cache.get(0) };
    },
  },
  {
    name: 'huge zeropage',
    setup: (sim) => {
      const addr = thpArea(sim);
      sim.read(1, addr, PMD_SIZE);
      return { addr, len: PMD_SIZE, before: HUGE_ZERO_FOLIO };
    },
  },
  {
    name: 'hugetlb memfd mapped MAP_PRIVATE',
    setup: (sim) => {
      const fd = sim.memfdCreate(HUGE_2M);
      assert.equal(sim.fallocate(fd, HUGE_2M), 0);
      const addr = sim.mmap(1, { len: HUGE_2M, prot: RW, flags: MAP_PRIVATE, file: fd });
      assert.ok(addr > 0);
      sim.read(1, addr, HUGE_2M);
      return { addr, len: HUGE_2M, before: sim.state.files.get(fd).cache.get(0) };
    },
  },
];

for (const c of CASES) {
  for (const fast of [false, true]) {
    const how = fast ? 'GUP-fast' : 'GUP';
    test(`v6.2: R/O long-term ${how} pin of ${c.name} unshares and sees a later memset`, () => {
      const sim = mkSim('v6.2');
      const { addr, len, before } = c.setup(sim);
      assert.equal(sim.pagemap(1, addr).folio, before);
      clearEvents(sim);
      assert.equal(sim.gupTestStart(1, addr, len, false, fast), 0);
      if (fast) assert.ok(has(sim, 'GUP-fast: fall back to the slow path'));
      assert.ok(hasLike(sim, /unshare: copy/), 'expected an unshare copy');
      const now = sim.pagemap(1, addr).folio;
      assert.ok(now >= 0 && now !== before, `pin should be on a new anonymous page, got ${now}`);
      assert.equal(sim.state.folios.get(now).kind, 'anon');
      assert.equal(sim.state.folios.get(now).exclusive[0], true);
      sim.memset(1, addr, 0xff, len);
      assert.deepEqual(sim.gupTestRead(1), [[0xff, len / PAGE_SIZE]]);
      assert.deepEqual(sim.gupTestRead(1), sim.read(1, addr, len));
    });

    test(`v6.1: R/O long-term ${how} pin of ${c.name} does not see a later memset`, () => {
      const sim = mkSim('v6.1');
      const { addr, len, before } = c.setup(sim);
      clearEvents(sim);
      assert.equal(sim.gupTestStart(1, addr, len, false, fast), 0);
      assert.ok(!hasLike(sim, /unshare/));
      assert.equal(sim.pagemap(1, addr).folio, before, 'the pin leaves the mapping alone');
      assert.equal(pinSets(sim, 'gup_test')[0].runs[0].folio, before);
      sim.memset(1, addr, 0xff, len);
      assert.deepEqual(sim.read(1, addr, len), [[0xff, len / PAGE_SIZE]]);
      assert.deepEqual(sim.gupTestRead(1), [[0, len / PAGE_SIZE]]);
    });
  }
}

test('GUP-fast R/O long-term pin of a page-cache page falls back on v6.2 only', () => {
  for (const [kernel, fallback] of [
    ['v6.1', false],
    ['v6.2', true],
  ] as const) {
    const sim = mkSim(kernel);
    const fd = sim.memfdCreate();
    sim.fallocate(fd, PAGE_SIZE);
    const addr = sim.mmap(1, { len: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE, file: fd });
    sim.read(1, addr, PAGE_SIZE);
    clearEvents(sim);
    sim.gupTestStart(1, addr, PAGE_SIZE, false, true);
    assert.equal(has(sim, 'GUP-fast: fall back to the slow path'), fallback, kernel);
  }
});

test('v6.2: GUP-fast R/O long-term pin of the huge zeropage falls back; on v6.1 GUP-fast takes it whole', () => {
  for (const [kernel, fallback] of [
    ['v6.1', false],
    ['v6.2', true],
  ] as const) {
    const sim = mkSim(kernel);
    const addr = thpArea(sim);
    sim.read(1, addr, PMD_SIZE);
    clearEvents(sim);
    sim.gupTestStart(1, addr, PMD_SIZE, false, true);
    assert.equal(has(sim, 'GUP-fast: fall back to the slow path'), fallback, kernel);
    if (!fallback) {
      assert.equal(sim.state.hugeZeroPins, HPAGE_PMD_NR);
      assert.equal(sim.pagemap(1, addr).folio, HUGE_ZERO_FOLIO);
    } else assert.equal(sim.state.hugeZeroPins, 0);
  }
});

test('v6.1: R/O long-term pin of the shared zeropage takes GUP_PIN_COUNTING_BIAS on it; unpin returns it', () => {
  const sim = mkSim('v6.1');
  const addr = anon(sim, PAGE_SIZE);
  sim.read(1, addr, PAGE_SIZE);
  sim.gupTestStart(1, addr, PAGE_SIZE, false, false);
  assert.equal(sim.state.zeroPageRefs, 1024);
  sim.gupTestStop(1);
  assert.equal(sim.state.zeroPageRefs, 0);
});

test('v6.2: short-term (not FOLL_LONGTERM) R/O pin of the shared zeropage does not unshare', () => {
  const sim = mkSim('v6.2');
  const addr = anon(sim, PAGE_SIZE);
  sim.read(1, addr, PAGE_SIZE);
  const r = gup(sim.k, sim.state.procs.get(1).mm, addr, 1, FOLL_PIN, false);
  assert.equal(r.nr, 1);
  assert.equal(r.runs[0].folio, ZERO_FOLIO);
  assert.equal(sim.pagemap(1, addr).folio, ZERO_FOLIO);
});

for (const prot of [PROT_READ, RW]) {
  test(`v6.2: R/O long-term pin in a MAP_SHARED memfd mapping (prot ${prot}) does not unshare; the pin is the page-cache folio`, () => {
    const sim = mkSim('v6.2');
    const fd = sim.memfdCreate();
    sim.fallocate(fd, PAGE_SIZE);
    const addr = sim.mmap(1, { len: PAGE_SIZE, prot, flags: MAP_SHARED, file: fd });
    sim.read(1, addr, PAGE_SIZE);
    const cache = sim.state.files.get(fd).cache.get(0);
    for (const fast of [false, true]) {
      clearEvents(sim);
      assert.equal(sim.gupTestStart(1, addr, PAGE_SIZE, false, fast), 0);
      assert.ok(!hasLike(sim, /unshare/));
      assert.equal(pinSets(sim, 'gup_test')[0].runs[0].folio, cache);
      assert.equal(sim.pagemap(1, addr).folio, cache);
      sim.pwrite(fd, 0, PAGE_SIZE, 0x33 + Number(fast));
      assert.deepEqual(sim.gupTestRead(1), [[0x33 + Number(fast), 1]]);
      sim.gupTestStop(1);
    }
  });
}

test('v6.2: the unshared copy of a private memfd page does not write to the file', () => {
  const sim = mkSim('v6.2');
  const fd = sim.memfdCreate();
  sim.pwrite(fd, 0, PAGE_SIZE, 7);
  const addr = sim.mmap(1, { len: PAGE_SIZE, prot: RW, flags: MAP_PRIVATE, file: fd });
  sim.read(1, addr, PAGE_SIZE);
  sim.gupTestStart(1, addr, PAGE_SIZE, false, false);
  assert.deepEqual(sim.gupTestRead(1), [[7, 1]]);
  sim.memset(1, addr, 0xff, PAGE_SIZE);
  assert.deepEqual(sim.gupTestRead(1), [[0xff, 1]]);
  assert.deepEqual(sim.pread(fd, 0, PAGE_SIZE), [[7, 1]]);
});
