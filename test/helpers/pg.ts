import { execa } from 'execa';
import { startCluster } from '../../src/demo/pg-cluster.js';
import { onCleanup } from './tmp.js';

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
  const sql = async (db: string, query: string) =>
    String(
      (
        await execa('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', query], {
          env: cluster.env,
        })
      ).stdout,
    ).trim();
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
