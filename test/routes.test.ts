// Covers: src/publish/routes.ts src/commands/routes.ts src/context/after-change.ts templates/nginx.conf
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { destroy } from '../src/commands/destroy.js';
import { readState } from '../src/model/state.js';
import { curl, eventually, selfSignedCert } from './helpers/nginx.js';
import { servedStaging } from './helpers/served.js';
import { shutDownApp } from './helpers/staging.js';
import { tempDir } from './helpers/tmp.js';

const HOST = 'karltest.example.com';

describe('routes through a real nginx', () => {
  it('serves each branch under its prefix, redirects http, lists the sites at /, and shows a friendly page when an app is down', async () => {
    const { nginx, st, get } = await servedStaging();
    await create({ ...st.g, branch: 'branch1' });

    const osf = await eventually(
      () => get('/branch1/osf/'),
      (r) => r.status === 200,
    );
    expect(osf.status).toBe(200);
    expect(osf.body).toMatch(
      /^KARL demo: branch=branch1 revision=[0-9a-f]{40} customer=osf version=1.0 prefix=\/branch1$/m,
    );
    expect(osf.headers['strict-transport-security']).toBe('max-age=31536000');

    const http = await curl(`http://${HOST}:${nginx.httpPort}/branch1/osf/`, {
      host: HOST,
      port: nginx.httpPort,
    });
    expect(http.status).toBe(301);
    expect(http.headers.location).toBe(`https://${HOST}:${nginx.httpsPort}/branch1/osf/`);

    const bare = await get('/branch1');
    expect(bare.status).toBe(301);
    expect(bare.headers.location).toMatch(/\/branch1\/$/);

    const list = await get('/');
    expect(list.status).toBe(200);
    expect(list.body.replace(/&#x2F;/g, '/')).toContain(
      `<a class="customer-link" href="https://${HOST}:${nginx.httpsPort}/branch1/osf/">osf</a>`,
    );
    expect((await get('/sites.json')).body).toContain('"name": "branch1"');

    const b1 = (await readState(st.root)).branches.branch1!;
    await shutDownApp(st.root, 'branch1');
    const down = await get('/branch1/osf/');
    expect(down.status).toBe(502);
    expect(down.body).toContain('This branch site is not running right now');
    expect(down.body).toContain('<a href="/">See all branch sites</a>');
    expect(b1.port).toBeGreaterThan(0);
  });

  it('a branch site created or destroyed appears in or disappears from the routes', async () => {
    const { st, get } = await servedStaging();
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2', customers: ['osf'] });
    expect(
      (
        await eventually(
          () => get('/branch2/osf/'),
          (r) => r.status === 200,
        )
      ).body,
    ).toContain('branch=branch2');
    await destroy({ ...st.g, branch: 'branch2', yes: true });
    expect(
      (
        await eventually(
          () => get('/branch2/osf/'),
          (r) => r.status === 404,
        )
      ).status,
    ).toBe(404);
    expect((await get('/branch1/osf/')).status).toBe(200);
    expect(
      await readFile(join(st.root, '.karlstage', 'sites', 'all', 'sites.json'), 'utf8'),
    ).not.toContain('branch2');
  });

  it("a configuration nginx -t refuses is not installed: exit 1 with nginx's words, the old routes keep serving", async () => {
    const { nginx, st, get } = await servedStaging();
    await create({ ...st.g, branch: 'branch1' });
    await eventually(
      () => get('/branch1/osf/'),
      (r) => r.status === 200,
    );
    const installed = await readFile(nginx.conf, 'utf8');

    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(
        /^tls_certificate = .*$/m,
        'tls_certificate = /nonexistent/karltest.pem',
      ),
    );
    const r = await st.cli(['routes']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('error: nginx -t failed: exit status 1');
    expect(r.stderr).toMatch(/cannot load certificate "\/nonexistent\/karltest.pem"/);
    expect(await readFile(nginx.conf, 'utf8')).toBe(installed);
    expect((await get('/branch1/osf/')).status).toBe(200);

    // With routes = auto the change itself stands, and the message says what to do.
    const c = await st.cli(['create', 'branch2']);
    expect(c.exitCode).toBe(1);
    expect(c.stderr).toMatch(
      /the change is made, but the routes were not updated: .*run "karlstage routes"/,
    );
    expect((await readState(st.root)).branches.branch2).toBeDefined();
  });

  it('--dry-run shows the check and the reload, and installs nothing', async () => {
    const { nginx, st } = await servedStaging();
    const installed = await readFile(nginx.conf, 'utf8');
    const before = await st.snapshot();
    const r = await st.cli(['routes', '--dry-run']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`write ${nginx.conf}.karlstage-new`);
    expect(r.stdout).toContain(`$ ${nginx.reload}`);
    expect(await readFile(nginx.conf, 'utf8')).toBe(installed);
    expect(existsSync(`${nginx.conf}.karlstage-new`)).toBe(false);
    expect(await st.snapshot()).toBe(before);
  });
});

describe('doctor: the certificate', () => {
  it('checks that it exists, matches its key, covers the host, and warns near expiry', async () => {
    const { st, cert, key } = await servedStaging();
    let r = await st.cli(['doctor']);
    expect(r.stdout).toMatch(
      new RegExp(
        `^warn\\s+certificate\\s+${cert} covers ${HOST}, key matches, expires in (89|90) days; self-signed: browsers warn unless they trust it$`,
        'm',
      ),
    );

    const dir = await tempDir('ks-cert-');
    const soon = await selfSignedCert(dir, HOST, 5);
    const other = await selfSignedCert(dir, 'elsewhere.example.com');
    const setCert = async (c: string, k: string) =>
      writeFile(
        st.config,
        (await readFile(st.config, 'utf8'))
          .replace(/^tls_certificate = .*$/m, `tls_certificate = ${c}`)
          .replace(/^tls_key = .*$/m, `tls_key = ${k}`),
      );

    await setCert(soon.cert, soon.key);
    r = await st.cli(['doctor']);
    expect(r.stdout).toMatch(/^warn\s+certificate\s+.*expires in [45] days: renew it$/m);
    await setCert(cert, other.key);
    r = await st.cli(['doctor']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^FAIL\s+certificate\s+.* is not the key of /m);
    await setCert(other.cert, other.key);
    r = await st.cli(['doctor']);
    expect(r.stdout).toMatch(new RegExp(`^FAIL\\s+certificate\\s+.* does not cover ${HOST}`, 'm'));
    expect(key).toBeTruthy();
  });
});
