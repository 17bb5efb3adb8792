import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
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
});
