// Covers: src/publish/notify.ts src/commands/notify.ts
import { createHmac } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { serverSource } from '../src/demo/sample-app.js';
import { smtpSink } from './helpers/postfix.js';
import { startCli, waitFor } from './helpers/processes.js';
import { tricklingSmtp, webhookReceiver as receiver } from './helpers/receivers.js';
import { gitRepo } from './helpers/repos.js';
import { stagingServer } from './helpers/staging.js';

const SECRET = 'hook-s3cret-token';

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

    // A receiver that accepts and never answers, and a mail server that sends a "250-" line every
    // 2 s and never finishes (no idle timeout ever trips): each try is bounded as a whole, the
    // update ends, ok, with a warning; status shows the failed delivery.
    const hung = await receiver({ hang: true });
    const trickle = await tricklingSmtp();
    await writeFile(
      st.config,
      base + notifySection(hung.url).replace(`:${sink.port}`, `:${trickle.port}`),
    );
    await repo.commit(repo.defaultRef, { 'NEWS.txt': 'news\n' }, 'News');
    const slow = startCli(st.root, ['update', 'branch1']);
    // While it waits for them it holds no lock: another update of the site goes ahead at once.
    await waitFor('the webhook to be tried', () => hung.got.length > 0);
    const meanwhile = await st.cli(['update', 'branch1', '--wait', '0']);
    expect(meanwhile.exitCode, meanwhile.stderr).toBe(0);
    const slowDone = await slow;
    expect(slowDone.exitCode, slowDone.stderr).toBe(0);
    expect(slowDone.stderr).toMatch(
      /the webhook notification was not delivered: http:\/\/127\.0\.0\.1:\d+ gave no answer within 5 s/,
    );
    expect(slowDone.stderr).toMatch(
      /the mail notification was not delivered: .* did not take the mail within 5 s/,
    );
    expect(hung.got.length).toBe(3); // tried three times
    expect(trickle.connections()).toBe(3);
    expect(trickle.open()).toBe(0); // every conversation closed, none left trickling
    expect((await st.cli(['status'])).stdout).toMatch(
      /the webhook notification of .* was not delivered/,
    );

    // A webhook URL is a secret but for its scheme and host: its user and password go as an
    // Authorization header, and nothing of its path or query is printed or kept, even when the
    // receiver refuses.
    const refusing = await receiver({ status: 500 });
    const secretHook = `http://bot:Hook-Pw-9@127.0.0.1:${refusing.port}/PathT0KEN?token=QueryT0KEN`;
    await writeFile(st.config, base + notifySection(secretHook));
    for (const args of [['notify', '--test'], ['notify', '--test', '--json'], ['status']]) {
      const r = await st.cli(args);
      if (args[0] === 'notify') expect(r.exitCode).toBe(1);
      expect(r.stdout + r.stderr).toMatch(`http://127.0.0.1:${refusing.port} answered 500`);
      for (const secret of ['PathT0KEN', 'QueryT0KEN', 'Hook-Pw-9', 'bot:'])
        expect(r.stdout + r.stderr).not.toContain(secret);
    }
    expect(refusing.got[0]).toMatchObject({
      url: '/PathT0KEN?token=QueryT0KEN',
      headers: { authorization: `Basic ${Buffer.from('bot:Hook-Pw-9').toString('base64')}` },
    });
    const meta = join(st.root, '.karlstage');
    for (const file of [join(meta, 'notify.json'), join(meta, 'logs', 'notify.log')]) {
      const text = await readFile(file, 'utf8');
      expect(text).toContain('answered 500');
      for (const secret of ['PathT0KEN', 'QueryT0KEN', 'Hook-Pw-9'])
        expect(text).not.toContain(secret);
    }
    for (const f of await readdir(join(meta, 'logs')))
      expect(await readFile(join(meta, 'logs', f), 'utf8')).not.toMatch(/PathT0KEN|QueryT0KEN/);

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
