import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { KarlstageError, UsageError } from '../core/errors.js';
import { makeActivityFiles } from '../model/activity.js';
import { layout } from '../model/layout.js';
import { later, type Command } from '../core/command.js';
import type { Plan, Step } from '../core/plan.js';
import { splitCommand } from '../core/command-line.js';
import type { BranchView } from '../model/views.js';
import { isIP } from 'node:net';
import {
  isFastHash,
  readUsers,
  scopeFolder,
  scopeKey,
  shareUsersFile,
  type AccessUser,
} from './access.js';
import { workerProblem } from './workers.js';
import {
  curvesFor,
  http2Form,
  MOZILLA,
  nameServers,
  nginxFacts,
  ocspResponder,
  trustedCas,
  type NginxFacts,
} from './tls.js';
import { renderTemplate } from '../core/templates.js';

/** A path as one nginx word; characters that would end or open a directive are refused. */
function nginxPath(path: string, key: string): string {
  if (/[\s;{}"'#$\\]/.test(path))
    throw new UsageError(
      `${key} = ${path}: nginx paths here may not contain spaces, quotes, ";", "{", "}", "#", "$" or "\\"`,
    );
  return path;
}

/** What the routes are made of besides the configuration and the sites: read once, then rendered. */
export interface RouteFacts {
  users: AccessUser[];
  nginx: NginxFacts;
  /** The certificate's OCSP responder, if it names one. */
  ocsp?: string;
  nameServers: string[];
  trusted?: string;
}

/** `users`: the users as they will be after a change (read from disk when not given). */
export async function routeFacts(cfg: Config, users?: AccessUser[]): Promise<RouteFacts> {
  return {
    users: users ?? (await readUsers(cfg.root)),
    nginx: await nginxFacts(cfg),
    ocsp: cfg.staging.tlsCertificate ? await ocspResponder(cfg.staging.tlsCertificate) : undefined,
    nameServers: await nameServers(),
    trusted: trustedCas(),
  };
}

/**
 * Requests naming a user with a slow hash, per address: `rate` a second; `delay` at once pass
 * without waiting (a page and its assets), then each waits its turn (nginx holds it on a timer:
 * a flood of wrong passwords is slowed to `rate` and costs no CPU); beyond `burst` waiting: 429.
 */
export const LOGIN_LIMIT = { rate: 10, delay: 100, burst: 200 } as const;
/** Seconds nginx waits for an app's connection before the friendly page. */
export const CONNECT_TIMEOUT = 3;

export async function renderRoutes(
  cfg: Config,
  views: BranchView[],
  users?: AccessUser[],
): Promise<string> {
  return routesText(cfg, views, await routeFacts(cfg, users));
}

/** The routes as a function of the configuration, the sites and the facts read. */
export async function routesText(
  cfg: Config,
  views: BranchView[],
  facts: RouteFacts,
): Promise<string> {
  if (!cfg.staging.tlsCertificate || !cfg.staging.tlsKey)
    throw new UsageError(
      `${cfg.file}: [staging] tls_certificate and tls_key are needed for the routes`,
    );
  const { users } = facts;
  const locked = !cfg.access.public;
  // Every branch site holds production data: a locked host with nobody to let in is not published.
  if (locked && users.length === 0)
    throw new UsageError(
      `the TLS host is locked and has no users yet: "karlstage access add NAME" adds one (or, to serve it without a login, write [access] public = yes in ${cfg.file})`,
    );
  const scopeOf = (u: AccessUser) => (u.customers === '*' ? '*' : `,${scopeKey(u)},`);
  const scopes = new Map(users.map((u) => [scopeOf(u), scopeFolder(scopeKey(u))]));
  scopes.set('*', 'all');
  const http2 = http2Form(facts.nginx);
  const addresses = cfg.staging.listenAddresses.map((ip) => ({
    ip,
    name: isIP(ip) === 6 ? `[${ip}]` : ip,
  }));
  return renderTemplate('nginx.conf', {
    config: cfg.file,
    host: cfg.staging.host,
    http_port: cfg.staging.httpPort,
    https_port: cfg.staging.httpsPort,
    https_suffix: cfg.staging.httpsPort === 443 ? '' : `:${cfg.staging.httpsPort}`,
    listen: addresses.length
      ? addresses.map((a) => ({ address: `${a.name}:` }))
      : [{ address: '' }],
    addresses,
    http2_listen: http2 === 'listen',
    http2_directive: http2 === 'directive',
    tls_guideline: MOZILLA.guideline,
    ciphers: MOZILLA.ciphers.join(':'),
    curves: curvesFor(facts.nginx).join(':'),
    stapling: facts.ocsp
      ? {
          trusted: facts.trusted,
          resolver: facts.nameServers.length ? facts.nameServers.join(' ') : undefined,
        }
      : false,
    referrer_policy: 'same-origin',
    connect_timeout: CONNECT_TIMEOUT,
    certificate: nginxPath(cfg.staging.tlsCertificate, '[staging] tls_certificate'),
    key: nginxPath(cfg.staging.tlsKey, '[staging] tls_key'),
    sites: nginxPath(layout.sites(cfg.root), 'the staging root'),
    locked,
    realm: 'KARL staging',
    users_file: nginxPath(layout.accessHtpasswd(cfg.root), 'the staging root'),
    activity: nginxPath(layout.activityDir(cfg.root), 'the staging root'),
    wake_socket: nginxPath(layout.wakeSocket(cfg.root), 'the staging root'),
    allow: cfg.access.allow.map((cidr) => ({ cidr })),
    users: users.map((u) => ({ name: u.name, scope: scopeOf(u) })),
    slow_users: users.filter((u) => !isFastHash(u.hash)).map((u) => ({ name: u.name })),
    login_rate: LOGIN_LIMIT.rate,
    login_burst: LOGIN_LIMIT.burst,
    login_delay: LOGIN_LIMIT.delay,
    scopes: [...scopes].map(([key, folder]) => ({ key, folder })),
    branches: views.map(({ site: b }) => ({
      name: b.name,
      port: b.port,
      ref: b.ref.replace(/[\r\n]/g, ' '),
    })),
  });
}

/**
 * Install routes safely: write the new file beside the installed one, check it
 * with `nginx -t` (a throwaway main configuration that includes only it), swap
 * it in with a rename, reload; if the reload fails, put the old file back.
 * Runs under the routes lock (two runs must not swap files at once).
 */
export function routesPlan(
  cfg: Config,
  text: string,
  command = 'routes',
  branches: string[] = [],
): Plan {
  return {
    command,
    jobs: [{ name: 'routes', steps: routesSteps(cfg, async () => ({ text, branches })) }],
  };
}

/**
 * The steps of routesPlan, the routes made when the first step runs (after a change: from the
 * sites as they are then).
 */
export function routesSteps(
  cfg: Config,
  routes: () => Promise<{ text: string; branches: string[] }>,
): Step[] {
  const target = nginxPath(cfg.staging.nginxConf, '[staging] nginx_conf');
  const fresh = `${target}.karlstage-new`;
  const previous = `${target}.karlstage-previous`;
  const [nginx, ...nginxArgs] = splitCommand(cfg.staging.nginx, '[staging] nginx') as [
    string,
    ...string[],
  ];
  const [reload, ...reloadArgs] = splitCommand(cfg.staging.reload, '[staging] reload') as [
    string,
    ...string[],
  ];
  let tmp = '';
  const check: Command = {
    program: nginx,
    args: [
      ...nginxArgs,
      '-t',
      '-q',
      '-p',
      later('TMP', () => tmp),
      '-c',
      later('TMP/check.conf', () => join(tmp, 'check.conf')),
    ],
    step: 'nginx -t',
    timeoutMs: 30_000,
  };
  const reloadCmd: Command = {
    program: reload,
    args: reloadArgs,
    step: 'reload nginx',
    timeoutMs: 60_000,
  };
  const reloadOld: Command = {
    ...reloadCmd,
    step: 'reload nginx with the old routes',
    when: 'when the reload failed',
  };
  return [
    {
      title: 'write the new routes beside the installed ones',
      effects: [
        `write ${fresh}`,
        `give [access] group (${cfg.access.group}) read access to ${layout.accessHtpasswd(cfg.root)}`,
        `make ${layout.activityDir(cfg.root)}/BRANCH.log where missing`,
      ],
      run: async (ctx) => {
        const { text, branches } = await routes();
        // nginx opens (and as root would make) each site's activity file: karlstage makes them
        // first, so they stay its own (watch reads and empties them).
        await makeActivityFiles(cfg.root, branches);
        await mkdir(dirname(target), { recursive: true });
        await writeFileAtomic(fresh, text, { mode: 0o644 });
        ctx.onUndo(() => rm(fresh, { force: true }));
        await shareUsersFile(cfg);
      },
    },
    {
      title: 'check them with nginx -t',
      commands: [check],
      effects: [`write TMP/check.conf (it includes only ${fresh}), removed afterwards`],
      run: async (ctx) => {
        tmp = await mkdtemp(join(tmpdir(), 'karlstage-nginx-'));
        try {
          await mkdir(join(tmp, 'logs'));
          await writeFile(
            join(tmp, 'check.conf'),
            `pid ${tmp}/nginx.pid;\nerror_log ${tmp}/logs/error.log;\nevents {}\nhttp {\n    include ${fresh};\n}\n`,
          );
          await ctx.exec(check);
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
      },
    },
    {
      title: `install ${target} and reload`,
      commands: [reloadCmd, reloadOld],
      effects: [`rename ${fresh} to ${target} (the old one kept as ${previous})`],
      run: async (ctx) => {
        const hadOld = existsSync(target);
        if (hadOld) await copyFile(target, previous);
        await rename(fresh, target);
        try {
          await ctx.exec(reloadCmd);
        } catch (e) {
          if (hadOld) await rename(previous, target);
          else await rm(target, { force: true });
          await ctx.exec(reloadOld).catch(() => undefined);
          if (e instanceof KarlstageError) throw e;
          throw new KarlstageError(
            `reload failed: ${(e as Error).message}; the old routes are back`,
          );
        }
      },
    },
    {
      // Else every logged-in request answers 500, and nothing says why. A nginx that cannot be
      // asked (not on this machine, another address) is doctor's to report.
      title: "check that nginx's workers can read the users file and the site list",
      run: async (ctx) => {
        const problem = await workerProblem(cfg).catch(() => undefined);
        if (problem) ctx.warn(problem);
      },
    },
  ];
}
