import { createHmac } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { redact } from '../core/redact.js';
import { withRetries } from '../core/runner.js';
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
  | { kind: 'recovered'; what: 'update' | 'sync' | 'poll'; branch: string; customer?: string }
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
    case 'recovered':
      return `${e.what} of ${where(e)} works again`;
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

const ATTEMPT_MS = 5_000;

async function postWebhook(cfg: Config, payload: Payload): Promise<void> {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'karlstage',
    'x-karlstage-event': payload.event.kind,
  };
  if (cfg.notify.webhookSecret)
    headers['x-karlstage-signature'] =
      `sha256=${createHmac('sha256', cfg.notify.webhookSecret).update(body).digest('hex')}`;
  const r = await fetch(cfg.notify.webhook!, {
    method: 'POST',
    headers,
    body,
    signal: AbortSignal.timeout(ATTEMPT_MS),
    redirect: 'error',
  });
  if (!r.ok) throw new Error(`the webhook answered ${r.status} ${r.statusText}`);
}

async function sendMail(cfg: Config, payloads: Payload[]): Promise<void> {
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
  try {
    await transport.sendMail({
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
  } finally {
    transport.close();
  }
}

/**
 * Deliver the events (nothing configured, nothing done). Each delivery (one
 * webhook POST per event, one mail of them all) is tried three times with
 * backoff; a channel that fails stops there. The result of each channel is
 * recorded and logged; this never throws.
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
  // Each delivery is retried on its own: a payload that got through is never sent twice.
  const channels: [DeliveryRecord['channel'], (() => Promise<void>)[]][] = [];
  if (cfg.notify.webhook)
    channels.push(['webhook', payloads.map((p) => () => postWebhook(cfg, p))]);
  if (cfg.notify.mail.length) channels.push(['mail', [() => sendMail(cfg, payloads)]]);
  const records: DeliveryRecord[] = [];
  for (const [channel, deliveries] of channels) {
    try {
      for (const deliver of deliveries) await withRetries(deliver, 2);
      records.push({ at, channel, ok: true });
    } catch (e) {
      records.push({ at, channel, ok: false, error: redact((e as Error).message) });
    }
  }
  await mkdir(layout.logs(cfg.root), { recursive: true });
  await appendFile(
    join(layout.logs(cfg.root), 'notify.log'),
    records
      .map(
        (r) =>
          `${r.at} ${r.channel} ${r.ok ? 'delivered' : `FAILED: ${r.error}`}: ${payloads.map((p) => p.text).join(' | ')}\n`,
      )
      .join(''),
  ).catch(() => undefined);
  await writeFileAtomic(statusFile(cfg.root), JSON.stringify(records, null, 2) + '\n').catch(
    () => undefined,
  );
  return records;
}
