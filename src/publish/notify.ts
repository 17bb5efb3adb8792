import { createHmac } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { printable } from '../core/printable.js';
import { redact } from '../core/redact.js';
import { withRetries } from '../core/retries.js';
import { layout } from '../model/layout.js';
import type { State } from '../model/state.js';
import { publicBase } from '../model/views.js';

/**
 * Telling a person: on a failed update, build, sync or poll, on a branch site
 * built with new commits, and on a recovery after a failure — as a JSON POST to
 * [notify] webhook (signed with webhook_secret) and as mail to [notify] mail.
 * Delivery is retried with backoff and bounded in time; it never fails or
 * blocks the job that triggered it: a failed delivery is logged
 * (.karlstage/logs/notify.log) and shown by status.
 */
export const PAYLOAD_VERSION = 1;

export type NotifyEvent =
  | {
      kind: 'failed';
      what: 'update' | 'sync' | 'poll';
      branch: string;
      customer?: string;
      error: string;
      log?: string;
    }
  | { kind: 'built'; branch: string; ref: string; revision: string; urls: string[] }
  | { kind: 'down'; branch: string; since: string; error?: string; retryAt?: string }
  | {
      kind: 'recovered';
      what: 'update' | 'sync' | 'poll' | 'site';
      branch: string;
      customer?: string;
    }
  | { kind: 'test' };

export interface Payload {
  version: typeof PAYLOAD_VERSION;
  host: string;
  at: string;
  /** One line for people (chat messages, mail subjects). */
  text: string;
  event: NotifyEvent;
}

export const textOf = (e: NotifyEvent): string => {
  const where = (x: { branch: string; customer?: string }) =>
    x.customer ? `${x.branch} (${x.customer})` : x.branch;
  switch (e.kind) {
    case 'failed':
      return `${e.what} of ${where(e)} failed: ${e.error}`;
    case 'built':
      return `${e.branch} was built at ${e.revision} (${e.ref}): ${e.urls.join(' ')}`;
    case 'down':
      return `${e.branch} is down since ${e.since}: its app does not answer and could not be started${e.error ? ` (${e.error})` : ''}; tried again at ${e.retryAt ?? 'the next watch'}`;
    case 'recovered':
      return e.what === 'site'
        ? `${e.branch} answers again`
        : `${e.what} of ${where(e)} works again`;
    case 'test':
      return 'a test message from karlstage notify --test';
  }
};

const statusFile = (root: string) => join(layout.meta(root), 'notify.json');

export interface DeliveryRecord {
  at: string;
  channel: 'webhook' | 'mail';
  ok: boolean;
  error?: string;
}

export const lastDeliveries = async (root: string): Promise<DeliveryRecord[]> =>
  JSON.parse(await readFile(statusFile(root), 'utf8').catch(() => '[]')) as DeliveryRecord[];

/** The newest run log: the one of the run that is ending (named in failure messages). */
async function newestLog(cfg: Config): Promise<string | undefined> {
  const dir = layout.logs(cfg.root);
  const files = (await readdir(dir).catch(() => [] as string[])).filter(
    (f) => f.endsWith('.log') && !['cron.log', 'notify.log'].includes(f),
  );
  let best: { f: string; t: number } | undefined;
  for (const f of files) {
    const t = (await stat(join(dir, f)).catch(() => undefined))?.mtimeMs ?? 0;
    if (!best || t > best.t) best = { f, t };
  }
  return best && join(dir, best.f);
}

/**
 * What changed between two readings of the state: failures, new builds and
 * recoveries of updates, syncs and polls.
 */
