/**
 * struct folio, packed: every folio of a state is a record in one array of numbers (the folio
 * heap), found through a Table from folio id to the record's offset. Cloning the folios of a state
 * is then two array slices, however many folios there are, and the canonical form reads a folio's
 * fields as consecutive words. Rules reach a folio through a Folio view, whose properties read and
 * write the record (f.refcount++ works as on an object).
 *
 * Record layout, at offset o:
 *   o+0 id, o+1 kind (0 anon, 1 file), o+2 hugetlb size in bytes (0 if not hugetlb), o+3 nr units,
 *   o+4 4 KiB pages per unit, o+5 refcount, o+6 pincount, o+7 entire mapcount, o+8 swap slot (or -1),
 *   o+9 page-cache file (or -1), o+10 index in the file, then nr mapcounts, nr PG_anon_exclusive bits
 *   (0/1) and nr content tokens.
 * A freed folio's record stays in the heap as garbage until a clone compacts it away, so a view
 * held across folio_put() still reads the folio's last values, as the object did.
 */
import { Table } from './table.ts';

export type FolioKind = 'anon' | 'file';

/** A content token: every byte of a page (or hugetlb page) holds this value. */
export type Token = number;

const F_ID = 0;
const F_KIND = 1;
const F_HUGETLB = 2;
const F_NR = 3;
const F_SUB = 4;
const F_REF = 5;
const F_PIN = 6;
const F_ENTIRE = 7;
const F_SWAP = 8;
const F_FILE = 9;
const F_INDEX = 10;
/** Words before the per-unit arrays. */
export const FOLIO_HEADER = 11;

/** Words of a record of nr units. */
export const folioWords = (nr: number): number => FOLIO_HEADER + 3 * nr;

/** The plain-object form of a folio (JSON, golden files, tests): the fields of struct folio the
 *  model keeps, per unit where the kernel keeps them per page. */
export interface FolioJson {
  id: number;
  kind: FolioKind;
  hugetlb: number;
  nr: number;
  sub: number;
  refcount: number;
  pincount: number;
  mapcount: number[];
  entireMapcount: number;
  exclusive: boolean[];
  swapSlot: number;
  file: number;
  index: number;
  data: Token[];
}

/**
 * A view of one folio record.
 * - refcount: every mapping (one per PTE, one per PMD/hugetlb entry), the page cache and the swap
 *   cache (one per 4 KiB page each), FOLL_GET references, and pins (GUP_PIN_COUNTING_BIAS per pin
 *   on small folios, +1 per pinned page on large ones).
 * - pincount: large folios only (folio_has_pincount): pinned 4 KiB pages.
 * - mapcountAt(i): PTE mappings of unit i; entireMapcount: PMD (THP) or hugetlb mappings of the whole.
 * - exclusiveAt(i): PG_anon_exclusive of unit i (PMD-mapped THP and hugetlb use unit 0, the head).
 * Units are 4 KiB pages, except for hugetlb folios, whose single unit is the whole huge page.
 */
export class Folio {
  constructor(
    private readonly h: number[],
    private readonly o: number,
  ) {}

  get id(): number {
    return this.h[this.o];
  }
  get kind(): FolioKind {
    return this.h[this.o + F_KIND] === 0 ? 'anon' : 'file';
  }
  /** A hugetlb folio allocated for the page cache becomes anonymous when a private mapping takes it. */
  set kind(v: FolioKind) {
    this.h[this.o + F_KIND] = v === 'anon' ? 0 : 1;
  }
  /** 0 for 4 KiB and THP folios; the huge page size in bytes for hugetlb folios. */
  get hugetlb(): number {
    return this.h[this.o + F_HUGETLB];
  }
  /** number of units (512 for a PMD THP, 1 for small and hugetlb folios) */
  get nr(): number {
    return this.h[this.o + F_NR];
  }
  /** 4 KiB pages per unit (1, or hugetlb size / 4096) */
  get sub(): number {
    return this.h[this.o + F_SUB];
  }
  get refcount(): number {
    return this.h[this.o + F_REF];
  }
  set refcount(v: number) {
    this.h[this.o + F_REF] = v;
  }
  get pincount(): number {
    return this.h[this.o + F_PIN];
  }
  set pincount(v: number) {
    this.h[this.o + F_PIN] = v;
  }
  get entireMapcount(): number {
    return this.h[this.o + F_ENTIRE];
  }
  set entireMapcount(v: number) {
    this.h[this.o + F_ENTIRE] = v;
  }
  /** PG_swapcache: first swap slot of the folio, or -1 */
  get swapSlot(): number {
    return this.h[this.o + F_SWAP];
  }
  set swapSlot(v: number) {
    this.h[this.o + F_SWAP] = v;
  }
  /** page cache owner: file id, or -1 for anon folios */
  get file(): number {
    return this.h[this.o + F_FILE];
  }
  set file(v: number) {
    this.h[this.o + F_FILE] = v;
  }
  /** page index in the file (in units) of unit 0 */
  get index(): number {
    return this.h[this.o + F_INDEX];
  }
  set index(v: number) {
    this.h[this.o + F_INDEX] = v;
  }

