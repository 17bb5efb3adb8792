import { describe, expect, it } from 'vitest';
import { scheduleProblem } from '../../src/core/cron-schedule.js';

describe('cron schedules', () => {
  it.each([
    '*/5 * * * *',
    '0 2 * * *',
    '0 2 * * mon-fri',
    '15,45 1-5 1 jan,jul 0',
    '@daily',
    '0 0 * * 7',
  ])('accepts %s', (s) => expect(scheduleProblem(s)).toBeUndefined());
  it.each([
    ['*/5 * * *', /expected 5 fields/],
    ['61 * * * *', /minute "61" is out of range 0-59/],
    ['0 24 * * *', /hour "24" is out of range/],
    ['0 2 * * funday', /day of week "funday" is out of range/],
    ['5-1 * * * *', /runs backwards/],
    ['0 */0 * * *', /step "0" must be at least 1/],
    ['@sometimes', /unknown macro/],
    ['0 2 ? * *', /is not a cron field/],
  ])('refuses %s', (s, why) => expect(scheduleProblem(s)).toMatch(why));
});
