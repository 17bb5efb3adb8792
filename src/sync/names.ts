import { fitIdentifier, stagingDatabaseName } from '../instances/databases.js';

/** The temporary (_new) or previous (_old) twin of a database name, within 63 bytes. */
export const suffixed = (name: string, suffix: string): string => fitIdentifier(name, suffix);

export const goldenName = (customer: string) => `ks_golden_${customer}`;

/** Every database a sync of this customer may create, rename or drop on the staging server. */
export function syncTargets(customer: string, branches: string[]): string[] {
  const golden = goldenName(customer);
  const names = [golden, suffixed(golden, '_new'), suffixed(golden, '_old')];
  for (const b of branches) {
    const db = stagingDatabaseName(b, customer);
    names.push(db, suffixed(db, '_new'), suffixed(db, '_old'));
  }
  return names;
}

/** A branch site's databases with the sync's temporary twins, which may outlive a killed sync. */
export const withTwins = (names: string[]): string[] =>
  names.flatMap((db) => [db, suffixed(db, '_new'), suffixed(db, '_old')]);
