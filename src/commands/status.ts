import { startTime } from '../core/children.js';
import { listPending, type Pending } from '../model/pending.js';
import { readState } from '../model/state.js';
import { shortRevision } from '../model/upstream.js';
import { branchViews, type BranchView } from '../model/views.js';
import { siteRuns, type SiteRun, type SiteState } from '../model/site-state.js';
import { formatDuration, formatWhen, table } from '../core/format.js';
import { lastDeliveries, type DeliveryRecord } from '../publish/notify.js';
import { databaseSizes, diskReport, mb } from '../sync/disk.js';
import type { Config } from '../config/config.js';
import type { Output } from '../core/output.js';
import type { State } from '../model/state.js';
import { commandContext, type GlobalOptions } from '../context/context.js';

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
  /** Its source checkout removed by hand (the next update checks it out again). */
  sourceProblem?: string;
  mail: string[];
  /** Per mail customer: messages waiting in its Maildir for mail-in. */
  mailWaiting: Record<string, number>;
  /** Why it is stale, if it is ("karlstage prune"). */
  stale?: string;
  url: string;
  /** Whether its app runs (asked of its port), since when, and its memory when it runs. */
  state: SiteState;
  since: string | null;
  memoryBytes?: number;
  run?: SiteRun;
}

export interface StatusResult {
  branches: BranchStatus[];
  interrupted: { branch: string; op: string; started: string; damaged?: string }[];
  /** The last notification deliveries ([notify]), each channel's. */
  notifications: DeliveryRecord[];
}

/** Read-only: the same data as the site list, one line per branch site (colour only on a terminal). */
export async function status(opts: GlobalOptions & { disk?: boolean }): Promise<StatusResult> {
  const { cfg, out } = await commandContext(opts);
  const state = await readState(cfg.root);
  if (opts.disk) return diskStatus(cfg, state, out) as unknown as Promise<StatusResult>;
  const views = await branchViews(cfg, state);
  const runs = await siteRuns(
    cfg,
    views.map((v) => v.site),
    { memory: true },
  );
  const runOf = (name: string): SiteRun => runs.get(name) ?? { state: 'down', since: null };
  const branches = views.map((v) => statusOf(v, runOf(v.site.name)));
  const interrupted = await interruptedChanges(cfg.root, state);
  const notifications = await lastDeliveries(cfg.root);
  const result = { branches, interrupted, notifications };
  if (out.json) return result;
  if (views.length === 0 && interrupted.length === 0) {
    out.line('no branch sites yet: "karlstage create BRANCH --ref REF" makes one');
    return result;
  }
  const [head, ...lines] = table(
    SITE_COLUMNS,
    views.map((v) => siteRow(v, runOf(v.site.name), out)),
  );
  out.line(out.c.bold(head!));
  for (const l of lines) out.line(l);
  // Per branch site and customer: the data it holds and how its last sync went.
  if (views.some(({ site: b }) => b.hold || Object.keys(b.data ?? {}).length)) {
    const [dhead, ...dlines] = table(
      DATA_COLUMNS,
      views.flatMap((v) => dataRows(v, out)),
    );
    out.line('');
    out.line(out.c.bold(dhead!));
    for (const l of dlines) out.line(l);
  }
  for (const note of notes({ views, runOf, notifications, interrupted }, out)) out.line(note);
  return result;
}

/** One branch site as status --json gives it. */
function statusOf(v: BranchView, run: SiteRun): BranchStatus {
  const { site: b } = v;
  return {
    state: run.state,
    since: run.since,
    ...(run.memoryBytes !== undefined ? { memoryBytes: run.memoryBytes } : {}),
    run,
    name: b.name,
    ref: b.ref,
    vcs: b.vcs,
    port: b.port,
    revision: b.revision,
    built: b.built,
    lastUpdate: b.lastUpdate,
    poll: b.poll,
    data: b.data ?? {},
    ...(b.hold ? { hold: b.hold } : {}),
    upstream: v.upstream,
    customers: v.customers,
    ...(v.customersProblem ? { customersProblem: v.customersProblem } : {}),
    ...(v.sourceProblem ? { sourceProblem: v.sourceProblem } : {}),
    mail: v.mail,
    mailWaiting: v.mailWaiting,
    url: v.url,
    ...(v.stale ? { stale: v.stale } : {}),
  };
}

