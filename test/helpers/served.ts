import { readFile, writeFile } from 'node:fs/promises';
import { accessAdd } from '../../src/commands/access.js';
import { curl, nginxServer, selfSignedCert } from './nginx.js';
import { gitRepo } from './repos.js';
import { stagingServer } from './staging.js';
import { tempDir } from './tmp.js';

export const HOST = 'karltest.example.com';
export const ADMIN = 'admin:the-admin-password-1';

/**
 * A staging server whose routes go to a real nginx with a self-signed
 * certificate (routes = auto). The host is locked: unless `users` says
 * otherwise, one user "admin" sees every customer; `get` asks as admin.
 */
export async function servedStaging(opts: { users?: false; ini?: (text: string) => string } = {}) {
  const nginx = await nginxServer();
  const { cert, key } = await selfSignedCert(await tempDir('ks-cert-'), HOST);
  const repo = await gitRepo();
  const st = await stagingServer(repo);
  let ini = (await readFile(st.config, 'utf8'))
    .replace('routes = manual', 'routes = auto')
    .replace(/^tls_certificate = .*$/m, `tls_certificate = ${cert}`)
    .replace(/^tls_key = .*$/m, `tls_key = ${key}`)
    .replace(/^https_port = .*$/m, `https_port = ${nginx.httpsPort}`)
    .replace(/^http_port = .*$/m, `http_port = ${nginx.httpPort}`)
    .replace(/^nginx_conf = .*$/m, `nginx_conf = ${nginx.conf}`)
    .replace(/^reload = .*$/m, `reload = ${nginx.reload}`)
    .replace(/^listen_addresses =.*$/m, `listen_addresses = ${nginx.address}`)
    .replace(/^group = .*$/m, `group = ${nginx.workers.group}`);
  if (opts.ini) ini = opts.ini(ini);
  await writeFile(st.config, ini);
  if (opts.users !== false) {
    const [user, password] = ADMIN.split(':') as [string, string];
    await accessAdd({ ...st.g, user, password });
  }
  const get = (path: string, as: { user?: string | null; from?: string } = {}) =>
    curl(`https://${HOST}:${nginx.httpsPort}${path}`, {
      host: HOST,
      port: nginx.httpsPort,
      cacert: cert,
      ...(as.user === null ? {} : { user: as.user ?? ADMIN }),
      ...(as.from ? { from: as.from } : {}),
    });
  return { nginx, cert, key, repo, st, get };
}
