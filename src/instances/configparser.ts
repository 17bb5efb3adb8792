/**
 * etc/instances.ini as KARL reads it. karlserve loads it with Python 2.7's
 * `ConfigParser.ConfigParser(dict(here=here))`; the tests (and anyone on Python 3)
 * read it with `configparser.ConfigParser(defaults={'here': …})`. Python 3's reading
 * is modelled line for line and is the one returned; a line Python refuses, or one
 * that Python 2.7's _read reads differently (each such place is checked here), is a
 * problem with its line number and what to change. Nothing is guessed.
 *
 * The one difference accepted is `%%`: Python 3 always reads it as `%`, Python 2
 * only in a value that also holds `%(`. It is ConfigParser's escape for `%`, so
 * karlstage reads (and writes) it by Python 3's rule; `percentEscapes` lets doctor
 * say where a Python 2 KARL would read two characters (docs/configuration.md).
 */

export interface IniProblem {
  line: number;
  message: string;
}

export interface IniOption {
  /** The key as Python keys it: lower case. */
  key: string;
  /** The value before interpolation, joined as Python 3 joins continuation lines. */
  raw: string;
  /** 1-based number of the key's line. */
  line: number;
  /** 1-based numbers of the indented lines that continue the value. */
  more: number[];
}

export interface IniSection {
  name: string;
  line: number;
  options: IniOption[];
}

export interface ParsedIni {
  sections: IniSection[];
  /** [DEFAULT]'s options (every section inherits them), in the order written. */
  defaults: IniOption[];
  /** The file's lines without their line ends. */
  lines: string[];
  /** The line end to write new lines with: the file's own. */
  eol: '\n' | '\r\n';
}

/** A problem Python would refuse, or a line Python 2 and 3 read differently. */
export class IniRefused extends Error {
  constructor(readonly problem: IniProblem) {
    super(`line ${problem.line}: ${problem.message}`);
  }
}

const DEFAULT = 'DEFAULT';
/** Characters Python 2 and 3 do not treat alike (whitespace to one, not the other), or invisible. */
export const ODD =
  // eslint-disable-next-line no-control-regex -- control characters are what it finds
  /[\0-\x08\x0b-\x1f\x7f-\x9f\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;
const strip = (s: string) => s.replace(/^[ \t]+|[ \t]+$/g, '');
const rstrip = (s: string) => s.replace(/[ \t\n]+$/, '');
const indentOf = (s: string) => /^[ \t]*/.exec(s)![0].length;

/** A piece of a line for a message: control characters escaped, long text cut. */
export function shown(text: string): string {
  const esc = [...text]
    .map((c) => (ODD.test(c) || c === '\t' ? `\\u{${c.charCodeAt(0).toString(16)}}` : c))
    .join('');
  return JSON.stringify(esc.length > 60 ? `${esc.slice(0, 57)}...` : esc);
}

/** The text of a file as Python reads it: UTF-8, no byte-order mark, no stray carriage return. */
export function decodeIni(bytes: Uint8Array): string {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let line = 1;
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x0a) continue;
    try {
      decoder.decode(bytes.subarray(start, i));
    } catch {
      throw new IniRefused({
        line,
        message: 'not UTF-8 text: save the file as UTF-8 (Python 3 refuses other bytes)',
      });
    }
    line++;
    start = i + 1;
  }
  return decoder.decode(bytes);
}

function checkCharacters(text: string): void {
  if (text.startsWith('\ufeff'))
    throw new IniRefused({
      line: 1,
      message:
        "a byte-order mark (BOM) before the first line, which Python's ConfigParser refuses: save the file as UTF-8 without BOM",
    });
  const lines = text.split('\n');
  lines.forEach((l, i) => {
    const body = l.endsWith('\r') ? l.slice(0, -1) : l;
    if (body.includes('\r'))
      throw new IniRefused({
        line: i + 1,
        message:
          'a carriage return inside the line (Python 3 starts a new line there, Python 2 does not): end lines with one kind of line end',
      });
    const odd = ODD.exec(body);
    if (odd)
      throw new IniRefused({
        line: i + 1,
        message: `the character U+${odd[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()} (a control character or an unusual space, which Python 2 and 3 do not read alike): remove it, or write a plain space`,
      });
  });
}

const refuse = (line: number, message: string): never => {
  throw new IniRefused({ line, message });
};
const quoted = (s: string) => shown(s).slice(1, -1);

