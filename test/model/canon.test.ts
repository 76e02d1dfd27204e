/**
 * The canonical form decodes back to the state it came from, renamed: a decoder written from the
 * grammar at the top of canon.ts reads the words, and an object-level walk of the state (decoded
 * page-table entries, Folio views) names folios, slots and files by first reference in the same
 * order. The two must agree on every state tried, fixed ones with every kind of entry and random
 * histories. That is what shows the form drops nothing: if two states encoded to the same words,
 * the decoder would give one view for both, and one of them would fail here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeState } from '../../src/model/canon.ts';
import { MADV_PAGEOUT, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PMD_SIZE } from '../../src/model/constants.ts';
import type { Sim } from '../../src/model/sim.ts';
import { cloneState, hashState, ownProc } from '../../src/model/state.ts';
import { ownTable } from '../../src/model/table.ts';
import { type Folio, HUGE_ZERO_FOLIO, type State, ZERO_FOLIO } from '../../src/model/types.ts';
import { anon, applyOps, HUGE_2M, historyStart, hugetlbAnon, mkSim, opArb, profile, RW, thpArea } from './helpers.ts';

type Ref = number | 'none' | 'zero' | 'hugezero' | 'freed';
type View = Record<string, unknown>;

/** Names by first reference, and the bodies behind them (index = name). */
class Names {
  folios: unknown[] = [];
  slots: unknown[] = [];
  files: unknown[] = [];
}

// ---------------------------------------------------------------------------------------------
// The state's side: an object-level walk in the canonical order