  /** PTE mappings of unit i. */
  mapcountAt(i: number): number {
    return this.h[this.o + FOLIO_HEADER + i];
  }
  setMapcount(i: number, v: number): void {
    this.h[this.o + FOLIO_HEADER + i] = v;
  }
  /** PageAnonExclusive() of unit i. */
  exclusiveAt(i: number): boolean {
    return this.h[this.o + FOLIO_HEADER + this.nr + i] !== 0;
  }
  /** SetPageAnonExclusive() / ClearPageAnonExclusive() of unit i. */
  setExclusive(i: number, v: boolean): void {
    this.h[this.o + FOLIO_HEADER + this.nr + i] = v ? 1 : 0;
  }
  /** The content token of unit i. */
  dataAt(i: number): Token {
    return this.h[this.o + FOLIO_HEADER + 2 * this.nr + i];
  }
  setData(i: number, t: Token): void {
    this.h[this.o + FOLIO_HEADER + 2 * this.nr + i] = t;
  }

  /** Copies of the per-unit arrays, for readers that want them whole (tests, JSON). */
  get mapcount(): readonly number[] {
    const at = this.o + FOLIO_HEADER;
    return this.h.slice(at, at + this.nr);
  }
  get exclusive(): readonly boolean[] {
    const at = this.o + FOLIO_HEADER + this.nr;
    return this.h.slice(at, at + this.nr).map((x) => x !== 0);
  }
  get data(): readonly Token[] {
    const at = this.o + FOLIO_HEADER + 2 * this.nr;
    return this.h.slice(at, at + this.nr);
  }

  toJSON(): FolioJson {
    return {
      id: this.id,
      kind: this.kind,
      hugetlb: this.hugetlb,
      nr: this.nr,
      sub: this.sub,
      refcount: this.refcount,
      pincount: this.pincount,
      mapcount: this.mapcount.slice(),
      entireMapcount: this.entireMapcount,
      exclusive: this.exclusive.slice(),
      swapSlot: this.swapSlot,
      file: this.file,
      index: this.index,
      data: this.data.slice(),
    };
  }
}

/** The folios of a state: the heap of records and the id -> offset table. */
export class FolioTable {
  constructor(
    /** records in [0, top); every word from top on is 0 (fresh capacity) */
    private heap: number[] = [],
    private readonly at: Table<number> = new Table<number>(),
    /** words of freed records still in the heap */
    private garbage = 0,
    private top = heap.length,
  ) {}

  get size(): number {
    return this.at.size;
  }

  has(id: number): boolean {
    return this.at.has(id);
  }

  /** The folio `id`; undefined when there is none (typed like Table.get: callers that may miss check). */
  get(id: number): Folio {
    const o = this.at.get(id);
    return (o === undefined ? undefined : new Folio(this.heap, o)) as Folio;
  }

