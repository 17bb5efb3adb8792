import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import { CONFIG_NAME, isRemoteLocation, parseConfig } from '../config/config.js';
import { UsageError } from '../core/errors.js';
import { planAsJson, printPlan, type Step } from '../core/plan.js';
import { renderTemplate } from '../core/templates.js';
import { outputFor, type GlobalOptions } from '../context/context.js';

export interface InitOptions extends GlobalOptions {
  dir?: string;
  host?: string;
  vcs?: string;
  url?: string;
  skeleton?: string;
  defaultRef?: string;
  database?: string;
  basePort?: number;
  force?: boolean;
}

/** A value as an ini value that reads back as written: quoted when a comment sign or spaces would change it. */
function iniValue(value: string): string {
  if (!/(^\s|\s$|\s[;#]|^["'])/.test(value)) return value;
  return value.includes('"') ? `'${value}'` : `"${value}"`;
}

/** Write a commented karlstage.ini from templates/karlstage.ini, with the flags filled in. */
export async function init(opts: InitOptions) {
  const out = await outputFor(opts);
  const dir = resolve(opts.cwd ?? process.cwd(), opts.dir ?? '.');
  const file = join(dir, CONFIG_NAME);
  if (existsSync(file) && !opts.force)
    throw new UsageError(`${file} exists already: edit it, or pass --force to overwrite it`);
  const vcs = opts.vcs ?? 'svn';
  const given = {
    host: opts.host ?? 'karltest.example.com',
    database: opts.database ?? 'host=localhost user=karl',
    url:
      opts.url ??
      (vcs === 'git' ? 'https://git.example.org/karl.git' : 'svn+ssh://svn.example.org/karl'),
    default_ref: opts.defaultRef ?? (vcs === 'git' ? 'main' : 'trunk'),
    skeleton: opts.skeleton ?? 'git+https://git.example.org/karl-buildout.git',
  };
  const flag = (key: string) => `--${key.replace('_', '-')}`;
  for (const [key, value] of Object.entries(given))
    if (/[\r\n]/.test(value))
      throw new UsageError(`${flag(key)}: a value with a line break cannot go into ${CONFIG_NAME}`);
  const text = await renderTemplate('karlstage.ini', {
    ...Object.fromEntries(Object.entries(given).map(([k, v]) => [k, iniValue(v)])),
    base_port: opts.basePort ?? 6500,
    vcs,
  });
  // Flags that make a bad file are refused before anything is written; and the file must
  // read back as exactly what the flags said (no value may turn into a comment or another key).
  const cfg = parseConfig(text, file);
  const read = {
    host: cfg.staging.host,
    database: cfg.staging.database,
    url: cfg.source.url,
    default_ref: cfg.source.default,
    skeleton: isRemoteLocation(given.skeleton)
      ? cfg.deployment.skeleton
      : given.skeleton && resolve(dir, given.skeleton),
  };
  for (const [key, value] of Object.entries(given)) {
    const back = read[key as keyof typeof read];
    const expected = key === 'skeleton' && !isRemoteLocation(value) ? resolve(dir, value) : value;
    if (back !== expected)
      throw new UsageError(
        `${flag(key)} ${value} would not read back as given from ${CONFIG_NAME}: choose another value`,
      );
  }
  const write: Step = {
    title: `write ${CONFIG_NAME}`,
    effects: [
      `write ${file}:`,
      ...text
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}`),
    ],
    run: async () => {
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(file, text);
    },
  };
  const plan = { command: 'init', jobs: [{ name: dir, steps: [write] }] };
  if (opts.dryRun) {
    if (!out.json) printPlan(plan, out);
    return { file, ...planAsJson(plan) };
  }
  // No run log: there is no staging root yet to keep one in.
  await write.run({} as never);
  out.line(`wrote ${file}: review it, then "karlstage doctor" checks it`);
  return { file };
}
