/**
 * Creating, cloning and hashing states. The canonical form is the state's own key order: records
 * keyed by integers iterate in ascending order, VMAs are kept sorted, arrays are ordered. The hash
 * walks that form into two 32-bit lanes (FNV-1a style multiply + xorshift), giving a 64-bit
 * fingerprint as a 16-digit hex string.
 */
import type { Machine } from './machine.ts';
import type { File, Folio, Mm, PinSet, Pipe, Proc, State, Vma } from './types.ts';

export const FIRST_MMAP = 0x7f0000000000;

export function createState(m: Machine): State {
  const s: State = {
    folios: {},
    procs: {},
    files: {},
    pipes: {},
    pins: {},
    swap: {},
    swapcache: {},
    hugetlb: m.hugetlb.map((h) => ({ size: h.size, nr: h.nr, free: h.nr, resv: 0 })),
    zeroPageRefs: 0,
    hugeZeroRefs: 0,
    hugeZeroPins: 0,
    userLockedVm: 0,
    nextId: 2,
    nextSlot: 0,
  };
  s.procs[1] = {
    pid: 1,
    parent: 0,
    alive: true,
    status: -1,
    memlockLimit: m.memlockLimit,
    capIpcLock: m.capIpcLock,
    mm: emptyMm(),
  };
  return s;
}

export function emptyMm(): Mm {
  return { vmas: [], pte: {}, pmd: {}, huge: {}, hasPinned: false, lockedVm: 0, pinnedVm: 0, hugeZeroRef: false, mmapBase: FIRST_MMAP };
}

function cloneRecord<T>(r: Record<number, T>, f: (x: T) => T): Record<number, T> {
  const out: Record<number, T> = {};
  for (const key in r) out[key as unknown as number] = f(r[key]);
  return out;
}

const cloneFolio = (f: Folio): Folio => ({
  ...f,
  mapcount: f.mapcount.slice(),
  exclusive: f.exclusive.slice(),
  data: f.data.slice(),
});
const cloneVma = (v: Vma): Vma => ({ ...v });
const cloneMm = (mm: Mm): Mm => ({
  ...mm,
  vmas: mm.vmas.map(cloneVma),
  pte: cloneRecord(mm.pte, (p) => ({ ...p })),
  pmd: cloneRecord(mm.pmd, (p) => ({ ...p })),
  huge: cloneRecord(mm.huge, (p) => ({ ...p })),
});
const cloneProc = (p: Proc): Proc => ({ ...p, mm: cloneMm(p.mm) });
const cloneFile = (f: File): File => ({ ...f, cache: { ...f.cache }, disk: f.disk.map((r) => [r[0], r[1]] as [number, number]) });
const clonePipe = (p: Pipe): Pipe => ({ id: p.id, bufs: p.bufs.map((b) => ({ ...b })) });
const clonePins = (p: PinSet): PinSet => ({ ...p, runs: p.runs.map((r) => ({ ...r })) });

/** A deep copy sharing nothing with the original. */
export function cloneState(s: State): State {
  return {
    folios: cloneRecord(s.folios, cloneFolio),
    procs: cloneRecord(s.procs, cloneProc),
    files: cloneRecord(s.files, cloneFile),
    pipes: cloneRecord(s.pipes, clonePipe),
    pins: cloneRecord(s.pins, clonePins),
    swap: cloneRecord(s.swap, (x) => ({ ...x })),
    swapcache: { ...s.swapcache },
    hugetlb: s.hugetlb.map((h) => ({ ...h })),
    zeroPageRefs: s.zeroPageRefs,
    hugeZeroRefs: s.hugeZeroRefs,
    hugeZeroPins: s.hugeZeroPins,
    userLockedVm: s.userLockedVm,
    nextId: s.nextId,
    nextSlot: s.nextSlot,
  };
}

/** Incremental 64-bit hash over numbers, booleans and strings in canonical order. */
class Hasher {
  a = 0x811c9dc5 | 0;
  b = 0x01000193 | 0;
  num(x: number): void {
    const lo = x | 0;
    const hi = Math.floor(x / 4294967296) | 0;
    this.a = Math.imul(this.a ^ lo, 0x01000193);
    this.b = Math.imul(this.b ^ hi ^ (lo >>> 16), 0x5bd1e995);
    this.b ^= this.b >>> 13;
  }
  str(x: string): void {
    for (let i = 0; i < x.length; i++) this.num(x.charCodeAt(i));
    this.num(-1);
  }
  any(x: unknown): void {
    switch (typeof x) {
      case 'number':
        this.num(x);
        return;
      case 'boolean':
        this.num(x ? 1 : 2);
        return;
      case 'string':
        this.str(x);
        return;
      case 'object':
        if (x === null) {
          this.num(-3);
          return;
        }
        if (Array.isArray(x)) {
          this.num(-4);
          for (const y of x) this.any(y);
          this.num(-5);
          return;
        }
        this.num(-6);
        for (const key in x as Record<string, unknown>) {
          this.str(key);
          this.any((x as Record<string, unknown>)[key]);
        }
        this.num(-7);
        return;
      default:
        return;
    }
  }
  hex(): string {
    const f = (v: number) => (v >>> 0).toString(16).padStart(8, '0');
    return f(this.a) + f(this.b);
  }
}

/** The 64-bit fingerprint of a state's canonical form. Equal states hash equal. */
export function hashState(s: State): string {
  const h = new Hasher();
  h.any(s);
  return h.hex();
}

/** The canonical form as a string (for golden files and debugging); equal iff states are equal. */
export function canonicalJson(s: State): string {
  return JSON.stringify(s);
}
