import { existsSync, readdirSync } from 'node:fs';
import { appendFile, chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { exec } from '../core/command.js';
import { freeBasePort } from './ports.js';

/**
 * A throwaway PostgreSQL cluster for the demo, the tests and the benchmark:
 * initdb in a temp dir (as the postgres user when we are root: initdb refuses
 * root), listening on 127.0.0.1 only, on a free port, password authentication.
 */
export interface PgCluster {
  dir: string;
  port: number;
  /** Superuser connection string (keyword form) for database `db`. */
  dsn(db?: string): string;
  /** The superuser's connection, as PG* environment variables. */
  env: Record<string, string>;
  /** Stop it and remove its files ("immediate" for tests: nothing to keep). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** The command a person runs to stop it. */
  stopCommand: string;
  /** The same, as an argument array. */
  stopArgv: string[];
}

/** Debian's server binaries live in /usr/lib/postgresql/VERSION/bin; the newest installed, if any. */
export function serverBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const version = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))[0];
  return version ? join(base, version, 'bin') : undefined;
}

/**
 * Where a cluster listens, when not on 127.0.0.1 at a free port: an address of a network
 * namespace, started through `wrap` (e.g. ['ip', 'netns', 'exec', NAME]); it then has no
 * unix socket at all, so nothing on this machine can reach it but through that address.
 */
export interface ClusterPlace {
  address: string;
  port: number;
  wrap: string[];
  /** The network its clients come from (CIDR), let in with a password. */
  clients: string;
}

/** `settings`: more server settings, e.g. ['shared_buffers=256MB'] for a benchmark. */
export async function startCluster(
  password: string,
  settings: string[] = [],
  place?: ClusterPlace,
): Promise<PgCluster> {
  const bin = serverBin();
  if (!bin)
    throw new Error('no PostgreSQL server is installed (Debian: apt-get install postgresql)');
  const dir = await mkdtemp(join(tmpdir(), 'ks-pg-'));
  const data = join(dir, 'data');
  const root = userInfo().uid === 0;
  // As root, the cluster belongs to the postgres user, so its folder must be theirs.
  const as = root ? ['runuser', '-u', 'postgres', '--'] : [];
  const owner = async (cmd: string, args: string[], step: string) => {
    const [program, ...rest] = [...as, cmd, ...args] as [string, ...string[]];
    await exec({ program, args: rest, step, cwd: '/', timeoutMs: 60_000 });
  };
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'pw'), `${password}\n`, { mode: 0o600 });
  if (root) {
    const id = async (flag: string) =>
      Number(
        (await exec({ program: 'id', args: [flag, 'postgres'], step: 'look up the postgres user' }))
          .stdout,
      );
    const [uid, gid] = [await id('-u'), await id('-g')];
    await chown(dir, uid, gid);
    await chown(join(dir, 'pw'), uid, gid);
  }
  await owner(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '--pwfile', join(dir, 'pw'), '-A', 'scram-sha-256'].concat([
      '--no-sync',
      '-E',
      'UTF8',
      '--locale',
      'C',
    ]),
    'initdb',
  );
  await rm(join(dir, 'pw'), { force: true });
  if (place)
    await appendFile(join(data, 'pg_hba.conf'), `host all all ${place.clients} scram-sha-256\n`);
  const port = place?.port ?? (await freeBasePort(1)) + 1;
  const listen = place?.address ?? '127.0.0.1';
  const host = listen.split(',')[0]!;
  const [start = '', ...startArgs] = [...(place?.wrap ?? []), ...as, join(bin, 'pg_ctl')];
  await exec({
    program: start,
    args: [
      ...startArgs,
      '-D',
      data,
      '-w',
      '-l',
      join(dir, 'log'),
      '-o',
      [
        `-c listen_addresses=${listen} -c port=${port} -c unix_socket_directories=${place ? "''" : dir} -c fsync=off`,
        ...settings.map((x) => `-c ${x}`),
      ].join(' '),
      'start',
    ],
    step: 'start PostgreSQL',
    cwd: '/',
    timeoutMs: 60_000,
  });
  const stopArgs = ['-D', data, '-m', 'fast', 'stop'];
  return {
    dir,
    port,
    dsn: (db = 'postgres') =>
      `host=${host} port=${port} user=postgres password=${password} dbname=${db}`,
    env: {
      PGHOST: host,
      PGPORT: String(port),
      PGUSER: 'postgres',
      PGPASSWORD: password,
    },
    stop: async (mode = 'fast') => {
      await owner(join(bin, 'pg_ctl'), ['-D', data, '-m', mode, 'stop'], 'stop PostgreSQL').catch(
        () => undefined,
      );
      await rm(dir, { recursive: true, force: true });
    },
    stopCommand: [...as, join(bin, 'pg_ctl'), ...stopArgs].join(' '),
    stopArgv: [...as, join(bin, 'pg_ctl'), ...stopArgs],
  };
}