  /** A new folio record: no references, no mappings, not exclusive; content `data` per unit, or
   *  `fill` everywhere. Capacity grows by doubling and is zero, so only the header and non-zero
   *  content are written (a THP is 1,547 words). V8 grows large arrays slowly (tens of ns per
   *  word), which is why tidy() keeps the heap near its live size. */
  alloc(
    id: number,
    kind: FolioKind,
    nr: number,
    hugetlb: number,
    sub: number,
    data: readonly Token[] | Token,
    file: number,
    index: number,
  ): Folio {
    const o = this.top;
    const end = o + folioWords(nr);
    const h = this.heap;
    if (end > h.length) {
      // grow in place (views hold this array): set the length, then zero the new words
      const old = h.length;
      const want = Math.max(end, 2 * old, 256);
      h.length = want;
      h.fill(0, old, want);
    }
    this.top = end;
    h[o + F_ID] = id;
    h[o + F_KIND] = kind === 'anon' ? 0 : 1;
    h[o + F_HUGETLB] = hugetlb;
    h[o + F_NR] = nr;
    h[o + F_SUB] = sub;
    h[o + F_SWAP] = -1;
    h[o + F_FILE] = file;
    h[o + F_INDEX] = index;
    const d = o + FOLIO_HEADER + 2 * nr;
    if (typeof data === 'number') {
      if (data !== 0) for (let i = 0; i < nr; i++) h[d + i] = data;
    } else for (let i = 0; i < nr; i++) h[d + i] = data[i];
    this.at.set(id, o);
    return new Folio(h, o);
  }

  /** Forgets folio `id` (folio freed); its record becomes garbage. */
  delete(id: number): boolean {
    const o = this.at.get(id);
    if (o === undefined) return false;
    this.at.delete(id);
    this.garbage += folioWords(this.heap[o + F_NR]);
    return true;
  }

  /** Folio ids, ascending. */
  keys(): number[] {
    return this.at.keys();
  }

  /** id, offset, id, offset, ... ids ascending (for walkers; do not modify). */
  raw(): ReadonlyArray<number> {
    return this.at.raw();
  }

  /** Views of every folio, by ascending id. */
  values(): Folio[] {
    const h = this.heap;
    return this.at.values().map((o) => new Folio(h, o));
  }

  entries(): Array<[number, Folio]> {
    return this.values().map((f) => [f.id, f]);
  }

  [Symbol.iterator](): IterableIterator<[number, Folio]> {
    return this.entries()[Symbol.iterator]();
  }

  /** The heap and the offset of folio `id` (undefined if none), for walkers that read records
   *  word by word (the canonical form). Callers must not modify the heap. */
  words(): readonly number[] {
    return this.heap;
  }

  offsetOf(id: number): number | undefined {
    return this.at.get(id);
  }

  /** A copy sharing nothing: two slices, or a compacted heap when freed records outweigh live ones. */
  clone(): FolioTable {
    if (this.garbage * 2 > this.top) return this.compacted();
    return new FolioTable(this.heap.slice(0, this.top), this.at.cloneNumbers(), this.garbage);
  }

  /** Drops the garbage of a long run (a whole selftest is one state) when it outweighs the live
   *  records. Call only between operations: views taken before keep reading the old heap. */
  tidy(): void {
    if (this.garbage < 4096 || this.garbage * 2 <= this.top) return;
    const c = this.compacted();
    this.heap = c.heap;
    this.at.clear();
    const r = c.at.raw();
    for (let i = 0; i < r.length; i += 2) this.at.set(r[i], r[i + 1]);
    this.garbage = 0;
    this.top = c.top;
  }

  private compacted(): FolioTable {
    const h = this.heap;
    const heap: number[] = new Array(this.top - this.garbage);
    const at = new Table<number>();
    const r = this.at.raw();
    let n = 0;
    for (let i = 0; i < r.length; i += 2) {
      const o = r[i + 1];
      at.set(r[i], n);
      const end = o + folioWords(h[o + F_NR]);
      for (let j = o; j < end; j++) heap[n++] = h[j];
    }
    if (n !== heap.length) throw new Error(`folio heap: ${n} live words, expected ${heap.length}`);
    return new FolioTable(heap, at, 0);
  }

  toJSON(): Record<number, FolioJson> {
    const out: Record<number, FolioJson> = {};
    for (const f of this.values()) out[f.id] = f.toJSON();
    return out;
  }
}
