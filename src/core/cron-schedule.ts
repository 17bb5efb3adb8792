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
  return neverRuns(parts);
}

/** The values a valid field selects. */
function expand(part: string, f: (typeof FIELDS)[number]): Set<number> {
  const found = new Set<number>();
  for (const item of part.split(',')) {
    const [, star, a, b, step] = /^(\*)?([a-z0-9]+)?(?:-([a-z0-9]+))?(?:\/(\d+))?$/i.exec(item)!;
    const from = star ? f.min : value(a!, f)!;
    // "5/10" is "5-max/10", as cron reads it.
    const to = star || (step && b === undefined) ? f.max : b !== undefined ? value(b, f)! : from;
    for (let n = from; n <= to; n += Number(step ?? 1)) found.add(n);
  }
  return found;
}

const DAYS_IN = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]; // February: in leap years

/**
 * A schedule whose days never come (`0 2 31 2 *`: there is no 31 February) is
 * accepted by cron and never runs. cron matches a day by day of month OR day of
 * week when both are restricted, and by both when either starts with "*": only
 * then can the day of month alone rule out every day.
 */
function neverRuns(parts: string[]): string | undefined {
  const [, , dom = '*', month = '*', dow = '*'] = parts;
  if (dom.startsWith('*') || !dow.startsWith('*')) return undefined;
  const days = expand(dom, FIELDS[2]!);
  const months = [...expand(month, FIELDS[3]!)];
  if (months.some((m) => [...days].some((d) => d <= DAYS_IN[m - 1]!))) return undefined;
  const names = months.map((m) => MONTH_NAMES[m - 1]).join(', ');
  return `day ${[...days].join(',')} never comes in ${names}: this schedule would never run`;
}

const MONTH_NAMES = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
