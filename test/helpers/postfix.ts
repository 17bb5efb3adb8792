import { execa } from 'execa';
import { chmod, mkdir, readdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { privatePostfix, type PrivatePostfix } from '../../src/demo/mail-server.js';
import { freeBasePort } from '../../src/demo/ports.js';
import { onCleanup, tempDir } from './tmp.js';

export interface QueueEntry {
  queue_name: string;
  queue_id: string;
  recipients: { address: string; delay_reason?: string }[];
}

/** A private postfix (karlstage's [mail] lines for it), stopped after the test; its queue and log. */
export async function postfixServer() {
  const pf: PrivatePostfix = await privatePostfix(await tempDir('ks-postfix-'));
  onCleanup(() => pf.stop());
  const queue = async (): Promise<QueueEntry[]> => {
    const r = await execa('postqueue', ['-c', pf.etc, '-j'], { reject: false });
    return String(r.stdout)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as QueueEntry);
  };
  /** Until postfix holds nothing but what `keep` accepts (deferred mail, say), or fail after 30 s. */
  const settle = async (keep: (q: QueueEntry) => boolean = () => false) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const q = await queue();
      if (q.every(keep)) return q;
      if (Date.now() > deadline)
        throw new Error(`postfix's queue did not settle: ${JSON.stringify(q)}\n${await log()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const log = () => readFile(pf.maillog, 'utf8').catch(() => '');
  const flush = () => execa('postqueue', ['-c', pf.etc, '-f']);
  return { ...pf, queue, settle, log, flush };
}

/** One message over SMTP to 127.0.0.1:port (postfix's smtp-source). */
export async function sendMail(port: number, from: string, to: string, subject: string) {
  await execa(
    'smtp-source',
    ['-m', '1', '-f', from, '-t', to, '-S', subject, `127.0.0.1:${port}`],
    {
      timeout: 30_000,
    },
  );
}

/** The outside world: an SMTP server keeping every message it takes as a file (smtp-sink). */
export async function smtpSink() {
  const dir = await tempDir('ks-sink-');
  await chmod(dir, 0o755);
  const out = join(dir, 'out');
  await mkdir(out, { mode: 0o777 });
  await chmod(out, 0o777);
  const port = (await freeBasePort(1)) + 1;
  const child = execa(
    'smtp-sink',
    ['-u', 'nobody', '-d', `${out}/%Y%m%d%H%M%S.`, `127.0.0.1:${port}`, '10'],
    { reject: false },
  );
  onCleanup(async () => {
    child.kill('SIGTERM');
    await child;
  });
  // Ready when it greets.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const hello = await new Promise<string>((done) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('data', (d) => (s.destroy(), done(d.toString())));
      s.once('error', () => done(''));
    });
    if (hello.startsWith('220')) break;
    if (Date.now() > deadline) throw new Error('smtp-sink did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const messages = async () =>
    Promise.all((await readdir(out)).sort().map((f) => readFile(join(out, f), 'utf8')));
  return { port, messages };
}
