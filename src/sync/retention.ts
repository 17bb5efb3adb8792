import { PERIODS, type KeepPolicy, type Period } from '../config/keep.js';

// Which dumps to keep by the policy of [sync] keep (config/keep.ts). Pure: dates in, decisions out.

/** ISO 8601 week (UTC): weeks start on Monday; week 1 holds the year's first Thursday. */
function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${week}`;
}

export function periodOf(d: Date, period: Period): string {
  const y = d.getUTCFullYear();
  switch (period) {
    case 'daily':
      return d.toISOString().slice(0, 10);
    case 'weekly':
      return isoWeek(d);
    case 'monthly':
      return d.toISOString().slice(0, 7);
    case 'half-yearly':
      return `${y}-H${d.getUTCMonth() < 6 ? 1 : 2}`;
    case 'yearly':
      return String(y);
  }
}

/** The dates to keep (a subset of `dates`); everything else may be pruned. */
export function datesToKeep(dates: Date[], policy: KeepPolicy): Set<Date> {
  const newestFirst = [...dates].sort((a, b) => b.getTime() - a.getTime());
  const keep = new Set<Date>();
  for (const period of PERIODS) {
    const seen = new Set<string>();
    for (const d of newestFirst) {
      if (seen.size >= policy[period]) break;
      const key = periodOf(d, period);
      if (seen.has(key)) continue;
      seen.add(key);
      keep.add(d);
    }
  }
  return keep;
}
