import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { freeBasePort } from '../../src/demo/ports.js';
import { onCleanup, tempDir } from './tmp.js';

/** A self-signed certificate for `host` (openssl), valid for `days`. */
export async function selfSignedCert(
  dir: string,
  host: string,
  days = 90,
): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${host}-${days}.pem`);
  const key = join(dir, `${host}-${days}.key`);
  await execa('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-subj',
    `/CN=${host}`,
    '-addext',
    `subjectAltName=DNS:${host}`,
    '-days',
    String(days),
  ]);
  return { cert, key };
}

export interface Nginx {
  prefix: string;
  /** Where karlstage installs its file ([staging] nginx_conf). */
  conf: string;
  /** [staging] reload for this nginx. */
  reload: string;
  /** [staging] nginx: the program for `nginx -t`. */
  httpPort: number;
  httpsPort: number;
}

/** A real nginx on high ports on 127.0.0.1, including conf.d/*.conf, stopped after the test. */
export async function nginxServer(): Promise<Nginx> {
  const prefix = await tempDir('ks-nginx-');
  for (const d of ['logs', 'conf.d', 'tmp']) await mkdir(join(prefix, d));
  const main = join(prefix, 'nginx.conf');
  await writeFile(
    main,
    `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  include ${prefix}/conf.d/*.conf;
}
`,
  );
  const base = await freeBasePort(2);
  const child = spawn('nginx', ['-p', prefix, '-c', main, '-g', 'daemon off;'], {
    stdio: 'ignore',
  });
  onCleanup(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGQUIT');
    await exited;
  });
  // nginx writes its pid file once it runs (and has bound what its configuration asks).
  const pidFile = join(prefix, 'nginx.pid');
  const deadline = Date.now() + 10_000;
  while (!existsSync(pidFile)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('nginx did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    prefix,
    conf: join(prefix, 'conf.d', 'karlstage.conf'),
    // Returns once the old workers are gone: a request after it never meets the old routes.
    reload: `node ${join(import.meta.dirname, 'reload-nginx.mjs')} ${prefix} ${main}`,
    httpPort: base + 1,
    httpsPort: base + 2,
  };
}

export interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * curl --resolve HOST:PORT:127.0.0.1, verifying the certificate with `cacert`; with `user`
 * ("name:password") as that user, from `from` (another 127.0.0.0/8 address) if given, the path
 * sent exactly as written.
 */
export async function curl(
  url: string,
  opts: { port: number; host: string; cacert?: string; user?: string; from?: string },
): Promise<Response> {
  const r = await execa(
    'curl',
    [
      '-sS',
      '--path-as-is',
      '-D',
      '-',
      '--resolve',
      `${opts.host}:${opts.port}:127.0.0.1`,
      ...(opts.cacert ? ['--cacert', opts.cacert] : []),
      ...(opts.user ? ['-u', opts.user] : []),
      ...(opts.from ? ['--interface', opts.from] : []),
      url,
    ],
    { reject: false },
  );
  const text = String(r.stdout);
  const split = text.indexOf('\r\n\r\n');
  const head = text.slice(0, split).split('\r\n');
  const headers: Record<string, string> = {};
  for (const h of head.slice(1)) {
    const i = h.indexOf(':');
    headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1).trim();
  }
  return { status: Number(head[0]?.split(' ')[1] ?? 0), headers, body: text.slice(split + 4) };
}

/** nginx reloads asynchronously: ask until `ok` holds (or give the last answer to the assertion). */
export async function eventually(
  get: () => Promise<Response>,
  ok: (r: Response) => boolean,
  ms = 8000,
): Promise<Response> {
  const deadline = Date.now() + ms;
  let last = await get();
  while (!ok(last) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    last = await get();
  }
  return last;
}
