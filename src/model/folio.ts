/**
 * struct folio, packed: each folio is one array of numbers (its record) in a Table keyed by folio
 * id. Cloning the folios of a state is one slice per folio (an object and three arrays before),
 * and the canonical form reads a folio's fields as consecutive words. Rules reach a folio through
 * a Folio view, whose properties read and write the record (f.refcount++ works as on an object).
 *
 * Record layout: 0 id, 1 kind (0 anon, 1 file), 2 hugetlb size in bytes (0 if not hugetlb),
 * 3 nr units, 4 4 KiB pages per unit, 5 refcount, 6 pincount, 7 entire mapcount, 8 swap slot
 * (or -1), 9 page-cache file (or -1), 10 index in the file, 11 PG_uptodate (0/1); then per unit
 * its mapcount, its PG_anon_exclusive (0/1) and its content token, as three runs of nr words.
 *
 * (A single heap array for all folios was tried: a clone is then one slice, but V8 grows arrays
 * past ~16k elements several times slower per word, and a whole selftest run is one state, so the
 * selftest got 1.5x slower.)
 */
import { Table } from './table.ts';

export type FolioKind = 'anon' | 'file';

/** A content token: every byte of a page (or hugetlb page) holds this value. */
export type Token = number;

/** Offsets of the fields in a folio record (canon.ts reads records word by word). */
export const F_ID = 0;
export const F_KIND = 1;
export const F_HUGETLB = 2;
export const F_NR = 3;
export const F_SUB = 4;
export const F_REF = 5;
export const F_PIN = 6;
export const F_ENTIRE = 7;
export const F_SWAP = 8;
export const F_FILE = 9;
export const F_INDEX = 10;
export const F_UPTODATE = 11;
/** Words of a record before its units. */
export const FOLIO_HEADER = 12;

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
  uptodate: boolean;
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
  constructor(private readonly r: number[]) {}

  get id(): number {
    return this.r[F_ID];
  }
  get kind(): FolioKind {
    return this.r[F_KIND] === 0 ? 'anon' : 'file';
  }
  /** A hugetlb folio allocated for the page cache becomes anonymous when a private mapping takes it. */
  set kind(v: FolioKind) {
    this.r[F_KIND] = v === 'anon' ? 0 : 1;
  }
  /** 0 for 4 KiB and THP folios; the huge page size in bytes for hugetlb folios. */
  get hugetlb(): number {
    return this.r[F_HUGETLB];
  }
  /** number of units (512 for a PMD THP, 1 for small and hugetlb folios) */
  get nr(): number {
    return this.r[F_NR];
  }
  /** 4 KiB pages per unit (1, or hugetlb size / 4096) */
  get sub(): number {
    return this.r[F_SUB];
  }
  get refcount(): number {
    return this.r[F_REF];
  }
  set refcount(v: number) {
    this.r[F_REF] = v;
  }
  get pincount(): number {
    return this.r[F_PIN];
  }
  set pincount(v: number) {
    this.r[F_PIN] = v;
  }
  get entireMapcount(): number {
    return this.r[F_ENTIRE];
  }
  set entireMapcount(v: number) {
    this.r[F_ENTIRE] = v;
  }
  /** PG_swapcache: first swap slot of the folio, or -1 */
  get swapSlot(): number {
    return this.r[F_SWAP];
  }
  set swapSlot(v: number) {
    this.r[F_SWAP] = v;
  }
  /** page cache owner: file id, or -1 for anon folios */
  get file(): number {
    return this.r[F_FILE];
  }
  set file(v: number) {
    this.r[F_FILE] = v;
  }
  /** page index in the file (in units) of unit 0 */
  get index(): number {
    return this.r[F_INDEX];
  }
  set index(v: number) {
    this.r[F_INDEX] = v;
  }

  /** PG_uptodate: the content is valid. Only a shmem page that fallocate() allocated and nothing
   *  wrote or faulted yet is not (fault-around skips it). */
  get uptodate(): boolean {
    return this.r[F_UPTODATE] !== 0;
  }
  set uptodate(v: boolean) {
    this.r[F_UPTODATE] = v ? 1 : 0;
  }

  /** PTE mappings of unit i. */
  mapcountAt(i: number): number {
    return this.r[FOLIO_HEADER + i];
  }
  setMapcount(i: number, v: number): void {
    this.r[FOLIO_HEADER + i] = v;
  }
  /** PageAnonExclusive() of unit i. */
  exclusiveAt(i: number): boolean {
    return this.r[FOLIO_HEADER + this.nr + i] !== 0;
  }
  /** SetPageAnonExclusive() / ClearPageAnonExclusive() of unit i. */
  setExclusive(i: number, v: boolean): void {
    this.r[FOLIO_HEADER + this.nr + i] = v ? 1 : 0;
  }
  /** The content token of unit i. */
  dataAt(i: number): Token {
    return this.r[FOLIO_HEADER + 2 * this.nr + i];
  }
  setData(i: number, t: Token): void {
    this.r[FOLIO_HEADER + 2 * this.nr + i] = t;
  }

  /** Copies of the per-unit arrays, for readers that want them whole (tests, JSON). */
  get mapcount(): readonly number[] {
    return this.r.slice(FOLIO_HEADER, FOLIO_HEADER + this.nr);
  }
  get exclusive(): readonly boolean[] {
    const at = FOLIO_HEADER + this.nr;
    return this.r.slice(at, at + this.nr).map((x) => x !== 0);
  }
  get data(): readonly Token[] {
    const at = FOLIO_HEADER + 2 * this.nr;
    return this.r.slice(at, at + this.nr);
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
      uptodate: this.uptodate,
      data: this.data.slice(),
    };
  }
}

