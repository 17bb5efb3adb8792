import { dsnEnv, type Dsn } from '../core/dsn.js';
import { exec, type RunResult } from '../core/command.js';
import { templatesDir } from '../core/templates.js';

/**
 * PostgreSQL through its own client tools, over libpq connection strings.
 * Connection settings (the password included) travel in PG* environment
 * variables, never as arguments that `ps` would show.
 */
export function pgEnv(dsn: Dsn, extra: Record<string, string> = {}): Record<string, string> {
  // TCP keepalives have no PG* variable: they come from karlstage's own service
  // (templates/pg_service.conf), unless the connection names a service of its own.
  const keepalives: Record<string, string> =
    dsn.service || process.env.PGSERVICE
      ? {}
      : { PGSERVICEFILE: `${templatesDir}pg_service.conf`, PGSERVICE: 'karlstage' };
  return {
    PGCONNECT_TIMEOUT: '10',
    PGAPPNAME: 'karlstage',
    ...keepalives,
    ...dsnEnv(dsn),
    ...extra,
  };
}

/** Sessions on production: read-only, so even a bug cannot write there. */
export function productionEnv(dsn: Dsn): Record<string, string> {
  return pgEnv(dsn, { PGOPTIONS: '-c default_transaction_read_only=on' });
}

/**
 * Sessions on the staging server: if karlstage is killed, the server gives up
 * the statement within 2 s instead of finishing it behind its back (a CREATE
 * DATABASE or a rename waiting on a lock would, and collide with the next run).
 * Staging only: it needs PostgreSQL 14 (FILE_COPY clones need 15 anyway);
 * production may be older and is only ever read by pg_dump.
 */
export function stagingEnv(dsn: Dsn, extra: Record<string, string> = {}): Record<string, string> {
  const env = pgEnv(dsn, extra);
  env.PGOPTIONS = [env.PGOPTIONS, '-c client_connection_check_interval=2000']
    .filter(Boolean)
    .join(' ');
  return env;
}

/** A SQL identifier, quoted (names are validated before, and quoted anyway). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export interface PgRunOptions {
  step: string;
  log?: string;
  timeoutMs?: number;
  /** Extra environment, e.g. PGOPTIONS for a read-only session. */
  env?: Record<string, string>;
}

/** psql as karlstage runs it: no psqlrc, quiet, unaligned tuples only, the first error stops it. */
export const PSQL_FLAGS = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1'] as const;

/**
 * A read on the staging server with psql, outside any plan (what writes is a plan's
 * Command: db/staging.ts). Several statements are run in order in one session (each -c its
 * own transaction; a multi-statement -c is one), and the first error stops it.
 */
export function psql(dsn: Dsn, sql: string | string[], o: PgRunOptions): Promise<RunResult> {
  const commands = (Array.isArray(sql) ? sql : [sql]).filter(Boolean).flatMap((c) => ['-c', c]);
  return exec(
    {
      program: 'psql',
      args: [...PSQL_FLAGS, ...commands],
      step: o.step,
      timeoutMs: o.timeoutMs,
      env: () => stagingEnv(dsn, o.env),
    },
    o.log,
  );
}

/** The server's version as a number (150004 for 15.4), asked with the given connection environment. */
export async function serverVersion(env: Record<string, string>, step: string): Promise<number> {
  const r = await exec({
    program: 'psql',
    args: ['-X', '-A', '-t', '-c', 'SHOW server_version_num'],
    step,
    env: () => env,
    timeoutMs: 20_000,
  });
  return Number(r.stdout.trim());
}

/** The major version of an installed client tool (pg_dump --version → 15). */
export async function toolMajor(tool: string): Promise<number> {
  const r = await exec({
    program: tool,
    args: ['--version'],
    step: `${tool} --version`,
    timeoutMs: 10_000,
  });
  return Number(/(\d+)(?:\.\d+)?/.exec(r.stdout)?.[1] ?? 0);
}

/** SQL that ends every other session on these databases (a rename or drop needs them gone). */
export const endSessions = (dbs: string[]) =>
  `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN (${dbs.map(quoteLiteral).join(', ')}) AND pid <> pg_backend_pid();`;

/** The names of the databases on a server. */
export async function databaseNames(admin: Dsn, log?: string): Promise<Set<string>> {
  const r = await psql(admin, 'SELECT datname FROM pg_database', {
    step: 'list the databases',
    log,
  });
  return new Set(r.stdout.split('\n').filter(Boolean));
}
