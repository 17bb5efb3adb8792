import { listPending } from '../branches/pending.js';
import { readState } from '../core/state.js';
import { branchViews, shortRevision } from '../web/site-data.js';
import { commandContext, type GlobalOptions } from './context.js';

export interface BranchStatus {
  name: string;
  ref: string;
  vcs: string;
  port: number;
  revision?: string;
  built?: unknown;
  lastUpdate?: unknown;
  poll?: unknown;
  data?: unknown;
  hold?: unknown;
  upstream: string;
  customers: string[];
  customersProblem?: string;
  mail: string[];
  url: string;
}

export interface StatusResult {
  branches: BranchStatus[];
  interrupted: { branch: string; op: string; started: string }[];
}

export function formatWhen(iso: string | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Read-only: the same data as the site list, one line per branch site (colour only on a terminal). */
export async function status(opts: GlobalOptions): Promise<StatusResult> {
  const { cfg, out } = await commandContext(opts);
  const state = await readState(cfg.root);
  const views = await branchViews(cfg, state);
  const branches: BranchStatus[] = views.map(
    ({ site: b, customers, customersProblem, mail, upstream, url }) => ({
      name: b.name,
      ref: b.ref,
      vcs: b.vcs,
      port: b.port,
      revision: b.revision,
      built: b.built,
      lastUpdate: b.lastUpdate,
      poll: b.poll,
      upstream,
      customers,
      ...(customersProblem ? { customersProblem } : {}),
      mail,
      url,
    }),
  );
  const pending = await listPending(cfg.root);
  const interrupted = Object.entries(pending)
    .filter(([name, p]) => p.op === 'create' && !state.branches[name])
    .map(([branch, p]) => ({ branch, op: p.op, started: p.started }));
  const result = { branches, interrupted };
  out.result(result);
  if (out.json) return result;

  if (views.length === 0 && interrupted.length === 0) {
    out.line('no branch sites yet: "karlstage create BRANCH --ref REF" makes one');
    return result;
  }
  const rows = views.map(({ site: b, customers, customersProblem, mail, upstream }) => {
    const last = b.lastUpdate;
    const lastText = last
      ? `${formatWhen(last.at)} ${last.result === 'ok' ? out.c.green('ok') : out.c.red('failed')}${last.result === 'failed' && last.error ? `: ${last.error}` : ''}`
      : '-';
    const built =
      b.built && b.built.revision !== b.revision
        ? ` (built ${shortRevision(b.built.revision, b.vcs)})`
        : '';
    const dates = customers
      .map((c) => b.data?.[c]?.asOf)
      .filter((d): d is string => Boolean(d))
      .sort();
    const data =
      (dates.length === customers.length && dates[0] ? formatWhen(dates[0]) : '-') +
      (b.hold ? out.c.yellow(' held') : '');
    const up =
      b.poll?.error || b.poll?.remote === null
        ? out.c.red(upstream)
        : b.poll?.behind
          ? out.c.yellow(upstream)
          : upstream;
    return [
      b.name,
      b.ref,
      shortRevision(b.revision, b.vcs) + built,
      up,
      lastText,
      data,
      String(b.port),
      customersProblem ? out.c.red('instances.ini malformed') : customers.join(',') || '-',
      mail.join(',') || '-',
    ];
  });
  const header = [
    'BRANCH',
    'REF',
    'REVISION',
    'UPSTREAM',
    'LAST UPDATE',
    'DATA AS OF',
    'PORT',
    'CUSTOMERS',
    'MAIL',
  ];
  // eslint-disable-next-line no-control-regex
  const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ''))));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visible(c))))
      .join('  ');
  out.line(out.c.bold(fmt(header)));
  for (const r of rows) out.line(fmt(r));
  for (const i of interrupted)
    out.line(
      out.c.yellow(
        `${i.branch}: a create was interrupted (${formatWhen(i.started)}); run "karlstage create ${i.branch}" again to finish it`,
      ),
    );
  return result;
}
