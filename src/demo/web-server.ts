import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { exec } from '../core/command.js';
import { freeBasePort } from './ports.js';

/**
 * The demo's (and the tests') one TLS host on this machine: a self-signed
 * certificate, and a private nginx started from its own prefix on free high
 * ports, including karlstage's generated file from conf.d/.
 */

/** A self-signed certificate for `host` (openssl), valid for `days`. */
export async function selfSignedCert(
  dir: string,
  host: string,
  days = 90,
): Promise<{ cert: string; key: string }> {
  await mkdir(dir, { recursive: true });
  const cert = join(dir, `${host}-${days}.pem`);
  const key = join(dir, `${host}-${days}.key`);
  await exec({
    program: 'openssl',
    args: ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert].concat([
      '-subj',
      `/CN=${host}`,
      '-addext',
      `subjectAltName=DNS:${host}`,
      '-days',
      String(days),
    ]),
    step: 'make a self-signed certificate',
    timeoutMs: 60_000,
  });
  return { cert, key };
}

export interface PrivateNginx {
  prefix: string;
  /** Its main configuration (includes conf.d/*.conf). */
  main: string;
  /** Where karlstage installs its file ([staging] nginx_conf). */
  conf: string;
  /** [staging] reload for this nginx. */
  reload: string;
  httpPort: number;
  httpsPort: number;
  /** The one address it listens on ([staging] listen_addresses). */
  address: string;
  /** Who its workers run as: [access] group must be their group. */
  workers: { user: string; group: string };
  /** Stop it (gracefully) and wait until its master has exited. */
  stop(): Promise<void>;
}

/** Start nginx (as a daemon, so it outlives the command that started it) from `prefix`. */
/** Running, and not a zombie waiting to be reaped (nginx's master is a daemon: init reaps it). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal); // nginx's master leads its own session: its workers too
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
}

/** The user (and group) nginx's workers run as when its master is root, as Debian's nginx does. */
function workerIdentity(): { user: string; group: string } {
  const me = userInfo();
  if (me.uid !== 0) {
    const group = readFileSync('/etc/group', 'utf8')
      .split('\n')
      .find((l) => l.split(':')[2] === String(me.gid))
      ?.split(':')[0];
    return { user: me.username, group: group ?? String(me.gid) };
  }
  const users = readFileSync('/etc/passwd', 'utf8');
  return /^www-data:/m.test(users)
    ? { user: 'www-data', group: 'www-data' }
    : { user: 'nobody', group: 'nogroup' };
}

export async function startNginx(prefix: string): Promise<PrivateNginx> {
  for (const d of ['logs', 'conf.d', 'tmp']) await mkdir(join(prefix, d), { recursive: true });
  await chmod(prefix, 0o755);
  const main = join(prefix, 'nginx.conf');
  const pidFile = join(prefix, 'nginx.pid');
  // Never root: as root, nginx starts its workers as an unprivileged user (Debian's www-data),
  // who reads the site list and the users file through [access] group; one worker per core.
  const workers = workerIdentity();
  await writeFile(
    main,
    `${userInfo().uid === 0 ? `user ${workers.user} ${workers.group};\n` : ''}worker_processes auto;
pid ${pidFile};
error_log ${prefix}/logs/error.log;
events { worker_connections 1024; }
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
  // nginx returns once its master runs and has written its pid file.
  await exec({
    program: 'nginx',
    args: ['-p', prefix, '-c', main],
    step: 'start nginx',
    timeoutMs: 30_000,
  });
  const master = () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0);
  const pid = master();
  return {
    prefix,
    main,
    conf: join(prefix, 'conf.d', 'karlstage.conf'),
    reload: `nginx -p ${prefix} -c ${main} -s reload`,
    httpPort: base + 1,
    httpsPort: base + 2,
    address: '127.0.0.1',
    workers,
    stop: async () => {
      await exec({
        program: 'nginx',
        args: ['-p', prefix, '-c', main, '-s', 'quit'],
        step: 'stop nginx',
        timeoutMs: 30_000,
      }).catch(() => undefined);
      // A graceful quit waits for open (keep-alive) connections: then TERM, then KILL its group.
      for (const signal of [undefined, 'SIGTERM', 'SIGKILL'] as const) {
        if (signal) signalGroup(pid, signal);
        const deadline = Date.now() + 5_000;
        while (pid && alive(pid) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
        if (!pid || !alive(pid)) break;
      }
      await rm(join(prefix, 'tmp'), { recursive: true, force: true });
    },
  };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** The TLS host as the demo asks it: its name (resolved to 127.0.0.1), its port, the CA trusted. */
export interface TlsHost {
  host: string;
  port: number;
  ca: string;
}

/** Ask the TLS host for a path, trusting only its `ca`; as `auth` ("user:password") if given. */
export function askTls(to: TlsHost, path: string, auth?: string): Promise<Answer> {
  const { host, port, ca } = to;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        servername: host,
        port,
        path,
        ca: readFileSync(ca),
        headers: { host: `${host}:${port}` },
        ...(auth ? { auth } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer from ${host}:${port}${path}`)));
    req.end();
  });
}
