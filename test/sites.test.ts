// Covers: src/publish/site-list.ts src/commands/sites.ts templates/sites.html templates/sites.schema.json
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { destroy } from '../src/commands/destroy.js';
import { update } from '../src/commands/update.js';
import { serverSource } from '../src/demo/sample-app.js';
import { inBrowser, OUTPUT } from './helpers/browser.js';
import { gitRepo, svnRepo } from './helpers/repos.js';
import { stagingServer } from './helpers/staging.js';

const SCHEMA = join(import.meta.dirname, '..', 'templates', 'sites.schema.json');

/** A staging server whose every DSN carries a password, with two sites and an awkward commit subject. */
async function sampleServer() {
  const repo = await gitRepo();
  const st = await stagingServer(repo);
  const ini = await readFile(st.config, 'utf8');
  await writeFile(
    st.config,
    ini
      .replace(
        'production = host=karl03 dbname=karl_osf user=karl_ro',
        'production = postgres://karl_ro:Pr0d-pw@karl03/karl_osf',
      )
      .replace(/^mail_domain = .*$/m, 'mail_domain = mail.karltest.example.com'),
  );
  await create({ ...st.g, branch: 'branch1' });
  await create({ ...st.g, branch: 'branch2', ref: repo.featureRef, customers: ['osf'] });
  await repo.commit(
    'main',
    { 'server.mjs': serverSource('2.0') },
    '<script>alert(1)</script> & "quotes"',
  );
  await update({ ...st.g, branches: ['branch1'] });
  return { repo, st };
}

