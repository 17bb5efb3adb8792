import { createHmac } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { serverSource } from '../src/demo/sample-app.js';
import { smtpSink } from './helpers/postfix.js';
import { blackhole } from './helpers/processes.js';
import { gitRepo } from './helpers/repos.js';
import { stagingServer } from './helpers/staging.js';
import { onCleanup } from './helpers/tmp.js';

const SECRET = 'hook-s3cret-token';

/** A local webhook receiver: keeps every request; `hang` makes it accept and never answer. */
async function receiver(opts: { hang?: boolean } = {}) {
  const got: { headers: IncomingMessage['headers']; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      if (!opts.hang) res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

describe('notifications', () => {
  it('a new build, a failure and a recovery reach the webhook (signed) and the mail; a hanging receiver never holds up the job', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    const hook = await receiver();
    const sink = await smtpSink();
    const notifySection = (url: string) =>
      `\n[notify]\nwebhook = ${url}\nwebhook_secret = ${SECRET}\nmail = ops@example.org\nsmtp = [127.0.0.1]:${sink.port}\n`;
    const base = await readFile(st.config, 'utf8');
    await writeFile(st.config, base + notifySection(hook.url));
    await create({ ...st.g, branch: 'branch1' });

    // A test message first.
    const test = await st.cli(['notify', '--test']);
    expect(test.exitCode, test.stderr).toBe(0);
    expect(test.stdout).toMatch(/ok\s+webhook/);
    expect(test.stdout).toMatch(/ok\s+mail/);
    expect(JSON.parse(hook.got.at(-1)!.body)).toMatchObject({
      version: 1,
      event: { kind: 'test' },
    });

    // New commits built: the site's URL.
    await repo.commit(repo.defaultRef, { 'server.mjs': serverSource('2.0') }, 'Version 2');
    expect((await st.cli(['update', 'branch1'])).exitCode).toBe(0);
    const built = hook.got.at(-1)!;
    const payload = JSON.parse(built.body);
    expect(payload).toMatchObject({
      version: 1,
      host: 'karltest.example.com',
      event: { kind: 'built', branch: 'branch1', urls: ['https://karltest.example.com/branch1/'] },
    });
    // Signed with the secret, which never travels.
    expect(built.headers['x-karlstage-signature']).toBe(
      `sha256=${createHmac('sha256', SECRET).update(built.body).digest('hex')}`,
    );
    expect(built.body).not.toContain(SECRET);

    // A failing build: the step, the error line, the log; the update's own exit status.
    const fail = join(st.root, 'branch1', 'src', 'karl', 'FAIL_BUILD');
    await writeFile(fail, 'x');
    const failed = await st.cli(['update', 'branch1', '--force']);
    expect(failed.exitCode).toBe(1);
    const bad = JSON.parse(hook.got.at(-1)!.body);
    expect(bad.event).toMatchObject({ kind: 'failed', what: 'update', branch: 'branch1' });
    expect(bad.event.error).toMatch(/build failed/);
    expect(bad.event.log).toMatch(/\.karlstage\/logs\/.*\.log$/);
    expect(bad.text).toMatch(/^update of branch1 failed: /);

    await rm(fail);
    expect((await st.cli(['update', 'branch1', '--force'])).exitCode).toBe(0);
    expect(hook.got.map((g) => JSON.parse(g.body).event.kind)).toContain('recovered');

    // The same events by mail.
    const mails = (await sink.messages()).join('\n');
    expect(mails).toContain('X-Rcpt-Args: <ops@example.org>');
    expect(mails).toMatch(/Subject: \[karlstage karltest\.example\.com\] branch1 was built at/);
    expect(mails).toContain('update of branch1 failed');
    expect(mails).not.toContain(SECRET);

    // A receiver that accepts and never answers: the update still ends, ok, with a warning;
    // status shows the failed delivery.
    // And a mail server that accepts the connection and never greets.
    const hung = await receiver({ hang: true });
    const closed = await blackhole();
    await writeFile(
      st.config,
      base + notifySection(hung.url).replace(`:${sink.port}`, `:${closed.port}`),
    );
    await repo.commit(repo.defaultRef, { 'NEWS.txt': 'news\n' }, 'News');
    const slow = await st.cli(['update', 'branch1']);
    expect(slow.exitCode, slow.stderr).toBe(0);
    expect(slow.stderr).toMatch(/the webhook notification was not delivered: .*(timeout|aborted)/i);
    expect(slow.stderr).toMatch(/the mail notification was not delivered: .*(greeting|timeout)/i);
    expect(hung.got.length).toBe(3); // tried three times
    expect((await st.cli(['status'])).stdout).toMatch(
      /the webhook notification of .* was not delivered/,
    );

    // Not an http(s) address: refused, with the value kept out of the message.
    await writeFile(st.config, base + notifySection('ftp://user:pw@example.org/x'));
    const refused = await st.cli(['notify', '--test']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(
      /\[notify\] webhook: expected an http:\/\/ or https:\/\/ address/,
    );
    expect(refused.stderr).not.toContain('pw@');
  });
});
