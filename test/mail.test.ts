import { execa } from 'execa';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { gitRepo } from './helpers/repos.js';
import { stagingServer } from './helpers/staging.js';

const DOMAIN = 'mail.karltest.example.com';

async function mailStaging() {
  const repo = await gitRepo();
  const st = await stagingServer(repo);
  const cronFile = join(st.root, 'cron.d', 'karlstage');
  await writeFile(
    st.config,
    (await readFile(st.config, 'utf8'))
      .replace(/^mail_domain = .*$/m, `mail_domain = ${DOMAIN}`)
      .replace(/^mail_allow =.*$/m, 'mail_allow = tester@osf.example.org, qa@hoster.example.com')
      .replace('file = /etc/cron.d/karlstage', `file = ${cronFile}`),
  );
  await create({ ...st.g, branch: 'branch1' });
  await create({ ...st.g, branch: 'branch2' });
  return { st, cronFile };
}

const transport = (root: string) => join(root, '.karlstage', 'mail', 'transport');

describe('staged mail', () => {
  it("moves a customer's mail branch in one step: config, transport map (postmap), cron lines, status", async () => {
    const { st, cronFile } = await mailStaging();
    expect((await st.cli(['cron', '--install'])).exitCode).toBe(0);
    const before = await readFile(st.config, 'utf8');
    expect(await readFile(cronFile, 'utf8')).toContain(
      `cd ${join(st.root, 'branch1')} && bin/karlserve mailin osf`,
    );

    const r = await st.cli(['mail', 'osf', 'branch2']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `staged mail for osf (*@osf.${DOMAIN}) now goes to branch2 (was branch1)`,
    );

    // karlstage.ini: exactly the one key changed, every comment kept.
    const after = await readFile(st.config, 'utf8');
    const changed = after.split('\n').filter((l, i) => l !== before.split('\n')[i]);
    expect(changed).toEqual(['mail_branch = branch2']);

    const map = await readFile(transport(st.root), 'utf8');
    expect(map).toContain(`osf.${DOMAIN}\tkarlstage:branch2\n`);
    expect(map).toContain(`another.${DOMAIN}\tkarlstage:branch2\n`);
    const q = await execa('postmap', ['-q', `osf.${DOMAIN}`, `hash:${transport(st.root)}`]);
    expect(q.stdout.trim()).toBe('karlstage:branch2');

    const cron = await readFile(cronFile, 'utf8');
    const mailin = cron.split('\n').filter((l) => l.includes('mailin'));
    expect(mailin.filter((l) => l.includes(' mailin osf '))).toEqual([
      `*/2 * * * * ${(await import('node:os')).userInfo().username} cd ${join(st.root, 'branch2')} && bin/karlserve mailin osf >> ${join(st.root, '.karlstage', 'logs', 'cron.log')} 2>&1`,
    ]);
    expect(cron).not.toContain(`cd ${join(st.root, 'branch1')} &&`);
    expect((await st.cli(['status'])).stdout).toMatch(/^branch1 .* -$/m);
    expect((await st.cli(['status'])).stdout).toMatch(
      /^branch2 .* another,osf$|^branch2 .* osf,another$/m,
    );

    // The allow-list every instance points at holds exactly the testers.
    const allow = await readFile(join(st.root, '.karlstage', 'mail-allow-list.txt'), 'utf8');
    expect(allow.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'tester@osf.example.org',
      'qa@hoster.example.com',
    ]);
    expect(await readFile(join(st.root, 'branch1', 'etc', 'instances.ini'), 'utf8')).toContain(
      `mail_white_list = ${join(st.root, '.karlstage', 'mail-allow-list.txt')}`,
    );
  });

  it('refuses a second mail branch for one customer, and a branch that does not serve the customer (exit 2)', async () => {
    const { st } = await mailStaging();
    const text = await readFile(st.config, 'utf8');
    await writeFile(
      st.config,
      text.replace('mail_branch = branch1', 'mail_branch = branch1\nmail_branch = branch2'),
    );
    let r = await st.cli(['status']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(
      '[customer:osf] mail_branch is given twice: a customer has exactly one mail branch',
    );
    await writeFile(st.config, text);

    await create({ ...st.g, branch: 'branch3', customers: ['another'] });
    r = await st.cli(['mail', 'osf', 'branch3']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('branch3 does not serve osf');
    r = await st.cli(['mail', 'nobody', 'branch1']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('there is no [customer:nobody]');
    expect(await readFile(st.config, 'utf8')).toBe(text);
  });

  it('deliver: bad input is bounced (67) and never writes outside the Maildir; trouble defers (75)', async () => {
    const { st } = await mailStaging();
    const mailboxes = join(st.root, '.karlstage', 'mail', 'mailboxes.json');
    const box = join(st.root, 'branch1', 'var', 'mail', 'osf');
    const message = 'From: app@example.org\nSubject: hello\n\nbody\n';
    const deliver = (...args: string[]) =>
      st.cli(['deliver', '--mailboxes', mailboxes, ...args], {}, message);

    // No Maildir yet ("mail --install" makes them): temporary, postfix keeps the message.
    let r = await deliver('branch1', `x@osf.${DOMAIN}`);
    expect(r.exitCode).toBe(75);
    expect(r.stderr).toContain(`the Maildir ${box} is missing`);

    const { makeMaildir } = await import('../src/model/maildir.js');
    await makeMaildir(st.root, box);
    const before = await st.snapshot();
    for (const [args, why] of [
      [['branch1', `../../x@osf.${DOMAIN}`], /is not a staged mail address/],
      [['branch1', `x/y@osf.${DOMAIN}`], /is not a staged mail address/],
      [['branch1', `x@osf.${DOMAIN}/../../etc`], /is not a staged mail address/],
      [['branch1', 'x\n@osf.example'], /is not a staged mail address/],
      [['branch1', `x@nosuch.${DOMAIN}`], /no customer "nosuch" takes staged mail/],
      [['branch1', 'x@osf.example.org'], /no customer "osf.example.org"/],
    ] as const) {
      r = await deliver(...args);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(67);
      expect(r.stderr).toMatch(why);
    }
    // osf's mail goes to branch1: a message routed elsewhere (before a move, or to a branch site
    // destroyed since) is tried again, and postfix routes it anew.
    for (const other of ['branch2', 'branch9']) {
      r = await deliver(other, `x@osf.${DOMAIN}`);
      expect(r.exitCode).toBe(75);
      expect(r.stderr).toContain(`osf's staged mail now goes to branch1, not ${other}`);
    }
    expect(await st.snapshot()).toBe(before);

    r = await deliver('branch1', `x@osf.${DOMAIN}`);
    expect(r.exitCode, r.stderr).toBe(0);
    const files = await readdir(join(box, 'new'));
    expect(files).toHaveLength(1);
    expect(await readFile(join(box, 'new', files[0]!), 'utf8')).toBe(message);
    expect(await readdir(join(box, 'tmp'))).toEqual([]);
  });
});
