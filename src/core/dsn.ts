import { createRequire } from 'node:module';

// Loaded only for the URL form: it is not needed to start most commands.
const require = createRequire(import.meta.url);

/**
 * libpq connection strings: keyword form (`host=karl05 user=karl`) or URL form
 * (`postgres://karl@karl05/db`). Both parse to the same keyword map, so two
 * spellings of one database compare equal, and both render back to the keyword
 * form with proper quoting.
 */
export type Dsn = Record<string, string>;

export function parseDsn(text: string): Dsn {
  const s = text.trim();
  if (/^postgres(ql)?:\/\//i.test(s)) return fromUrl(s);
  return fromKeywords(s);
}

function fromUrl(s: string): Dsn {
  const { parse } = require('pg-connection-string') as typeof import('pg-connection-string');
  const parsed = parse(s) as unknown as Record<string, unknown>;
  const out: Dsn = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (v === undefined || v === null || typeof v === 'object') continue;
    const key = k === 'database' ? 'dbname' : k;
    out[key] = String(v);
  }
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
