/** Every examples/*.cow holds or fails on each profile exactly as its `outcome` lines declare. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { findProfile } from '../../src/model/profile.ts';
import { runOnModel } from '../../src/scenario/load.ts';
import { parseScenario } from '../../src/scenario/parser.ts';

const dir = new URL('../../examples/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.cow'));

test('there is an example per landmark bug', () => {
  for (const f of [
    'cve-2020-29374-vmsplice.cow',
    'seed-ro-pin-pagecache.cow',
    'seed-ro-pin-zeropage.cow',
    'swap-pin-loss.cow',
    'fork-pinned-page.cow',
    'seed-memlock-cost.cow',
    'hugetlb-vmsplice-leak.cow',
    'softdirty-pinned-page.cow',
  ])
    assert.ok(files.includes(f), f);
});

for (const f of files) {
  test(`examples/${f}: the declared outcomes`, () => {
    const text = readFileSync(new URL(f, dir), 'utf8');
    const sc = parseScenario(text, `examples/${f}`);
    assert.ok(sc.outcomes.length >= 2, 'declares outcomes for v6.1 and v6.2');
    assert.match(text, /^# The real kernel/m, 'lists the outcomes on other versions in its header comment');
    for (const o of sc.outcomes) {
      const p = findProfile(o.profile);
      assert.ok(p);
      const r = runOnModel(sc, p, { file: f });
      const failed = r.verdicts.filter((v) => v.ok !== true).map((v) => `line ${v.line}: ${v.text} (${v.detail})`);
      assert.equal(r.pass, o.pass, `${o.profile}: declared ${o.pass ? 'pass' : 'fail'}; failing: ${failed.join('; ') || 'none'}`);
    }
  });
}
