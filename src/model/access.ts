/**
 * What the CPU does for user-space loads and stores: use the page-table entry if it allows the
 * access, fault otherwise (a load needs VM_READ, a store VM_WRITE: anything else is SIGSEGV).
 *
 * Memory content is modelled as one token per page (per huge page in hugetlb mappings): a store
 * fills the whole page with the token. `Content` is a run-length list of (token, 4 KiB pages).
 */
import { FAULT_FLAG_WRITE, HPAGE_PMD_NR, PAGE_SIZE, VM_READ, VM_WRITE } from './constants.ts';
import { handleMmFault } from './fault.ts';
import { type Ctx, findVma, folio, lookup, pteLevel, tokenAt } from './kernel.ts';
import { BIT_DIRTY, BIT_WRITE, entryBits, entryRef, KIND_MASK, OFF_SHIFT, ownHuge, ownPmd, PTE_PAGE, PTE_ZERO } from './pagetable.ts';
import type { Proc, Token, Vma } from './types.ts';

export type Content = Array<[Token, number]>;

export function pushContent(c: Content, t: Token, n: number): void {
  if (n <= 0) return;
  const last = c[c.length - 1];
  if (last && last[0] === t) last[1] += n;
  else c.push([t, n]);
}

export function contentEqual(a: Content, b: Content): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i][0] !== b[i][0] || a[i][1] !== b[i][1]) return false;
  return true;
}

export function contentPages(c: Content): number {
  let n = 0;
  for (const [, m] of c) n += m;
  return n;
}

/** The first `pages` 4 KiB pages of a content list. */
export function contentPrefix(c: Content, pages: number): Content {
  const out: Content = [];
  for (const [t, m] of c) {
    if (pages <= 0) break;
    pushContent(out, t, Math.min(m, pages));
    pages -= m;
  }
  return out;
}

/** What a user-space access raises when it cannot be done. */
export type Signal = 'SIGSEGV' | 'SIGBUS';

/** The bytes of the page unit that maps addr (4 KiB, or the hugetlb page size). */
export function unitAt(v: Vma): number {
  return v.hugetlb || PAGE_SIZE;
}

/**
 * One load (token === undefined) or store at addr: the token read (stored), or the signal. Faults
 * until the entry allows the access; a handful of retries is always enough, more means a model bug.
 *
 * The common case, a present PTE that allows the access, reads the raw entry (pagetable.ts) and
 * allocates nothing: a memset of a PTE-mapped range comes here once per page.
 */
export function access(k: Ctx, p: Proc, addr: number, token?: Token): Token | Signal {
  const mm = p.mm;
  const v = findVma(mm, addr);
  const write = token !== undefined;
  // x86's access_error(): a write needs VM_WRITE; a read any access (vma_is_accessible), so a
  // PROT_WRITE-only mapping can be read
  if (!v || !(v.flags & (write ? VM_WRITE : VM_READ | VM_WRITE))) return 'SIGSEGV';
  for (let tries = 0; tries < 6; tries++) {
    const vpn = Math.floor(addr / PAGE_SIZE);
    if (pteLevel(mm, v, vpn)) {
      // no PMD leaf: the PTE decides
      const w = mm.pte.word(vpn);
      if (w !== undefined) {
        const bits = entryBits(w);
        const kind = bits & KIND_MASK;
        if (!write) {
          if (kind === PTE_ZERO) return 0;
          if (kind === PTE_PAGE) return tokenAt(k, entryRef(w), bits >>> OFF_SHIFT);
        } else if (kind === PTE_PAGE && bits & BIT_WRITE) {
          folio(k, entryRef(w)).setData(bits >>> OFF_SHIFT, token);
          if (!(bits & BIT_DIRTY)) mm.pte.setWord(vpn, w + BIT_DIRTY); // the CPU sets the dirty bit
          return token;
        }
      }
    } else {
      const e = lookup(mm, v, addr);
      if (e.level === 'pmd') {
        const off = vpn - e.vpn;
        if (!write) return tokenAt(k, e.leaf.folio, off);
        if (e.leaf.write) {
          folio(k, e.leaf.folio).setData(off, token);
          if (!e.leaf.dirty) ownPmd(mm).set(e.vpn, { ...e.leaf, dirty: true });
          return token;
        }
      } else if (e.level === 'huge') {
        if (!write) return tokenAt(k, e.leaf.folio, 0);
        if (e.leaf.write) {
          folio(k, e.leaf.folio).setData(0, token);
          if (!e.leaf.dirty) ownHuge(mm).set(e.vpn, { ...e.leaf, dirty: true });
          return token;
        }
      }
    }
    const r = handleMmFault(k, mm, v, addr, write ? FAULT_FLAG_WRITE : 0);
    if (r === 'sigbus' || r === 'oom') return 'SIGBUS';
    if (r === 'sigsegv') return 'SIGSEGV';
  }
  throw new Error(`access at ${addr.toString(16)} keeps faulting: model bug`);
}

