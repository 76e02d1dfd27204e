/**
 * Table: the model's collection keyed by small integers (vpn, folio id, pid, swap slot, page
 * index). Two parallel arrays, keys ascending: the layout the explorer needs, since cloning a table
 * is two slices, an empty table shares one frozen empty array (copied on first insert), and every
 * walk over it is already in canonical order. The interface is the part of Map the rules use.
 *
 * Iterators (keys, values, entries, for-of, forEach) walk a snapshot, so a rule may delete or insert
 * while it walks, as it could with a Map.
 *
 * A delete leaves a hole (the key stays, the value becomes NaN) instead of shifting the arrays:
 * zapping a range or freeing the 512 folios of a split THP deletes one key after another, and
 * shifting would make that quadratic. Holes are squeezed out when they outnumber the entries,
 * and before any walk over the arrays.
 */

const EMPTY: never[] = Object.freeze([]) as unknown as never[];
/** The value of a deleted key. NaN: a number, so an array of numbers stays an unboxed number
 *  array; tested with Number.isNaN, false for every object and every other number. */
const HOLE: unknown = Number.NaN;

const isHole = (v: unknown): boolean => Number.isNaN(v);

export class Table<V> {
  /** keys, ascending; never shared with another table except EMPTY */
  private ks: number[];
  /** values, at the positions of their keys; HOLE where a key was deleted */
  private vs: V[];
  /** holes in vs */
  private dead = 0;

  constructor(keys: number[] = EMPTY, values: V[] = EMPTY) {
    this.ks = keys;
    this.vs = values;
  }

  get size(): number {
    return this.ks.length - this.dead;
  }

  /** Squeezes the holes out. */
  private compact(): void {
    const ks = this.ks;
    const vs = this.vs;
    let j = 0;
    for (let i = 0; i < ks.length; i++) {
      if (isHole(vs[i])) continue;
      ks[j] = ks[i];
      vs[j] = vs[i];
      j++;
    }
    if (j === 0) {
      this.ks = EMPTY;
      this.vs = EMPTY;
    } else {
      ks.length = j;
      vs.length = j;
    }
    this.dead = 0;
  }