describe('the site list', () => {
  it('lists every branch site with its code, state and customer links, in all three formats', async () => {
    const { st } = await sampleServer();
    const json = await st.cli(['sites', '--format', 'json']);
    expect(json.exitCode, json.stderr).toBe(0);
    const list = JSON.parse(json.stdout);
    expect(list).toMatchObject({
      version: 2,
      host: 'karltest.example.com',
      url: 'https://karltest.example.com/',
    });
    expect(list.branches).toHaveLength(2);
    expect(list.branches[0]).toMatchObject({
      name: 'branch1',
      url: 'https://karltest.example.com/branch1/',
      ref: 'main',
      aheadOfDefault: 0,
      commit: { subject: '<script>alert(1)</script> & "quotes"', author: 'Karl Demo' },
      lastUpdate: { result: 'ok' },
      upstream: { state: 'not polled' },
      heldOutOfSync: false,
      customers: [
        {
          name: 'osf',
          url: 'https://karltest.example.com/branch1/osf/',
          mailDomain: 'osf.mail.karltest.example.com',
        },
        { name: 'another', url: 'https://karltest.example.com/branch1/another/', mailDomain: null },
      ],
    });
    expect(list.branches[1]).toMatchObject({
      name: 'branch2',
      ref: 'feature-x',
      aheadOfDefault: 1,
      commit: { subject: 'Feature X' },
      // What changed, recorded at build time: the commits main does not have.
      changes: [{ subject: 'Feature X', author: 'Karl Demo' }],
      moreChanges: 0,
      problems: [],
    });

    const ajv = new Ajv2020({ allErrors: true, strict: false });
    addFormats.default(ajv); // date-time is checked, not ignored
    const validate = ajv.compile(JSON.parse(await readFile(SCHEMA, 'utf8')));
    expect(validate(list), JSON.stringify(validate.errors)).toBe(true);

    const text = await st.cli(['sites']);
    expect(text.stdout).toContain('branch2  https://karltest.example.com/branch2/');
    expect(text.stdout).toContain('1 commit(s) not in main');
    expect(text.stdout).toMatch(/- Feature X \(Karl Demo, \d{4}-\d\d-\d\d \d\d:\d\d UTC\)/);
    expect(text.stdout).toContain(
      'osf: https://karltest.example.com/branch1/osf/  (staged mail: *@osf.mail.karltest.example.com)',
    );

    const out = join(st.root, 'list.html');
    const html = await st.cli(['sites', '--format', 'html', '--output', out]);
    expect(html.exitCode, html.stderr).toBe(0);
    const page = await readFile(out, 'utf8');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;&#x2F;script&gt; &amp; &quot;quotes&quot;');
    expect(page).not.toContain('<script>');
  });

  it('shows what changed on a branch (svn): its own commits, newest first, up to 20 and "and N more"', async () => {
    const repo = await svnRepo();
    for (let i = 1; i <= 22; i++)
      await repo.commit(repo.featureRef, { [`note${i}.txt`]: `${i}\n` }, `Change ${i}`);
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1', ref: repo.featureRef });
    const list = JSON.parse((await st.cli(['sites', '--format', 'json'])).stdout);
    const b = list.branches[0];
    // feature-x had one commit of its own before these 22.
    expect(b.aheadOfDefault).toBe(23);
    expect(b.changes).toHaveLength(20);
    expect(b.changes[0]).toMatchObject({ subject: 'Change 22' });
    expect(b.changes[19]).toMatchObject({ subject: 'Change 3' });
    expect(b.moreChanges).toBe(3);
    const text = (await st.cli(['sites'])).stdout;
    expect(text).toContain('23 commit(s) not in trunk');
    expect(text).toContain('… and 3 more');
  });

  it('never carries a DSN, password, server path or error text', async () => {
    const { st } = await sampleServer();
    // A failed update leaves an error (with paths) in state: it must not reach the list.
    await writeFile(join(st.root, 'branch2', 'src', 'karl', 'FAIL_BUILD'), 'x');
    await st.cli(['update', 'branch2', '--force']);
    for (const format of ['html', 'json', 'text']) {
      const r = await st.cli(['sites', '--format', format]);
      for (const secret of [
        's3cret-pw',
        'Pr0d-pw',
        'password',
        'dbname',
        'karl03',
        st.root,
        '/tmp/',
        'FAIL_BUILD',
        'exit status',
      ])
        expect(r.stdout, `${format} contains ${secret}`).not.toContain(secret);
    }
  });

  it('is regenerated into .karlstage/sites/ after create, update and destroy', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    const file = join(st.root, '.karlstage', 'sites', 'all', 'sites.json');
    const names = async () =>
      (JSON.parse(await readFile(file, 'utf8')) as { branches: { name: string }[] }).branches.map(
        (b) => b.name,
      );
    expect(existsSync(file)).toBe(false);
    await create({ ...st.g, branch: 'branch1' });
    expect(await names()).toEqual(['branch1']);
    await create({ ...st.g, branch: 'branch2' });
    expect(await names()).toEqual(['branch1', 'branch2']);
    await destroy({ ...st.g, branch: 'branch1', yes: true });
    expect(await names()).toEqual(['branch2']);
    for (const f of ['index.html', 'sites.txt'])
      expect(existsSync(join(st.root, '.karlstage', 'sites', 'all', f))).toBe(true);
    const dry = await st.cli(['create', 'branch3', '--dry-run']);
    expect(dry.exitCode).toBe(0);
    expect(await names()).toEqual(['branch2']);
  });

  it('reads well in a real browser on a laptop and a phone, every customer a link', async () => {
    const { st } = await sampleServer();
    const page = join(st.root, '.karlstage', 'sites', 'all', 'index.html');
    await inBrowser(page, 'sites', async (tab) => {
      const scripts: string[] = [];
      tab.on('dialog', (d) => scripts.push(d.message()));
      const links = await tab
        .locator('a.customer-link')
        .evaluateAll((as) =>
          as.map((a) => [a.textContent, (a as unknown as { href: string }).href]),
        );
      expect(links).toEqual([
        ['osf', 'https://karltest.example.com/branch1/osf/'],
        ['another', 'https://karltest.example.com/branch1/another/'],
        ['osf', 'https://karltest.example.com/branch2/osf/'],
      ]);
      expect(await tab.locator('#branch1 .subject').first().textContent()).toBe(
        '<script>alert(1)</script> & "quotes"',
      );
      expect(scripts).toEqual([]);
    });
    expect(existsSync(join(OUTPUT, 'sites-phone.png'))).toBe(true);
  });
});
