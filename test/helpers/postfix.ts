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
