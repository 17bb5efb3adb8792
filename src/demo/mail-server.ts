import { chmod, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../core/command.js';
import { freeBasePort } from './ports.js';

/**
 * A private postfix for the demo and the tests: its own configuration folder,
 * queue and log under `dir`, taking mail on a free high port of 127.0.0.1.
 * "karlstage mail --install" writes and starts it from the [mail] lines here;
 * stop() ends it and whatever delivery it left running. Needs root (postfix -c).
 */
export interface PrivatePostfix {
  dir: string;
  /** The configuration folder: [mail] postfix. */
  etc: string;
  port: number;
  maillog: string;
  /** The [mail] section for karlstage.ini. */
  section: string;
  stop(): Promise<void>;
}

export async function privatePostfix(dir: string): Promise<PrivatePostfix> {
  // postfix's master opens files under it after dropping privileges: the folder must be open.
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755);
  const etc = join(dir, 'etc');
  const port = (await freeBasePort(1)) + 1;
  const maillog = join(dir, 'log', 'maillog');
  const section = [
    '[mail]',
    `postfix = ${etc}`,
    `queue_directory = ${join(dir, 'queue')}`,
    `data_directory = ${join(dir, 'data')}`,
    `log = ${maillog}`,
    `listen = 127.0.0.1:${port}`,
    'user = nobody',
    '',
  ].join('\n');
  return { dir, etc, port, maillog, section, stop: () => stopPostfix(etc) };
}

/** Stop a private postfix, and the delivery programs it started (they outlive postfix stop). */
export async function stopPostfix(etc: string): Promise<void> {
  await exec({
    program: 'postfix',
    args: ['-c', etc, 'stop'],
    step: 'postfix stop',
    okExitCodes: [1],
    timeoutMs: 30_000,
  }).catch(() => undefined);
  // pipe runs each delivery in a session of its own, with MAIL_CONFIG naming this instance.
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const env = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
    if (env.split('\0').includes(`MAIL_CONFIG=${etc}`)) {
      try {
        process.kill(-Number(pid), 'SIGKILL');
      } catch {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  }
}

/** One message over SMTP to 127.0.0.1:port (postfix's smtp-source). */
export async function sendMail(port: number, from: string, to: string, subject: string) {
  await exec({
    program: 'smtp-source',
    args: ['-m', '1', '-f', from, '-t', to, '-S', subject, `127.0.0.1:${port}`],
    step: `send a message to ${to}`,
    timeoutMs: 30_000,
  });
}

/** Postfix's queue (postqueue -j): one entry per message still queued. */
export async function queueOf(etc: string): Promise<QueueEntry[]> {
  const r = await exec({
    program: 'postqueue',
    args: ['-c', etc, '-j'],
    step: 'postqueue',
    timeoutMs: 30_000,
  });
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as QueueEntry);
}

export interface QueueEntry {
  queue_name: string;
  queue_id: string;
  recipients: { address: string; delay_reason?: string }[];
}

/** Until the queue holds only what `keep` accepts (deferred mail, say); fails after 30 s. */
export async function settleQueue(
  etc: string,
  keep: (q: QueueEntry) => boolean = () => false,
): Promise<QueueEntry[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const q = await queueOf(etc);
    if (q.every(keep)) return q;
    if (Date.now() > deadline)
      throw new Error(
        `postfix still holds ${q.length} message(s) after 30 s: ${JSON.stringify(q)}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}
