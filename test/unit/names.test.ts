// Covers: src/config/names.ts
import { describe, expect, it } from 'vitest';
import { checkName, parseCustomerList } from '../../src/config/names.js';
import { UsageError } from '../../src/core/errors.js';

describe('branch and customer names', () => {
  it.each(['branch1', 'staging', 'a', 'new-calendar', 'x'.repeat(31)])('accepts %s', (name) => {
    expect(checkName('branch', name)).toBe(name);
  });

  it.each([
    '../x',
    'Branch',
    'a b',
    'x;rm',
    '.hidden',
    'sites',
    '',
    '1abc',
    'x'.repeat(32),
    'a/b',
    'a_b',
  ])('refuses %j with a usage error that says what to do', (name) => {
    const e = (() => {
      try {
        checkName('branch', name);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).exitCode).toBe(2);
    expect((e as UsageError).message).toMatch(/is not allowed: /);
  });

  it('parses a customer list and refuses a bad name in it', () => {
    expect(parseCustomerList('osf, another,osf')).toEqual(['osf', 'another']);
    expect(() => parseCustomerList('osf,Bad')).toThrow(/customer name "Bad" is not allowed/);
    expect(() => parseCustomerList(' , ')).toThrow(/at least one/);
  });
});
