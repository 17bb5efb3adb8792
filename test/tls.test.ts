// Covers: src/publish/tls.ts src/publish/workers.ts src/demo/web-server.ts templates/nginx.conf
import { readFileSync } from 'node:fs';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { readState } from '../src/model/state.js';
import { eventually, type Response } from './helpers/nginx.js';
import { ADMIN, HOST, servedStaging } from './helpers/served.js';
import { shutDownApp } from './helpers/staging.js';
import { tempDir } from './helpers/tmp.js';

/**
 * The one TLS host as tools nobody here wrote see it: sslscan (Debian) finds only
 * forward-secret AEAD suites; every answer carries the hardening headers and no nginx
 * version; another Host gets nothing; the app gets the host's own name, a kept-open
 * HTTP/1.1 connection and large uploads; wrong passwords cannot pin the host; doctor and
 * routes say when nginx's workers cannot read the users file.
 */

const HEADERS = {
  'strict-transport-security': 'max-age=31536000',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-robots-tag': 'noindex, nofollow',
  server: 'nginx',
};

function expectHardened(r: Response, what: string): void {
  for (const [name, value] of Object.entries(HEADERS)) expect(r.headers[name], what).toBe(value);
}

/** curl with the given arguments against the host (127.0.0.1), the status lines and headers of each answer. */
async function curlRaw(port: number, cacert: string, args: string[]): Promise<string> {
  const r = await execa(
    'curl',
    ['-sS', '--resolve', `${HOST}:${port}:127.0.0.1`, '--cacert', cacert, ...args],
    { reject: false },
  );
  return String(r.stdout);
}