function viewOf(s: State): View {
  const names = new Names();
  const folioName = new Map<number, number>();
  const slotName = new Map<number, number>();
  const fileName = new Map<number, number>();
  const pids = s.procs.keys();
  const procName = (pid: number): number => pids.indexOf(pid);

  /** The name of `id` in `seen`; at its first reference a new name, and its body (walked at once,
   *  so the references inside it are named before anything after it, as canon.ts does). */
  const named = (seen: Map<number, number>, bodies: unknown[], id: number, body: () => unknown): number => {
    const known = seen.get(id);
    if (known !== undefined) return known;
    const n = bodies.length;
    seen.set(id, n);
    bodies.push(null);
    bodies[n] = body();
    return n;
  };
  const folioRef = (id: number): Ref => {
    if (id === ZERO_FOLIO) return 'zero';
    if (id === HUGE_ZERO_FOLIO) return 'hugezero';
    return named(folioName, names.folios, id, () => {
      const f = s.folios.get(id);
      return f ? folioView(f) : 'freed';
    });
  };
  const folioView = (f: Folio): View => ({
    kind: f.kind,
    hugetlb: f.hugetlb,
    nr: f.nr,
    refcount: f.refcount,
    pincount: f.pincount,
    entire: f.entireMapcount,
    index: f.index,
    uptodate: f.uptodate,
    units: f.mapcount.map((m, i) => ({ mapcount: m, exclusive: f.exclusive[i], data: f.data[i] })),
    swapcache: f.swapSlot >= 0 && s.swapcache.get(f.swapSlot) === f.id,
    slot: slotRef(f.swapSlot),
    file: fileRef(f.file),
  });
  const slotRef = (slot: number): Ref =>
    slot < 0
      ? 'none'
      : named(slotName, names.slots, slot, () => {
          const sw = s.swap.get(slot);
          return sw ? { count: sw.count, data: sw.data } : 'freed';
        });
  const fileRef = (id: number): Ref =>
    id < 0
      ? 'none'
      : named(fileName, names.files, id, () => {
          const f = s.files.get(id);
          if (!f) return 'freed';
          return {
            kind: f.kind,
            hugetlb: f.hugetlb,
            size: f.size,
            cache: f.cache.entries().map(([index, folio]) => ({ index, folio: folioRef(folio) })),
            disk: f.disk.map(([token, pages]) => ({ token, pages })),
          };
        });
  const run = (r: { folio: number; first: number; n: number }) => ({ first: r.first, n: r.n, folio: folioRef(r.folio) });

  const procs = s.procs.values().map((p) => ({
    parent: procName(p.parent),
    alive: p.alive,
    capIpcLock: p.capIpcLock,
    status: p.status,
    memlockLimit: p.memlockLimit,
    mm: {
      hasPinned: p.mm.hasPinned,
      hugeZeroRef: p.mm.hugeZeroRef,
      lockedVm: p.mm.lockedVm,
      pinnedVm: p.mm.pinnedVm,
      mmapBase: p.mm.mmapBase,
      vmas: p.mm.vmas.map((v) => ({
        start: v.start,
        end: v.end,
        flags: v.flags,
        pgoff: v.pgoff,
        hugetlb: v.hugetlb,
        resv: v.resv,
        resvOwner: v.resvOwner,
        resvUnmapped: v.resvUnmapped,
        anonVma: v.anonVma,
        file: fileRef(v.file),
      })),
      pte: p.mm.pte
        .entries()
        .map(([vpn, e]) =>
          e.t === 'page'
            ? { vpn, t: e.t, write: e.write, dirty: e.dirty, softDirty: e.softDirty, off: e.off, folio: folioRef(e.folio) }
            : e.t === 'zero'
              ? { vpn, t: e.t, softDirty: e.softDirty }
              : { vpn, t: e.t, exclusive: e.exclusive, softDirty: e.softDirty, slot: slotRef(e.slot) },
        ),
      pmd: p.mm.pmd
        .entries()
        .map(([vpn, e]) => ({ vpn, t: e.t, write: e.write, dirty: e.dirty, softDirty: e.softDirty, folio: folioRef(e.folio) })),
      huge: p.mm.huge.entries().map(([vpn, e]) => ({ vpn, write: e.write, dirty: e.dirty, folio: folioRef(e.folio) })),
    },
  }));
  const files = s.files.keys().map(fileRef);
  const pipes = s.pipes.values().map((p) => p.bufs.map(run));
  const pins = s.pins.values().map((p) => ({
    user: p.user,
    owner: procName(p.owner),
    flags: p.flags,
    accounted: [p.accountedPinned, p.accountedLocked, p.accountedUser],
    runs: p.runs.map(run),
  }));
  const leakedFolios = s.folios.keys().filter((id) => !folioName.has(id));
  const leaked = leakedFolios.map(folioRef);
  const leakedSlots = s.swap
    .keys()
    .filter((slot) => !slotName.has(slot))
    .map(slotRef);
  return {
    pools: s.hugetlb.map((h) => ({ size: h.size, nr: h.nr, free: h.free, resv: h.resv })),
    zeroPageRefs: s.zeroPageRefs,
    hugeZeroRefs: s.hugeZeroRefs,
    hugeZeroPins: s.hugeZeroPins,
    userLockedVm: s.userLockedVm,
    procs,
    files,
    pipes,
    pins,
    leaked,
    leakedSlots,
    swapcache: s.swapcache.size,
    bodies: names,
  };
}

// ---------------------------------------------------------------------------------------------
// The words' side: a decoder written from the grammar in canon.ts

const KINDS = ['shmem', 'disk', 'hugetlbfs'];
const USERS = ['gup_test', 'io_uring', 'vfio', 'odirect'];
const bit = (x: number, b: number): boolean => ((x >>> b) & 1) === 1;

