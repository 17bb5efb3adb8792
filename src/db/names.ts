import { createHash } from 'node:crypto';
import { formatDsn, parseDsn, withDatabase } from '../core/dsn.js';

/**
 * The names of the databases karlstage keeps on the staging server.
 *
 * Branch and customer names are [a-z0-9-] (config/names.ts): they never hold
 * "_". So a branch site's database is `ks_BRANCH_CUSTOMER`, and everything
 * karlstage adds on its own — the golden copy, the sync's twins, the hash of a
 * name too long for PostgreSQL — is marked by "__", which no name a user can
 * choose produces. A branch site called "golden" is just `ks_golden_osf`; osf's
 * golden copy is `ks__golden_osf`. Always quote these names in SQL.
 */
const MAX = 63; // PostgreSQL's identifier limit, in bytes (these names are ASCII)

/** A name within 63 bytes: a longer one is cut and keeps a hash of the whole, so it stays unique. */
function fit(name: string, suffix = ''): string {
  if (name.length + suffix.length <= MAX) return name + suffix;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, MAX - suffix.length - hash.length - 2)}__${hash}${suffix}`;
}

/** The database of one branch site × customer. */
export const stagingDatabaseName = (branch: string, customer: string): string =>
  fit(`ks_${branch}_${customer}`);

/** A customer's golden copy: last night's sanitized production data, cloned into each branch site. */
export const goldenName = (customer: string): string => `ks__golden_${customer}`;

/** Before this naming, the golden copy was ks_golden_CUSTOMER (which a branch site "golden" could also get). */
export const legacyGoldenName = (customer: string): string => `ks_golden_${customer}`;

/** The sync's temporary (new) or previous (old) copy of a database. */
export const twin = (name: string, which: 'new' | 'old'): string => fit(name, `__${which}`);

/** A database with its twins, which may outlive a killed sync. */
export const withTwins = (names: string[]): string[] =>
  names.flatMap((db) => [db, twin(db, 'new'), twin(db, 'old')]);

/** Every database a sync of this customer may create, rename or drop on the staging server. */
export const syncTargets = (customer: string, branches: string[]): string[] =>
  withTwins([goldenName(customer), ...branches.map((b) => stagingDatabaseName(b, customer))]);

/** The connection string a branch site's instance uses for a customer. */
export function stagingDsn(database: string, branch: string, customer: string): string {
  return formatDsn(withDatabase(parseDsn(database), stagingDatabaseName(branch, customer)));
}