describe('the one TLS host, hardened', () => {
  it('sslscan finds no suite without forward secrecy and no CBC suite; headers everywhere; only its own name; keep-alive, HTTP/2 and 512 MB uploads', async () => {
    const { nginx, st, cert, get } = await servedStaging();
    await create({ ...st.g, branch: 'branch1' });
    const site = await eventually(
      () => get('/branch1/osf/'),
      (r) => r.status === 200,
    );
    const url = (path: string) => `https://${HOST}:${nginx.httpsPort}${path}`;

    // sslscan: TLS 1.2 and 1.3 only; every accepted suite forward-secret (ECDHE, or TLS 1.3) and AEAD.
    const scan = await execa(
      'sslscan',
      ['--xml=-', '--no-colour', `--sni-name=${HOST}`, `127.0.0.1:${nginx.httpsPort}`],
      { reject: false },
    );
    const xml = String(scan.stdout);
    const suites = [
      ...xml.matchAll(
        /<cipher status="(?:accepted|preferred)" sslversion="([^"]+)"[^>]* cipher="([^"]+)"/g,
      ),
    ].map((m) => ({ version: m[1]!, name: m[2]! }));
    expect(suites.length, xml).toBeGreaterThan(0);
    for (const s of suites) {
      const fs = s.version === 'TLSv1.3' || /^ECDHE-/.test(s.name);
      const aead = s.version === 'TLSv1.3' || /-(GCM|CHACHA20-POLY1305)-/.test(`${s.name}-`);
      expect(fs && aead, `${s.version} ${s.name}`).toBe(true);
    }
    expect(new Set(suites.map((s) => s.version))).toEqual(new Set(['TLSv1.2', 'TLSv1.3']));
    for (const old of ['2', '3'])
      expect(xml).toMatch(new RegExp(`<protocol type="ssl" version="${old}" enabled="0"`));
    for (const old of ['1.0', '1.1'])
      expect(xml).toMatch(
        new RegExp(`<protocol type="tls" version="${old.replace('.', '\\.')}" enabled="0"`),
      );

    // The headers, and "nginx" without a version, on a branch site, the site list and error pages.
    expectHardened(site, 'branch site');
    expectHardened(await get('/'), 'site list');
    expectHardened(await get('/sites.json'), 'sites.json');
    expectHardened(await get('/nosuch'), '404');
    expectHardened(await get('/branch1/osf/', { user: null }), '401');

    // Only its own name: another Host gets 421 (before any login), and the app always gets the
    // host's own name, and the visitor's real address.
    const evil = await curlRaw(nginx.httpsPort, cert, [
      '-D',
      '-',
      '-o',
      '/dev/null',
      '-H',
      'Host: evil.example',
      '-u',
      ADMIN,
      url('/branch1/osf/'),
    ]);
    expect(evil).toMatch(/^HTTP\/\S+ 421/);
    expect(evil.toLowerCase()).toContain('x-content-type-options: nosniff');
    const spoofed = await curlRaw(nginx.httpsPort, cert, [
      '-D',
      '-',
      '-o',
      '/dev/null',
      '-u',
      ADMIN,
      '-H',
      'X-Forwarded-For: 203.0.113.66',
      '-H',
      'X-Forwarded-Host: evil.example',
      url('/branch1/osf/'),
    ]);
    expect(spoofed).toMatch(/^x-demo-host: karltest\.example\.com\r?$/m);
    expect(spoofed).toMatch(
      new RegExp(`^x-demo-forwarded: ${HOST}:${nginx.httpsPort} 127\\.0\\.0\\.1\\r?$`, 'm'),
    );

    // HTTP/2 (Debian's nginx has it); and two requests on one visitor connection reach the app
    // on one kept-open connection (the same peer port), not a new one each time.
    expect(
      await curlRaw(nginx.httpsPort, cert, [
        '--http2',
        '-o',
        '/dev/null',
        '-w',
        '%{http_version}',
        '-u',
        ADMIN,
        url('/branch1/osf/'),
      ]),
    ).toBe('2');
    const twice = await curlRaw(nginx.httpsPort, cert, [
      '--http1.1',
      '-D',
      '-',
      '-o',
      '/dev/null',
      '-o',
      '/dev/null',
      '-u',
      ADMIN,
      url('/branch1/osf/'),
      url('/branch1/another/'),
    ]);
    const peers = [...twice.matchAll(/^x-demo-peer: (\d+)/gm)].map((m) => m[1]);
    expect(peers.length, twice).toBe(2);
    expect(peers[0]).toBe(peers[1]);

    // 512 MB still go through (client_max_body_size 512m, buffered by nginx's unprivileged worker).
    const big = join(await tempDir('ks-upload-'), 'upload.bin');
    await writeFile(big, '');
    await truncate(big, 512 * 1024 * 1024);
    const upload = await curlRaw(nginx.httpsPort, cert, [
      '-u',
      ADMIN,
      '-H',
      'Content-Type: application/octet-stream',
      '--data-binary',
      `@${big}`,
      url('/branch1/osf/upload'),
    ]);
    expect(upload.trim()).toBe(`received ${512 * 1024 * 1024} bytes`);

    // An app that is down: the friendly page, with the same headers.
    const b1 = (await readState(st.root)).branches.branch1!;
    await shutDownApp(st.root, 'branch1');
    const down = await get('/branch1/osf/');
    expect(down.status).toBe(502);
    expect(down.body).toContain('This branch site is not running right now');
    expectHardened(down, 'the friendly error page');
    expect(b1.port).toBeGreaterThan(0);
  });

  it('wrong passwords for a chosen password are limited per address; a generated one is checked fast; doctor and routes say when the workers cannot read the users file', async () => {
    const { nginx, st, cert, get } = await servedStaging();
    await create({ ...st.g, branch: 'branch1' });
    await eventually(
      () => get('/branch1/osf/'),
      (r) => r.status === 200,
    );
    const r = await st.cli(['access', 'add', 'monitor']);
    const password = /^password for monitor: (\S+) {3}\(shown once/m.exec(r.stdout)?.[1];
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const htpasswd = readFileSync(join(st.root, '.karlstage', 'access', 'htpasswd'), 'utf8');
    // admin chose a password (sha512-crypt, as before); monitor's was generated ({SSHA}).
    expect(htpasswd).toMatch(/^admin:\$6\$[^\n]+\nmonitor:\{SSHA\}[A-Za-z0-9+/=]+\n$/);

    /**
     * From `from`, `n` requests as `user`, one after another on one connection (or `parallel`:
     * each on its own connection, all at once, given up after 3 s): the status and seconds of each.
     */
    const statuses = async (user: string, from: string, n: number, parallel = false) =>
      (
        await curlRaw(nginx.httpsPort, cert, [
          '--interface',
          from,
          '-u',
          user,
          ...(parallel ? ['--parallel', '--parallel-max', '300', '--http1.1', '-m', '3'] : []),
          '-w',
          '%{http_code} %{time_total}\\n',
          ...Array.from({ length: n }, () => [
            '-o',
            '/dev/null',
            `https://${HOST}:${nginx.httpsPort}/branch1/osf/`,
          ]).flat(),
        ])
      )
        .trim()
        .split('\n')
        .map((line) => ({ code: line.split(' ')[0], seconds: Number(line.split(' ')[1]) }));
    // Wrong passwords for admin (a slow hash) from one address: the first 100 are answered at
    // once, then each waits its turn at 10 a second (nginx holds it on a timer, no CPU).
    const flood = await statuses('admin:wrong', '127.0.0.5', 130);
    expect(new Set(flood.map((r) => r.code))).toEqual(new Set(['401']));
    for (const r of flood.slice(-20)) expect(r.seconds).toBeGreaterThanOrEqual(0.05);
    // At once from that address: up to 200 wait, the rest are refused with 429 straight away.
    const many = await statuses('admin:wrong', '127.0.0.5', 300, true);
    expect(many.filter((r) => r.code === '429').length).toBeGreaterThan(50);
    // Meanwhile admin gets in from another address; and monitor's fast hash has no limit.
    expect((await get('/branch1/osf/')).status).toBe(200);
    const fast = await statuses(`monitor:${password}`, '127.0.0.6', 150);
    expect(new Set(fast.map((r) => r.code))).toEqual(new Set(['200']));

    // Open to everyone by an allow list: the same warning as public = yes.
    const ini = await readFile(st.config, 'utf8');
    await writeFile(st.config, ini.replace(/^allow =.*$/m, 'allow = 0.0.0.0/1, 128.0.0.0/1'));
    expect((await st.cli(['doctor'])).stdout).toMatch(
      /^warn\s+access\s+public: \[access\] allow = 0\.0\.0\.0\/1, 128\.0\.0\.0\/1 lets every IPv4 address in without a password/m,
    );
    await writeFile(st.config, ini);

    // The workers run unprivileged, and doctor says who they are.
    const workers = `${nginx.workers.user} \\(${nginx.workers.group}\\)`;
    expect(nginx.workers.user).not.toBe('root');
    expect((await st.cli(['doctor'])).stdout).toMatch(
      new RegExp(
        `^ok\\s+nginx workers\\s+run as ${workers}; they can read the users file and the site list$`,
        'm',
      ),
    );
    // A users file of a group the workers are not in: every login answers 500; routes and
    // doctor say why and what to do.
    await writeFile(st.config, ini.replace(/^group = .*$/m, 'group = nogroup'));
    const routes = await st.cli(['routes']);
    expect(routes.exitCode, routes.stderr).toBe(0);
    const why = `nginx's workers \\(user ${nginx.workers.user}, group ${nginx.workers.group}\\) cannot read the users file ${st.root}/\\.karlstage/access/htpasswd \\(.* is root:nogroup 0[67][45]0\\): every logged-in request answers 500; set \\[access\\] group = ${nginx.workers.group} in `;
    expect(routes.stderr).toMatch(new RegExp(`warning: routes: ${why}`));
    expect((await get('/branch1/osf/')).status).toBe(500);
    const doctor = await st.cli(['doctor']);
    expect(doctor.exitCode).toBe(1);
    expect(doctor.stdout).toMatch(new RegExp(`^FAIL\\s+nginx workers\\s+${why}`, 'm'));
    // Put right: routes gives the group back its read access.
    await writeFile(st.config, ini);
    expect((await st.cli(['routes'])).stderr).not.toContain('cannot read');
    expect((await get('/branch1/osf/')).status).toBe(200);
  });
});
