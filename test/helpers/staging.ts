import { appendFile, chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { init } from '../../src/commands/init.js';
import type { GlobalOptions } from '../../src/context/context.js';
import { makeSkeleton, type SampleRepo } from '../../src/demo/sample-repos.js';
import { freeBasePort } from '../../src/demo/ports.js';
import { readState } from '../../src/model/state.js';
import { onCleanup, tempDir } from './tmp.js';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'karlstage.js');

export interface Staging {
  root: string;
  config: string;
  /** Options for calling command functions directly (quiet, this config). */
  g: GlobalOptions;
  /** Run the built binary in the staging root. */
  cli(
    args: string[],
    env?: Record<string, string>,
    input?: string,
  ): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Lists every file under the root (to prove "nothing changed"). */
  snapshot(): Promise<string>;
}

export interface StagingOptions {
  url?: string;
  /** Lines added to [source] (e.g. timeout = 3). */
  source?: Record<string, string>;
  customers?: string[];
  /** Let create and destroy make and drop the staging databases (needs a real PostgreSQL). */
  databases?: boolean;
}

/**
 * A staging root with the sample skeleton and a karlstage.ini made by init,
 * pointing at `repo`. Every branch site it makes is stopped afterwards.
 */
export async function stagingServer(repo: SampleRepo, opts: StagingOptions = {}): Promise<Staging> {
  const dir = await tempDir('ks-staging-');
  // mkdtemp makes it 0700: nginx's unprivileged workers must pass through to the site list and
  // the users file (readable by [access] group) inside, as through /srv on a real server.
  await chmod(dir, 0o711);
  const skeleton = await makeSkeleton(join(dir, 'skeleton'));
  const root = join(dir, 'root');
  const { file } = await init({
    quiet: true,
    dir: root,
    host: 'karltest.example.com',
    vcs: repo.vcs,
    url: opts.url ?? repo.url,
    skeleton,
    defaultRef: repo.defaultRef,
    database: 'host=db.example.com user=karl password=s3cret-pw',
    basePort: await freeBasePort(4),
  });
  let text = await readFile(file, 'utf8');
  // Routes need nginx and a certificate: only the tests that start nginx turn them on.
  text = text.replace('routes = auto', 'routes = manual');
  // Likewise databases: only the tests that start PostgreSQL manage them.
  if (!opts.databases) text = text.replace('manage_databases = yes', 'manage_databases = no');
  // The sync's dumps and files mirror inside this root, never in the machine's /srv.
  text = text
    .replace(/^dumps = .*$/m, `dumps = ${join(root, '.karlstage', 'dumps')}`)
    .replace(/^files = .*$/m, `files = ${join(root, '.karlstage', 'files')}`);
  const source = { timeout: '20', retries: '1', ...opts.source };
  for (const [k, v] of Object.entries(source))
    text = text.replace(new RegExp(`^${k} = .*$`, 'm'), `${k} = ${v}`);
  await writeFile(file, text);
  for (const c of opts.customers ?? ['another'])
    await appendFile(file, `\n[customer:${c}]\nmail_branch = branch2\n`);

  const cli: Staging['cli'] = async (args, env = {}, input) => {
    const r = await execa('node', [BIN, ...args], {
      cwd: root,
      env: { NO_COLOR: '1', ...env },
      reject: false,
      ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
    });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
  onCleanup(async () => {
    const state = await readState(root).catch(() => undefined);
    for (const b of Object.keys(state?.branches ?? {})) await shutDownApp(root, b, false);
    // An app whose folder a test removed by hand (or whose pid file is gone) is found by its
    // environment: every step and app of this root has KARLSTAGE_ROOT set to it.
    for (const pid of await readdir('/proc').catch(() => [] as string[])) {
      if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
      const env = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
      if (env.split('\0').includes(`KARLSTAGE_ROOT=${root}`))
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone meanwhile
        }
    }
  });
  const snapshot = async () => {
    // Logs, locks and the runs' child lists come and go with every run; they are not the site's
    // content (nor is the bare .karlstage folder they live in).
    const r = await execa(
      'find',
      [
        root,
        '-mindepth',
        '1',
        '-not',
        '-path',
        '*/.karlstage/logs*',
        '-not',
        '-path',
        '*/.karlstage/locks*',
        '-not',
        '-path',
        '*/.karlstage/runs*',
        '-not',
        '-path',
        `${root}/.karlstage`,
        '-printf',
        '%P %s %T@\n',
      ],
      { reject: false },
    );
    return String(r.stdout).split('\n').sort().join('\n');
  };
  return { root, config: file, g: { quiet: true, config: file }, cli, snapshot };
}

/**
 * A branch site's app stopped behind karlstage's back (the sample app's supervisor shut down),
 * as a crash would leave it. `strict`: a supervisor that is not there is an error.
 */
export async function shutDownApp(root: string, branch: string, strict = true) {
  await execa(join(root, branch, 'bin', 'supervisorctl'), ['shutdown'], {
    cwd: join(root, branch),
    reject: strict,
  });
}

/**
 * A staging root pointed at real database servers: its [staging] database, osf's production
 * followed by `osf`'s lines (more keys of [customer:osf]), and `append` added at the end.
 */
export async function useDatabases(
  st: Staging,
  opts: { database: string; production: string; osf?: Record<string, string>; append?: string },
) {
  const osf = Object.entries(opts.osf ?? {}).map(([k, v]) => `\n${k} = ${v}`);
  const text = (await readFile(st.config, 'utf8'))
    .replace(/^database = .*$/m, `database = ${opts.database}`)
    .replace(/^production = .*$/m, `production = ${opts.production}${osf.join('')}`);
  await writeFile(st.config, text + (opts.append ?? ''));
}

/** What a branch site's app answers for a customer. */
export async function ask(port: number, customer: string): Promise<string> {
  return (await (await fetch(`http://127.0.0.1:${port}/${customer}/`)).text()).trim();
}

/** How often the sample build ran in a branch site. */
export async function buildCount(root: string, branch: string): Promise<number> {
  const text = await readFile(join(root, branch, 'var', 'builds'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).length;
}