/** The reader's state, line by line, as Python 3's _read keeps it. */
class Reader {
  sections: IniSection[] = [];
  defaults: IniSection = { name: DEFAULT, line: 0, options: [] };
  /** Sections and options met, with their line: Python 3 (strict) refuses them twice. */
  private added = new Map<string, number>();
  private section: IniSection | undefined;
  private option: IniOption | undefined;
  private parts: string[] = [];
  /** Blank lines met inside the current value, not yet followed by more of it. */
  private blanks: number[] = [];

  /** One line, without its line end; `cr`: it ended in "\r\n". */
  line(l: string, n: number, cr: boolean): void {
    const stripped = strip(l);
    const comment = stripped.startsWith('#') || stripped.startsWith(';');
    if (comment && /^[ \t]/.test(l))
      refuse(
        n,
        'an indented comment: Python 3 skips it, Python 2 (KARL) reads it as part of the value above; start the comment at the beginning of the line',
      );
    if (comment) return;
    if (stripped === '') {
      if (this.option) this.blanks.push(n);
      return;
    }
    // Python 2 skips a line whose first word is "rem" (an old DOS comment); Python 3 does not.
    if (/^[rR][eE][mM](\s|$)/.test(l))
      refuse(
        n,
        'a line starting with the word "rem": Python 2 skips it as a comment, Python 3 does not; rename the key or remove the line',
      );
    const indent = indentOf(l);
    if (this.option && indent > 0) {
      if (this.blanks.length)
        refuse(
          this.blanks[0]!,
          `a blank line inside the value of ${this.option.key}: Python 3 keeps it, Python 2 (KARL) drops it; remove the blank line`,
        );
      this.parts.push(stripped);
      this.option.more.push(n);
      return;
    }
    if (indent > 0)
      refuse(
        n,
        'indented, and not part of a value: Python 2 (KARL) refuses it; start it at the beginning of the line',
      );
    this.finish();
    const header = /^\[(.+)\]/.exec(stripped);
    if (header) this.header(header[1]!, l, n);
    else this.key(stripped, l + (cr ? '\r' : ''), n);
  }

  private header(name: string, l: string, n: number): void {
    if (/^\[([^\]]+)\]/.exec(l)?.[1] !== name)
      refuse(
        n,
        `the section name ${shown(name)} holds "]", which Python 2 and 3 read differently: remove it`,
      );
    if (name === DEFAULT) {
      this.section = this.defaults;
      return;
    }
    const first = this.added.get(`[${name}`);
    if (first !== undefined)
      refuse(
        n,
        `[${quoted(name)}] is given twice (first on line ${first}), which Python refuses: merge the two`,
      );
    this.added.set(`[${name}`, n);
    this.section = { name, line: n, options: [] };
    this.sections.push(this.section);
  }

  /** A "key = value" line; `raw` as Python 2 reads it (with its "\r"). */
  private key(stripped: string, raw: string, n: number): void {
    const section = this.section;
    if (!section)
      refuse(
        n,
        `${shown(stripped)} comes before the first [section], which Python refuses: put it inside a section or make it a comment`,
      );
    const m = /^(.*?)[ \t]*([=:])[ \t]*(.*)$/.exec(stripped);
    if (!m || !m[1])
      refuse(
        n,
        `${shown(stripped)} is not a [section], a "key = value", an indented continuation or a comment, which Python refuses: fix or remove the line`,
      );
    const [, written, , value] = m! as unknown as [string, string, string, string];
    const key = written.toLowerCase();
    if (key !== written.replace(/[A-Z]+/g, (s) => s.toLowerCase()))
      refuse(
        n,
        `the key ${shown(written)} has non-ASCII capitals, which Python 2 and 3 fold differently: write it in lower case`,
      );
    const id = `${section!.name}\0${key}`;
    const first = this.added.get(id);
    if (first !== undefined)
      refuse(
        n,
        `${quoted(key)} is given twice in [${quoted(section!.name)}] (first on line ${first}; Python ignores the case of keys), which Python refuses: keep one`,
      );
    this.added.set(id, n);
    // Python 2 cuts the value at its first ";" when whitespace comes before it (index -1: the last character).
    const v2 = /^[^:=]*[:=][ \t\r]*([^]*)$/.exec(raw)?.[1] ?? '';
    const semi = v2.indexOf(';');
    if (semi >= 0 && /[ \t\r]/.test(v2.at(semi - 1) ?? ''))
      refuse(
        n,
        'a ";" after a space starts a comment for Python 2\'s ConfigParser (KARL\'s) but not for Python 3\'s: put the comment on a line of its own, or remove the space before ";"',
      );
    if (value === '""')
      refuse(
        n,
        `a value of just "" is empty for Python 2 and two quote marks for Python 3: write "${written} =" for an empty value`,
      );
    this.option = { key, raw: '', line: n, more: [] };
    this.parts = [value];
    section!.options.push(this.option);
  }

  finish(): void {
    if (this.option) this.option.raw = rstrip(this.parts.join('\n'));
    this.option = undefined;
    this.parts = [];
    this.blanks = [];
  }
}

