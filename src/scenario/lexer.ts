/**
 * The .cow lexer: one line at a time, `#` starts a comment. Tokens carry 1-based line and column.
 *
 * - identifiers: a letter or `_`, then letters, digits, `_`, and `-` or `.` when followed by a
 *   letter, digit or `_` (so `same-page`, `v6.1`, `io_uring`; `buf->P` is `buf` `->` `P`)
 * - numbers: decimal `17`, hex `0x11`, sizes `4K` `2M` `1G` (powers of 1024)
 * - strings: "..." with \" and \\ escapes, on one line
 * - punctuation: -> == != <= >= < > ! = : + [ ] ( ) , *
 */
import { fail } from './errors.ts';

export type Token =
  | { t: 'ident'; v: string; line: number; col: number; text: string }
  | { t: 'num'; v: number; unit: boolean; hex: boolean; line: number; col: number; text: string }
  | { t: 'str'; v: string; line: number; col: number; text: string }
  | { t: 'punct'; v: string; line: number; col: number; text: string }
  | { t: 'eol'; v: ''; line: number; col: number; text: string };

const PUNCT2 = ['->', '==', '!=', '<=', '>='];
const PUNCT1 = '<>!=:+[](),*';
const UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

const isIdStart = (c: string) => /[A-Za-z_]/.test(c);
const isIdChar = (c: string) => /[A-Za-z0-9_]/.test(c);

/** The largest size values accepted anywhere (well beyond any machine the model describes). */
export const MAX_NUMBER = 2 ** 50;

/** Splits one line (without its newline) into tokens, ending with an `eol` token. */
export function lexLine(file: string, text: string, line: number): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    const col = i + 1;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#') break;
    if (isIdStart(c)) {
      let j = i + 1;
      while (j < n && (isIdChar(text[j]) || ((text[j] === '-' || text[j] === '.') && j + 1 < n && isIdChar(text[j + 1])))) j++;
      const s = text.slice(i, j);
      out.push({ t: 'ident', v: s, line, col, text: s });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_]/.test(text[j])) j++;
      const s = text.slice(i, j);
      out.push(number(file, s, line, col));
      i = j;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let v = '';
      for (;;) {
        if (j >= n) fail(file, { line, col }, 'unterminated string: expected a closing "');
        const d = text[j];
        if (d === '"') break;
        if (d === '\\') {
          const e = text[j + 1];
          if (e !== '"' && e !== '\\') fail(file, { line, col: j + 1 }, 'bad escape in string: expected \\" or \\\\');
          v += e;
          j += 2;
          continue;
        }
        v += d;
        j++;
      }
      out.push({ t: 'str', v, line, col, text: text.slice(i, j + 1) });
      i = j + 1;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (PUNCT2.includes(two)) {
      out.push({ t: 'punct', v: two, line, col, text: two });
      i += 2;
      continue;
    }
    if (PUNCT1.includes(c)) {
      out.push({ t: 'punct', v: c, line, col, text: c });
      i++;
      continue;
    }
    const shown =
      c.charCodeAt(0) < 32 || c.charCodeAt(0) > 126 ? `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}` : `'${c}'`;
    fail(file, { line, col }, `unexpected character ${shown}`);
  }
  const last = out[out.length - 1];
  out.push({ t: 'eol', v: '', line, col: last ? last.col + last.text.length : 1, text: '' });
  return out;
}

function number(file: string, s: string, line: number, col: number): Token {
  const bad = () => fail(file, { line, col }, `bad number '${s}': expected a decimal or 0x hex number, or a size like 4K, 2M, 1G`);
  let v: number;
  let unit = false;
  let hex = false;
  if (/^0x[0-9a-fA-F]+$/.test(s)) {
    v = Number.parseInt(s.slice(2), 16);
    hex = true;
  } else if (/^[0-9]+$/.test(s)) v = Number(s);
  else {
    const m = /^([0-9]+)([KMGkmg])$/.exec(s);
    if (!m) return bad();
    v = Number(m[1]) * UNITS[m[2]];
    unit = true;
  }
  if (!Number.isSafeInteger(v) || v > MAX_NUMBER) fail(file, { line, col }, `number '${s}' is too large`);
  return { t: 'num', v, unit, hex, line, col, text: s };
}

/** How a token is named in "expected X, found Y" messages. */
export function describe(tok: Token): string {
  if (tok.t === 'eol') return 'end of line';
  if (tok.t === 'str') return 'a string';
  return `'${tok.text}'`;
}
