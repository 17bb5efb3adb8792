import { InternalError, UsageError } from '../core/errors.js';
import { renderTemplate } from '../core/templates.js';
import { IniRefused, ODD, parseIni, sectionValues } from './configparser.js';
import { hereOf, PREFIX } from './instances.js';

/**
 * Writing instances.ini so that Python's ConfigParser reads back exactly the
 * value meant: `%` is doubled (ConfigParser's escape: Python 3 reads `%%` as `%`;
 * a Python 2 KARL reads it as two characters, see docs/configuration.md), and a
 * value ConfigParser cannot carry (a line break, a space at either end, a ";"
 * after a space, which Python 2 takes for a comment) is refused, naming where it
 * came from. Every text written is read back before it is returned.
 */
const UNWRITABLE: [RegExp, string][] = [
  [/[\r\n]/, 'it holds a line break'],
  [ODD, 'it holds a control character or an unusual space'],
  [/^[ \t]|[ \t]$/, 'it starts or ends with a space, which ConfigParser drops'],
  [/^""$/, 'it is just "", which Python 2 reads as empty'],
  // Python 2 cuts a value at its first ";" when a space comes before it.
  [/^[^;]*[ \t];/, 'a ";" after a space starts a comment for Python 2 (KARL)'],
];

export function iniValue(value: string, source: string): string {
  const problem = UNWRITABLE.find(([re]) => re.test(value))?.[1];
  if (problem)
    throw new UsageError(
      `${source} cannot be written into instances.ini as KARL's ConfigParser reads it: ${problem}; change it`,
    );
  return value.replace(/%/g, '%%');
}

/**
 * A libpq connection string as instances.ini holds it: a ";" after a space (inside a
 * quoted value) becomes "\;", which libpq reads as ";" and Python 2 does not take for a comment.
 */
export const dsnForIni = (dsn: string) => dsn.replace(/([ \t]);/g, '$1\\;');

export interface InstanceSpec {
  name: string;
  /** The libpq connection string of its staging database. */
  dsn: string;
  host: string;
  testersFile: string;
}

/** A new site's instances.ini from templates/instances.ini, read back before it is returned. */
export async function renderInstancesIni(
  file: string,
  branch: string,
  customers: InstanceSpec[],
): Promise<string> {
  const meant = customers.map((c) => ({
    name: c.name,
    dsn: dsnForIni(c.dsn),
    virtual_host: c.host,
    mail_white_list: c.testersFile,
  }));
  const text = await renderTemplate('instances.ini', {
    branch,
    customers: meant.map((c) => ({
      name: c.name,
      dsn: iniValue(
        c.dsn,
        `the connection string of ${c.name}'s staging database ([staging] database)`,
      ),
      host: iniValue(c.virtual_host, '[staging] host'),
      allow_list: iniValue(c.mail_white_list, "the staging root's path (in the testers file's)"),
    })),
  });
  verifyWritten(text, file, Object.fromEntries(meant.map(({ name, ...values }) => [name, values])));
  return text;
}

/** Reads `text` back and checks each instance holds `expect`'s values; a mismatch is a bug of ours. */
export function verifyWritten(
  text: string,
  file: string,
  expect: Record<string, Record<string, string>>,
): void {
  let ini;
  try {
    ini = parseIni(text);
  } catch (e) {
    if (!(e instanceof IniRefused)) throw e;
    throw new InternalError(`karlstage made an instances.ini it would refuse: ${e.message}`);
  }
  for (const [name, values] of Object.entries(expect)) {
    const section = ini.sections.find((s) => s.name === `${PREFIX}${name}`);
    const read = section ? sectionValues(ini, section, hereOf(file)) : {};
    for (const [k, v] of Object.entries(values))
      if (read[k.toLowerCase()] !== v)
        throw new InternalError(
          `karlstage wrote ${k} of [${PREFIX}${name}] into ${file}, but it reads back differently`,
        );
  }
}

/**
 * Sets keys of one instance, keeping every other line people wrote (and each
 * line's own line end): a key that is there (in any letter case, with "=" or
 * ":") gets its new value on its own line, spelled as it was, its continuation
 * lines dropped; a missing key goes after the section's last key; a missing
 * section goes at the end. Values are the meant ones (escaped here). Throws what
 * the reader throws for a file it refuses.
 */
export function setInstanceKeys(
  text: string,
  file: string,
  name: string,
  values: Record<string, { value: string; source: string }>,
): string {
  const ini = parseIni(text);
  const { eol } = ini;
  const written = Object.entries(values).map(
    ([k, v]) => [k.toLowerCase(), iniValue(v.value, v.source)] as const,
  );
  // Each line with its own line end; null once dropped (indexes stay those of the file).
  const lines: (string | null)[] = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const ended = (i: number) => {
    const l = lines[i];
    if (l != null && !l.endsWith('\n')) lines[i] = l + eol;
  };
  const section = ini.sections.find((s) => s.name === `${PREFIX}${name}`);
  const missing: string[] = [];
  let at = lines.length;
  if (!section) {
    ended(lines.length - 1);
    if (lines.length && lines.at(-1)!.trim() !== '') missing.push(eol);
    missing.push(`[${PREFIX}${name}]${eol}`);
  }
  for (const [key, value] of written) {
    const o = section?.options.find((x) => x.key === key);
    if (!o) {
      missing.push(`${key} = ${value}${eol}`);
      continue;
    }
    const line = lines[o.line - 1]!;
    const head = /^[^:=]*[:=][ \t]*/.exec(line)![0];
    const space = /[ \t]$/.test(head) || !/[ \t][:=]$/.test(head) ? '' : ' ';
    const end = /\r?\n?$/.exec(line)![0];
    lines[o.line - 1] = `${value === '' ? head.trimEnd() : head + space + value}${end}`;
    for (const m of o.more) lines[m - 1] = null;
  }
  if (section && missing.length) {
    at = Math.max(section.line, ...section.options.flatMap((o) => [o.line, ...o.more]));
    ended(at - 1);
  }
  lines.splice(at, 0, ...missing);
  const out = lines.filter((l) => l !== null).join('');
  verifyWritten(out, file, {
    [name]: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.value])),
  });
  return out;
}
