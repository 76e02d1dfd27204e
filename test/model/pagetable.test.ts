import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { hugeCanonWord, pmdCanonWord, pteCanonWord } from '../../src/model/canon.ts';
import {
  EMPTY_HUGE,
  EMPTY_PMD,
  entryBits,
  entryRef,
  hugeOf,
  hugeVal,
  type LeafTable,
  newHugeTable,
  newPmdTable,
  newPteTable,
  ownHuge,
  ownPmd,
  pmdOf,
  pmdVal,
  pteOf,
  pteVal,
} from '../../src/model/pagetable.ts';
import { HUGE_ZERO_FOLIO, type HugeLeaf, type PmdLeaf, type Pte } from '../../src/model/types.ts';

const BOOLS = [false, true];

/** Each entry as the model wrote it before packing: one literal per kind, fields in this order. */
function literal(p: Pte): Pte {
  if (p.t === 'page') return { t: 'page', folio: p.folio, off: p.off, write: p.write, dirty: p.dirty, softDirty: p.softDirty };
  if (p.t === 'zero') return { t: 'zero', softDirty: p.softDirty };
  return { t: 'swap', slot: p.slot, exclusive: p.exclusive, softDirty: p.softDirty };
}
const pmdLiteral = (l: PmdLeaf): PmdLeaf => ({ t: l.t, folio: l.folio, write: l.write, dirty: l.dirty, softDirty: l.softDirty });
const hugeLiteral = (l: HugeLeaf): HugeLeaf => ({ folio: l.folio, write: l.write, dirty: l.dirty });

function everyPte(): Pte[] {
  const out: Pte[] = [];
  for (const folio of [0, 1, 2, 32763, 32764, 1_000_000, 2 ** 31 + 5])
    for (const off of [0, 1, 7, 255, 510, 511, 1023])
      for (const write of BOOLS)
        for (const dirty of BOOLS) for (const softDirty of BOOLS) out.push({ t: 'page', folio, off, write, dirty, softDirty });
  for (const softDirty of BOOLS) out.push({ t: 'zero', softDirty });
  for (const slot of [0, 1, 511, 70_000, 1_000_000])
    for (const exclusive of BOOLS) for (const softDirty of BOOLS) out.push({ t: 'swap', slot, exclusive, softDirty });
  return out;
}

function everyPmd(): PmdLeaf[] {
  const out: PmdLeaf[] = [];
  for (const [t, folio] of [
    ['thp', 0],
    ['thp', 3],
    ['thp', 1_000_000],
    ['hugezero', HUGE_ZERO_FOLIO],
  ] as const)
    for (const write of BOOLS) for (const dirty of BOOLS) for (const softDirty of BOOLS) out.push({ t, folio, write, dirty, softDirty });
  return out;
}

function everyHuge(): HugeLeaf[] {
  const out: HugeLeaf[] = [];
  for (const folio of [0, 9, 1_000_000]) for (const write of BOOLS) for (const dirty of BOOLS) out.push({ folio, write, dirty });
  return out;
}

/** Round trip, today's shape and key order, distinct raw values, non-negative integers. */
function roundTrips<T extends object>(all: T[], val: (v: T) => number, of: (w: number) => T, lit: (v: T) => T): void {
  const words = new Set<number>();
  for (const v of all) {
    const w = val(v);
    assert.ok(Number.isInteger(w) && w >= 0, `raw value ${w} of ${JSON.stringify(v)}`);
    words.add(w);
    const back = of(w);
    assert.deepEqual(back, lit(v));
    assert.deepEqual(Object.keys(back), Object.keys(lit(v)), 'the fields of today, in their order');
    assert.equal(JSON.stringify(back), JSON.stringify(lit(v)));
  }
  assert.equal(words.size, all.length, 'different entries pack to different values');
}

test('codec: every PTE kind and flag combination round-trips (offsets to 511, large folio ids, slot 0)', () => {
  roundTrips(everyPte(), pteVal, pteOf, literal);
});

