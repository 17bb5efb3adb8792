// Covers: src/commands/access.ts src/publish/access.ts src/publish/routes.ts templates/nginx.conf
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { eventually } from './helpers/nginx.js';
import { ADMIN, HOST, servedStaging } from './helpers/served.js';

/**
 * A lock on the door: every branch site holds a copy of production data, so the
 * one TLS host is locked by default — users managed by karlstage (hashes only),
 * optionally limited to some customers, an allow list of addresses, never
 * indexed, and nothing served but the site list and the branch sites. Tested
 * against a real nginx with curl and in headless Chromium.
 */
const ANNA = 'anna:annas-password-2';

/** Every file under a folder (to look for a password in plain text). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

describe('who may open the one TLS host', () => {
  it('locked: 401 without a login everywhere, 200 with one, 403 for a scoped user elsewhere; never indexed; nothing else served', async () => {
    const { st, get } = await servedStaging();
    const add = await st.cli(
      ['access', 'add', 'anna', '--customers', 'osf', '--password-stdin'],
      {},
      'annas-password-2\n',
    );
    expect(add.exitCode, add.stderr).toBe(0);
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2', customers: ['osf'] });
    await eventually(
      () => get('/branch2/osf/'),
      (r) => r.status === 200,
    );

    // No login: 401 on every branch site, on / and on every file of the site list.
    for (const path of [
      '/',
      '/index.html',
      '/sites.json',
      '/sites.txt',
      '/branch1/osf/',
      '/branch1/another/',
      '/branch2/osf/',
      '/branch1',
      '/nosuch',
    ]) {
      const r = await get(path, { user: null });
      expect(r.status, path).toBe(401);
      expect(r.headers['www-authenticate'], path).toBe('Basic realm="KARL staging"');
      expect(r.headers['x-robots-tag'], path).toBe('noindex, nofollow');
      expect(r.body, path).not.toContain('branch1');
    }
    // A wrong password is a wrong password, whoever it names.
    expect((await get('/branch1/osf/', { user: 'anna:wrong' })).status).toBe(401);
    expect((await get('/branch1/another/', { user: 'anna:wrong' })).status).toBe(401);

    // admin: every customer.
    for (const path of ['/branch1/osf/', '/branch1/another/', '/branch2/osf/'])
      expect((await get(path)).status, path).toBe(200);
    const all = JSON.parse((await get('/sites.json')).body);
    expect(
      all.branches.flatMap((b: { customers: { name: string }[] }) =>
        b.customers.map((c) => c.name),
      ),
    ).toEqual(['osf', 'another', 'osf']);

    // anna: osf on every branch site, the site list with only osf, 403 (not a login loop) elsewhere.
    for (const path of ['/branch1/osf/', '/branch1/osf', '/branch2/osf/', '/branch1/osf/x?y=1'])
      expect((await get(path, { user: ANNA })).status, path).toBe(200);
    for (const path of [
      '/branch1/another/',
      '/branch1/',
      '/branch1/OSF/',
      '/branch1//another/',
      '/branch1/osf/../another/',
      '/branch1/osf/%2e%2e/another/',
      '/branch1/osf%2F..%2Fanother/',
      '/branch1/osfx/',
    ]) {
      const r = await get(path, { user: ANNA });
      expect(r.status, path).toBe(403);
      expect(r.headers['www-authenticate'], path).toBeUndefined();
    }
    const hers = JSON.parse((await get('/sites.json', { user: ANNA })).body);
    expect(
      hers.branches.map((b: { name: string; customers: { name: string }[] }) => [
        b.name,
        b.customers.map((c) => c.name),
      ]),
    ).toEqual([
      ['branch1', ['osf']],
      ['branch2', ['osf']],
    ]);
    expect((await get('/', { user: ANNA })).body).not.toContain('another');

    // Never indexed: robots.txt for anyone, the header on every answer.
    const robots = await get('/robots.txt', { user: null });
    expect(robots.status).toBe(200);
    expect(robots.body.trimEnd()).toBe('User-agent: *\nDisallow: /');
    expect((await get('/branch1/osf/')).headers['x-robots-tag']).toBe('noindex, nofollow');
    expect((await get('/nosuch')).headers['x-robots-tag']).toBe('noindex, nofollow');

    // Nothing else is served: not state, logs, dumps, the mail map, another scope's list, a folder.
    for (const path of [
      '/.karlstage/state.json',
      '/.karlstage/logs/',
      '/.karlstage/dumps/',
      '/.karlstage/mail/transport',
      '/all/sites.json',
      '/scope-osf/sites.json',
      '/down.html',
      '/.ks-scope',
      '/state.json',
      '/karlstage.ini',
    ])
      expect((await get(path)).status, path).toBe(404);
    for (const path of ['/../karlstage.ini', '/%2e%2e/karlstage.ini', '/..%2fkarlstage.ini'])
      expect([400, 404], path).toContain((await get(path)).status);

    // The app never sees the staging password.
    const seen = await get('/branch1/osf/');
    expect(seen.body).not.toContain('Authorization');

    // Passwords are stored only as sha512-crypt hashes, readable by karlstage (and nginx's group) only.
    const files = filesUnder(st.root);
    for (const f of files) {
      const text = readFileSync(f, 'latin1');
      expect(text, f).not.toContain('annas-password-2');
      expect(text, f).not.toContain('the-admin-password-1');
    }
    const users = join(st.root, '.karlstage', 'access');
    expect(statSync(join(users, 'users.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(users, 'htpasswd')).mode & 0o777).toBe(0o640);
    expect(readFileSync(join(users, 'htpasswd'), 'utf8')).toMatch(
      /^admin:\$6\$[^\n]+\nanna:\$6\$[^\n]+\n$/,
    );

    // access list: users and their customers, never a hash or a password.
    const list = await st.cli(['access', 'list']);
    expect(list.stdout).toMatch(/is locked: 2 users/);
    expect(list.stdout).toMatch(/^ {2}anna\s+osf$/m);
    expect(list.stdout).toMatch(/^ {2}admin\s+every customer$/m);
    expect(list.stdout).not.toContain('$6$');

    // Removed: shut out at once.
    expect((await st.cli(['access', 'remove', 'anna'])).exitCode).toBe(0);
    expect(
      (
        await eventually(
          () => get('/branch1/osf/', { user: ANNA }),
          (r) => r.status === 401,
        )
      ).status,
    ).toBe(401);
  });

  it('a generated password is printed once and works; the allow list lets listed addresses in without one', async () => {
    const { st, get } = await servedStaging({
      ini: (t) => t.replace(/^allow =.*$/m, 'allow = 127.0.0.2, 127.0.3.0/24'),
    });
    await create({ ...st.g, branch: 'branch1' });
    const r = await st.cli(['access', 'add', 'monitor']);
    expect(r.exitCode, r.stderr).toBe(0);
    const password = /^password for monitor: (\S+) {3}\(shown once/m.exec(r.stdout)?.[1];
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    // Scopes live in the routes: nginx picks them up on its (asynchronous) reload.
    expect(
      (
        await eventually(
          () => get('/branch1/osf/', { user: `monitor:${password}` }),
          (x) => x.status === 200,
        )
      ).status,
    ).toBe(200);

    expect((await get('/branch1/another/', { user: null, from: '127.0.0.2' })).status).toBe(200);
    expect((await get('/sites.json', { user: null, from: '127.0.3.99' })).status).toBe(200);
    expect((await get('/branch1/another/', { user: null, from: '127.0.4.1' })).status).toBe(401);
    expect((await get('/branch1/another/', { user: null })).status).toBe(401);
  });

  it('routes refuse to publish a locked host with no users; public = yes serves it without a login', async () => {
    const { st, get } = await servedStaging({
      users: false,
      ini: (t) => t.replace('routes = auto', 'routes = manual'),
    });
    const before = await st.snapshot();
    const r = await st.cli(['routes']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /^error: the TLS host is locked and has no users yet: "karlstage access add NAME" adds one \(or, to serve it without a login, write \[access\] public = yes in .*\)$/m,
    );
    expect(await st.snapshot()).toBe(before);
    const d = await st.cli(['doctor']);
    expect(d.stdout).toMatch(/^warn\s+access\s+locked, and no users yet/m); // routes = manual here

    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace('public = no', 'public = yes'),
    );
    await create({ ...st.g, branch: 'branch1' });
    expect((await st.cli(['routes'])).exitCode).toBe(0);
    const open = await eventually(
      () => get('/branch1/osf/', { user: null }),
      (x) => x.status === 200,
    );
    expect(open.status).toBe(200);
    expect(open.headers['x-robots-tag']).toBe('noindex, nofollow');
    expect((await get('/.karlstage/state.json', { user: null })).status).toBe(404);
    expect((await st.cli(['doctor'])).stdout).toMatch(
      /^warn\s+access\s+public: anyone may open it/m,
    );
  });

  it('refuses bad input with exit 2 and changes nothing; a reload that fails puts the old routes back', async () => {
    const { st, get } = await servedStaging();
    const before = await st.snapshot();
    for (const [args, says, input] of [
      [['access', 'remove', 'nobody'], /there is no user "nobody"/],
      [['access', 'add', 'a:b'], /user name "a:b" is not allowed/],
      [['access', 'add', 'a b'], /user name "a b" is not allowed/],
      [['access', 'add', 'Anna'], /user name "Anna" is not allowed/],
      [['access', 'add', 'anna', '--password-stdin'], /the password is empty/, '\n'],
      [['access', 'add', 'anna', '--customers', 'nosuch'], /there is no \[customer:nosuch\]/],
      [['access', 'add', 'admin'], /user "admin" exists already/],
    ] as [string[], RegExp, string?][]) {
      const r = await st.cli(args, {}, input);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(says);
      expect(await st.snapshot(), args.join(' ')).toBe(before);
    }
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(/^allow =.*$/m, 'allow = 10.0.0.0/33'),
    );
    const bad = await st.cli(['access', 'list']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(
      /\[access\] allow = 10\.0\.0\.0\/33: "10\.0\.0\.0\/33" is not an IP address or CIDR block/,
    );
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(/^allow =.*$/m, 'allow ='),
    );

    // A reload that fails: the old routes are put back and keep serving.
    await create({ ...st.g, branch: 'branch1' });
    await eventually(
      () => get('/branch1/osf/'),
      (r) => r.status === 200,
    );
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(/^reload = .*$/m, 'reload = false'),
    );
    const r = await st.cli(['access', 'add', 'bob', '--password-stdin'], {}, 'bobs-password-3\n');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/reload nginx failed/);
    expect((await get('/branch1/osf/')).status).toBe(200);
    // bob is in the users file, but not in the installed routes: he is kept out (fail closed).
    expect((await get('/branch1/osf/', { user: 'bob:bobs-password-3' })).status).toBe(403);
  });

  it('in a real browser: a login shows the page; another customer is 403, not a login loop; no login is 401', async () => {
    const { st, nginx, get } = await servedStaging();
    await st.cli(
      ['access', 'add', 'anna', '--customers', 'osf', '--password-stdin'],
      {},
      'annas-password-2\n',
    );
    await create({ ...st.g, branch: 'branch1' });
    await eventually(
      () => get('/branch1/osf/'),
      (r) => r.status === 200,
    );
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--headless', `--host-resolver-rules=MAP ${HOST} 127.0.0.1`],
    });
    try {
      const visit = async (path: string, credentials?: string) => {
        const [username = '', password = ''] = credentials?.split(':') ?? [];
        const context = await browser.newContext({
          ignoreHTTPSErrors: true,
          ...(credentials ? { httpCredentials: { username, password } } : {}),
        });
        const statuses: number[] = [];
        const page = await context.newPage();
        page.on('response', (r) => {
          if (new URL(r.url()).pathname === path) statuses.push(r.status());
        });
        const error = await page.goto(`https://${HOST}:${nginx.httpsPort}${path}`).then(
          () => undefined,
          (e: Error) => e.message,
        );
        const text = error ? '' : await page.textContent('body');
        await context.close();
        return { statuses, error, text };
      };
      const ok = await visit('/branch1/osf/', ANNA);
      expect(ok.statuses.at(-1)).toBe(200);
      expect(ok.text).toContain('customer=osf');
      const other = await visit('/branch1/another/', ANNA);
      // At most one challenge, then the refusal: no login loop.
      expect(other.statuses.at(-1)).toBe(403);
      expect(other.statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(1);
      const none = await visit('/branch1/osf/');
      expect(none.statuses.every((s) => s === 401)).toBe(true);
      const list = await visit('/', ADMIN);
      expect(list.text).toContain('branch1');
    } finally {
      await browser.close();
    }
  });
});
