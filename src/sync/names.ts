import { createHash } from 'node:crypto';
import { stagingDatabaseName } from '../instances/databases.js';

/** PostgreSQL identifiers are at most 63 bytes: a long name keeps a hash so that it stays unique. */
export function suffixed(name: string, suffix: string): string {
  if (name.length + suffix.length <= 63) return name + suffix;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, 63 - suffix.length - 9)}_${hash}${suffix}`;
}

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
