import { readFile } from 'node:fs/promises';
import { parse } from 'ini';
import { UsageError } from '../core/errors.js';
import { KEY, SECTION, setSectionKeys } from '../core/ini-edit.js';
import { nameProblem } from '../config/names.js';

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
  return setSectionKeys(text, `${PREFIX}${name}`, values);
}
