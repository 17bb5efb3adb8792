/**
 * A strict reader of ini files that keeps line numbers, so that every problem
 * can say where it is, and refuses what it cannot read rather than dropping
 * it: a line that is not a [section], key = value or comment; a key outside
 * any section; a section or key given twice; text after a quoted value.
 *
 * Values: `key = value`, trimmed. A comment starts with ";" or "#" at the
 * start of a line or after a space (`host = db ; the staging server`); "a#b"
 * and "a;b" stay as written. A value in quotes ("…" or '…') is everything
 * inside them, comment signs and spaces included. A UTF-8 byte-order mark at
 * the start is ignored.
 */
export interface IniEntry {
  key: string;
  value: string;
  line: number;
}

export interface IniSection {
  name: string;
  line: number;
  entries: IniEntry[];
}

export interface IniProblem {
  line: number;
  section?: string;
  key?: string;
  message: string;
}

const SECTION = /^\[([^\]]*)\]\s*(?:[;#].*)?$/;
const ENTRY = /^([A-Za-z0-9_.-]+)\s*=(.*)$/;

function valueOf(raw: string): { value: string; problem?: string } {
  const text = raw.trim();
  const quote = text[0];
  if (quote === '"' || quote === "'") {
    const end = text.indexOf(quote, 1);
    if (end < 0) return { value: text, problem: `the quote ${quote} is not closed` };
    const rest = text.slice(end + 1).trim();
    if (rest && !/^[;#]/.test(rest))
      return { value: text, problem: `text after the closing quote: ${rest}` };
    return { value: text.slice(1, end) };
  }
  return { value: text.replace(/\s[;#].*$/, '').trim() };
}

export function readIni(text: string): { sections: IniSection[]; problems: IniProblem[] } {
  const sections: IniSection[] = [];
  const problems: IniProblem[] = [];
  let current: IniSection | undefined;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    const t = raw.trim();
    if (t === '' || t.startsWith(';') || t.startsWith('#')) return;
    const s = SECTION.exec(t);
    if (s) {
      const name = s[1]!.trim();
      const earlier = sections.find((x) => x.name === name);
      if (earlier)
        problems.push({
          line,
          section: name,
          message: `[${name}] is given twice (first on line ${earlier.line}): keep one`,
        });
      current = { name, line, entries: [] };
      sections.push(current);
      return;
    }
    const e = ENTRY.exec(t);
    if (!e) {
      problems.push({ line, message: `not a [section], key = value or comment: ${t}` });
      return;
    }
    const key = e[1]!;
    if (!current) {
      problems.push({ line, key, message: `${key} is outside any [section]: move it into one` });
      return;
    }
    const { value, problem } = valueOf(e[2]!);
    if (problem) problems.push({ line, section: current.name, key, message: problem });
    const earlier = current.entries.find((x) => x.key === key);
    if (earlier)
      problems.push({
        line,
        section: current.name,
        key,
        message: `${key} is given twice in [${current.name}] (first on line ${earlier.line}): keep one`,
      });
    current.entries.push({ key, value, line });
  });
  return { sections, problems };
}
