import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { request } from 'node:https';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import type { Config } from '../config/config.js';
import { layout } from '../model/layout.js';

/**
 * Whether nginx's workers may read what karlstage gives them: the users file
 * (else every logged-in request answers 500, and nothing says why) and the
 * site list. The routes serve /.ks-worker to this machine only: the process
 * id of the worker that answers, whose user and groups /proc tells.
 */
export interface Worker {
  pid: number;
  uid: number;
  gids: number[];
  user: string;
  groups: string[];
}

/** Ask the TLS host which worker answers (its pid): on its own address, with its own name. */
export function askWorkerPid(cfg: Config, timeoutMs = 5_000): Promise<number> {
  const address = cfg.staging.listenAddresses[0] ?? '127.0.0.1';
  const port = cfg.staging.httpsPort;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: address,
        port,
        path: '/.ks-worker',
        ...(isIP(cfg.staging.host) ? {} : { servername: cfg.staging.host }),
        headers: { host: `${cfg.staging.host}:${port}` },
        // Nothing secret goes this way, and the answer is checked below: any certificate will do.
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          const pid = Number(body.trim());
          if (res.statusCode === 200 && Number.isInteger(pid) && pid > 0) resolve(pid);
          else
            reject(
              new Error(
                `cannot ask nginx who its workers are: https://${address}:${port}/.ks-worker answered ${res.statusCode} (are karlstage's routes installed there?)`,
              ),
            );
        });
      },
    );
    req.on('error', (e) =>
      reject(new Error(`cannot ask nginx who its workers are: ${address}:${port}: ${e.message}`)),
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.end();
  });
}

const nameIn = (file: string, id: number): string | undefined =>
  file
    .split('\n')
    .find((l) => l.split(':')[2] === String(id))
    ?.split(':')[0];

/** Who a process runs as (its effective user, its groups), from /proc. */
export async function workerOf(pid: number): Promise<Worker> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) =>
    (new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '')
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  const uid = field('Uid')[1] ?? -1;
  const gid = field('Gid')[1] ?? -1;
  const gids = [...new Set([gid, ...field('Groups')])];
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  const group = await readFile('/etc/group', 'utf8').catch(() => '');
  return {
    pid,
    uid,
    gids,
    user: nameIn(passwd, uid) ?? String(uid),
    groups: gids.map((g) => nameIn(group, g) ?? String(g)),
  };
}

interface Mode {
  mode: number;
  uid: number;
  gid: number;
}

/** The permission bits (r=4, x=1) that apply to `who` on a file, as the kernel picks them. */
function bitsFor(st: Mode, who: Pick<Worker, 'uid' | 'gids'>): number {
  if (who.uid === 0) return 7;
  if (st.uid === who.uid) return (st.mode >> 6) & 7;
  if (who.gids.includes(st.gid)) return (st.mode >> 3) & 7;
  return st.mode & 7;
}

/**
 * The first thing on the way to `file` that stops `who` reading it (a folder it may not
 * pass, or the file itself), or undefined when it may read it.
 */
export async function blockedAt(
  file: string,
  who: Pick<Worker, 'uid' | 'gids'>,
  statOf: (path: string) => Promise<Mode> = stat,
): Promise<{ path: string; st: Mode } | undefined> {
  const folders: string[] = [];
  for (let d = dirname(file); ; d = dirname(d)) {
    folders.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of folders) {
    const st = await statOf(d);
    if (!(bitsFor(st, who) & 1)) return { path: d, st };
  }
  const st = await statOf(file);
  return bitsFor(st, who) & 4 ? undefined : { path: file, st };
}

const octal = (m: number) => (m & 0o777).toString(8).padStart(4, '0');

/**
 * One line saying why nginx's workers cannot read the users file or the site list, and what
 * to do; undefined when they can. Throws when nginx cannot be asked.
 */
export async function workerProblem(cfg: Config): Promise<string | undefined> {
  const worker = await workerOf(await askWorkerPid(cfg));
  const group = await readFile('/etc/group', 'utf8').catch(() => '');
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  const who = `nginx's workers (user ${worker.user}, group${worker.groups.length > 1 ? 's' : ''} ${worker.groups.join(', ')})`;
  const sites = join(layout.sites(cfg.root), 'all', 'index.html');
  const wanted = [
    ...(cfg.access.public
      ? []
      : [{ file: layout.accessHtpasswd(cfg.root), what: 'the users file' }]),
    ...(existsSync(sites) ? [{ file: sites, what: 'the site list' }] : []),
  ];
  for (const { file, what } of wanted) {
    const stop = await blockedAt(file, worker);
    if (!stop) continue;
    const owner = `${nameIn(passwd, stop.st.uid) ?? stop.st.uid}:${nameIn(group, stop.st.gid) ?? stop.st.gid}`;
    const found = `${stop.path} is ${owner} ${octal(stop.st.mode)}`;
    const effect =
      what === 'the users file'
        ? 'every logged-in request answers 500'
        : 'the site list answers 403';
    const users = what === 'the users file' && (stop.path === file || stop.path === dirname(file));
    const fix = !users
      ? `let them ${stop.path === file ? 'read it: chmod o+r' : 'pass: chmod o+x'} ${stop.path}`
      : worker.groups.includes(cfg.access.group)
        ? `run "karlstage routes" again (it gives [access] group = ${cfg.access.group} read access)`
        : `set [access] group = ${worker.groups[0]} in ${cfg.file} (or run the workers in group ${cfg.access.group}: "user ${worker.user} ${cfg.access.group};" in nginx.conf), then run "karlstage routes"`;
    return `${who} cannot read ${what} ${file} (${found}): ${effect}; ${fix}`;
  }
  return undefined;
}