test('codec: every PMD leaf (THP and huge zeropage) and hugetlb entry round-trips', () => {
  roundTrips(everyPmd(), pmdVal, pmdOf, pmdLiteral);
  roundTrips(everyHuge(), hugeVal, hugeOf, hugeLiteral);
});

test('codec: the raw value is (ref + 4) * 65536 + bits, in the documented layout', () => {
  // page: type 1, write bit 2, soft-dirty bit 4, off 3 in bits 6..15
  assert.equal(pteVal({ t: 'page', folio: 5, off: 3, write: true, dirty: false, softDirty: true }), 9 * 65536 + (1 | 4 | 16 | (3 << 6)));
  assert.equal(pteVal({ t: 'zero', softDirty: false }), 3 * 65536 + 2);
  assert.equal(pteVal({ t: 'swap', slot: 0, exclusive: true, softDirty: false }), 4 * 65536 + (3 | 32));
  assert.equal(pmdVal({ t: 'hugezero', folio: HUGE_ZERO_FOLIO, write: false, dirty: true, softDirty: false }), 2 * 65536 + (2 | 8));
  assert.equal(hugeVal({ folio: 1_000_000, write: true, dirty: true }), 1_000_004 * 65536 + (1 | 4 | 8));
  const w = pteVal({ t: 'page', folio: 1_000_000, off: 511, write: true, dirty: true, softDirty: true });
  assert.ok(w > 2 ** 31, 'values past 2^31 are fine');
  assert.equal(entryRef(w), 1_000_000);
  assert.equal(entryBits(w) >>> 6, 511);
});

test('codec: an offset that does not fit, or a negative reference, is refused, not wrapped', () => {
  for (const off of [1024, -1, 0.5])
    assert.throws(() => pteVal({ t: 'page', folio: 1, off, write: false, dirty: false, softDirty: false }), RangeError);
  assert.throws(() => pteVal({ t: 'swap', slot: -5, exclusive: false, softDirty: false }), RangeError);
  assert.throws(() => hugeVal({ folio: -7, write: false, dirty: false }), RangeError);
});

test('canonical words from raw values keep what the entry means and nothing else (canon.ts)', () => {
  const b = (x: boolean) => +x;
  for (const p of everyPte()) {
    const want =
      p.t === 'page'
        ? 1 | (b(p.write) << 2) | (b(p.dirty) << 3) | (b(p.softDirty) << 4) | (p.off << 6)
        : p.t === 'zero'
          ? 2 | (b(p.softDirty) << 4)
          : 3 | (b(p.softDirty) << 4) | (b(p.exclusive) << 5);
    assert.equal(pteCanonWord(pteVal(p)), want, JSON.stringify(p));
    // the reference is not part of the word (canon.ts renames it separately)
    if (p.t === 'page') assert.equal(pteCanonWord(pteVal({ ...p, folio: p.folio + 7 })), want);
  }
  for (const l of everyPmd())
    assert.equal(pmdCanonWord(pmdVal(l)), (l.t === 'thp' ? 1 : 2) | (b(l.write) << 2) | (b(l.dirty) << 3) | (b(l.softDirty) << 4));
  for (const l of everyHuge()) assert.equal(hugeCanonWord(hugeVal(l)), 1 | (b(l.write) << 2) | (b(l.dirty) << 3));
});

// ---------------------------------------------------------------------------------------------
// LeafTable against a Map of decoded values

const bool = fc.boolean();
const pteArb: fc.Arbitrary<Pte> = fc.oneof(
  fc.record({
    t: fc.constant('page' as const),
    folio: fc.integer({ min: 0, max: 2_000_000 }),
    off: fc.integer({ min: 0, max: 511 }),
    write: bool,
    dirty: bool,
    softDirty: bool,
  }),
  fc.record({ t: fc.constant('zero' as const), softDirty: bool }),
  fc.record({ t: fc.constant('swap' as const), slot: fc.integer({ min: 0, max: 2_000_000 }), exclusive: bool, softDirty: bool }),
);
const pmdArb: fc.Arbitrary<PmdLeaf> = fc.oneof(
  fc.record({ t: fc.constant('thp' as const), folio: fc.integer({ min: 0, max: 2_000_000 }), write: bool, dirty: bool, softDirty: bool }),
  fc.record({ t: fc.constant('hugezero' as const), folio: fc.constant(HUGE_ZERO_FOLIO), write: bool, dirty: bool, softDirty: bool }),
);
const hugeArb: fc.Arbitrary<HugeLeaf> = fc.record({ folio: fc.integer({ min: 0, max: 2_000_000 }), write: bool, dirty: bool });

