/**
 * Table: the model's collection keyed by small integers (vpn, folio id, pid, swap slot, page
 * index). One array of key, value, key, value, ... with keys ascending: the layout the explorer
 * needs, since cloning a table is one slice, an empty table shares one frozen empty array (copied
 * on first insert), and every walk over it is already in canonical order. The interface is the
 * part of Map the rules use.
 *
 * Iterators (keys, values, entries, for-of, forEach) walk a snapshot, so a rule may delete or insert
 * while it walks, as it could with a Map.
 *
 * A delete leaves a hole (the key stays, the value becomes NaN) instead of shifting the array:
 * zapping a range or freeing the 512 folios of a split THP deletes one key after another, and
 * shifting would make that quadratic. Holes are squeezed out when they outnumber the entries,
 * and before any walk over the array.
 */

const EMPTY: never[] = Object.freeze([]) as unknown as never[];

/** The value of a deleted key. NaN: a number, so an array of numbers stays an unboxed number
 *  array; tested with Number.isNaN, false for every object and every other number. */
const HOLE = Number.NaN;

const isHole = (v: unknown): boolean => Number.isNaN(v);

export class Table<V> {
  /** key, value pairs, keys ascending; never shared with another table except EMPTY */
  private e: Array<number | V>;
  /** holes in e */
  private dead = 0;
  /** a shared empty table (NO_ROWS): set() refuses, the holder must put a table of its own first */
  private frozen = false;

  constructor(pairs: Array<number | V> = EMPTY) {
    this.e = pairs;
  }

  get size(): number {
    return (this.e.length >> 1) - this.dead;
  }

  /** Squeezes the holes out. */
  private compact(): void {
    const e = this.e;
    let j = 0;
    for (let i = 0; i < e.length; i += 2) {
      if (isHole(e[i + 1])) continue;
      e[j] = e[i];
      e[j + 1] = e[i + 1];
      j += 2;
    }
    if (j === 0) this.e = EMPTY;
    else e.length = j;
    this.dead = 0;
  }