  /** The position of `key`, or -(insertion point) - 1. Appends and look-ups of the last key are
   *  the common case (faults come in address order, ids ascend): checked before the binary search. */
  private find(key: number): number {
    const ks = this.ks;
    let hi = ks.length - 1;
    if (hi < 0) return -1;
    const last = ks[hi];
    if (key >= last) return key === last ? hi : -(hi + 1) - 1;
    let lo = 0;
    hi--;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const k = ks[mid];
      if (k < key) lo = mid + 1;
      else if (k > key) hi = mid - 1;
      else return mid;
    }
    return -lo - 1;
  }

  /** The value of `key`; undefined when absent (typed like an integer-keyed Record: a caller that
   *  may miss checks). */
  get(key: number): V {
    const i = this.find(key);
    if (i < 0) return undefined as V;
    const v = this.vs[i];
    return (isHole(v) ? undefined : v) as V;
  }

  has(key: number): boolean {
    const i = this.find(key);
    return i >= 0 && !isHole(this.vs[i]);
  }

  set(key: number, value: V): this {
    const i = this.find(key);
    if (i >= 0) {
      if (isHole(this.vs[i])) this.dead--;
      this.vs[i] = value;
      return this;
    }
    if (this.ks === EMPTY) {
      this.ks = [key];
      this.vs = [value];
      return this;
    }
    const at = -i - 1;
    if (at === this.ks.length) {
      this.ks.push(key);
      this.vs.push(value);
    } else {
      this.ks.splice(at, 0, key);
      this.vs.splice(at, 0, value);
    }
    return this;
  }

  delete(key: number): boolean {
    const i = this.find(key);
    if (i < 0 || isHole(this.vs[i])) return false;
    const ks = this.ks;
    const vs = this.vs;
    if (i === ks.length - 1) {
      ks.pop();
      vs.pop();
      // trailing holes go with it
      while (ks.length && isHole(vs[ks.length - 1])) {
        ks.pop();
        vs.pop();
        this.dead--;
      }
      if (ks.length === 0) this.clear();
      return true;
    }
    vs[i] = HOLE as V;
    this.dead++;
    if (this.dead > 16 && this.dead * 2 > ks.length) this.compact();
    return true;
  }

  clear(): void {
    this.ks = EMPTY;
    this.vs = EMPTY;
    this.dead = 0;
  }

  /** The keys in ascending order (a copy). */
  keys(): number[] {
    if (this.dead) this.compact();
    return this.ks.slice();
  }

  /** The values in key order (a copy). */
  values(): V[] {
    if (this.dead) this.compact();
    return this.vs.slice();
  }

  entries(): Array<[number, V]> {
    if (this.dead) this.compact();
    const out: Array<[number, V]> = new Array(this.ks.length);
    for (let i = 0; i < this.ks.length; i++) out[i] = [this.ks[i], this.vs[i]];
    return out;
  }

  [Symbol.iterator](): IterableIterator<[number, V]> {
    return this.entries()[Symbol.iterator]();
  }

  forEach(fn: (value: V, key: number) => void): void {
    if (this.dead) this.compact();
    if (this.ks.length === 0) return;
    const ks = this.ks.slice();
    const vs = this.vs.slice();
    for (let i = 0; i < ks.length; i++) fn(vs[i], ks[i]);
  }

  /** The keys in [lo, hi) that have an entry, ascending (binary search, then a slice). */
  keysIn(lo: number, hi: number): number[] {
    if (this.dead) this.compact();
    const a = this.lowerBound(lo);
    const b = this.lowerBound(hi);
    return a < b ? this.ks.slice(a, b) : [];
  }

  /** Removes the entries with keys in [lo, hi) at once and returns their values, ascending. */
  removeIn(lo: number, hi: number): V[] {
    if (this.dead) this.compact();
    const a = this.lowerBound(lo);
    const b = this.lowerBound(hi);
    if (a >= b) return [];
    this.ks.splice(a, b - a);
    const out = this.vs.splice(a, b - a);
    if (this.ks.length === 0) this.clear();
    return out;
  }

  /** Is there any key in [lo, hi)? */
  hasIn(lo: number, hi: number): boolean {
    for (let i = this.lowerBound(lo); i < this.ks.length && this.ks[i] < hi; i++) if (!isHole(this.vs[i])) return true;
    return false;
  }

  private lowerBound(key: number): number {
    const i = this.find(key);
    return i >= 0 ? i : -i - 1;
  }

  /** A copy: keys sliced, each value through `copy` (identity for numbers). */
  clone(copy: (v: V) => V): Table<V> {
    if (this.dead) this.compact();
    const n = this.ks.length;
    if (n === 0) return new Table<V>();
    const vs = this.vs;
    const out: V[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = copy(vs[i]);
    return new Table(this.ks.slice(), out);
  }

  /** A copy of a table whose values are plain numbers. */
  cloneNumbers(this: Table<number>): Table<number> {
    if (this.dead) this.compact();
    return this.ks.length ? new Table(this.ks.slice(), this.vs.slice()) : new Table<number>();
  }

  /** Read-only access for walkers that must not allocate (the canonical form): keys ascending and
   *  values at the same positions. Callers must not modify the arrays. */
  rawKeys(): readonly number[] {
    if (this.dead) this.compact();
    return this.ks;
  }

  rawValues(): readonly V[] {
    if (this.dead) this.compact();
    return this.vs;
  }

  /** JSON: an object keyed by the keys in ascending order (golden files, debugging). */
  toJSON(): Record<number, V> {
    if (this.dead) this.compact();
    const o: Record<number, V> = {};
    for (let i = 0; i < this.ks.length; i++) o[this.ks[i]] = this.vs[i];
    return o;
  }
}
