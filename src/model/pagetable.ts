/**
 * Page tables as packed numbers. Each entry (PTE, PMD leaf, hugetlb entry) is one number in a
 * Table<number>, so cloning a page table is one array slice and the canonical form reads the
 * numbers without touching an object. Rules see decoded, read-only copies: a change to an entry is
 * a set() of the new value, as the kernel writes a new pte_t with set_pte_at().
 *
 * The raw value of an entry is (ref + REF_BIAS) * 65536 + bits, a non-negative integer that may
 * exceed 2^31 (so the whole value is split with Math.floor and arithmetic, never bitwise ops):
 * - ref: the folio id (page PTEs, PMD leaves, hugetlb entries; HUGE_ZERO_FOLIO for the huge
 *   zeropage), the swap slot (swap PTEs), ZERO_FOLIO for zeropage PTEs;
 * - bits 0-1: the kind (PTE: page, zero, swap; PMD: thp, hugezero; hugetlb: present);
 * - bit 2 write, bit 3 dirty, bit 4 soft-dirty, bit 5 exclusive (swap PTEs: the
 *   pte_swp_exclusive marker);
 * - bits 6-15: the unit index inside the folio (page PTEs).
 */
import { cloneOrShare, NO_ROWS, Table } from './table.ts';
import { type HugeLeaf, type PmdLeaf, type Pte, ZERO_FOLIO } from './types.ts';

const RADIX = 65536;
/** Added to ref so that every raw value is non-negative (the smallest ref is HUGE_ZERO_FOLIO). */
const REF_BIAS = 4;

/** Kinds, in bits 0-1. */
export const KIND_MASK = 3;
export const PTE_PAGE = 1;
export const PTE_ZERO = 2;
export const PTE_SWAP = 3;
export const PMD_THP = 1;
export const PMD_HUGEZERO = 2;
export const HUGE_PRESENT = 1;

/** Flags. */
export const BIT_WRITE = 1 << 2;
export const BIT_DIRTY = 1 << 3;
export const BIT_SOFT_DIRTY = 1 << 4;
export const BIT_EXCLUSIVE = 1 << 5;
export const OFF_SHIFT = 6;
export const OFF_LIMIT = 1024;
/** What one more page of offset adds to a page PTE's raw value. */
export const OFF_UNIT = 1 << OFF_SHIFT;

const flag = (b: boolean, bit: number): number => (b ? bit : 0);

function unfit(what: string, x: number): never {
  throw new RangeError(`page-table entry ${what} ${x} does not fit`);
}

/** An entry's raw value from its reference and its bits. Ids and slots are integers by
 *  construction; only the sign is checked (a set() per fault makes every check count). */
function pack(ref: number, bits: number): number {
  if (!(ref >= -REF_BIAS)) unfit('reference', ref);
  return (ref + REF_BIAS) * RADIX + bits;
}

/** The low 16 bits of a raw value: kind, flags and offset. */
export function entryBits(w: number): number {
  return w - Math.floor(w / RADIX) * RADIX;
}

/** The reference of a raw value: pte_pfn() (the folio) or swp_offset() (the slot). */
export function entryRef(w: number): number {
  return Math.floor(w / RADIX) - REF_BIAS;
}

// ---------------------------------------------------------------------------------------------
// PTEs

/** mk_pte() for a page, pte_mkspecial(pfn_pte(my_zero_pfn)) for the zeropage, swp_entry_to_pte()
 *  for a swap entry: the raw value of a PTE. */
export function pteVal(p: Readonly<Pte>): number {
  if (p.t === 'page') {
    if ((p.off & (OFF_LIMIT - 1)) !== p.off) unfit('offset', p.off); // also refuses negative and fractional offsets
    return pack(
      p.folio,
      PTE_PAGE | flag(p.write, BIT_WRITE) | flag(p.dirty, BIT_DIRTY) | flag(p.softDirty, BIT_SOFT_DIRTY) | (p.off << OFF_SHIFT),
    );
  }
  if (p.t === 'zero') return pack(ZERO_FOLIO, PTE_ZERO | flag(p.softDirty, BIT_SOFT_DIRTY));
  return pack(p.slot, PTE_SWAP | flag(p.exclusive, BIT_EXCLUSIVE) | flag(p.softDirty, BIT_SOFT_DIRTY));
}

/** ptep_get(): the PTE a raw value stands for (pte_write, pte_dirty, pte_soft_dirty, or for swap
 *  entries swp_offset, pte_swp_exclusive, pte_swp_soft_dirty). One literal per kind. */
export function pteOf(w: number): Pte {
  const hi = Math.floor(w / RADIX);
  const bits = w - hi * RADIX;
  const kind = bits & KIND_MASK;
  if (kind === PTE_PAGE)
    return {
      t: 'page',
      folio: hi - REF_BIAS,
      off: bits >>> OFF_SHIFT,
      write: (bits & BIT_WRITE) !== 0,
      dirty: (bits & BIT_DIRTY) !== 0,
      softDirty: (bits & BIT_SOFT_DIRTY) !== 0,
    };
  if (kind === PTE_ZERO) return { t: 'zero', softDirty: (bits & BIT_SOFT_DIRTY) !== 0 };
  return { t: 'swap', slot: hi - REF_BIAS, exclusive: (bits & BIT_EXCLUSIVE) !== 0, softDirty: (bits & BIT_SOFT_DIRTY) !== 0 };
}

