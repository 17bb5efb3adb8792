// Covers: src/config/keep.ts src/sync/retention.ts
import { describe, expect, it } from 'vitest';
import { parseKeep } from '../../src/config/keep.js';
import { datesToKeep, periodOf } from '../../src/sync/retention.js';

const day = (iso: string) => new Date(`${iso}T02:00:00Z`);
const kept = (dates: Date[], policy: string) =>
  [...datesToKeep(dates, parseKeep(policy))].map((d) => d.toISOString().slice(0, 10)).sort();

/** One dump a night from `from` to `to`, inclusive. */
function nightly(from: string, to: string): Date[] {
  const out: Date[] = [];
  for (let d = day(from); d <= day(to); d = new Date(d.getTime() + 86_400_000)) out.push(d);
  return out;
}

describe('retention', () => {
  it('parses the policy and refuses nonsense', () => {
    expect(parseKeep('3 daily, 2 weekly, 1 monthly, 1 half-yearly, 1 yearly')).toEqual({
      daily: 3,
      weekly: 2,
      monthly: 1,
      'half-yearly': 1,
      yearly: 1,
    });
    expect(() => parseKeep('3 dailies')).toThrow(/"3 dailies" is not a rule/);
    expect(() => parseKeep('0 daily')).toThrow(/keeps nothing/);
  });

  it('uses ISO weeks and half-years', () => {
    expect(periodOf(day('2026-01-01'), 'weekly')).toBe('2026-W1'); // a Thursday
    expect(periodOf(day('2027-01-01'), 'weekly')).toBe('2026-W53'); // a Friday: still 2026's last week
    expect(periodOf(day('2026-06-30'), 'half-yearly')).toBe('2026-H1');
    expect(periodOf(day('2026-07-01'), 'half-yearly')).toBe('2026-H2');
  });

  it('keeps the newest of each period, as many periods as each rule says', () => {
    // A year and a half of nightly dumps, up to Monday 2026-11-23.
    const dates = nightly('2025-05-01', '2026-11-23');
    // 2026-11-23 is a Monday: ISO week 48 begins that day; week 47 is 16-22, week 46 is 9-15.
    expect(kept(dates, '3 daily, 3 weekly, 1 monthly, 1 half-yearly, 1 yearly')).toEqual([
      '2026-11-15', // week 46
      '2026-11-21', // daily
      '2026-11-22', // daily, and week 47
      '2026-11-23', // today: daily, week 48, this month, half-year and year
    ]);
    expect(kept(dates, '2 monthly, 2 half-yearly, 2 yearly')).toEqual([
      '2025-12-31',
      '2026-06-30',
      '2026-10-31',
      '2026-11-23',
    ]);
  });

  it('with gaps (missed nights), counts periods that have dumps, not calendar slots', () => {
    const dates = [day('2026-11-23'), day('2026-11-20'), day('2026-11-02'), day('2026-09-15')];
    expect(kept(dates, '3 daily')).toEqual(['2026-11-02', '2026-11-20', '2026-11-23']);
    expect(kept(dates, '3 monthly')).toEqual(['2026-09-15', '2026-11-23']);
  });

  it('keeps everything when there are fewer dumps than the policy asks for', () => {
    const dates = [day('2026-11-22'), day('2026-11-23')];
    expect(kept(dates, '7 daily')).toEqual(['2026-11-22', '2026-11-23']);
    expect(kept([], '7 daily')).toEqual([]);
  });
});
