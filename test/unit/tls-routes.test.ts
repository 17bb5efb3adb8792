// Covers: src/model/views.ts src/publish/access.ts src/publish/routes.ts src/publish/tls.ts src/publish/workers.ts
import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { init } from '../../src/commands/init.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import { UsageError } from '../../src/core/errors.js';
import type { BranchView } from '../../src/model/views.js';
import { fastHash, isFastHash, openToEveryone, type AccessUser } from '../../src/publish/access.js';
import { routesText, type RouteFacts } from '../../src/publish/routes.js';
import { curvesFor, http2Form, parseNginxV } from '../../src/publish/tls.js';
import { blockedAt } from '../../src/publish/workers.js';
import { tempDir } from '../helpers/tmp.js';

const DEBIAN_NGINX = `nginx version: nginx/1.22.1
built with OpenSSL 3.0.22 25 Aug 2026 (running with OpenSSL 3.0.19 27 Jan 2026)
TLS SNI support enabled
configure arguments: --with-http_ssl_module --with-http_auth_request_module --with-http_v2_module`;

async function config(lines: Record<string, string> = {}): Promise<Config> {
  const dir = await tempDir();
  const { file } = await init({ quiet: true, dir, host: 'karltest.example.com' });
  let text = (await readFile(file, 'utf8'))
    .replace(/^tls_certificate = .*$/m, 'tls_certificate = /etc/ssl/k.pem')
    .replace(/^tls_key = .*$/m, 'tls_key = /etc/ssl/k.key');
  for (const [k, v] of Object.entries(lines))
    text = text.replace(new RegExp(`^${k} =.*$`, 'm'), `${k} = ${v}`);
  await writeFile(file, text);
  return loadConfig(file);
}

const user = (name: string, hash: string): AccessUser => ({
  name,
  customers: '*',
  hash,
  added: '2026-01-01T00:00:00Z',
});
const views = [{ site: { name: 'branch1', port: 6501, ref: 'main' } }] as unknown as BranchView[];
const facts = (over: Partial<RouteFacts> = {}): RouteFacts => ({
  users: [user('anna', '$6$salt$hash'), user('monitor', fastHash('x'))],
  nginx: parseNginxV(DEBIAN_NGINX),
  nameServers: ['192.0.2.53'],
  ...over,
});

describe('the routes of the one TLS host', () => {
  it("follow Mozilla's intermediate recommendation, in the spelling of the nginx installed", async () => {
    const n = parseNginxV(DEBIAN_NGINX);
    expect(n).toEqual({ version: [1, 22, 1], http2: true, openssl: [3, 0] });
    expect(http2Form(n)).toBe('listen');
    expect(http2Form({ ...n, version: [1, 25, 1] })).toBe('directive');
    expect(http2Form({ ...n, http2: false })).toBeUndefined();
    expect(curvesFor(n)).toEqual(['X25519', 'prime256v1', 'secp384r1']);
    expect(curvesFor({ ...n, openssl: [3, 5] })[0]).toBe('X25519MLKEM768');

    const text = await routesText(await config(), views, facts());
    expect(text).toMatch(/^ {4}listen \d+ ssl http2;$/m);
    expect(text).toContain('ssl_protocols TLSv1.2 TLSv1.3;');
    expect(text).toMatch(
      /ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;/,
    );
    expect(text).toContain('ssl_prefer_server_ciphers off;');
    expect(text).toContain('ssl_session_cache shared:karlstage_tls:10m;');
    expect(text).not.toContain('ssl_stapling');
    // Only the chosen password's user is limited; the generated one is not.
    expect(text).toMatch(
      /map \$remote_user \$ks_slow_user \{\n {4}default 0;\n {4}"~\^anna\\z" 1;\n\}/,
    );
    // Upstream keepalive, the host's own name to the app.
    expect(text).toMatch(
      /upstream karlstage_branch1 \{\n {4}server 127\.0\.0\.1:6501 max_fails=0;\n {4}keepalive/,
    );
    expect(text).toContain('proxy_pass http://karlstage_branch1/;');
    expect(text).toContain('proxy_set_header Host karltest.example.com;');
    expect(text).toContain('proxy_connect_timeout 3s;');

    // A certificate naming an OCSP responder: stapled, with the system's name servers.
    const stapled = await routesText(
      await config({ listen_addresses: '192.0.2.7, 2001:db8::7' }),
      views,
      facts({ ocsp: 'http://ocsp.example/', trusted: '/etc/ssl/certs/ca-certificates.crt' }),
    );
    expect(stapled).toMatch(
      /ssl_stapling on;\n {4}ssl_stapling_verify on;\n {4}ssl_trusted_certificate \/etc\/ssl\/certs\/ca-certificates.crt;\n {4}resolver 192.0.2.53;/,
    );
    // Listening on the addresses given, and answering for them besides the name.
    expect(stapled).toMatch(
      /listen 192\.0\.2\.7:\d+ ssl http2;\n {4}listen \[2001:db8::7\]:\d+ ssl http2;/,
    );
    expect(stapled).toMatch(
      /"karltest.example.com" 1;\n {4}"192.0.2.7" 1;\n {4}"\[2001:db8::7\]" 1;/,
    );
  });

  it('refuse a listen address that is not an IP address', async () => {
    const e = await config({ listen_addresses: 'localhost' }).catch((x: UsageError) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).details.join('\n')).toMatch(
      /listen_addresses = localhost: "localhost" is not an IP address/,
    );
  });
});

