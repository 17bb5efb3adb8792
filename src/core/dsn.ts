import { createRequire } from 'node:module';

// Loaded only for the URL form: it is not needed to start most commands.
const require = createRequire(import.meta.url);

/**
 * libpq connection strings: keyword form (`host=karl05 user=karl`) or URL form
 * (`postgres://karl@karl05/db?sslmode=require`). Both parse to the same keyword
 * map and render back to the keyword form with proper quoting. Every keyword
 * is one libpq knows and can take from the environment (the programs get their
 * connection settings, the password included, as PG* variables, never as
 * arguments `ps` shows); anything else is refused, never dropped.
 */
export type Dsn = Record<string, string>;

/** libpq's keywords and the environment variable that carries each (PostgreSQL 15 and 16). */
export const LIBPQ_ENV: Readonly<Record<string, string>> = {
  host: 'PGHOST',
  hostaddr: 'PGHOSTADDR',
  port: 'PGPORT',
  dbname: 'PGDATABASE',
  user: 'PGUSER',
  password: 'PGPASSWORD',
  passfile: 'PGPASSFILE',
  service: 'PGSERVICE',
  channel_binding: 'PGCHANNELBINDING',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  client_encoding: 'PGCLIENTENCODING',
  options: 'PGOPTIONS',
  application_name: 'PGAPPNAME',
  sslmode: 'PGSSLMODE',
  requiressl: 'PGREQUIRESSL',
  sslcompression: 'PGSSLCOMPRESSION',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslrootcert: 'PGSSLROOTCERT',
  sslcrl: 'PGSSLCRL',
  sslcrldir: 'PGSSLCRLDIR',
  sslsni: 'PGSSLSNI',
  requirepeer: 'PGREQUIREPEER',
  ssl_min_protocol_version: 'PGSSLMINPROTOCOLVERSION',
  ssl_max_protocol_version: 'PGSSLMAXPROTOCOLVERSION',
  gssencmode: 'PGGSSENCMODE',
  krbsrvname: 'PGKRBSRVNAME',
  gsslib: 'PGGSSLIB',
  target_session_attrs: 'PGTARGETSESSIONATTRS',
};

/** Keywords libpq has but cannot take from the environment: a service file can hold them. */
const NO_ENV = new Set([
  'fallback_application_name',
  'keepalives',
  'keepalives_idle',
  'keepalives_interval',
  'keepalives_count',
  'tcp_user_timeout',
  'replication',
  'sslpassword',
  'load_balance_hosts',
  'require_auth',
  'sslcertmode',
  'gssdelegation',
]);

export function parseDsn(text: string): Dsn {
  const s = text.trim();
  const dsn = /^postgres(ql)?:\/\//i.test(s) ? fromUrl(s) : fromKeywords(s);
  for (const key of Object.keys(dsn)) {
    if (LIBPQ_ENV[key]) continue;
    if (NO_ENV.has(key))
      throw new Error(
        `"${key}" cannot be passed on safely here: put it in a libpq service file and write service=NAME`,
      );
    throw new Error(`"${key}" is not a libpq connection keyword`);
  }
  return dsn;
}

function fromUrl(s: string): Dsn {
  const query = s.indexOf('?');
  const base = query < 0 ? s : s.slice(0, query);
  const authority = base.replace(/^[^:]+:\/\//, '').split('/')[0] ?? '';
  if (authority.includes(','))
    throw new Error('several hosts in a URL: write the keyword form, e.g. host=a,b port=5432,5432');
  // pg-connection-string reads the authority and path; the query holds libpq keywords as they are
  // (the library would read certificate files named there, which a parser must not do).
  const { parse } = require('pg-connection-string') as typeof import('pg-connection-string');
  const parsed = parse(base) as unknown as Record<string, unknown>;
  const out: Dsn = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'string' || v === '') continue;
    out[k === 'database' ? 'dbname' : k] = v;
  }
  for (const [k, v] of new URLSearchParams(query < 0 ? '' : s.slice(query + 1))) out[k] = v;
  return out;
}

function fromKeywords(s: string): Dsn {
  const out: Dsn = {};
  let i = 0;
  const skipSpace = () => {
    while (i < s.length && /\s/.test(s[i] ?? '')) i++;
  };
  while (true) {
    skipSpace();
    if (i >= s.length) break;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*/.exec(s.slice(i));
    if (!m || !m[1])
      throw new Error(`not a connection string: expected keyword=value at "${s.slice(i, i + 20)}"`);
    i += m[0].length;
    let value = '';
    if (s[i] === "'") {
      i++;
      while (i < s.length && s[i] !== "'") {
        if (s[i] === '\\') i++;
        value += s[i] ?? '';
        i++;
      }
      if (s[i] !== "'") throw new Error('not a connection string: unterminated quote');
      i++;
    } else {
      while (i < s.length && !/\s/.test(s[i] ?? '')) {
        if (s[i] === '\\') i++;
        value += s[i] ?? '';
        i++;
      }
    }
    if (m[1] in out) throw new Error(`"${m[1]}" is given twice`);
    out[m[1]] = value;
  }
  return out;
}

export function formatDsn(dsn: Dsn): string {
  return Object.entries(dsn)
    .map(([k, v]) => `${k}=${/^[^\s'\\]+$/.test(v) ? v : `'${v.replace(/['\\]/g, '\\$&')}'`}`)
    .join(' ');
}

export function withDatabase(dsn: Dsn, dbname: string): Dsn {
  return { ...dsn, dbname };
}

/** A connection string to show: the password (if any) masked, the rest as written. */
export function maskedDsn(text: string): string {
  try {
    const dsn = parseDsn(text);
    if (dsn.password !== undefined) dsn.password = '***';
    return formatDsn(dsn);
  } catch {
    return '(a connection string that does not parse)';
  }
}

/** The connection as PG* environment variables (libpq's own names for its keywords). */
export function dsnEnv(dsn: Dsn): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(dsn)) env[LIBPQ_ENV[k]!] = v;
  return env;
}