function decode(w: Int32Array): View {
  let i = 0;
  const next = (): number => {
    assert.ok(i < w.length, `the words end early, at ${i}`);
    return w[i++];
  };
  const u32 = (): number => next() >>> 0;
  const pages = (): number => u32() * PAGE_SIZE;
  const wide = (): number => {
    const lo = next();
    const hi = next();
    return lo === -1 && hi === -1 ? Number.POSITIVE_INFINITY : hi * 4294967296 + (lo >>> 0);
  };
  const list = <T>(item: () => T): T[] => {
    const n = next();
    assert.ok(n >= 0, `a negative count ${n} at ${i - 1}`);
    const out: T[] = [];
    for (let k = 0; k < n; k++) out.push(item());
    return out;
  };
  const names = new Names();
  const name = (x: number, known: unknown[]): number => {
    assert.ok(x < known.length, `name ${x} before its first reference`);
    return x;
  };

  const folioRef = (): Ref => {
    const x = next();
    if (x >= 0) return name(x, names.folios);
    if (x === -2) return 'zero';
    if (x === -3) return 'hugezero';
    const n = names.folios.length;
    names.folios.push(null);
    if (x === -4) {
      names.folios[n] = 'freed';
      return n;
    }
    const m = -8 - x;
    assert.ok(m >= 0 && m < 16, `folio marker ${x}`);
    const small = bit(m, 1);
    const f: View = { kind: bit(m, 0) ? 'file' : 'anon' };
    if (small) Object.assign(f, { hugetlb: 0, nr: 1, refcount: next(), pincount: 0, entire: 0, index: next() });
    else Object.assign(f, { hugetlb: pages(), nr: next(), pincount: next(), entire: next(), refcount: next(), index: next() });
    // key order as the state's side builds it
    const nr = f.nr as number;
    const body: View = {
      kind: f.kind,
      hugetlb: f.hugetlb,
      nr,
      refcount: f.refcount,
      pincount: f.pincount,
      entire: f.entire,
      index: f.index,
      uptodate: !bit(m, 3),
    };
    let units: Array<{ mapcount: number; exclusive: boolean; data: number }>;
    if (nr === 1) {
      const mx = next();
      units = [{ mapcount: mx >> 1, exclusive: bit(mx, 0), data: next() }];
    } else {
      const runs = (): number[] => {
        const out: number[] = [];
        while (out.length < nr) {
          const v = next();
          const len = next();
          assert.ok(len > 0 && out.length + len <= nr, `a run of ${len} past ${nr} units`);
          for (let k = 0; k < len; k++) out.push(v);
        }
        return out;
      };
      const mx = runs();
      const data = runs();
      units = mx.map((x, k) => ({ mapcount: x >> 1, exclusive: bit(x, 0), data: data[k] }));
    }
    body.units = units;
    if (bit(m, 2)) {
      const inCache = next();
      assert.ok(inCache === 0 || inCache === 1);
      body.swapcache = inCache === 1;
      body.slot = slotRef();
      body.file = fileRef();
    } else Object.assign(body, { swapcache: false, slot: 'none', file: 'none' });
    names.folios[n] = body;
    return n;
  };
  /** A slot or file reference: none, a name, or a first reference (-3, then the body) to a freed
   *  (-4) or live object. */
  const ref = (known: unknown[], body: () => unknown): Ref => {
    const x = next();
    if (x === -1) return 'none';
    if (x >= 0) return name(x, known);
    const n = known.length;
    known.push(null);
    if (x === -4) known[n] = 'freed';
    else {
      assert.equal(x, -3, 'first-reference marker');
      known[n] = body();
    }
    return n;
  };
  const slotRef = (): Ref => ref(names.slots, () => ({ count: next(), data: next() }));
  const fileRef = (): Ref =>
    ref(names.files, () => {
      const kind = KINDS[next()];
      const hugetlb = pages();
      const size = wide();
      const cache = list(() => ({ index: next(), folio: folioRef() }));
      const disk = list(() => ({ token: next(), pages: next() }));
      return { kind, hugetlb, size, cache, disk };
    });
  const run = () => ({ first: next(), n: next(), folio: folioRef() });
  const pteBits = (vpn: number, b: number): View => {
    const kind = b & 3;
    assert.ok(kind >= 1, `PTE kind ${kind}`);
    if (kind === 1) return { vpn, t: 'page', write: bit(b, 2), dirty: bit(b, 3), softDirty: bit(b, 4), off: b >>> 6, folio: folioRef() };
    if (kind === 2) return { vpn, t: 'zero', softDirty: bit(b, 4) };
    return { vpn, t: 'swap', exclusive: bit(b, 5), softDirty: bit(b, 4), slot: slotRef() };
  };

  const pools = list(() => ({ size: pages(), nr: next(), free: next(), resv: next() }));
  const globals = { zeroPageRefs: next(), hugeZeroRefs: next(), hugeZeroPins: next(), userLockedVm: next() };
  const procs = list(() => {
    const parent = next();
    const f = next();
    const memlockLimit = wide();
    const mf = next();
    const mm: View = { hasPinned: bit(mf, 0), hugeZeroRef: bit(mf, 1), lockedVm: next(), pinnedVm: next(), mmapBase: pages() };
    mm.vmas = list(() => {
      const v: View = { start: pages(), end: pages(), flags: next(), pgoff: pages(), hugetlb: pages() };
      const ra = next();
      return { ...v, resv: ra >> 3, resvOwner: bit(ra, 1), resvUnmapped: bit(ra, 2), anonVma: bit(ra, 0), file: fileRef() };
    });
    mm.pte = list(() => pteBits(u32(), next()));
    mm.pmd = bit(mf, 2)
      ? list(() => {
          const vpn = u32();
          const b = next();
          return {
            vpn,
            t: (b & 3) === 1 ? 'thp' : 'hugezero',
            write: bit(b, 2),
            dirty: bit(b, 3),
            softDirty: bit(b, 4),
            folio: folioRef(),
          };
        })
      : [];
    mm.huge = bit(mf, 3)
      ? list(() => {
          const vpn = u32();
          const b = next();
          return { vpn, write: bit(b, 2), dirty: bit(b, 3), folio: folioRef() };
        })
      : [];
    return { parent, alive: bit(f, 0), capIpcLock: bit(f, 1), status: (f >> 2) - 1, memlockLimit, mm };
  });
  const files = list(fileRef);
  const pipes = list(() => list(run));
  const pins = list(() => {
    const uo = next();
    const flags = next();
    const accounted = [next(), next(), next()];
    return { user: USERS[uo & 3], owner: uo >> 2, flags, accounted, runs: list(run) };
  });
  const leaked = list(folioRef);
  const leakedSlots = list(slotRef);
  const swapcache = next();
  assert.equal(i, w.length, 'words left after the end');
  return { pools, ...globals, procs, files, pipes, pins, leaked, leakedSlots, swapcache, bodies: names };
}