/**
 * Reads the text by Python 3's rules (strict, `=` and `:`, full-line `#`/`;`
 * comments, continuation lines, blank lines inside values), refusing every line
 * that Python 2.7's ConfigParser reads differently. Throws IniRefused.
 */
export function parseIni(text: string): ParsedIni {
  checkCharacters(text);
  const raw = text.split('\n');
  if (raw.at(-1) === '') raw.pop();
  const crlf = raw.filter((l) => l.endsWith('\r')).length;
  const eol = crlf > raw.length / 2 ? '\r\n' : '\n';
  const lines = raw.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const reader = new Reader();
  lines.forEach((l, i) => reader.line(l, i + 1, raw[i]!.endsWith('\r')));
  reader.finish();
  return { sections: reader.sections, defaults: reader.defaults.options, lines, eol };
}

/** Values as Python 3's ConfigParser returns them, interpolation done. Throws IniRefused. */
export function sectionValues(
  ini: ParsedIni,
  section: IniSection,
  here: string,
): Record<string, string> {
  const map = new Map<string, { raw: string; line: number }>([['here', { raw: here, line: 0 }]]);
  for (const o of [...ini.defaults, ...section.options]) map.set(o.key, o);
  const values: Record<string, string> = {};
  for (const [key, o] of map) values[key] = interpolate(key, o, map, section.name);
  return values;
}

const MAX_DEPTH = 10;

/** Python 3's BasicInterpolation: `%%` is `%`, `%(key)s` the key's value (interpolated), any other `%` an error. */
function interpolate(
  key: string,
  option: { raw: string; line: number },
  map: Map<string, { raw: string; line: number }>,
  section: string,
): string {
  const fail = (message: string): never => {
    throw new IniRefused({ line: option.line, message: `${key} in [${section}]: ${message}` });
  };
  const walk = (rest: string, depth: number): string => {
    if (depth > MAX_DEPTH) fail(`"%(…)s" refers to itself over ${MAX_DEPTH} times: end the chain`);
    let out = '';
    while (rest) {
      const p = rest.indexOf('%');
      if (p < 0) return out + rest;
      out += rest.slice(0, p);
      rest = rest.slice(p);
      const c = rest[1];
      if (c === '%') {
        out += '%';
        rest = rest.slice(2);
      } else if (c === '(') {
        const m = /^%\(([^)]+)\)s/.exec(rest);
        if (!m)
          fail(
            `${shown(rest.slice(0, 12))} is not "%(name)s": write a "%" as "%%" (Python refuses a lone "%")`,
          );
        const name = m![1]!.toLowerCase();
        rest = rest.slice(m![0].length);
        const v = map.get(name);
        if (!v)
          fail(
            `"%(${m![1]})s" names no key of [${section}], of [DEFAULT] or "here", which Python refuses: write a "%" as "%%"`,
          );
        out += v!.raw.includes('%') ? walk(v!.raw, depth + 1) : v!.raw;
      } else
        fail(
          `${shown(rest.slice(0, 12))}: a "%" must be followed by "%" or "(" in ConfigParser: write a "%" as "%%"`,
        );
    }
    return out;
  };
  return option.raw.includes('%') ? walk(option.raw, 1) : option.raw;
}

/**
 * Keys whose value holds `%%`: a Python 2 KARL reads it as two characters (in a value
 * without `%(`), or reads the `%(` it leaves again (in a value with one).
 */
export function percentEscapes(section: IniSection): string[] {
  return section.options.filter((o) => o.raw.includes('%%')).map((o) => o.key);
}