/**
 * memset(addr, token, len), page unit by page unit. Once a store went through a writable PMD
 * leaf, the rest of that PMD takes the token too without a fault (the CPU needs none), so a 2 MiB
 * memset of a PMD-mapped THP costs one look-up instead of 512. Returns the signal of a failed
 * access.
 */
export function memset(k: Ctx, p: Proc, addr: number, token: Token, len: number): string | null {
  const end = addr + len;
  for (let a = addr; a < end; ) {
    const v = findVma(p.mm, a);
    const r = access(k, p, a, token);
    if (typeof r === 'string') return r;
    const unit = v ? unitAt(v) : PAGE_SIZE;
    a = Math.floor(a / unit) * unit + unit;
    if (v && !v.hugetlb && a < end) a = storeRestOfPmd(k, p, v, a, end, token);
  }
  return null;
}

/** After a store at a - 4096: if that page sits in a writable PMD leaf, store the token in the
 *  rest of the leaf (up to end) and return where the leaf ends; else return a. */
function storeRestOfPmd(k: Ctx, p: Proc, v: Vma, a: number, end: number, token: Token): number {
  if (p.mm.pmd.size === 0) return a;
  const e = lookup(p.mm, v, a - PAGE_SIZE);
  if (e.level !== 'pmd' || !e.leaf.write) return a;
  const stop = Math.min(end, (e.vpn + HPAGE_PMD_NR) * PAGE_SIZE);
  const f = folio(k, e.leaf.folio);
  for (let off = a / PAGE_SIZE - e.vpn; off < stop / PAGE_SIZE - e.vpn; off++) f.setData(off, token);
  return Math.max(a, Math.ceil(stop / PAGE_SIZE) * PAGE_SIZE);
}

/** Reads [addr, addr+len) as content; null with the signal name when an access fails. Like
 *  memset(), the rest of a PMD leaf is read without further look-ups. */
export function readRange(k: Ctx, p: Proc, addr: number, len: number): Content | string {
  const out: Content = [];
  const end = addr + len;
  for (let a = addr; a < end; ) {
    const v = findVma(p.mm, a);
    const r = access(k, p, a);
    if (typeof r === 'string') return r;
    const unit = v ? unitAt(v) : PAGE_SIZE;
    const next = Math.min(Math.floor(a / unit) * unit + unit, end);
    pushContent(out, r, (next - a) / PAGE_SIZE);
    a = next;
    if (!v || v.hugetlb || a >= end || p.mm.pmd.size === 0) continue;
    const e = lookup(p.mm, v, a - PAGE_SIZE);
    if (e.level !== 'pmd') continue;
    const stop = Math.min(end, (e.vpn + HPAGE_PMD_NR) * PAGE_SIZE);
    for (; a < stop; a += PAGE_SIZE)
      pushContent(out, tokenAt(k, e.leaf.folio, a / PAGE_SIZE - e.vpn), (Math.min(a + PAGE_SIZE, stop) - a) / PAGE_SIZE);
  }
  return out;
}
