import type { Config } from '../core/config.js';
import { parseDsn, withDatabase } from '../core/dsn.js';
import { UsageError } from '../core/errors.js';
import { stagingDatabaseName } from '../instances/databases.js';
import { dropDatabase, psql, quoteIdent, quoteLiteral, sameDatabase } from './pg.js';
import { goldenName, withTwins } from './names.js';

/**
 * A branch site's own databases, one per customer, on the [staging] database
 * server: made by create (a copy of the golden copy when there is one, else
 * empty) and dropped by destroy.
 */
const admin = (cfg: Config) => withDatabase(parseDsn(cfg.staging.database), 'postgres');

/** Refuse any staging database that would be some customer's production database. */
export function guardStagingNames(cfg: Config, names: string[]): void {
  const staging = parseDsn(cfg.staging.database);
  for (const c of cfg.customers) {
    if (!c.production) continue;
    const production = parseDsn(c.production);
    for (const db of withTwins(names))
      if (sameDatabase(withDatabase(staging, db), production))
        throw new UsageError(
          `refusing: the staging database "${db}" would be ${c.name}'s production database: fix [staging] database or [customer:${c.name}] production`,
        );
  }
}

export async function createStagingDatabases(
  cfg: Config,
  branch: string,
  customers: string[],
  log: string,
): Promise<string[]> {
  const made: string[] = [];
  for (const customer of customers) {
    const db = stagingDatabaseName(branch, customer);
    const golden = goldenName(customer);
    const hasGolden =
      (
        await psql(
          admin(cfg),
          `SELECT 1 FROM pg_database WHERE datname = ${quoteLiteral(golden)}`,
          { step: 'look up the golden copy', log },
        )
      ).stdout.trim() === '1';
    // A database of this name without a registered branch site is a leftover of an interrupted
    // create, or (with its twins) of a destroyed site of the same name: a sync would take them for its own.
    for (const leftover of withTwins([db])) await dropDatabase(admin(cfg), leftover, log);
    await psql(
      admin(cfg),
      `CREATE DATABASE ${quoteIdent(db)}${hasGolden ? ` TEMPLATE ${quoteIdent(golden)} STRATEGY FILE_COPY` : ''}`,
      { step: `${branch}: create the database of ${customer}`, log },
    );
    made.push(db);
  }
  return made;
}

export async function dropStagingDatabases(
  cfg: Config,
  names: string[],
  log: string,
): Promise<void> {
  // The twins too: a killed sync's _old copy must not come back in a new site of the same name.
  for (const db of withTwins(names)) await dropDatabase(admin(cfg), db, log);
}
