import { listPending } from '../branches/pending.js';
import { describePoll } from '../branches/poll.js';
import { layout } from '../core/layout.js';
import { readState, type BranchState } from '../core/state.js';
import { readInstances } from '../instances/instances-file.js';
import { commandContext, type GlobalOptions } from './context.js';

export interface BranchStatus {
  name: string;
  ref: string;
  vcs: string;
  port: number;
  revision?: string;
  built?: BranchState['built'];
  lastUpdate?: BranchState['lastUpdate'];
  poll?: BranchState['poll'];
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

export function shortRevision(rev: string | undefined, vcs: string): string {
  if (!rev) return '-';
  return vcs === 'svn' ? `r${rev}` : rev.slice(0, 10);
}

export function formatWhen(iso: string | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Read-only: what state.json and each site's instances.ini say, one line per branch site. */
export async function status(opts: GlobalOptions): Promise<StatusResult> {
  const { cfg, out } = await commandContext(opts);
  const state = await readState(cfg.root);
  const branches: BranchStatus[] = [];
  for (const b of Object.values(state.branches).sort((x, y) => x.slot - y.slot)) {
    let customers: string[] = [];
    let customersProblem: string | undefined;
    try {
      customers = (await readInstances(layout.instancesIni(cfg.root, b.name))).map((i) => i.name);
    } catch (e) {
      customersProblem = (e as Error).message;
    }
    branches.push({
      name: b.name,
      ref: b.ref,
      vcs: b.vcs,
      port: b.port,
      revision: b.revision,
      built: b.built,
      lastUpdate: b.lastUpdate,
      poll: b.poll,
      upstream: describePoll(b.poll),
      customers,
      ...(customersProblem ? { customersProblem } : {}),
      mail: cfg.customers
        .filter((c) => c.mailBranch === b.name && customers.includes(c.name))
        .map((c) => c.name),
      url: `https://${cfg.staging.host}/${b.name}/`,
    });
  }
  const pending = await listPending(cfg.root);
  const interrupted = Object.entries(pending)
    .filter(([name, p]) => p.op === 'create' && !state.branches[name])
    .map(([branch, p]) => ({ branch, op: p.op, started: p.started }));
  const result = { branches, interrupted };
  out.result(result);
  if (out.json) return result;

  if (branches.length === 0 && interrupted.length === 0) {
    out.line('no branch sites yet: "karlstage create BRANCH --ref REF" makes one');
    return result;
  }
  const rows = branches.map((b) => {
    const last = b.lastUpdate;
    const lastText = last
      ? `${formatWhen(last.at)} ${last.result === 'ok' ? out.c.green('ok') : out.c.red('failed')}${last.result === 'failed' && last.error ? `: ${last.error}` : ''}`
      : '-';
    const built =
      b.built && b.built.revision !== b.revision
        ? ` (built ${shortRevision(b.built.revision, b.vcs)})`
        : '';
    const up =
      b.poll?.error || b.poll?.remote === null
        ? out.c.red(b.upstream)
        : b.poll?.behind
          ? out.c.yellow(b.upstream)
          : b.upstream;
    return [
      b.name,
      b.ref,
      shortRevision(b.revision, b.vcs) + built,
      up,
      lastText,
      String(b.port),
      b.customersProblem ? out.c.red('instances.ini malformed') : b.customers.join(',') || '-',
      b.mail.join(',') || '-',
    ];
  });
  const header = [
    'BRANCH',
    'REF',
    'REVISION',
    'UPSTREAM',
    'LAST UPDATE',
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
