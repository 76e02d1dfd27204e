/** Runs the CLI in-process, collecting stdout and stderr (not a test file itself). */
import { main } from '../../src/cli/main.ts';

export function cli(args: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = main(
    args,
    (s) => (out += s),
    (s) => (err += s),
  );
  return { code, out, err };
}
