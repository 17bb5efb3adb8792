/**
 * Which dumps to keep: "3 daily, 2 weekly, 1 monthly, 1 half-yearly, 1 yearly".
 * For each rule, walking from the newest dump back, the newest dump of each
 * distinct period is kept until the rule has that many periods (as borg and
 * restic do). A dump kept by any rule stays. Pure: dates in, decisions out.
 */
export type Period = 'daily' | 'weekly' | 'monthly' | 'half-yearly' | 'yearly';
export type KeepPolicy = Record<Period, number>;

const PERIODS: Period[] = ['daily', 'weekly', 'monthly', 'half-yearly', 'yearly'];

export function parseKeep(text: string): KeepPolicy {
  const policy: KeepPolicy = { daily: 0, weekly: 0, monthly: 0, 'half-yearly': 0, yearly: 0 };
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^(\d+)\s+(daily|weekly|monthly|half-yearly|yearly)$/.exec(part);
    if (!m)
      throw new Error(
        `"${part}" is not a rule: write e.g. "3 daily, 2 weekly, 1 monthly, 1 half-yearly, 1 yearly"`,
      );
    policy[m[2] as Period] = Number(m[1]);
  }
  if (PERIODS.every((p) => policy[p] === 0))
    throw new Error('the policy keeps nothing: give at least one rule');
  return policy;
}

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
