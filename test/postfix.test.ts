// Covers: src/publish/mail.ts src/commands/mail.ts src/commands/deliver.ts templates/postfix-main.cf templates/postfix-master.cf
import {
  chmod,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { postfixServer, sendMail, smtpSink, smtpTalk } from './helpers/postfix.js';
import { gitRepo } from './helpers/repos.js';
import { stagingServer } from './helpers/staging.js';
import { tempDir } from './helpers/tmp.js';

/**
 * Staged mail on a real postfix, which karlstage configures and starts ("mail --install")
 * in a folder of its own on free high ports; the outside world is an smtp-sink.
 */
const DOMAIN = 'mail.karltest.example.com';
const TESTER = 'tester@example.org';

async function mailServer() {
  const repo = await gitRepo();
  const st = await stagingServer(repo);
  // postfix delivers as nobody, who must get through to the branch sites' Maildirs.
  await chmod(dirname(st.root), 0o755);
  const pf = await postfixServer();
  const sink = await smtpSink();
  await writeFile(
    st.config,
    (await readFile(st.config, 'utf8'))
      .replace(/^mail_domain = .*$/m, `mail_domain = ${DOMAIN}`)
      .replace(/^testers =.*$/m, `testers = ${TESTER}`) +
      `\n${pf.section}relay = [127.0.0.1]:${sink.port}\n`,
  );
  await create({ ...st.g, branch: 'branch1' });
  await create({ ...st.g, branch: 'branch2' });
  const maildir = (branch: string, customer: string) =>
    join(st.root, branch, 'var', 'mail', customer);
  const inbox = async (branch: string, customer: string) => {
    const dir = join(maildir(branch, customer), 'new');
    const files = await readdir(dir).catch(() => [] as string[]);
    return Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
  };
  return { st, pf, sink, maildir, inbox };
}

describe('staged mail on a real postfix', () => {
  it('mail-in lands in the mail branch, moves with "mail", bounces unknown customers, and waits out a failure', async () => {
    const { st, pf, maildir, inbox } = await mailServer();
    const install = await st.cli(['mail', '--install']);
    expect(install.exitCode, install.stderr).toBe(0);
    expect(install.stdout).toContain(`takes mail on 127.0.0.1:${pf.port}`);
    expect(install.stdout).toContain(`*@osf.${DOMAIN} -> ${maildir('branch1', 'osf')}`);
    expect((await st.cli(['doctor'])).stdout).toMatch(
      /ok\s+mail\s+postfix \(.*\) runs, up to date/,
    );

    await sendMail(pf.port, 'someone@outside.example.net', `x@osf.${DOMAIN}`, 'first mail-in');
    await pf.settle();
    const first = await inbox('branch1', 'osf');
    expect(first).toHaveLength(1);
    expect(first[0]).toContain('Subject: first mail-in');
    expect(first[0]).toContain(`X-Original-To: x@osf.${DOMAIN}`);
    // Delivered as the mail user, who owns the Maildir.
    expect((await stat(maildir('branch1', 'osf'))).uid).toBe(65534);
    expect((await st.cli(['status'])).stdout).toMatch(/osf \(1 waiting\)/);
    expect((await st.cli(['sites'])).stdout).toContain(`(staged mail: *@osf.${DOMAIN}, 1 waiting)`);

    // Moved: the next message lands in branch2's Maildir.
    const moved = await st.cli(['mail', 'osf', 'branch2']);
    expect(moved.exitCode, moved.stderr).toBe(0);
    await sendMail(pf.port, 'someone@outside.example.net', `y@osf.${DOMAIN}`, 'second mail-in');
    await pf.settle();
    expect(await inbox('branch1', 'osf')).toHaveLength(1);
    expect((await inbox('branch2', 'osf'))[0]).toContain('Subject: second mail-in');

    // A customer this server does not have: refused with the reason (the sender's server bounces it).
    await expect(
      sendMail(pf.port, 'someone@outside.example.net', `x@nosuch.${DOMAIN}`, 'nobody here'),
    ).rejects.toThrow(/550 5\.1\.1 .*no such customer on this staging server/);
    await pf.settle();
    expect(await inbox('branch2', 'osf')).toHaveLength(1);

    // The Maildir is gone: the message is deferred (kept in the queue, with the reason), not lost;
    // once the Maildir is back, it arrives.
    await rm(maildir('branch2', 'osf'), { recursive: true });
    await sendMail(pf.port, 'someone@outside.example.net', `z@osf.${DOMAIN}`, 'while broken');
    const deferred = await pf.settle((q) => q.queue_name === 'deferred');
    expect(deferred).toHaveLength(1);
    expect(deferred[0]!.recipients[0]!.delay_reason).toMatch(/Maildir .* is missing/);
    expect((await st.cli(['mail', '--install'])).exitCode).toBe(0);
    await pf.flush();
    await pf.settle();
    expect((await inbox('branch2', 'osf'))[0]).toContain('Subject: while broken');

    // Control characters in a recipient, even as SMTPUTF8 allows them (C1: NEL, CSI): bounced,
    // never delivered, never deferred.
    for (const local of ['x\u0085y', 'x\u009b2Jy']) {
      const replies = await smtpTalk(pf.port, {
        from: 'someone@outside.example.net',
        to: `${local}@osf.${DOMAIN}`,
        subject: 'control characters',
        smtputf8: true,
      });
      expect(replies.at(-1), replies.join('\n')).toMatch(/^(221|5\d\d)/);
    }
    await pf.settle();
    expect(await inbox('branch2', 'osf')).toHaveLength(1);
    expect(await pf.log()).toMatch(/status=bounced \(.*is not a staged mail address/);

    // The Maildir made a link to another customer's Maildir: postfix keeps the message (deferred,
    // with the reason); nothing lands in the other Maildir; once the link is gone, it arrives.
    const osf = maildir('branch2', 'osf');
    await rename(osf, `${osf}.real`);
    await symlink(maildir('branch2', 'another'), osf);
    await sendMail(pf.port, 'someone@outside.example.net', `w@osf.${DOMAIN}`, 'through a link');
    const held = await pf.settle((q) => q.queue_name === 'deferred');
    expect(held).toHaveLength(1);
    expect(held[0]!.recipients[0]!.delay_reason).toContain(`${osf} is a symbolic link`);
    expect(await inbox('branch2', 'another')).toEqual([]);
    expect(await readdir(join(maildir('branch2', 'another'), 'tmp'))).toEqual([]);
    await rm(osf);
    await rename(`${osf}.real`, osf);
    await pf.flush();
    await pf.settle();
    expect((await inbox('branch2', 'osf')).join('')).toContain('Subject: through a link');
    expect(await readdir(join(osf, 'tmp'))).toEqual([]);
  });

  it('mail-out reaches only the testers; everything else is caught and listed', async () => {
    const { st, pf, sink } = await mailServer();
    expect((await st.cli(['mail', '--install'])).exitCode).toBe(0);
    await sendMail(pf.port, 'app@karltest.example.com', TESTER, 'for the tester');
    await sendMail(
      pf.port,
      'app@karltest.example.com',
      'ceo@customer.example.com',
      'for a real person',
    );
    await pf.settle();

    const outside = await sink.messages();
    expect(outside).toHaveLength(1);
    expect(outside[0]).toContain(`X-Rcpt-Args: <${TESTER}>`);
    expect(outside[0]).toContain('Subject: for the tester');

    // A Subject that would set the terminal's title and clear its screen: kept, shown escaped.
    const replies = await smtpTalk(pf.port, {
      from: 'app@karltest.example.com',
      to: 'cfo@customer.example.com',
      subject: 'hi\x1b]0;owned\x07\x1b[2J\u009b31m',
      smtputf8: true,
    });
    expect(replies.at(-1), replies.join('\n')).toMatch(/^221/);
    await pf.settle();

    const caught = await st.cli(['mail', '--caught']);
    expect(caught.exitCode, caught.stderr).toBe(0);
    expect(caught.stdout).toMatch(/DATE\s+BRANCH\s+TO\s+SUBJECT/);
    expect(caught.stdout).toMatch(/ceo@customer\.example\.com\s+for a real person/);
    expect(caught.stdout).toMatch(
      /cfo@customer\.example\.com\s+hi\\x1b\]0;owned\\x07\\x1b\[2J\\x9b31m/,
    );
    // eslint-disable-next-line no-control-regex
    expect(caught.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(caught.stdout).not.toContain(TESTER);
  });

  it('a configuration refused leaves the installed one in place, and mail keeps arriving', async () => {
    const { st, pf, inbox } = await mailServer();
    expect((await st.cli(['mail', '--install'])).exitCode).toBe(0);
    const main = await readFile(join(pf.etc, 'main.cf'), 'utf8');

    const good = await readFile(st.config, 'utf8');
    await writeFile(st.config, good.replace(/^user = nobody$/m, 'user = root'));
    const refused = await st.cli(['mail', '--install']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/\[mail\] user = root: postfix never delivers as root/);
    expect(await readFile(join(pf.etc, 'main.cf'), 'utf8')).toBe(main);

    // A branch's code put a link where a Maildir goes: root never follows it (no chown through it).
    await writeFile(st.config, good);
    const elsewhere = await tempDir('ks-elsewhere-');
    await rm(join(st.root, 'branch2', 'var', 'mail'), { recursive: true, force: true });
    await mkdir(join(st.root, 'branch2', 'var', 'mail'), { recursive: true });
    await symlink(elsewhere, join(st.root, 'branch2', 'var', 'mail', 'another'));
    const linked = await st.cli(['mail', '--install']);
    expect(linked.exitCode).toBe(1);
    expect(linked.stderr).toContain(
      `${join(st.root, 'branch2', 'var', 'mail', 'another')} is a symbolic link: karlstage makes no Maildir through it`,
    );
    expect((await stat(elsewhere)).uid).toBe(0);
    expect(await readdir(elsewhere)).toEqual([]);
    expect(await readFile(join(pf.etc, 'main.cf'), 'utf8')).toBe(main);

    await sendMail(pf.port, 'someone@outside.example.net', `x@osf.${DOMAIN}`, 'still here');
    await pf.settle();
    expect((await inbox('branch1', 'osf'))[0]).toContain('Subject: still here');
  });
});
