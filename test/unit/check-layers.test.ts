// Covers: scripts/check-layers.mjs
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLayers } from '../../scripts/check-layers.mjs';
import { tempDir } from '../helpers/tmp.js';

/** A tree of source files under a temporary src/: path → text. */
async function tree(files: Record<string, string>): Promise<string> {
  const src = join(await tempDir('ks-layers-'), 'src');
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(src, path)), { recursive: true });
    await writeFile(join(src, path), text);
  }
  return src;
}

/** The core of the house: the runner, and the one file that may import it. */
const CORE = {
  'core/runner.ts':
    "import { execa } from 'execa';\nexport const run = () => execa('true');\nexport const startDetached = run;\n",
  'core/command.ts': "import { run } from './runner.js';\nexport const exec = () => run();\n",
  'core/command-line.ts': 'export const splitCommand = (s: string) => s.split(" ");\n',
};

describe('check-layers: one way to run a program', () => {
  it('refuses the runner imported anywhere but core/command.ts, naming the file and what to use instead', async () => {
    const src = await tree({
      ...CORE,
      // A read outside any plan, the right way: a Command through exec.
      'sync/disk.ts': "import { exec } from '../core/command.js';\nexport const du = exec;\n",
      'publish/tls.ts': "import { run } from '../core/runner.js';\nexport const v = run;\n",
      'publish/wake.ts':
        "import { startDetached, type RunOptions as O } from '../core/runner.js';\nexport const w = startDetached;\n",
      'commands/doctor.ts': "export const d = () => import('../core/runner.js');\n",
      'config/config.ts':
        "import { splitCommand } from '../core/runner.js';\nexport const s = splitCommand;\n",
      'db/pg.ts': "import { execa } from 'execa';\nexport const p = execa;\n",
      'db/psql.ts': "import { spawn } from 'node:child_process';\nexport const q = spawn;\n",
    });
    const { problems } = checkLayers(src);
    const about = (file: string) => problems.filter((p) => p.startsWith(`${file} `));
    expect(about('sync/disk.ts')).toEqual([]);
    expect(about('core/command.ts')).toEqual([]);
    expect(about('core/runner.ts')).toEqual([]);
    expect(about('publish/tls.ts')).toEqual([
      expect.stringMatching(
        /^publish\/tls\.ts imports run from core\/runner\.ts: only core\/command\.ts may; .*ctx\.exec.*exec\(command\) of core\/command\.ts/,
      ),
    ]);
    expect(about('publish/wake.ts')).toEqual([
      expect.stringContaining('imports startDetached, RunOptions from core/runner.ts'),
    ]);
    expect(about('commands/doctor.ts')).toEqual([
      expect.stringMatching(
        /^commands\/doctor\.ts imports core\/runner\.ts: only core\/command\.ts may/,
      ),
    ]);
    // A helper that starts nothing: the message says where it lives now.
    expect(about('config/config.ts')).toEqual([
      expect.stringMatching(
        /imports splitCommand from core\/runner\.ts: .*splitCommand is in core\/command-line\.ts$/,
      ),
    ]);
    expect(about('db/pg.ts')).toEqual([
      expect.stringMatching(
        /^db\/pg\.ts imports execa, which starts programs: only core\/runner\.ts may/,
      ),
    ]);
    expect(about('db/psql.ts')).toEqual([expect.stringContaining('imports node:child_process')]);
    expect(problems).toHaveLength(6);
  });

  it('finds nothing to refuse in the house itself', () => {
    const { files, problems } = checkLayers(join(import.meta.dirname, '..', '..', 'src'));
    expect(problems).toEqual([]);
    expect(files).toBeGreaterThan(100);
  });
});
