import { main } from './main.ts';

const code = main(
  process.argv.slice(2),
  (s) => process.stdout.write(s),
  (s) => process.stderr.write(s),
  { color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR },
);
process.exitCode = code;