describe('access', () => {
  it('a generated password gets a salted SHA-1 that verifies as nginx does it; chosen ones stay slow', async () => {
    const { createHash } = await import('node:crypto');
    const h = fastHash('pw-1');
    expect(isFastHash(h)).toBe(true);
    expect(isFastHash('$6$abc$def')).toBe(false);
    const raw = Buffer.from(h.slice('{SSHA}'.length), 'base64');
    const salt = raw.subarray(20);
    expect(salt.length).toBe(16);
    expect(createHash('sha1').update('pw-1').update(salt).digest()).toEqual(raw.subarray(0, 20));
    expect(fastHash('pw-1')).not.toBe(h); // a new salt each time
  });

  it('an allow list that covers every address opens the host to everyone', () => {
    expect(openToEveryone([])).toEqual([]);
    expect(openToEveryone(['10.0.0.0/8', '192.0.2.7'])).toEqual([]);
    expect(openToEveryone(['0.0.0.0/0'])).toEqual(['IPv4']);
    expect(openToEveryone(['128.0.0.0/1', '10.0.0.0/8', '0.0.0.0/1'])).toEqual(['IPv4']);
    expect(openToEveryone(['0.0.0.0/1', '128.0.0.0/2'])).toEqual([]);
    expect(openToEveryone(['::/0', '10.0.0.0/8'])).toEqual(['IPv6']);
    expect(openToEveryone(['::/1', '8000::/1', '0.0.0.0/0'])).toEqual(['IPv4', 'IPv6']);
    expect(openToEveryone(['::ffff:0.0.0.0/96'])).toEqual([]);
  });
});

describe("nginx's workers", () => {
  it('find the first folder they may not pass, or the file they may not read', async () => {
    const modes: Record<string, { mode: number; uid: number; gid: number }> = {
      '/': { mode: 0o755, uid: 0, gid: 0 },
      '/tmp': { mode: 0o1777, uid: 0, gid: 0 },
      '/tmp/x': { mode: 0o700, uid: 0, gid: 0 },
      '/tmp/x/access': { mode: 0o750, uid: 0, gid: 33 },
      '/tmp/x/access/htpasswd': { mode: 0o640, uid: 0, gid: 33 },
    };
    const statOf = async (p: string) => modes[p]!;
    const www = { uid: 33, gids: [33] };
    const nobody = { uid: 65534, gids: [65534] };
    expect((await blockedAt('/tmp/x/access/htpasswd', www, statOf))?.path).toBe('/tmp/x');
    modes['/tmp/x']!.mode = 0o711;
    expect(await blockedAt('/tmp/x/access/htpasswd', www, statOf)).toBeUndefined();
    expect((await blockedAt('/tmp/x/access/htpasswd', nobody, statOf))?.path).toBe('/tmp/x/access');
    expect(
      await blockedAt('/tmp/x/access/htpasswd', { uid: 0, gids: [0] }, statOf),
    ).toBeUndefined();
    // The owner's bits count for the owner, even when the group's would allow more.
    modes['/tmp/x/access/htpasswd'] = { mode: 0o040, uid: 33, gid: 33 };
    expect((await blockedAt('/tmp/x/access/htpasswd', www, statOf))?.path).toBe(
      '/tmp/x/access/htpasswd',
    );
  });
});