/** A marker whose run is gone: an interrupted create, update, switch or destroy (the next run finishes it). */
async function interruptedChanges(
  root: string,
  state: State,
): Promise<StatusResult['interrupted']> {
  return Object.entries(await listPending(root))
    .filter(([, p]) => !runIsAlive(p))
    .map(([branch, p]) => ({
      branch,
      // A damaged marker of a site that is recorded: an update or switch (else a create).
      op: p.op !== 'unknown' ? p.op : state.branches[branch] ? 'update' : 'create',
      started: p.started,
      ...(p.damaged ? { damaged: p.damaged } : {}),
    }));
}

const SITE_COLUMNS = [
  'BRANCH',
  'STATE',
  'REF',
  'REVISION',
  'UPSTREAM',
  'LAST UPDATE',
  'LAST SYNC',
  'PORT',
  'CUSTOMERS',
  'MAIL',
];

/** A branch site's line of the first table. */
function siteRow(v: BranchView, run: SiteRun, out: Output): string[] {
  const { site: b, customers, customersProblem, customersShort, mail, mailWaiting, upstream } = v;
  const last = b.lastUpdate;
  const lastText = last
    ? `${formatWhen(last.at)} ${last.result === 'ok' ? out.c.green('ok') : out.c.red('failed')}${last.result === 'failed' && last.error ? `: ${last.error}` : ''}`
    : '-';
  const built =
    b.built && b.built.revision !== b.revision
      ? ` (built ${shortRevision(b.built.revision, b.vcs)})`
      : '';
  const syncs = customers
    .map((c) => b.data?.[c]?.lastSync)
    .filter((x): x is NonNullable<typeof x> => Boolean(x));
  const latest = syncs
    .map((x) => x.at)
    .sort()
    .at(-1);
  const sync =
    (latest
      ? `${formatWhen(latest)} ${syncs.some((x) => x.result === 'failed') ? out.c.red('failed') : out.c.green('ok')}`
      : '-') + (b.hold ? out.c.yellow(' held') : '');
  const up =
    b.poll?.error || b.poll?.remote === null
      ? out.c.red(upstream)
      : b.poll?.behind
        ? out.c.yellow(upstream)
        : upstream;
  return [
    b.name,
    stateText(run, out),
    b.ref,
    shortRevision(b.revision, b.vcs) + built,
    up,
    lastText,
    sync,
    String(b.port),
    customersProblem ? out.c.red(`broken: ${customersShort}`) : customers.join(',') || '-',
    mail.map((c) => (c in mailWaiting ? `${c} (${mailWaiting[c]} waiting)` : c)).join(',') || '-',
  ];
}

const DATA_COLUMNS = [
  'BRANCH',
  'CUSTOMER',
  'DATA AS OF',
  'CHECKED',
  'MIGRATES',
  'LAST SYNC',
  'RESULT',
];

/** A branch site's lines of the data table: one per customer. */
function dataRows({ site: b, customers }: BranchView, out: Output): string[][] {
  return customers.map((c) => {
    const d = b.data?.[c];
    const s = d?.lastSync;
    const result = !s
      ? '-'
      : s.result === 'ok'
        ? `${out.c.green('ok')} in ${formatDuration(s.durationMs)}`
        : `${out.c.red('failed')} after ${formatDuration(s.durationMs)}${s.error ? `: ${s.error}` : ''}`;
    const held = b.hold
      ? out.c.yellow(
          `  held by ${b.hold.by} since ${formatWhen(b.hold.since)}${b.hold.reason ? `: ${b.hold.reason}` : ''}`,
        )
      : '';
    // Does this code migrate on the customer's production data (the last night it ran)?
    const m = d?.migrate;
    const migrates = !m ? '-' : m.result === 'ok' ? out.c.green('ok') : out.c.red('failed');
    return [
      b.name,
      c,
      d?.asOf ? formatWhen(d.asOf) : 'no copy yet',
      d?.checkedPatterns ? `${d.checkedPatterns}` : '-',
      migrates,
      formatWhen(s?.at),
      result + held,
    ];
  });
}

