// Covers: src/commands/deliver.ts src/model/maildir.ts src/core/no-links.ts src/model/mailboxes.ts
import { execa } from 'execa';
import { mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { gitRepo } from './helpers/repos.js';
import { BIN, stagingServer } from './helpers/staging.js';
import { tempDir } from './helpers/tmp.js';

const DOMAIN = 'mail.karltest.example.com';

async function mailStaging() {
  const repo = await gitRepo();
  const st = await stagingServer(repo);
  const cronFile = join(st.root, 'cron.d', 'karlstage');
  await writeFile(
    st.config,
    (await readFile(st.config, 'utf8'))
      .replace(/^mail_domain = .*$/m, `mail_domain = ${DOMAIN}`)
      .replace(/^testers =.*$/m, 'testers = tester@osf.example.org, qa@hoster.example.com')
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
    const cases: [string[], RegExp][] = [
      [['branch1', `../../x@osf.${DOMAIN}`], /is not a staged mail address/],
      [['branch1', `x/y@osf.${DOMAIN}`], /is not a staged mail address/],
      [['branch1', `x@osf.${DOMAIN}/../../etc`], /is not a staged mail address/],
      [['branch1', 'x\n@osf.example'], /is not a staged mail address/],
      // Control characters of every kind, C1 included (NEL, CSI), and what is no address at all.
      ...[
        'x\u0085y',
        'x\u009b2Jy',
        'x\u001b]0;owned\u0007',
        'x\u007fy',
        'x\ty',
        'x\ry',
        'x\u202ey',
        '"x y"',
        'x..y',
        '.x',
        '',
      ].map((local): [string[], RegExp] => [
        ['branch1', `${local}@osf.${DOMAIN}`],
        /is not a staged mail address/,
      ]),
      [['branch1', `x@osf.${DOMAIN}.`], /is not a staged mail address/],
      [['branch1', 'x@'], /is not a staged mail address/],
      [['branch1', `x@nosuch.${DOMAIN}`], /no customer "nosuch" takes staged mail/],
      [['branch1', 'x@osf.example.org'], /no customer "osf.example.org"/],
    ];
    for (const [args, why] of cases) {
      r = await deliver(...args);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(67);
      expect(r.stderr).toMatch(why);
      // The recipient is named, escaped: nothing in it reaches the terminal or postfix's log raw.
      // eslint-disable-next-line no-control-regex
      expect(r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
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

    // A link anywhere on the way is never followed: the Maildir itself made a link to another
    // customer's Maildir, a link at new/, a link at a folder above (branch1/var). Each defers
    // (75, postfix keeps the message), names the link, and writes nothing anywhere.
    const other = join(st.root, 'branch2', 'var', 'mail', 'another');
    await makeMaildir(st.root, other);
    const outside = await tempDir('ks-outside-');
    await makeMaildir(outside, join(outside, 'mail', 'osf'));
    const var1 = join(st.root, 'branch1', 'var');
    const links: [string, string, () => Promise<void>][] = [
      [box, other, () => rename(box, `${box}.real`)],
      [join(box, 'new'), join(other, 'new'), () => rm(join(box, 'new'), { recursive: true })],
      [var1, outside, () => rename(var1, `${var1}.real`)],
    ];
    for (const [link, target, moveAside] of links) {
      await moveAside();
      await symlink(target, link);
      const seen = await st.snapshot();
      r = await deliver('branch1', `x@osf.${DOMAIN}`);
      expect(r.exitCode, r.stderr).toBe(75);
      expect(r.stderr).toContain(
        `${link} is a symbolic link: staged mail is never delivered through it`,
      );
      expect(await st.snapshot()).toBe(seen);
      for (const dir of [other, join(outside, 'mail', 'osf')])
        for (const part of ['tmp', 'new']) expect(await readdir(join(dir, part))).toEqual([]);
      await rm(link);
      if (link === join(box, 'new')) await mkdir(link);
      else await rename(`${link}.real`, link);
    }

    // A delivery that fails after its copy was written (here the file size limit, EFBIG) defers
    // and leaves nothing in tmp/: postfix tries again for days, and no copy piles up.
    const big = message + 'x'.repeat(64 * 1024) + '\n';
    const limited = await execa(
      'prlimit',
      [
        '--fsize=8192',
        'node',
        BIN,
        'deliver',
        '--mailboxes',
        mailboxes,
        'branch1',
        `y@osf.${DOMAIN}`,
      ],
      { cwd: st.root, reject: false, input: big, env: { NO_COLOR: '1' } },
    );
    expect(limited.exitCode, limited.stderr).toBe(75);
    expect(limited.stderr).toMatch(/cannot write to .*EFBIG|file too large/i);
    expect(await readdir(join(box, 'tmp'))).toEqual([]);
    expect(await readdir(join(box, 'new'))).toEqual([]);
    // new/ gone: deferred before anything is written.
    await rm(join(box, 'new'), { recursive: true });
    r = await deliver('branch1', `x@osf.${DOMAIN}`);
    expect(r.exitCode).toBe(75);
    expect(await readdir(join(box, 'tmp'))).toEqual([]);
  });
});
