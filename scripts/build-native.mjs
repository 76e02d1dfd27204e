#!/usr/bin/env node
// Builds native/cowhost.c into build/cowhost with the machine's C compiler (npm's "install" step).
// No compiler, or not Linux: prints why and exits 0 (the host tests then skip with that reason).
// COWLAB_SKIP_NATIVE=1 skips the build. A compiler error fails the install: warnings are errors.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'native', 'cowhost.c');
const out = join(root, 'build', 'cowhost');
const say = (msg) => console.log(`cowlab: ${msg}`);

if (process.env.COWLAB_SKIP_NATIVE === '1') {
  say('COWLAB_SKIP_NATIVE=1: native helper not built (real-kernel backend unavailable)');
  process.exit(0);
}
if (process.platform !== 'linux') {
  say(`native helper not built: it needs Linux (this is ${process.platform}); the real-kernel backend is unavailable`);
  process.exit(0);
}
const cc = process.env.CC || 'cc';
const probe = spawnSync(cc, ['--version'], { stdio: 'ignore' });
if (probe.error || probe.status !== 0) {
  say(`native helper not built: no C compiler ("${cc}" not runnable); the real-kernel backend and its tests are unavailable`);
  process.exit(0);
}
mkdirSync(dirname(out), { recursive: true });
const args = ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out, src];
const r = spawnSync(cc, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error(`cowlab: building the native helper failed: ${cc} ${args.join(' ')}`);
  process.exit(1);
}
say(`built ${out}`);