function roundTrip(s: State, what: string): void {
  assert.deepEqual(decode(encodeState(s)), viewOf(s), what);
}

// ---------------------------------------------------------------------------------------------

/** A state with every kind of entry the model has: small pages, the zeropage, swap entries with
 *  and without the exclusive marker and a swap-cache folio, a PMD-mapped THP and a PTE-mapped one,
 *  the huge zeropage, a private hugetlb mapping with a reservation left, a shared memfd page,
 *  a tmpfile with a page cache, a pipe, pins of two users, a child that exited. */
function everything(): Sim {
  const sim = mkSim('v6.2', { hugetlb: [{ size: HUGE_2M, nr: 4 }] });
  const a = anon(sim, 4 * PAGE_SIZE);
  sim.memset(1, a, 1, 2 * PAGE_SIZE);
  sim.read(1, a + 2 * PAGE_SIZE, PAGE_SIZE);
  const t = thpArea(sim);
  sim.memset(1, t, 2, PMD_SIZE);
  const z = thpArea(sim);
  sim.read(1, z, PAGE_SIZE);
  const split = thpArea(sim);
  sim.memset(1, split, 3, PMD_SIZE);
  const h = hugetlbAnon(sim, 2 * HUGE_2M);
  sim.memset(1, h, 4, PAGE_SIZE);
  // a hugetlbfs page at index 1 of its file, mapped shared
  const hf = sim.memfdCreate(HUGE_2M);
  const hm = sim.mmap(1, { len: 2 * HUGE_2M, prot: RW, flags: MAP_SHARED, file: hf });
  sim.memset(1, hm + HUGE_2M, 10, PAGE_SIZE);
  const fd = sim.memfdCreate();
  sim.fallocate(fd, 2 * PAGE_SIZE);
  const m = sim.mmap(1, { len: 2 * PAGE_SIZE, prot: RW, flags: MAP_SHARED, file: fd });
  sim.memset(1, m, 5, PAGE_SIZE);
  const tf = sim.tmpfile();
  sim.pwrite(tf, 0, 2 * PAGE_SIZE, 6);
  const pm = sim.mmap(1, { len: 2 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE, file: tf });
  sim.read(1, pm, PAGE_SIZE);
  sim.vfioMapDma(1, t, 2 * PAGE_SIZE, false); // one run of two pages of the THP
  const c = sim.fork(1);
  sim.memset(c, split + PAGE_SIZE, 7, PAGE_SIZE); // the child's write splits its PMD mapping
  const p = sim.pipe();
  sim.vmsplice(c, p, a, PAGE_SIZE);
  sim.vmsplice(1, p, t, 2 * PAGE_SIZE);
  sim.gupTestStart(1, a + PAGE_SIZE, PAGE_SIZE, false, false);
  sim.ioUringRegister(1, t, PAGE_SIZE);
  // page 3: each side writes its own copy and pages it out (exclusive swap entries); the parent's
  // loses its marker when a second child shares the entry, and that child exits
  const last = a + 3 * PAGE_SIZE;
  sim.memset(1, last, 8, PAGE_SIZE);
  sim.memset(c, last, 9, PAGE_SIZE);
  sim.madvise(1, last, PAGE_SIZE, MADV_PAGEOUT);
  sim.madvise(c, last, PAGE_SIZE, MADV_PAGEOUT);
  const g = sim.fork(1);
  sim.exit(g, 3);
  return sim;
}

