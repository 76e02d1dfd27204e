/**
 * Entry points for tools: load a scenario from .cow or JSON text, run it on model profiles.
 */
import { findProfile, type Profile } from '../model/profile.ts';
import type { Scenario } from './ast.ts';
import { fromJson } from './json.ts';
import { ModelBackend, machineFromSpec } from './model-backend.ts';
import { parseScenario } from './parser.ts';
import { type RunOptions, type RunResult, runScenario } from './runner.ts';

/** .cow text, or the JSON form (a .json file, or text starting with '{'). */
export function loadScenario(text: string, file: string): Scenario {
  if (file.endsWith('.json') || /^\s*\{/.test(text)) return fromJson(text, file);
  return parseScenario(text, file);
}

/** Runs a checked scenario on the model with `profile`, on the scenario's machine. */
export function runOnModel(sc: Scenario, profile: Profile, opts: RunOptions = {}): RunResult {
  return runScenario(sc, new ModelBackend(profile, machineFromSpec(sc.machine)), opts);
}

/** The declared outcome for a profile name, if any. */
export function declaredOutcome(sc: Scenario, profile: string): boolean | undefined {
  return sc.outcomes.find((o) => o.profile === profile)?.pass;
}

export function profileOrThrow(name: string): Profile {
  const p = findProfile(name);
  if (!p) throw new Error(`no profile ${name}`);
  return p;
}