type Op<T> =
  | { op: 'set'; key: number; value: T }
  | { op: 'delete'; key: number }
  | { op: 'removeIn'; lo: number; hi: number }
  | { op: 'clone' }
  | { op: 'clear' };

const key = fc.integer({ min: 0, max: 40 });
function opsOf<T>(value: fc.Arbitrary<T>): fc.Arbitrary<Op<T>[]> {
  return fc.array(
    fc.oneof(
      { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), key, value }) },
      { weight: 4, arbitrary: fc.record({ op: fc.constant('delete' as const), key }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('removeIn' as const), lo: key, hi: key }) },
      { weight: 1, arbitrary: fc.constant({ op: 'clone' as const }) },
      { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
    ),
    { maxLength: 120 },
  );
}

/** Everything a LeafTable answers, computed from a Map of today's objects the slow way. */
function expectSame<T>(t: LeafTable<T>, m: Map<number, T>, lit: (v: T) => T): void {
  const keys = [...m.keys()].sort((a, b) => a - b);
  const vals = keys.map((k) => lit(m.get(k) as T));
  assert.equal(t.size, m.size);
  assert.deepEqual(t.keys(), keys);
  assert.deepEqual(
    t.raw().filter((_w, i) => i % 2 === 0),
    keys,
  );
  assert.equal(t.raw().length, 2 * keys.length);
  assert.deepEqual(t.values(), vals);
  assert.deepEqual(
    t.entries(),
    keys.map((k, i) => [k, vals[i]]),
  );
  assert.deepEqual([...t], t.entries());
  const seen: Array<[number, T]> = [];
  t.forEach((v, k) => {
    seen.push([k, v as T]);
  });
  assert.deepEqual(seen, t.entries());
  for (let k = -1; k <= 41; k++) {
    assert.deepEqual(t.get(k), m.has(k) ? lit(m.get(k) as T) : undefined);
    assert.equal(t.has(k), m.has(k));
  }
  for (const [lo, hi] of [
    [0, 41],
    [5, 17],
    [17, 5],
    [40, 41],
  ]) {
    const inside = keys.filter((k) => k >= lo && k < hi);
    assert.deepEqual(t.keysIn(lo, hi), inside);
    assert.equal(t.hasIn(lo, hi), inside.length > 0);
  }
  // toJSON: the objects of today keyed by key, in today's field order
  assert.equal(JSON.stringify(t), JSON.stringify(Object.fromEntries(keys.map((k, i) => [k, vals[i]]))));
}

function behavesLikeMap<T>(
  name: string,
  make: () => LeafTable<T>,
  value: fc.Arbitrary<T>,
  lit: (v: T) => T,
  decode: (w: number) => T,
): void {
  test(`LeafTable (${name}) behaves as a Map of decoded values through sets, deletes, range removals, clears and clones`, () => {
    fc.assert(
      fc.property(opsOf(value), (ops) => {
        let t = make();
        let m = new Map<number, T>();
        const older: Array<[LeafTable<T>, Map<number, T>]> = [];
        for (const o of ops) {
          if (o.op === 'set') {
            t.set(o.key, o.value);
            m.set(o.key, o.value);
          } else if (o.op === 'delete') assert.equal(t.delete(o.key), m.delete(o.key));
          else if (o.op === 'removeIn') {
            const gone = [...m.keys()].filter((k) => k >= o.lo && k < o.hi).sort((a, b) => a - b);
            assert.deepEqual(
              t.removeWordsIn(o.lo, o.hi).map(decode),
              gone.map((k) => lit(m.get(k) as T)),
            );
            for (const k of gone) m.delete(k);
          } else if (o.op === 'clear') {
            t.clear();
            m.clear();
          } else {
            // the clone carries on; the original must not change any more
            older.push([t, new Map(m)]);
            t = t.clone();
            m = new Map(m);
          }
        }
        expectSame(t, m, lit);
        for (const [ot, om] of older) expectSame(ot, om, lit);
      }),
      { numRuns: 200 },
    );
  });
}

