/**
 * Validates a crontab schedule (five fields, or an @macro). Written here rather
 * than taken from cron-parser because that pulls in luxon, and the schedule is
 * checked whenever karlstage.ini is loaded, which must stay fast.
 */
const MACROS = new Set([
  '@reboot',
  '@yearly',
  '@annually',
  '@monthly',
  '@weekly',
  '@daily',
  '@midnight',
  '@hourly',
]);
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const FIELDS: { name: string; min: number; max: number; names?: string[]; offset?: number }[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, offset: 1 },
  { name: 'day of week', min: 0, max: 7, names: DAYS, offset: 0 },
];

function value(text: string, f: (typeof FIELDS)[number]): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const i = f.names?.indexOf(text.toLowerCase()) ?? -1;
  return i >= 0 ? i + (f.offset ?? 0) : undefined;
}

/** undefined when the schedule is valid, else what is wrong with it. */
export function scheduleProblem(schedule: string): string | undefined {
  const s = schedule.trim();
  if (s.startsWith('@')) return MACROS.has(s) ? undefined : `unknown macro ${s}`;
  const parts = s.split(/\s+/);
  if (parts.length !== 5)
    return `expected 5 fields (minute hour day month weekday), got ${parts.length}`;
  for (const [i, part] of parts.entries()) {
    const f = FIELDS[i]!;
    for (const item of part.split(',')) {
      const m = /^(\*|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:\/(\d+))?$/i.exec(item);
      if (!m) return `${f.name} "${item}" is not a cron field`;
      const [, , a, b, step] = m;
      if (step !== undefined && Number(step) < 1)
        return `${f.name} step "${step}" must be at least 1`;
      for (const v of [a, b]) {
        if (v === undefined) continue;
        const n = value(v, f);
        if (n === undefined || n < f.min || n > f.max)
          return `${f.name} "${v}" is out of range ${f.min}-${f.max}`;
      }
      if (a !== undefined && b !== undefined && value(a, f)! > value(b, f)!)
        return `${f.name} range "${a}-${b}" runs backwards`;
    }
  }
  return undefined;
}
