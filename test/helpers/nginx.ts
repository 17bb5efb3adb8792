import { join } from 'node:path';
import { execa } from 'execa';
import { startNginx, type PrivateNginx } from '../../src/demo/web-server.js';
import { onCleanup, tempDir } from './tmp.js';

/** A self-signed certificate for `host` (openssl), valid for `days`: the demo's own. */
export { selfSignedCert } from '../../src/demo/web-server.js';

export type Nginx = PrivateNginx;

/** The demo's private nginx on high ports on 127.0.0.1, stopped after the test. */
export async function nginxServer(): Promise<Nginx> {
  const server = await startNginx(await tempDir('ks-nginx-'));
  onCleanup(() => server.stop());
  return {
    ...server,
    // Returns once the old workers are gone: a request after it never meets the old routes.
    reload: `node ${join(import.meta.dirname, 'reload-nginx.mjs')} ${server.prefix} ${server.main}`,
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
