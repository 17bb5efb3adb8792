import type { Config } from '../core/config.js';
import { parseDsn, withDatabase } from '../core/dsn.js';
import { UsageError } from '../core/errors.js';
import { stagingDatabaseName } from '../instances/databases.js';
import { dropDatabase, psql, quoteIdent, quoteLiteral, sameDatabase } from './pg.js';
import { goldenName } from './names.js';

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
    for (const db of names)
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
    // A database of this name without a registered branch site is a leftover of an interrupted create.
    await psql(admin(cfg), `DROP DATABASE IF EXISTS ${quoteIdent(db)}`, {
      step: `${branch}: drop a leftover database`,
      log,
    });
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
  for (const db of names) await dropDatabase(admin(cfg), db, log);
}