  /** The pair index (even) of `key`, or -(insertion pair index) - 1. Appends and look-ups of the
   *  last key are the common case (faults come in address order, ids ascend): checked first. */
  private find(key: number): number {
    const e = this.e;
    const n = e.length >> 1;
    if (n === 0) return -1;
    const last = e[2 * n - 2] as number;
    if (key >= last) return key === last ? 2 * n - 2 : -2 * n - 1;
    // keys are often consecutive (the PTEs of a range, the slots of a swapped-out THP): try the
    // position the key would have if they were
    const g = key - (e[0] as number);
    if (g >= 0 && g < n && e[2 * g] === key) return 2 * g;
    let lo = 0;
    let hi = n - 2;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const k = e[2 * mid] as number;
      if (k < key) lo = mid + 1;
      else if (k > key) hi = mid - 1;
      else return 2 * mid;
    }
    return -2 * lo - 1;
  }

  /** The value of `key`; undefined when absent (typed like an integer-keyed Record: a caller that
   *  may miss checks). */
  get(key: number): V {
    const i = this.find(key);
    if (i < 0) return undefined as V;
    const v = this.e[i + 1];
    return (isHole(v) ? undefined : v) as V;
  }

  has(key: number): boolean {
    const i = this.find(key);
    return i >= 0 && !isHole(this.e[i + 1]);
  }

  set(key: number, value: V): this {
    if (this.frozen) throw new Error('write to a shared empty table: replace it with a table of its own first (ownTable)');
    const i = this.find(key);
    if (i >= 0) {
      if (isHole(this.e[i + 1])) this.dead--;
      this.e[i + 1] = value;
      return this;
    }
    if (this.e === EMPTY) {
      this.e = [key, value];
      return this;
    }
    const at = -i - 1;
    if (at === this.e.length) {
      this.e.push(key, value);
    } else this.e.splice(at, 0, key, value);
    return this;
  }

  delete(key: number): boolean {
    const i = this.find(key);
    const e = this.e;
    if (i < 0 || isHole(e[i + 1])) return false;
    if (i === e.length - 2) {
      e.pop();
      e.pop();
      // trailing holes go with it
      while (e.length && isHole(e[e.length - 1])) {
        e.pop();
        e.pop();
        this.dead--;
      }
      if (e.length === 0) this.clear();
      return true;
    }
    e[i + 1] = HOLE as V;
    this.dead++;
    if (this.dead > 16 && this.dead * 4 > e.length) this.compact();
    return true;
  }

  clear(): void {
    this.e = EMPTY;
    this.dead = 0;
  }

  /** Replaces every value by fn(value), in place (no pair moves). */
  updateAll(fn: (v: V) => V): void {
    const e = this.e;
    for (let i = 1; i < e.length; i += 2) if (!isHole(e[i])) e[i] = fn(e[i] as V);
  }

  /** The keys in ascending order (a copy). */
  keys(): number[] {
    if (this.dead) this.compact();
    const e = this.e;
    const out: number[] = new Array(e.length >> 1);
    for (let i = 0; i < out.length; i++) out[i] = e[2 * i] as number;
    return out;
  }

  /** The values in key order (a copy). */
  values(): V[] {
    if (this.dead) this.compact();
    const e = this.e;
    const out: V[] = new Array(e.length >> 1);
    for (let i = 0; i < out.length; i++) out[i] = e[2 * i + 1] as V;
    return out;
  }

  entries(): Array<[number, V]> {
    if (this.dead) this.compact();
    const e = this.e;
    const out: Array<[number, V]> = new Array(e.length >> 1);
    for (let i = 0; i < out.length; i++) out[i] = [e[2 * i] as number, e[2 * i + 1] as V];
    return out;
  }

  [Symbol.iterator](): IterableIterator<[number, V]> {
    return this.entries()[Symbol.iterator]();
  }

  forEach(fn: (value: V, key: number) => void): void {
    for (const [k, v] of this.entries()) fn(v, k);
  }

  /** The keys in [lo, hi) that have an entry, ascending (binary search, then a copy). */
  keysIn(lo: number, hi: number): number[] {
    if (this.dead) this.compact();
    const out: number[] = [];
    const e = this.e;
    for (let i = this.lowerBound(lo); i < e.length && (e[i] as number) < hi; i += 2) out.push(e[i] as number);
    return out;
  }

  /** Removes the entries with keys in [lo, hi) at once and returns their values, ascending. */
  removeIn(lo: number, hi: number): V[] {
    if (this.dead) this.compact();
    const a = this.lowerBound(lo);
    const b = this.lowerBound(hi);
    if (a >= b) return [];
    const gone = this.e.splice(a, b - a);
    if (this.e.length === 0) this.clear();
    const out: V[] = new Array(gone.length >> 1);
    for (let i = 0; i < out.length; i++) out[i] = gone[2 * i + 1] as V;
    return out;
  }

  /** Is there any key in [lo, hi)? */
  hasIn(lo: number, hi: number): boolean {
    const e = this.e;
    for (let i = this.lowerBound(lo); i < e.length && (e[i] as number) < hi; i += 2) if (!isHole(e[i + 1])) return true;
    return false;
  }

  /** The pair index of the first key >= `key`. */
  private lowerBound(key: number): number {
    const i = this.find(key);
    return i >= 0 ? i : -i - 1;
  }

  /** A copy: the array sliced, each value through `copy`; without one, the values are shared
   *  (numbers, immutable records): one slice. */
  clone(copy?: (v: V) => V): Table<V> {
    if (this.dead) this.compact();
    if (this.e.length === 0) return new Table<V>();
    const e = this.e.slice();
    if (copy) for (let i = 1; i < e.length; i += 2) e[i] = copy(e[i] as V);
    return new Table(e);
  }

  /** Read-only access for walkers that must not allocate (the canonical form): key, value, key,
   *  value, ..., keys ascending, no holes. Callers must not modify the array. */
  raw(): ReadonlyArray<number | V> {
    if (this.dead) this.compact();
    return this.e;
  }

  /** JSON: an object keyed by the keys in ascending order (golden files, debugging). */
  toJSON(): Record<number, V> {
    const o: Record<number, V> = {};
    for (const [k, v] of this.entries()) o[k] = v;
    return o;
  }
}

/** The empty table that empty tables of states share (a clone of a state with no files, no swap
 *  and no swap cache allocates nothing for them). Writers replace it first: ownTable(). */
export const NO_ROWS: Table<never> = new Table<never>();
(NO_ROWS as unknown as { frozen: boolean }).frozen = true;

/** The table at holder[key], made the holder's own if it is the shared NO_ROWS, for a write. */
export function ownTable<H, K extends keyof H>(holder: H, key: K): H[K] {
  if ((holder[key] as unknown) === NO_ROWS) holder[key] = new Table() as H[K];
  return holder[key];
}

/** A clone of a table that may be the shared empty one: empty tables clone to NO_ROWS. */
export function cloneOrShare<V>(t: Table<V>, copy?: (v: V) => V): Table<V> {
  return t.size ? t.clone(copy) : (NO_ROWS as Table<V>);
}
