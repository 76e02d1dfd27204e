import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { cloneOrShare, NO_ROWS, ownTable, Table } from '../../src/model/table.ts';

type Op =
  | { op: 'set'; key: number; value: number }
  | { op: 'delete'; key: number }
  | { op: 'removeIn'; lo: number; hi: number }
  | { op: 'clone' }
  | { op: 'clear' };

// up to 80 keys: big enough for binary searches of several steps and for compactions
const key = fc.integer({ min: 0, max: 80 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant('set' as const), key, value: fc.integer({ min: -5, max: 1000 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('delete' as const), key }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('removeIn' as const), lo: key, hi: key }) },
  { weight: 1, arbitrary: fc.constant({ op: 'clone' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
);

/** Everything a Table answers, computed from a Map the slow way. */
function expectSame(t: Table<number>, m: Map<number, number>): void {
  const keys = [...m.keys()].sort((a, b) => a - b);
  assert.equal(t.size, m.size);
  assert.deepEqual(t.keys(), keys);
  assert.deepEqual(
    [...t.raw()],
    keys.flatMap((k) => [k, m.get(k)]),
  );
  assert.deepEqual(
    t.values(),
    keys.map((k) => m.get(k)),
  );
  assert.deepEqual(
    t.entries(),
    keys.map((k) => [k, m.get(k)]),
  );
  for (let k = -1; k <= 81; k++) {
    assert.equal(t.get(k), m.get(k));
    assert.equal(t.has(k), m.has(k));
  }
  for (const [lo, hi] of [
    [0, 81],
    [5, 17],
    [17, 5],
    [40, 41],
    [30, 75],
  ]) {
    const inside = keys.filter((k) => k >= lo && k < hi);
    assert.deepEqual(t.keysIn(lo, hi), inside);
    assert.equal(t.hasIn(lo, hi), inside.length > 0);
  }
  assert.equal(JSON.stringify(t), JSON.stringify(Object.fromEntries(keys.map((k) => [k, m.get(k)]))));
}

test('Table behaves as a Map with keys in ascending order, through sets, deletes (holes), range removals and clones', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
      let t = new Table<number>();
      let m = new Map<number, number>();
      const older: Array<[Table<number>, Map<number, number>]> = [];
      for (const o of ops) {
        if (o.op === 'set') {
          t.set(o.key, o.value);
          m.set(o.key, o.value);
        } else if (o.op === 'delete') assert.equal(t.delete(o.key), m.delete(o.key));
        else if (o.op === 'removeIn') {
          const gone = [...m.keys()].filter((k) => k >= o.lo && k < o.hi).sort((a, b) => a - b);
          assert.deepEqual(
            t.removeIn(o.lo, o.hi),
            gone.map((k) => m.get(k)),
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
      expectSame(t, m);
      for (const [ot, om] of older) expectSame(ot, om);
    }),
    { numRuns: 300 },
  );
});

test('Table: deleting every key one by one from the front stays linear (holes, not shifts) and leaves nothing', () => {
  const t = new Table<number>();
  const n = 200_000;
  for (let i = 0; i < n; i++) t.set(i, i);
  // a quadratic delete would move 2e10 elements here; this completes at once
  for (let i = 0; i < n; i++) assert.equal(t.delete(i), true);
  assert.equal(t.size, 0);
  assert.deepEqual(t.keys(), []);
  t.set(7, 1);
  assert.deepEqual(t.entries(), [[7, 1]]);
});

test('Table: iterators walk a snapshot, so a walk may delete what it visits', () => {
  const t = new Table<string>();
  for (const k of [3, 1, 2]) t.set(k, `v${k}`);
  const seen: number[] = [];
  for (const [k] of t) {
    seen.push(k);
    t.delete(k);
  }
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(t.size, 0);
  for (const k of [5, 4]) t.set(k, `v${k}`);
  t.forEach((_v, k) => {
    t.delete(k);
  });
  assert.equal(t.size, 0);
});

test('Table: a clone of objects copies each value through the given function and shares nothing', () => {
  const t = new Table<{ n: number }>();
  t.set(1, { n: 1 });
  t.set(2, { n: 2 });
  const c = t.clone((v) => ({ n: v.n }));
  c.get(1).n = 10;
  c.set(3, { n: 3 });
  c.delete(2);
  assert.deepEqual(t.entries(), [
    [1, { n: 1 }],
    [2, { n: 2 }],
  ]);
  assert.deepEqual(c.entries(), [
    [1, { n: 10 }],
    [3, { n: 3 }],
  ]);
  // an empty table's clone must not share the frozen empty arrays' fate
  const e = new Table<number>();
  const ec = e.clone();
  ec.set(1, 1);
  assert.equal(e.size, 0);
});

test('Table: a big table agrees with a Map through appends, deletes (holes, pops), revivals, middle inserts, range removals and clears', () => {
  const t = new Table<number>();
  const m = new Map<number, number>();
  for (let k = 0; k < 200; k += 2) {
    t.set(k, k * 10);
    m.set(k, k * 10);
  }
  assert.equal(t.get(50), 500);
  for (const k of [300, 302, 304]) {
    t.set(k, k);
    m.set(k, k);
  }
  assert.equal(t.get(300), 300);
  assert.equal(t.get(302), 302);
  assert.equal(t.delete(302), m.delete(302));
  assert.equal(t.get(302), undefined);
  t.set(302, 9);
  m.set(302, 9);
  assert.equal(t.get(302), 9);
  assert.equal(t.delete(304), m.delete(304)); // the last pair: popped
  assert.equal(t.has(304), false);
  t.set(51, 1);
  m.set(51, 1);
  t.set(50, 7);
  m.set(50, 7);
  assert.equal(t.delete(52), m.delete(52));
  assert.equal(t.delete(53), m.delete(53));
  for (const v of t.removeIn(100, 120)) assert.ok(v >= 1000 && v < 1200);
  for (const k of [...m.keys()]) if (k >= 100 && k < 120) m.delete(k);
  const c = t.clone();
  for (let k = -1; k < 306; k++) {
    assert.equal(t.get(k), m.get(k), `get ${k}`);
    assert.equal(t.has(k), m.has(k), `has ${k}`);
    assert.equal(c.get(k), m.get(k), `clone get ${k}`);
  }
  assert.equal(t.size, m.size);
  t.clear();
  assert.equal(t.get(0), undefined);
  t.set(0, 3);
  assert.equal(t.get(0), 3);
});

test('NO_ROWS: the shared empty table refuses writes; ownTable gives the holder a table of its own first', () => {
  const a = { t: NO_ROWS as Table<number> };
  const b = { t: a.t }; // a clone shares it
  assert.throws(() => a.t.set(1, 1), /shared empty table/);
  ownTable(a, 't').set(1, 1);
  assert.equal(a.t.get(1), 1);
  assert.equal(b.t.size, 0, 'the other holder still sees an empty table');
  assert.equal(NO_ROWS.size, 0);
  assert.equal(ownTable(a, 't'), a.t, 'a table of its own stays');
  assert.equal(cloneOrShare(new Table<number>()), NO_ROWS);
});
