import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { freeBasePort } from '../../src/demo/ports.js';
import { onCleanup } from './tmp.js';

// Debian's server binaries: /usr/lib/postgresql/VERSION/bin, the newest installed.
const BIN = (() => {
  const versions = readdirSync('/usr/lib/postgresql')
    .filter((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`))
    .sort((a, b) => Number(b) - Number(a));
  return `/usr/lib/postgresql/${versions[0] ?? '15'}/bin`;
})();

export interface PgCluster {
  port: number;
  /** Superuser connection string (keyword form) for database `db`. */
  dsn(db?: string, user?: string, password?: string): string;
  /** Run SQL as the superuser; returns psql's unaligned output. */
  sql(db: string, query: string): Promise<string>;
  /** Someone else's open transaction: run `query` in it and keep its locks until release(). */
  hold(db: string, query: string): Promise<{ release(): Promise<void> }>;
  stop(): Promise<void>;
}

/**
 * A throwaway PostgreSQL cluster: initdb as the postgres user (initdb refuses
 * root) in a temp dir, listening on 127.0.0.1 only, on a free port, password
 * authentication for TCP. Stopped and removed after the test.
 */
export async function pgCluster(): Promise<PgCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'ks-pg-'));
  await chmod(dir, 0o755);
  const data = join(dir, 'data');
  const uid = Number((await execa('id', ['-u', 'postgres'])).stdout);
  const gid = Number((await execa('id', ['-g', 'postgres'])).stdout);
  const asPostgres = (cmd: string, args: string[]) =>
    execa('runuser', ['-u', 'postgres', '--', cmd, ...args], { cwd: '/' });
  await chown(dir, uid, gid);
  await execa('sh', ['-c', `echo superpw > ${dir}/pw && chown postgres ${dir}/pw`]);
  await asPostgres(`${BIN}/initdb`, [
    '-D',
    data,
    '-U',
    'postgres',
    '--pwfile',
    `${dir}/pw`,
    '-A',
    'scram-sha-256',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale',
    'C',
  ]);
  const port = (await freeBasePort(1)) + 1;
  await asPostgres(`${BIN}/pg_ctl`, [
    '-D',
    data,
    '-w',
    '-l',
    join(dir, 'log'),
    '-o',
    `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off`,
    'start',
  ]);
  const stop = async () => {
    await asPostgres(`${BIN}/pg_ctl`, ['-D', data, '-m', 'immediate', 'stop']).catch(
      () => undefined,
    );
  };
  onCleanup(async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  });
  const dsn = (db = 'postgres', user = 'postgres', password = 'superpw') =>
    `host=127.0.0.1 port=${port} user=${user} password=${password} dbname=${db}`;
  const sql = async (db: string, query: string) =>
    String(
      (
        await execa(
          'psql',
          [
            '-X',
            '-A',
            '-t',
            '-v',
            'ON_ERROR_STOP=1',
            '-h',
            '127.0.0.1',
            '-p',
            String(port),
            '-U',
            'postgres',
            '-d',
            db,
            '-c',
            query,
          ],
          { env: { PGPASSWORD: 'superpw' } },
        )
      ).stdout,
    ).trim();
  const hold = async (db: string, query: string) => {
    const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port)];
    const child = execa('psql', [...args, '-U', 'postgres', '-d', db], {
      env: { PGPASSWORD: 'superpw' },
      reject: false,
    });
    let seen = '';
    const held = new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        seen += String(d);
        if (seen.includes('HELD')) resolve();
      });
      void child.then((r) => reject(new Error(`psql ended before holding: ${r.stderr}`)));
    });
    child.stdin!.write(`BEGIN;\n${query};\n\\echo HELD\n`);
    await held;
    let released = false;
    const release = async () => {
      if (!released) child.stdin!.end('ROLLBACK;\n');
      released = true;
      await child;
    };
    onCleanup(release);
    return { release };
  };
  return { port, dsn, sql, hold, stop };
}
