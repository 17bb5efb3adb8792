import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { decodeIni } from '../instances/configparser.js';
import { readInstances } from '../instances/instances.js';
import { setInstanceKeys } from '../instances/write.js';
import { layout } from './layout.js';

/*
 * A staging copy of production data must never mail real people. Every
 * instance's mail_white_list names one file of testers, written from
 * [staging] testers; karlstage keeps the key in every instances.ini.
 */

/**
 * Every staging instance must keep mail_white_list (a copy of production data
 * must never mail real people); put it back where someone removed it, and
 * change nothing else in the file.
 */
export async function ensureMailSafety(root: string, branch: string): Promise<string[]> {
  const file = layout.instancesIni(root, branch);
  const instances = await readInstances(file);
  const unsafe = instances.filter((i) => !i.values.mail_white_list).map((i) => i.name);
  if (unsafe.length === 0) return [];
  let text = decodeIni(await readFile(file));
  const value = { value: layout.testersFile(root), source: "the staging root's path" };
  for (const name of unsafe) text = setInstanceKeys(text, file, name, { mail_white_list: value });
  await writeFileAtomic(file, text, { mode: 0o600 });
  return unsafe;
}

/** The testers file every instance's mail_white_list names: the testers from [staging] testers. */
export async function writeAllowList(cfg: Config): Promise<void> {
  const file = layout.testersFile(cfg.root);
  await mkdir(dirname(file), { recursive: true });
  const header =
    '# Generated from [staging] testers in karlstage.ini: the only addresses staging may mail.\n';
  await writeFileAtomic(file, header + cfg.staging.testers.map((a) => `${a}\n`).join(''), {
    mode: 0o644,
  });
}
