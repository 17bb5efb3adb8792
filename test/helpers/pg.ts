import { execa } from 'execa';
import { startCluster } from '../../src/demo/pg-cluster.js';
import { onCleanup } from './tmp.js';

/** SQL through psql with these PG* variables: psql's unaligned output, trimmed. */
export const sqlWith =
  (env: Record<string, string>) =>
  async (db: string, query: string): Promise<string> =>
    String(
      (
        await execa('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', query], {
          env,
        })
      ).stdout,
    ).trim();

/**
 * A database that plays production: `rows` documents, each with a real person's address
 * (person N@real.example.org), the thing sanitizing must take out. `oid`: the database's OID.
 */
export async function peopleDatabase(
  pg: Pick<PgCluster, 'sql'>,
  db: string,
  rows: number,
  oid?: number,
) {
  await pg.sql('postgres', `CREATE DATABASE ${db}${oid ? ` OID ${oid}` : ''}`);
  await pg.sql(
    db,
    `CREATE TABLE docs (id serial PRIMARY KEY, title text, owner_email text); INSERT INTO docs (title, owner_email) SELECT 'doc ' || i, 'person' || i || '@real.example.org' FROM generate_series(1, ${rows}) i`,
  );
}

export interface PgCluster {
  port: number;
  /** The superuser's connection as PG* environment variables. */
  env: Record<string, string>;
  /** Superuser connection string (keyword form) for database `db`. */
  dsn(db?: string): string;
  /** Run SQL as the superuser; returns psql's unaligned output. */
  sql(db: string, query: string): Promise<string>;
  /** Someone else's open transaction: run `query` in it and keep its locks until release(). */
  hold(db: string, query: string): Promise<{ release(): Promise<void> }>;
  stop(): Promise<void>;
}

/**
 * The demo's throwaway cluster (superuser password "superpw"), stopped and removed after the test.
 * `settings`: more server settings (a later listen_addresses wins over the default 127.0.0.1).
 */
export async function pgCluster(settings: string[] = []): Promise<PgCluster & { dir: string }> {
  const cluster = await startCluster('superpw', settings);
  onCleanup(() => cluster.stop('immediate'));
  const { port } = cluster;
  const sql = sqlWith(cluster.env);
  const hold = async (db: string, query: string) => {
    const child = execa('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db], {
      env: cluster.env,
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
  return {
    port,
    dir: cluster.dir,
    env: cluster.env,
    dsn: cluster.dsn,
    sql,
    hold,
    stop: () => cluster.stop('immediate'),
  };
}