test('the canonical words decode back to the state, renamed: every kind of entry', () => {
  const sim = everything();
  const v = viewOf(sim.state);
  // the state does have what the doc comment of everything() says (else this test tests less)
  const procs = v.procs as Array<{ mm: { pte: Array<{ t: string; exclusive?: boolean }>; pmd: Array<{ t: string }>; huge: unknown[] } }>;
  const ptes = procs.flatMap((p) => p.mm.pte);
  for (const t of ['page', 'zero', 'swap'])
    assert.ok(
      ptes.some((e) => e.t === t),
      t,
    );
  for (const x of [true, false])
    assert.ok(
      ptes.some((e) => e.t === 'swap' && e.exclusive === x),
      `exclusive ${x}`,
    );
  const pmds = procs.flatMap((p) => p.mm.pmd).map((e) => e.t);
  assert.ok(pmds.includes('thp') && pmds.includes('hugezero'));
  assert.ok(procs.some((p) => p.mm.huge.length));
  assert.ok((v.files as unknown[]).length >= 2 && (v.pipes as unknown[]).length && (v.pins as unknown[]).length >= 2);
  const bodies = (v.bodies as Names).folios as Array<{ nr: number; hugetlb: number; index: number }>;
  assert.ok(bodies.some((f) => f.nr === 512));
  assert.ok(
    bodies.some((f) => f.hugetlb && f.index === 1),
    'a hugetlbfs page at index 1',
  );
  assert.ok(
    (v.pins as Array<{ runs: Array<{ n: number }> }>).some((p) => p.runs.some((r) => r.n > 1)),
    'a pin of several pages',
  );
  roundTrip(sim.state, 'everything');
  // the parent swaps its page back in (a swap-cache folio while the exited child's entry lives)
  sim.read(1, sim.state.procs.get(1).mm.vmas[0].start + 3 * PAGE_SIZE, PAGE_SIZE);
  roundTrip(sim.state, 'after swap-in');
  const after = viewOf(sim.state);
  assert.ok(
    (after.bodies as Names).folios.some((f) => (f as { swapcache: boolean }).swapcache),
    'a swap-cache folio',
  );
  assert.ok(
    (after.pipes as Array<Array<{ n: number }>>).flat().some((r) => r.n > 1),
    'a pipe buffer of several pages',
  );
});

