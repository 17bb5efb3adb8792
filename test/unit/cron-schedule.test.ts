// Covers: src/core/cron-schedule.ts
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
    // Days that come: 29 February in leap years; 31 in some month; by weekday (either matches).
    '0 2 29 2 *',
    '0 2 31 1-3 *',
    '0 2 31 2 mon',
    '0 2 30,31 feb,apr *',
    '0 2 */31 2 *',
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
    // Schedules that never run: their day of month never comes in their months.
    ['0 2 31 2 *', /day 31 never comes in February: this schedule would never run/],
    ['0 2 30,31 feb *', /day 30,31 never comes in February/],
    ['0 2 31 apr,jun,sep,nov *', /day 31 never comes in April, June, September, November/],
    ['0 2 31 4 */2', /day 31 never comes in April/],
    ['0 2 30-31 2/12 *', /never comes in February/],
  ])('refuses %s', (s, why) => expect(scheduleProblem(s)).toMatch(why));
});
