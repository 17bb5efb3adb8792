import { readFile } from 'node:fs/promises';
import { parse } from 'ini';
import { UsageError } from '../core/errors.js';
import { nameProblem } from '../core/names.js';

/**
 * etc/instances.ini in karlserve's format: one [instance:NAME] section per
 * customer. The ini package reads values but drops comments on rewrite, so
 * edits are made line by line: a key karlstage changes is replaced in place,
 * a missing one is added at the end of its section, and every other line,
 * section and comment people wrote stays as it was.
 */
export interface Instance {
  name: string;
  values: Record<string, string>;
}

const SECTION = /^\s*\[([^\]]+)\]\s*([;#].*)?$/;
const KEY = /^\s*([^=\s[;#][^=]*?)\s*=/;
const COMMENT = /^\s*([;#].*)?$/;
const PREFIX = 'instance:';

export function parseInstances(text: string, file: string): Instance[] {
  const problems: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (COMMENT.test(line) || SECTION.test(line) || KEY.test(line)) return;
    problems.push(`${file}:${i + 1}: not a [section], key = value or comment: ${line.trim()}`);
  });
  const raw = parse(text) as Record<string, unknown>;
  const instances: Instance[] = [];
  for (const [section, value] of Object.entries(raw)) {
    if (!section.startsWith(PREFIX) || typeof value !== 'object' || value === null) continue;
    const name = section.slice(PREFIX.length);
    const problem = nameProblem(name);
    if (problem) {
      problems.push(`${file}: [${section}]: customer name not allowed: ${problem}`);
      continue;
    }
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(value)) values[k] = String(v);
    instances.push({ name, values });
  }
  if (problems.length) throw new UsageError(`${file} is malformed: fix it and run again`, problems);
  return instances;
}

export async function readInstances(file: string): Promise<Instance[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UsageError(
        `${file} is missing: restore it, or destroy and re-create this branch site`,
      );
    throw e;
  }
  return parseInstances(text, file);
}

/** Set keys of one instance, keeping everything else; adds the section when it is missing. */
export function setInstanceKeys(
  text: string,
  name: string,
  values: Record<string, string>,
): string {
  const lines = text.split('\n');
  const header = `${PREFIX}${name}`;
  const start = lines.findIndex((l) => SECTION.exec(l)?.[1]?.trim() === header);
  if (start < 0) {
    const block = [`[${header}]`, ...Object.entries(values).map(([k, v]) => `${k} = ${v}`)];
    const body = text.replace(/\n*$/, '');
    return `${body}${body ? '\n\n' : ''}${block.join('\n')}\n`;
  }
  let end = lines.findIndex((l, i) => i > start && SECTION.test(l));
  if (end < 0) end = lines.length;
  const pending = new Map(Object.entries(values));
  let lastKey = start;
  for (let i = start + 1; i < end; i++) {
    const key = KEY.exec(lines[i] ?? '')?.[1];
    if (key === undefined) continue;
    lastKey = i;
    if (pending.has(key)) {
      lines[i] = `${key} = ${pending.get(key)}`;
      pending.delete(key);
    }
  }
  lines.splice(lastKey + 1, 0, ...[...pending].map(([k, v]) => `${k} = ${v}`));
  return lines.join('\n');
}