/** The lines under the tables: what needs a look, each in the words every command uses. */
function notes(
  facts: {
    views: BranchView[];
    runOf: (name: string) => SiteRun;
    notifications: DeliveryRecord[];
    interrupted: StatusResult['interrupted'];
  },
  out: Output,
): string[] {
  const { views, runOf } = facts;
  const lines: string[] = [];
  for (const d of facts.notifications.filter((x) => !x.ok))
    lines.push(
      out.c.red(
        `the ${d.channel} notification of ${formatWhen(d.at)} was not delivered: ${d.error} (see .karlstage/logs/notify.log)`,
      ),
    );
  // A broken site, in the one line every command says it with.
  for (const v of views)
    for (const problem of [v.customersProblem, v.sourceProblem].filter(Boolean))
      lines.push(out.c.red(`${v.site.name}: ${problem}`));
  for (const v of views.filter((x) => x.stale))
    lines.push(
      out.c.yellow(
        `${v.site.name} is stale: ${v.stale} ("karlstage prune" lists what it would remove)`,
      ),
    );
  for (const v of views) {
    const run = runOf(v.site.name);
    if (run.state === 'down')
      lines.push(
        out.c.red(
          `${v.site.name} is down${run.since ? ` since ${formatWhen(run.since)}` : ''}: ${run.error ?? `nothing answers on 127.0.0.1:${v.site.port}`}; watch starts it again ${run.retryAt ? `at ${formatWhen(run.retryAt)}` : 'within a minute'}`,
        ),
      );
  }
  for (const i of facts.interrupted)
    lines.push(
      out.c.yellow(
        i.damaged
          ? `${i.branch}: a change was interrupted (${i.damaged}); ${finish(i)}`
          : `${i.branch}: ${i.op === 'update' ? 'an' : 'a'} ${i.op} was interrupted (${formatWhen(i.started)}); ${finish(i)}`,
      ),
    );
  return lines;
}

/** "running 212 MB", "sleeping since 2026-12-03 12:00", "down since 02:14, next try 02:20". */
function stateText(run: SiteRun, out: Output): string {
  const since = run.since ? ` since ${formatWhen(run.since)}` : '';
  switch (run.state) {
    case 'running':
      return out.c.green(`running${run.memoryBytes ? ` ${mb(run.memoryBytes)}` : ''}`);
    case 'down':
      return out.c.red(
        `down${since}${run.retryAt ? `, next try ${formatWhen(run.retryAt).slice(11)}` : ''}`,
      );
    case 'stopped':
      return out.c.yellow(`stopped${since}${run.by ? ` by ${run.by}` : ''}`);
    default:
      return `${run.state}${since}`;
  }
}

/** The one command that finishes an interrupted change. */
function finish(i: { branch: string; op: string }): string {
  if (i.op === 'create') return `run "karlstage create ${i.branch}" again to finish it`;
  if (i.op === 'destroy') return `run "karlstage destroy ${i.branch} --yes" again to finish it`;
  return `the next "karlstage update ${i.branch}" (or poll --build) finishes it`;
}

/** The run that wrote the marker still runs (same pid and start time): its change is under way. */
const runIsAlive = (p: Pending) => Boolean(p.start) && startTime(p.pid) === p.start;

/** status --disk: each site's own and shared disk use, each staging database, the dumps, free space. */
async function diskStatus(cfg: Config, state: State, out: Output) {
  const disk = await diskReport(cfg, state);
  const databases = await databaseSizes(cfg);
  const result = { disk: { ...disk, databases: databases ?? null } };
  if (out.json) return result;
  const rows = disk.sites.map((s) => [s.name, mb(s.ownBytes), mb(s.sharedBytes)]);
  for (const l of table(['BRANCH', 'OWN', 'SHARED (hard-linked blobs)'], rows)) out.line(l);
  out.line('');
  if (databases) {
    for (const l of table(
      ['DATABASE', 'SIZE'],
      databases.map((d) => [d.name, mb(d.bytes)]),
    ))
      out.line(l);
  } else out.line(out.c.yellow('the staging database server could not be asked for sizes'));
  out.line('');
  for (const d of disk.dumps)
    out.line(
      `dumps of ${d.customer}: ${d.count}, ${mb(d.bytes)} (the newest ${mb(d.newestBytes)})`,
    );
  out.line(`dumps in all: ${mb(disk.dumpsBytes)}`);
  for (const f of disk.free) out.line(`free in ${f.path}: ${mb(f.bytes)}`);
  return result;
}