export async function eventsBetween(
  cfg: Config,
  before: State,
  after: State,
): Promise<NotifyEvent[]> {
  const events: NotifyEvent[] = [];
  const log = await newestLog(cfg);
  for (const site of Object.values(after.branches)) {
    const was = before.branches[site.name];
    const u = site.lastUpdate;
    if (u && u.at !== was?.lastUpdate?.at) {
      if (u.result === 'failed')
        events.push({
          kind: 'failed',
          what: 'update',
          branch: site.name,
          error: u.error ?? 'failed',
          ...(log ? { log } : {}),
        });
      else {
        if (was?.lastUpdate?.result === 'failed')
          events.push({ kind: 'recovered', what: 'update', branch: site.name });
        if (site.built && site.built.revision !== was?.built?.revision)
          events.push({
            kind: 'built',
            branch: site.name,
            ref: site.ref,
            revision: site.built.revision,
            urls: [`${publicBase(cfg)}/${site.name}/`],
          });
      }
    }
    for (const [customer, d] of Object.entries(site.data ?? {})) {
      const s = d.lastSync;
      const old = was?.data?.[customer]?.lastSync;
      if (!s || s.at === old?.at) continue;
      if (s.result === 'failed')
        events.push({
          kind: 'failed',
          what: 'sync',
          branch: site.name,
          customer,
          error: s.error ?? 'failed',
          ...(log ? { log } : {}),
        });
      else if (old?.result === 'failed')
        events.push({ kind: 'recovered', what: 'sync', branch: site.name, customer });
    }
    // A site that stayed down through repeated starts (watch sets toldDown), and its recovery.
    const run = site.run;
    if (run?.toldDown && !was?.run?.toldDown)
      events.push({
        kind: 'down',
        branch: site.name,
        since: run.downSince ?? run.since,
        ...(run.lastStart?.error ? { error: run.lastStart.error } : {}),
        ...(run.retryAt ? { retryAt: run.retryAt } : {}),
      });
    else if (!run?.toldDown && was?.run?.toldDown)
      events.push({ kind: 'recovered', what: 'site', branch: site.name });
    const p = site.poll;
    if (p && p.at !== was?.poll?.at) {
      if (p.error && !was?.poll?.error)
        events.push({ kind: 'failed', what: 'poll', branch: site.name, error: p.error });
      else if (!p.error && was?.poll?.error)
        events.push({ kind: 'recovered', what: 'poll', branch: site.name });
    }
  }
  return events;
}

/** One attempt of one delivery, and every delivery of one notify() with its retries. */
export const ATTEMPT_MS = 5_000;
export const NOTIFY_BOUND_MS = 20_000;

/**
 * The webhook as it may be shown: its scheme and host. The rest of a webhook URL
 * (path, query, credentials) is often the secret itself (a chat service's
 * token), so it is never printed, logged or stored.
 */
export function webhookShown(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return 'the webhook';
  }
}

/**
 * A signal that aborts after `ms`, or when `outer` does, and a `done` that lets go of both.
 * (Not AbortSignal.any: on Node 20 a combined signal can be collected before its timeout fires,
 * and the attempt then waits for the outer deadline.)
 */
function bounded(ms: number, outer?: AbortSignal): { signal: AbortSignal; done: () => void } {
  const c = new AbortController();
  const timer = setTimeout(() => c.abort(new DOMException('timed out', 'TimeoutError')), ms);
  const follow = () => c.abort(outer?.reason);
  outer?.addEventListener('abort', follow, { once: true });
  if (outer?.aborted) follow();
  return {
    signal: c.signal,
    done: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', follow);
    },
  };
}

/** What went wrong, in words that hold nothing of the URL but its scheme and host. */
function webhookFailure(where: string, e: unknown, signal: AbortSignal): Error {
  const name = (e as Error)?.name;
  if (name === 'AbortError' || name === 'TimeoutError' || signal.aborted)
    return new Error(`${where} gave no answer within ${ATTEMPT_MS / 1000} s`);
  const cause = (e as { cause?: { code?: unknown; message?: unknown } })?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  if (code) return new Error(`${where}: ${code}`);
  if (typeof cause?.message === 'string' && /redirect/i.test(cause.message))
    return new Error(`${where} answered with a redirect (not followed)`);
  return new Error(`the request to ${where} failed`);
}

async function postWebhook(cfg: Config, payload: Payload, deadline: AbortSignal): Promise<void> {
  const body = JSON.stringify(payload);
  const where = webhookShown(cfg.notify.webhook!);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'karlstage',
    'x-karlstage-event': payload.event.kind,
  };
  if (cfg.notify.webhookAuth) headers.authorization = cfg.notify.webhookAuth;
  if (cfg.notify.webhookSecret)
    headers['x-karlstage-signature'] =
      `sha256=${createHmac('sha256', cfg.notify.webhookSecret).update(body).digest('hex')}`;
  const { signal, done } = bounded(ATTEMPT_MS, deadline);
  let r: Response;
  try {
    r = await fetch(cfg.notify.webhook!, {
      method: 'POST',
      headers,
      body,
      signal,
      redirect: 'error',
    });
    await r.body?.cancel();
  } catch (e) {
    throw webhookFailure(where, e, signal);
  } finally {
    done();
  }
  if (!r.ok) throw new Error(`${where} answered ${r.status} ${r.statusText.slice(0, 80)}`);
}

