import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { nameProblem } from '../config/names.js';
import { KarlstageError } from '../core/errors.js';
import {
  decodeIni,
  IniRefused,
  parseIni,
  percentEscapes,
  sectionValues,
  shown,
  type ParsedIni,
} from './configparser.js';

/**
 * A branch site's customers: the [instance:NAME] sections of its etc/instances.ini,
 * read as KARL reads them (configparser.ts). A file Python would refuse, one that
 * Python 2 and 3 read differently, or one left with no [instance:…] section is a
 * broken site: one line that names the file, the line and what to change.
 */
export interface Instance {
  name: string;
  /** Every option as Python 3's ConfigParser returns it (interpolated; `here` and [DEFAULT] included). */
  values: Record<string, string>;
  /** Keys whose `%%` a Python 2 KARL reads as two characters (see configparser.ts). */
  percentEscapes: string[];
}

export const PREFIX = 'instance:';

/** Where a branch site keeps its instances.ini, from the site's folder. */
export const instancesFile = (siteDir: string) => join(siteDir, 'etc', 'instances.ini');

/** What makes a branch site broken, in one line; `short` fits the CUSTOMERS column of status. */
export class BrokenSiteError extends KarlstageError {
  constructor(
    message: string,
    readonly short: string,
  ) {
    super(message);
  }
}

/** `here` as karlserve sets it: the folder that holds the file. */
export const hereOf = (file: string) => dirname(file);

export function instancesOf(ini: ParsedIni, file: string): Instance[] {
  const here = hereOf(file);
  const instances: Instance[] = [];
  for (const section of ini.sections) {
    // Every section's values, as a test reading all of them with Python would (a "%" problem anywhere is refused).
    const values = sectionValues(ini, section, here);
    if (!section.name.startsWith(PREFIX)) continue;
    const name = section.name.slice(PREFIX.length);
    const problem = nameProblem(name);
    if (problem)
      throw new IniRefused({
        line: section.line,
        message: `[${shown(section.name).slice(1, -1)}]: the customer name is not allowed (${problem}): rename the section`,
      });
    instances.push({ name, values, percentEscapes: percentEscapes(section) });
  }
  return instances;
}

/** The customers in an instances.ini's text; throws BrokenSiteError (one line). */
export function parseInstances(text: string | Uint8Array, file: string): Instance[] {
  let instances: Instance[];
  try {
    const ini = parseIni(typeof text === 'string' ? text : decodeIni(text));
    instances = instancesOf(ini, file);
  } catch (e) {
    if (!(e instanceof IniRefused)) throw e;
    throw new BrokenSiteError(
      `${file} line ${e.problem.line}: ${e.problem.message}`,
      `instances.ini line ${e.problem.line}`,
    );
  }
  if (instances.length === 0)
    throw new BrokenSiteError(
      `${file} has no [instance:NAME] section left, so the site serves no customer: restore the file (karlstage wrote one per customer), or destroy the site`,
      'no [instance:…]',
    );
  return instances;
}

export async function readInstances(file: string): Promise<Instance[]> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new BrokenSiteError(
        `${file} is missing: restore it, or destroy and re-create this branch site`,
        'instances.ini missing',
      );
    throw e;
  }
  return parseInstances(bytes, file);
}
