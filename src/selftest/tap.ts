/**
 * A byte-exact kselftest TAP writer (tools/testing/selftests/kselftest.h): the same strings, the
 * same counters, the same ending.
 */
export interface Counts {
  pass: number;
  fail: number;
  xfail: number;
  xpass: number;
  skip: number;
  error: number;
}

export type Outcome = 'pass' | 'fail' | 'skip' | 'xfail';

/** One result line, with the case it belongs to: the text of the last `# [RUN] ` line before it. */
export interface TestResult {
  num: number;
  run: string;
  outcome: Outcome;
  line: string;
}

export class Ksft {
  readonly lines: string[] = [];
  readonly results: TestResult[] = [];
  private run = '';
  readonly cnt: Counts = { pass: 0, fail: 0, xfail: 0, xpass: 0, skip: 0, error: 0 };
  plan = 0;

  /** ksft_print_header() */
  header(): void {
    this.lines.push('TAP version 13');
  }
  /** ksft_set_plan() */
  setPlan(n: number): void {
    this.plan = n;
    this.lines.push(`1..${n}`);
  }
  /** ksft_print_msg(): "# " + message */
  msg(m: string): void {
    if (m.startsWith('[RUN] ')) this.run = m.slice(6);
    this.lines.push(`# ${m}`);
  }
  private record(outcome: Outcome): void {
    this.results.push({ num: this.num(), run: this.run, outcome, line: this.lines[this.lines.length - 1] });
  }
  /** ksft_test_num(): results so far */
  num(): number {
    return this.cnt.pass + this.cnt.fail + this.cnt.xfail + this.cnt.xpass + this.cnt.skip + this.cnt.error;
  }
  pass(m: string): void {
    this.cnt.pass++;
    this.lines.push(`ok ${this.num()} ${m}`);
    this.record('pass');
  }
  fail(m: string): void {
    this.cnt.fail++;
    this.lines.push(`not ok ${this.num()} ${m}`);
    this.record('fail');
  }
  /** ksft_test_result(cond, msg) */
  result(cond: boolean, m: string): void {
    if (cond) this.pass(m);
    else this.fail(m);
  }
  skip(m: string): void {
    this.cnt.skip++;
    this.lines.push(`ok ${this.num()} # SKIP ${m}`);
    this.record('skip');
  }
  xfail(m: string): void {
    this.cnt.xfail++;
    this.lines.push(`ok ${this.num()} # XFAIL ${m}`);
    this.record('xfail');
  }
  /** ksft_print_cnts() */
  printCnts(): void {
    if (this.plan !== this.num()) this.lines.push(`# Planned tests != run tests (${this.plan} != ${this.num()})`);
    const c = this.cnt;
    this.lines.push(`# Totals: pass:${c.pass} fail:${c.fail} xfail:${c.xfail} xpass:${c.xpass} skip:${c.skip} error:${c.error}`);
  }
  /** ksft_exit_fail_msg(): "Bail out! " + message, the counts, exit status 1 */
  exitFailMsg(m: string): number {
    this.lines.push(`Bail out! ${m}`);
    this.printCnts();
    return 1;
  }
  /** ksft_exit_pass() */
  exitPass(): number {
    this.printCnts();
    return 0;
  }
  /** ksft_finished(): exit 0 iff every planned test passed, was skipped or xfailed */
  finished(): number {
    this.printCnts();
    return this.plan === this.cnt.pass + this.cnt.xfail + this.cnt.skip ? 0 : 1;
  }
  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}
