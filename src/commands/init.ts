import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { CONFIG_NAME, parseConfig } from '../config/config.js';
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

/** Write a commented karlstage.ini from templates/karlstage.ini, with the flags filled in. */
export async function init(opts: InitOptions) {
  const out = await outputFor(opts);
  const dir = resolve(opts.cwd ?? process.cwd(), opts.dir ?? '.');
  const file = join(dir, CONFIG_NAME);
  if (existsSync(file) && !opts.force)
    throw new UsageError(`${file} exists already: edit it, or pass --force to overwrite it`);
  const vcs = opts.vcs ?? 'svn';
  const text = await renderTemplate('karlstage.ini', {
    host: opts.host ?? 'karltest.example.com',
    base_port: opts.basePort ?? 6500,
    database: opts.database ?? 'host=localhost user=karl',
    vcs,
    url:
      opts.url ??
      (vcs === 'git' ? 'https://git.example.org/karl.git' : 'svn+ssh://svn.example.org/karl'),
    default_ref: opts.defaultRef ?? (vcs === 'git' ? 'main' : 'trunk'),
    skeleton: opts.skeleton ?? 'git+https://git.example.org/karl-buildout.git',
  });
  parseConfig(text, file); // flags that make a bad file are refused before anything is written
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
