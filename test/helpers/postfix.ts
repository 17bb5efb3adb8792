import { execa } from 'execa';
import { chmod, mkdir, readdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import {
  privatePostfix,
  queueOf,
  settleQueue,
  type PrivatePostfix,
  type QueueEntry,
} from '../../src/demo/mail-server.js';
import { freeBasePort } from '../../src/demo/ports.js';
import { onCleanup, tempDir } from './tmp.js';

export { sendMail } from '../../src/demo/mail-server.js';

/** A private postfix (karlstage's [mail] lines for it), stopped after the test; its queue and log. */
export async function postfixServer() {
  const pf: PrivatePostfix = await privatePostfix(await tempDir('ks-postfix-'));
  onCleanup(() => pf.stop());
  const log = () => readFile(pf.maillog, 'utf8').catch(() => '');
  return {
    ...pf,
    queue: () => queueOf(pf.etc),
    /** Until postfix holds nothing but what `keep` accepts (deferred mail, say). */
    settle: async (keep?: (q: QueueEntry) => boolean) =>
      settleQueue(pf.etc, keep).catch(async (e: Error) => {
        throw new Error(`${e.message}\n${await log()}`);
      }),
    log,
    flush: () => execa('postqueue', ['-c', pf.etc, '-f']),
  };
}

/** The outside world: an SMTP server keeping every message it takes as a file (smtp-sink). */
export async function smtpSink() {
  const dir = await tempDir('ks-sink-');
  await chmod(dir, 0o755);
  const out = join(dir, 'out');
  await mkdir(out);
  await chmod(out, 0o777); // smtp-sink writes as nobody
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

/**
 * One SMTP conversation spoken by hand (smtp-source cannot send SMTPUTF8 or control characters):
 * each reply's last line, in order. A 4xx or 5xx reply ends it there.
 */
export async function smtpTalk(
  port: number,
  msg: { from: string; to: string; subject: string; smtputf8?: boolean },
): Promise<string[]> {
  const s = connect({ host: '127.0.0.1', port });
  s.setEncoding('utf8');
  let buffer = '';
  const waiting: ((line: string) => void)[] = [];
  const lines: string[] = [];
  s.on('data', (d: string) => {
    buffer += d;
    for (let i; (i = buffer.indexOf('\r\n')) >= 0;) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      if (/^\d{3} /.test(line)) lines.push(line);
    }
    while (lines.length && waiting.length) waiting.shift()!(lines.shift()!);
  });
  const reply = () =>
    new Promise<string>((done, fail) => {
      waiting.push(done);
      s.once('error', fail);
    });
  const replies: string[] = [];
  const say = async (text?: string) => {
    if (text !== undefined) s.write(`${text}\r\n`);
    const r = await reply();
    replies.push(r);
    return !/^[45]/.test(r);
  };
  try {
    const utf8 = msg.smtputf8 ? ' SMTPUTF8' : '';
    const data = `Subject: ${msg.subject}\r\nFrom: <${msg.from}>\r\nTo: <${msg.to}>\r\n\r\nbody\r\n.`;
    for (const text of [
      undefined,
      'EHLO test.example',
      `MAIL FROM:<${msg.from}>${utf8}`,
      `RCPT TO:<${msg.to}>`,
      'DATA',
      data,
      'QUIT',
    ])
      if (!(await say(text))) break;
  } finally {
    s.destroy();
  }
  return replies;
}
