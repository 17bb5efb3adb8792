import { UsageError } from '../core/errors.js';

/** Branch and customer names become URL segments, folder names and parts of database names. */
const NAME = /^[a-z][a-z0-9-]{0,30}$/;
const RESERVED = new Set(['sites']);

export function nameProblem(name: string): string | undefined {
  if (name.startsWith('.')) return 'names starting with "." are reserved';
  if (RESERVED.has(name)) return `"${name}" is reserved`;
  if (!NAME.test(name))
    return 'use 1 to 31 lower-case letters, digits and "-", starting with a letter';
  return undefined;
}

export function checkName(kind: 'branch' | 'customer', name: string): string {
  const problem = nameProblem(name);
  if (problem)
    throw new UsageError(`${kind} name ${JSON.stringify(name)} is not allowed: ${problem}`);
  return name;
}

export function parseCustomerList(list: string): string[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new UsageError('--customers needs at least one customer name');
  for (const n of names) checkName('customer', n);
  return [...new Set(names)];
}