// ---------------------------------------------------------------------------------------------
// PMD leaves

/** mk_huge_pmd() (pmd_mkhuge(mk_pmd())) for a THP, mk_pmd() of the huge zero folio: the raw value
 *  of a PMD leaf. */
export function pmdVal(l: Readonly<PmdLeaf>): number {
  const kind = l.t === 'thp' ? PMD_THP : PMD_HUGEZERO;
  return pack(l.folio, kind | flag(l.write, BIT_WRITE) | flag(l.dirty, BIT_DIRTY) | flag(l.softDirty, BIT_SOFT_DIRTY));
}

/** pmdp_get(): the PMD leaf a raw value stands for (pmd_write, pmd_dirty, pmd_soft_dirty). */
export function pmdOf(w: number): PmdLeaf {
  const hi = Math.floor(w / RADIX);
  const bits = w - hi * RADIX;
  return {
    t: (bits & KIND_MASK) === PMD_THP ? 'thp' : 'hugezero',
    folio: hi - REF_BIAS,
    write: (bits & BIT_WRITE) !== 0,
    dirty: (bits & BIT_DIRTY) !== 0,
    softDirty: (bits & BIT_SOFT_DIRTY) !== 0,
  };
}

// ---------------------------------------------------------------------------------------------
// hugetlb entries

/** make_huge_pte(): the raw value of a hugetlb entry. */
export function hugeVal(l: Readonly<HugeLeaf>): number {
  return pack(l.folio, HUGE_PRESENT | flag(l.write, BIT_WRITE) | flag(l.dirty, BIT_DIRTY));
}

/** huge_ptep_get(): the hugetlb entry a raw value stands for (huge_pte_write, huge_pte_dirty). */
export function hugeOf(w: number): HugeLeaf {
  const hi = Math.floor(w / RADIX);
  const bits = w - hi * RADIX;
  return { folio: hi - REF_BIAS, write: (bits & BIT_WRITE) !== 0, dirty: (bits & BIT_DIRTY) !== 0 };
}

// ---------------------------------------------------------------------------------------------

/**
 * A page table: entries keyed by vpn, stored packed in a Table<number>. The interface is the part
 * of Table the rules use; values come out decoded and read-only, so writing an entry is always an
 * explicit set(). Walks see a snapshot, as with Table.
 *
 * One subclass per kind of entry supplies get/set/clone calling its codec directly: a rule's call
 * site then sees one class and V8 inlines the codec (a codec object shared by the three kinds made
 * every get and set a polymorphic call).
 */
export abstract class LeafTable<T> {
  /** An empty page table's inner table is the shared NO_ROWS until its first set(): a clone of an
   *  empty page table is then one small object. */
  constructor(protected t: Table<number> = NO_ROWS) {}

  /** set() refuses on the shared empty tables of each kind (EMPTY_PMD, EMPTY_HUGE). */
  protected frozen = false;

  /** The inner table, made this table's own before a change. */
  protected own(): Table<number> {
    if (this.frozen) throw new Error('write to a shared empty page table: replace it with ownPmd/ownHuge first');
    if (this.t === NO_ROWS) this.t = new Table<number>();
    return this.t;
  }

  /** The entry at `key`, decoded; undefined when absent (typed like Table.get: a caller that may
   *  miss checks). */
  abstract get(key: number): Readonly<T>;

  abstract set(key: number, value: Readonly<T>): this;

  /** A copy sharing nothing: the inner table's array sliced, no entry decoded. */
  abstract clone(): LeafTable<T>;

  protected abstract decode(w: number): T;

  /** The raw value at `key` (the codec above), undefined when absent: for hot paths that need a
   *  bit or two of an entry, not a decoded object. */
  word(key: number): number | undefined {
    return this.t.get(key);
  }

  /** Writes a raw value: one read with word(), bits changed (setting the dirty bit, say). */
  setWord(key: number, w: number): void {
    this.own().set(key, w);
  }

  get size(): number {
    return this.t.size;
  }

  has(key: number): boolean {
    return this.t.has(key);
  }

  delete(key: number): boolean {
    return this.t.delete(key);
  }

  clear(): void {
    this.t.clear();
  }

  /** The keys in ascending order (a copy). */
  keys(): number[] {
    return this.t.keys();
  }

  /** The keys in [lo, hi) that have an entry, ascending. */
  keysIn(lo: number, hi: number): number[] {
    return this.t.keysIn(lo, hi);
  }

  /** Is there any entry in [lo, hi)? */
  hasIn(lo: number, hi: number): boolean {
    return this.t.hasIn(lo, hi);
  }

