/**
 * Durations as people write them in karlstage.ini: "90s", "15 s", "30m", "4h", "2d", or a
 * whole number of seconds. Refused (undefined) otherwise: a configuration means what it says.
 */
const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,7})\s*(s|m|h|d)?$/i.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNITS[(m[2] ?? 's').toLowerCase()]!;
}

/** 14_400_000 → "4h", 15_000 → "15s": the shortest exact form. */
export function durationText(ms: number): string {
  for (const [unit, size] of Object.entries(UNITS).reverse())
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${Math.round(ms / 1000)}s`;
}
