/**
 * Which dumps to keep: "3 daily, 2 weekly, 1 monthly, 1 half-yearly, 1 yearly".
 * For each rule, walking from the newest dump back, the newest dump of each
 * distinct period is kept until the rule has that many periods (as borg and
 * restic do). A dump kept by any rule stays. The rule is read here; applied by
 * sync/retention.ts.
 */
export type Period = 'daily' | 'weekly' | 'monthly' | 'half-yearly' | 'yearly';
export type KeepPolicy = Record<Period, number>;

export const PERIODS: Period[] = ['daily', 'weekly', 'monthly', 'half-yearly', 'yearly'];

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
