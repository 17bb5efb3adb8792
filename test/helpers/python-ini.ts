import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { tempDir } from './tmp.js';

/**
 * Python's own ConfigParser reading instances.ini files, many in one run (one
 * interpreter start for a whole batch). Python 3 is Debian's (scripts/setup.sh
 * installs it), not whatever `python3` on PATH is. Python 2.7, which karlserve
 * runs, is used where this machine has one (pyenv's): `PYTHON2` below.
 */
export const PYTHON3 = '/usr/bin/python3';
export const PYTHON2 = ['/root/.pyenv/versions/2.7.18/bin/python2.7', '/usr/bin/python2.7'].find(
  (p) => existsSync(p),
);

export type PythonRead = { file: string } & (
  | {
      ok: true;
      /** ConfigParser(defaults={'here': …}): every section's items, interpolated. */
      values: Record<string, Record<string, string>>;
      /** RawConfigParser: the same, as written (Python 3 only). */
      raw?: Record<string, Record<string, string>>;
    }
  | { ok: false; error: string }
);

const PY3 = `
import configparser, json, sys
out = []
for path, here in json.load(sys.stdin):
    try:
        cp = configparser.ConfigParser(defaults={'here': here})
        cp.read(path, encoding='utf-8')
        raw = configparser.RawConfigParser(defaults={'here': here})
        raw.read(path, encoding='utf-8')
        out.append({'ok': True,
                    'values': {s: dict(cp.items(s)) for s in cp.sections()},
                    'raw': {s: dict(raw.items(s)) for s in raw.sections()}})
    except Exception as e:
        out.append({'ok': False, 'error': type(e).__name__ + ': ' + str(e)})
json.dump(out, sys.stdout)
`;

// As karlserve does it (karlserve/instance.py): options() and get() of every section.
const PY2 = `
import ConfigParser, json, sys
def u(s):
    try:
        return s.decode('utf-8')
    except UnicodeDecodeError:
        return u'(not UTF-8)'
out = []
for path, here in json.load(sys.stdin):
    try:
        cp = ConfigParser.ConfigParser(dict(here=here))
        cp.read(path)
        out.append({'ok': True, 'values': dict(
            (u(s), dict((u(o), u(cp.get(s, o))) for o in cp.options(s))) for s in cp.sections())})
    except Exception as e:
        out.append({'ok': False, 'error': type(e).__name__ + ': ' + str(e)})
print(json.dumps(out))
`;

/** Each file (text or bytes) as Python reads it from disk, with `here` its folder. */
export async function pythonRead(
  files: (string | Uint8Array)[],
  python: string = PYTHON3,
  folder?: string,
): Promise<PythonRead[]> {
  const dir = folder ?? (await tempDir('ks-pyini-'));
  const jobs: [string, string][] = [];
  for (const [i, f] of files.entries()) {
    const path = join(dir, `${i}.ini`);
    await writeFile(path, f);
    jobs.push([path, dir]);
  }
  const { stdout } = await execa(python, ['-c', python === PYTHON3 ? PY3 : PY2], {
    input: JSON.stringify(jobs),
    env: { PYTHONIOENCODING: 'utf-8', LC_ALL: 'C.UTF-8' },
  });
  return (JSON.parse(stdout) as PythonRead[]).map((r, i) => ({ ...r, file: jobs[i]![0] }));
}