  /** Clears the flag bits in `mask` (BIT_*) of every entry, in place: what a walk that
   *  write-protects or cleans every entry does (clear_refs), without decoding them. */
  clearBits(mask: number): void {
    this.t.updateAll((w) => w - (entryBits(w) & mask));
  }

  /** Removes the entries with keys in [lo, hi) and returns their raw values, ascending (a zap
   *  needs each entry's folio or slot, nothing more: entryBits/entryRef). */
  removeWordsIn(lo: number, hi: number): number[] {
    return this.t.removeIn(lo, hi);
  }

  /** The entries in key order, decoded. */
  values(): Array<Readonly<T>> {
    return this.decodeAll(this.t.values());
  }

  entries(): Array<[number, Readonly<T>]> {
    const r = this.t.raw();
    const out: Array<[number, Readonly<T>]> = new Array(r.length >> 1);
    for (let i = 0; i < out.length; i++) out[i] = [r[2 * i], this.decode(r[2 * i + 1])];
    return out;
  }

  [Symbol.iterator](): IterableIterator<[number, Readonly<T>]> {
    return this.entries()[Symbol.iterator]();
  }

  forEach(fn: (value: Readonly<T>, key: number) => void): void {
    for (const [k, v] of this.entries()) fn(v, k);
  }

  /** For walkers that must not allocate (the canonical form): key, raw value, key, raw value, ...
   *  keys ascending. Callers must not modify the array. */
  raw(): readonly number[] {
    return this.t.raw();
  }

  /** JSON: the decoded entries keyed by key in ascending order, as a Table of objects writes them. */
  toJSON(): Record<number, T> {
    const o: Record<number, T> = {};
    const r = this.t.raw();
    for (let i = 0; i < r.length; i += 2) o[r[i]] = this.decode(r[i + 1]);
    return o;
  }

  private decodeAll(ws: readonly number[]): Array<Readonly<T>> {
    const out: T[] = new Array(ws.length);
    for (let i = 0; i < ws.length; i++) out[i] = this.decode(ws[i]);
    return out;
  }
}

class PteTable extends LeafTable<Pte> {
  get(key: number): Readonly<Pte> {
    const w = this.t.get(key);
    return (w === undefined ? undefined : pteOf(w)) as Readonly<Pte>;
  }

  set(key: number, value: Readonly<Pte>): this {
    this.own().set(key, pteVal(value));
    return this;
  }

  clone(): PteTable {
    return new PteTable(cloneOrShare(this.t));
  }

  protected decode(w: number): Pte {
    return pteOf(w);
  }
}

class PmdTable extends LeafTable<PmdLeaf> {
  get(key: number): Readonly<PmdLeaf> {
    const w = this.t.get(key);
    return (w === undefined ? undefined : pmdOf(w)) as Readonly<PmdLeaf>;
  }

  set(key: number, value: Readonly<PmdLeaf>): this {
    this.own().set(key, pmdVal(value));
    return this;
  }

  clone(): PmdTable {
    return new PmdTable(cloneOrShare(this.t));
  }

  protected decode(w: number): PmdLeaf {
    return pmdOf(w);
  }
}

class HugeTable extends LeafTable<HugeLeaf> {
  get(key: number): Readonly<HugeLeaf> {
    const w = this.t.get(key);
    return (w === undefined ? undefined : hugeOf(w)) as Readonly<HugeLeaf>;
  }

  set(key: number, value: Readonly<HugeLeaf>): this {
    this.own().set(key, hugeVal(value));
    return this;
  }

  clone(): HugeTable {
    return new HugeTable(cloneOrShare(this.t));
  }

  protected decode(w: number): HugeLeaf {
    return hugeOf(w);
  }
}

export function newPteTable(): LeafTable<Pte> {
  return new PteTable();
}

export function newPmdTable(): LeafTable<PmdLeaf> {
  return new PmdTable();
}

export function newHugeTable(): LeafTable<HugeLeaf> {
  return new HugeTable();
}

/** The empty PMD and hugetlb tables that empty mms share (most mms have no PMD leaf and no
 *  hugetlb entry): a clone of one allocates nothing. ownPmd/ownHuge replace them before a write. */
export const EMPTY_PMD: LeafTable<PmdLeaf> = newPmdTable();
export const EMPTY_HUGE: LeafTable<HugeLeaf> = newHugeTable();
(EMPTY_PMD as unknown as { frozen: boolean }).frozen = true;
(EMPTY_HUGE as unknown as { frozen: boolean }).frozen = true;

/** mm.pmd, made the mm's own for a write. */
export function ownPmd(mm: { pmd: LeafTable<PmdLeaf> }): LeafTable<PmdLeaf> {
  if (mm.pmd === EMPTY_PMD) mm.pmd = newPmdTable();
  return mm.pmd;
}

/** mm.huge, made the mm's own for a write. */
export function ownHuge(mm: { huge: LeafTable<HugeLeaf> }): LeafTable<HugeLeaf> {
  if (mm.huge === EMPTY_HUGE) mm.huge = newHugeTable();
  return mm.huge;
}