behavesLikeMap('PTEs', newPteTable, pteArb, literal, pteOf);
behavesLikeMap('PMD leaves', newPmdTable, pmdArb, pmdLiteral, pmdOf);
behavesLikeMap('hugetlb entries', newHugeTable, hugeArb, hugeLiteral, hugeOf);

test('LeafTable: get hands out a copy, so changing it (against its type) changes nothing; set writes', () => {
  const t = newPteTable();
  t.set(7, { t: 'page', folio: 3, off: 1, write: false, dirty: false, softDirty: false });
  const p = t.get(7) as Pte;
  if (p.t === 'page') p.write = true;
  assert.deepEqual(t.get(7), { t: 'page', folio: 3, off: 1, write: false, dirty: false, softDirty: false });
  const v = t.values()[0] as Pte;
  if (v.t === 'page') v.dirty = true;
  assert.equal((t.get(7) as { dirty: boolean }).dirty, false);
  t.set(7, { ...t.get(7), softDirty: true });
  assert.deepEqual(t.get(7), { t: 'page', folio: 3, off: 1, write: false, dirty: false, softDirty: true });
});

test('LeafTable: toJSON writes the objects of today, field by field', () => {
  const t = newPteTable();
  t.set(9, { t: 'swap', slot: 0, exclusive: true, softDirty: false });
  t.set(4, { t: 'page', folio: 12, off: 511, write: true, dirty: false, softDirty: true });
  t.set(6, { t: 'zero', softDirty: true });
  assert.equal(
    JSON.stringify(t),
    '{"4":{"t":"page","folio":12,"off":511,"write":true,"dirty":false,"softDirty":true},' +
      '"6":{"t":"zero","softDirty":true},"9":{"t":"swap","slot":0,"exclusive":true,"softDirty":false}}',
  );
  const pmd = newPmdTable();
  pmd.set(512, { t: 'hugezero', folio: HUGE_ZERO_FOLIO, write: false, dirty: false, softDirty: true });
  pmd.set(1024, { t: 'thp', folio: 40, write: true, dirty: true, softDirty: false });
  assert.equal(
    JSON.stringify(pmd),
    '{"512":{"t":"hugezero","folio":-2,"write":false,"dirty":false,"softDirty":true},' +
      '"1024":{"t":"thp","folio":40,"write":true,"dirty":true,"softDirty":false}}',
  );
  const huge = newHugeTable();
  huge.set(0, { folio: 1_000_000, write: false, dirty: true });
  assert.equal(JSON.stringify(huge), '{"0":{"folio":1000000,"write":false,"dirty":true}}');
  assert.equal(JSON.stringify(newPteTable()), '{}');
});

test('EMPTY_PMD / EMPTY_HUGE: shared by empty mms, refuse writes; ownPmd / ownHuge replace them for the writer only', () => {
  const mm1 = { pmd: EMPTY_PMD, huge: EMPTY_HUGE };
  const mm2 = { pmd: mm1.pmd, huge: mm1.huge };
  assert.throws(() => mm1.pmd.set(512, { t: 'thp', folio: 3, write: true, dirty: true, softDirty: true }), /shared empty page table/);
  assert.throws(() => mm1.huge.set(512, { folio: 3, write: true, dirty: true }), /shared empty page table/);
  ownPmd(mm1).set(512, { t: 'thp', folio: 3, write: true, dirty: true, softDirty: true });
  ownHuge(mm1).set(1024, { folio: 4, write: false, dirty: false });
  assert.equal(mm1.pmd.get(512)?.folio, 3);
  assert.equal(mm1.huge.get(1024)?.folio, 4);
  assert.equal(mm2.pmd.size + mm2.huge.size + EMPTY_PMD.size + EMPTY_HUGE.size, 0);
});
