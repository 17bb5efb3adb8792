import { visibleLength } from './output.js';
import { printable } from './printable.js';

/** Dates and durations as people read them in a terminal (local time). */
export function formatWhen(iso: string | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** "0.8 s", "42 s", "3 min 12 s", "1 h 05 min". */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, '0')} min`;
}

/**
 * Columns padded to their widest cell as it will be printed (colours take no room, an escaped
 * control character the room of its escape); the last column is not padded.
 */
export function table(header: string[], rows: string[][]): string[] {
  const visible = visibleLength;
  // A cell is one line: a line break or tab in it (a mail's Subject, say) is shown escaped.
  rows = rows.map((r) => r.map((c) => printable(c)));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ''))));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visible(c))))
      .join('  ');
  return [header, ...rows].map(fmt);
}
