/** The benchmarks' typical explorer state: two processes after fork, a few small pages (one
 *  written, one read as the zeropage), a pipe holding a vmspliced page, a gup_test pin. */
import { SEED_MACHINE } from '../src/model/machine.ts';
import type { Profile } from '../src/model/profile.ts';
import { Sim } from '../src/model/sim.ts';
import type { State } from '../src/model/types.ts';

export function typicalState(profile: Profile): { state: State; addr: number } {
  const sim = new Sim(profile, SEED_MACHINE, { check: false });
  const a = sim.mmap(1, { len: 4 * 4096, prot: 3, flags: 0x22 });
  sim.memset(1, a, 1, 2 * 4096);
  sim.read(1, a + 2 * 4096, 4096);
  const c = sim.fork(1);
  const p = sim.pipe();
  sim.vmsplice(c, p, a, 4096);
  sim.gupTestStart(1, a + 4096, 4096, false, false);
  return { state: sim.state, addr: a };
}