async function sendMail(cfg: Config, payloads: Payload[], deadline: AbortSignal): Promise<void> {
  const { createTransport } = await import('nodemailer');
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(cfg.notify.smtp);
  const transport = createTransport({
    host: m?.[1] ?? '127.0.0.1',
    port: Number(m?.[2] ?? 25),
    secure: false,
    connectionTimeout: ATTEMPT_MS,
    greetingTimeout: ATTEMPT_MS,
    socketTimeout: ATTEMPT_MS,
  });
  // The socket timeouts above are idle timeouts: a server that sends a line every 2 s never
  // trips them. The signal bounds the whole conversation; aborting closes the connection.
  const { signal, done } = bounded(ATTEMPT_MS, deadline);
  try {
    await transport.sendMail({
      signal,
      from: `karlstage <karlstage@${cfg.staging.host}>`,
      to: cfg.notify.mail,
      subject:
        `[karlstage ${cfg.staging.host}] ${payloads.length === 1 ? payloads[0]!.text : `${payloads.length} events`}`.slice(
          0,
          200,
        ),
      text:
        payloads
          .map(
            (p) =>
              `${p.at}  ${p.text}${'log' in p.event && p.event.log ? `\n    log: ${p.event.log}` : ''}`,
          )
          .join('\n') + '\n',
    });
  } catch (e) {
    if (signal.aborted)
      throw new Error(`${cfg.notify.smtp} did not take the mail within ${ATTEMPT_MS / 1000} s`, {
        cause: e,
      });
    throw e;
  } finally {
    done();
    transport.close();
  }
}

/**
 * Deliver the events (nothing configured, nothing done). Each delivery (one
 * webhook POST per event, one mail of them all) is tried three times with
 * backoff, each try bounded as a whole (ATTEMPT_MS), and all of them together
 * end within NOTIFY_BOUND_MS: the channels go side by side, and what has not
 * got through by then is given up. The result of each channel is recorded and
 * logged; this never throws.
 */
export async function notify(cfg: Config, events: NotifyEvent[]): Promise<DeliveryRecord[]> {
  if (events.length === 0 || (!cfg.notify.webhook && cfg.notify.mail.length === 0)) return [];
  const at = new Date().toISOString();
  const payloads: Payload[] = events.map((event) => ({
    version: PAYLOAD_VERSION,
    host: cfg.staging.host,
    at,
    text: redact(textOf(event)),
    event: JSON.parse(redact(JSON.stringify(event))) as NotifyEvent,
  }));
  const { signal: deadline, done } = bounded(NOTIFY_BOUND_MS);
  // Each delivery is retried on its own: a payload that got through is never sent twice.
  const channels: [DeliveryRecord['channel'], (() => Promise<void>)[]][] = [];
  if (cfg.notify.webhook)
    channels.push(['webhook', payloads.map((p) => () => postWebhook(cfg, p, deadline))]);
  if (cfg.notify.mail.length) channels.push(['mail', [() => sendMail(cfg, payloads, deadline)]]);
  const records: DeliveryRecord[] = await Promise.all(
    channels.map(async ([channel, deliveries]): Promise<DeliveryRecord> => {
      let last: Error | undefined;
      try {
        for (const deliver of deliveries)
          await withRetries(
            () =>
              deliver().catch((e: Error) => {
                throw (last = e);
              }),
            2,
            { signal: deadline },
          );
        return { at, channel, ok: true };
      } catch (e) {
        const why = deadline.aborted
          ? `not delivered within ${NOTIFY_BOUND_MS / 1000} s${last ? ` (${last.message})` : ''}`
          : (e as Error).message;
        return { at, channel, ok: false, error: printable(redact(why)) };
      }
    }),
  );
  done();
  await mkdir(layout.logs(cfg.root), { recursive: true });
  await appendFile(
    join(layout.logs(cfg.root), 'notify.log'),
    records
      .map(
        (r) =>
          `${r.at} ${r.channel} ${r.ok ? 'delivered' : `FAILED: ${r.error}`}: ${payloads.map((p) => p.text).join(' | ')}\n`,
      )
      .join(''),
    { mode: 0o600 },
  ).catch(() => undefined);
  await writeFileAtomic(statusFile(cfg.root), JSON.stringify(records, null, 2) + '\n', {
    mode: 0o600,
  }).catch(() => undefined);
  return records;
}