/** The folios of a state: folio id -> record. */
export class FolioTable {
  constructor(private readonly t: Table<number[]> = new Table<number[]>()) {}

  get size(): number {
    return this.t.size;
  }

  has(id: number): boolean {
    return this.t.has(id);
  }

  /** The folio `id`; undefined when there is none (typed like Table.get: callers that may miss check). */
  get(id: number): Folio {
    // the rules look the same folio up several times in a row (map, then put; each page of a THP)
    if (id === this.lastId && this.last !== null) return this.last;
    const r = this.t.get(id);
    if (r === undefined) return undefined as unknown as Folio;
    this.lastId = id;
    this.last = new Folio(r);
    return this.last;
  }

  /** The last view handed out, by id: views hold only their record, so handing the same view out
   *  again is the same as a new one, as long as the record is still this id's (reset on delete). */
  private lastId = -1;
  private last: Folio | null = null;

  /** The record of folio `id`, for walkers that read it word by word (the canonical form);
   *  undefined if none. Callers must not modify it. */
  recordOf(id: number): readonly number[] | undefined {
    return this.t.get(id);
  }

  /** A new folio: no references, no mappings, not exclusive; content `data` per unit, or one
   *  token everywhere. */
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
    if (this.t.has(id)) throw new Error(`folio ${id} exists`);
    const k = kind === 'anon' ? 0 : 1;
    let r: number[];
    if (nr === 1) r = [id, k, hugetlb, 1, sub, 0, 0, 0, -1, file, index, 1, 0, 0, typeof data === 'number' ? data : data[0]];
    else {
      r = new Array(FOLIO_HEADER + 3 * nr).fill(0);
      r[F_ID] = id;
      r[F_KIND] = k;
      r[F_HUGETLB] = hugetlb;
      r[F_NR] = nr;
      r[F_SUB] = sub;
      r[F_SWAP] = -1;
      r[F_FILE] = file;
      r[F_INDEX] = index;
      r[F_UPTODATE] = 1;
      const d = FOLIO_HEADER + 2 * nr;
      if (typeof data === 'number') {
        if (data !== 0) for (let i = 0; i < nr; i++) r[d + i] = data;
      } else for (let i = 0; i < nr; i++) r[d + i] = data[i];
    }
    if (id === this.lastId) this.last = null;
    this.t.set(id, r);
    return new Folio(r);
  }

  /** Forgets folio `id` (folio freed). A view held on it keeps reading its last values. */
  delete(id: number): boolean {
    if (id === this.lastId) this.last = null;
    return this.t.delete(id);
  }

  /** Folio ids, ascending. */
  keys(): number[] {
    return this.t.keys();
  }

  /** Views of every folio, by ascending id. */
  values(): Folio[] {
    return this.t.values().map((r) => new Folio(r));
  }

  entries(): Array<[number, Folio]> {
    return this.values().map((f) => [f.id, f]);
  }

  [Symbol.iterator](): IterableIterator<[number, Folio]> {
    return this.entries()[Symbol.iterator]();
  }

  /** A copy sharing nothing: one slice per folio. */
  clone(): FolioTable {
    return new FolioTable(this.t.clone(copyRecord));
  }

  toJSON(): Record<number, FolioJson> {
    const out: Record<number, FolioJson> = {};
    for (const f of this.values()) out[f.id] = f.toJSON();
    return out;
  }
}

const copyRecord = (r: number[]): number[] => r.slice();
