import { createHash } from 'node:crypto';
import { formatDsn, parseDsn, withDatabase } from '../core/dsn.js';

/**
 * The staging database of one branch × customer. Names may contain "-" (so
 * "_" separates unambiguously); an identifier longer than PostgreSQL's 63
 * bytes is shortened with a hash. Always quote it in SQL.
 */
export function stagingDatabaseName(branch: string, customer: string): string {
  return fitIdentifier(`ks_${branch}_${customer}`);
}

/** PostgreSQL identifiers are at most 63 bytes: a longer name keeps a hash, so that it stays unique. */
export function fitIdentifier(name: string, suffix = ''): string {
  if (name.length + suffix.length <= 63) return name + suffix;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, 63 - suffix.length - 9)}_${hash}${suffix}`;
}

export function stagingDsn(database: string, branch: string, customer: string): string {
  return formatDsn(withDatabase(parseDsn(database), stagingDatabaseName(branch, customer)));
}
