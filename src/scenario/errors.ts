/**
 * Errors of the scenario layer. A ScenarioError is the user's: bad syntax, an unknown name, a step
 * on an unmapped address... It always carries the 1-based line and column of the culprit. An
 * InternalError wraps anything else thrown while running a step (a broken model invariant, a bug
 * in cowlab), with the position of the step that triggered it.
 */
import type { Pos } from './ast.ts';

export class ScenarioError extends Error {
  override name = 'ScenarioError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly col: number,
    message: string,
  ) {
    super(message);
  }

  /** `FILE:LINE:COL: error: MESSAGE`, the form compilers use (editors jump to it). */
  format(): string {
    return `${this.file}:${this.line}:${this.col}: error: ${this.message}`;
  }
}

export class InternalError extends Error {
  override name = 'InternalError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly col: number,
    message: string,
    readonly original: unknown,
  ) {
    super(message);
  }

  format(): string {
    return `${this.file}:${this.line}:${this.col}: internal error: ${this.message}`;
  }
}

/** Throws a ScenarioError at `at` in `file`. */
export function fail(file: string, at: Pos | undefined, message: string): never {
  throw new ScenarioError(file, at?.line ?? 1, at?.col ?? 1, message);
}