test('the canonical words decode back: leaks and references to freed objects (broken states)', () => {
  const sim = everything();
  const leak = cloneState(sim.state);
  leak.folios.alloc(9999, 'anon', 512, 0, 1, 8, -1, 0).refcount = 3;
  ownTable(leak, 'swap').set(9999, { count: 2, data: 42 });
  roundTrip(leak, 'leaked folio and slot');
  const freed = cloneState(sim.state);
  const victim = freed.pins.values()[0].runs[0].folio;
  freed.folios.delete(victim);
  roundTrip(freed, 'a pin of a freed folio');
  // fields a small folio has only in a broken state (its pins are GUP_PIN_COUNTING_BIAS references)
  const odd = cloneState(sim.state);
  const small = odd.folios.values().find((f) => f.nr === 1 && !f.hugetlb)!;
  small.pincount = 1;
  roundTrip(odd, 'a pincount on a small folio');
  small.pincount = 0;
  small.entireMapcount = 1;
  roundTrip(odd, 'an entire mapcount on a small folio');
  // PG_swapcache set, the swap cache holding another folio for that slot
  sim.read(1, sim.state.procs.get(1).mm.vmas[0].start + 3 * PAGE_SIZE, PAGE_SIZE);
  const stray = cloneState(sim.state);
  const f = stray.folios.get(stray.folios.keys()[0]);
  const slot = stray.swapcache.keys()[0];
  assert.ok(slot !== undefined && stray.swapcache.get(slot) !== f.id);
  f.swapSlot = slot;
  roundTrip(stray, 'a folio the swap cache does not hold');
});

test('the canonical words decode back to the state, renamed: random histories', () => {
  const p = profile('v6.2');
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 24 }), (ops) => {
      const { sim, a, t, pipe } = historyStart(p, true);
      applyOps(sim, a, t, pipe, ops);
      roundTrip(sim.state, JSON.stringify(ops));
    }),
    { numRuns: 200 },
  );
});

test('the decoder is a real check: a state changed in any one field no longer matches the old words', () => {
  const sim = everything();
  const words = encodeState(sim.state);
  const changes: Array<[string, (s: State) => void]> = [
    ['a refcount', (s) => s.folios.get(s.folios.keys()[0]).refcount++],
    [
      'a PTE offset',
      (s) => {
        const mm = ownProc(s, 1)!.mm;
        const key = mm.pte.keys().find((k) => mm.pte.get(k).t === 'page')!;
        const e = mm.pte.get(key);
        if (e.t === 'page') mm.pte.set(key, { ...e, off: e.off + 1 });
      },
    ],
    ['a memlock limit', (s) => (ownProc(s, 1)!.memlockLimit = Number.POSITIVE_INFINITY)],
    ['a VMA reservation', (s) => ownProc(s, 1)!.mm.vmas.find((v) => v.hugetlb)!.resv++],
  ];
  for (const [what, change] of changes) {
    const s = cloneState(sim.state);
    change(s);
    assert.notDeepEqual(viewOf(s), decode(words), what);
    roundTrip(s, what);
  }
});

test('fingerprints: equal words hash equal, and no two different forms among thousands of states share one', () => {
  const p = profile('v6.2');
  const byHash = new Map<string, string>();
  let states = 0;
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 16 }), (ops) => {
      const { sim, a, t, pipe } = historyStart(p, false);
      for (const op of ops) {
        applyOps(sim, a, t, pipe, [op]);
        const words = encodeState(sim.state).join(',');
        const h = hashState(sim.state);
        const seen = byHash.get(h);
        if (seen === undefined) byHash.set(h, words);
        else assert.equal(seen, words, `two forms share the fingerprint ${h}`);
        states++;
      }
    }),
    { numRuns: 1000, seed: 5 },
  );
  assert.ok(states > 4000 && byHash.size > 1500, `${states} states, ${byHash.size} distinct`);
});
