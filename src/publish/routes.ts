import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { KarlstageError, UsageError } from '../core/errors.js';
import { layout } from '../model/layout.js';
import { later, type Command } from '../core/command.js';
import type { Plan, Step } from '../core/plan.js';
import { splitCommand } from '../core/runner.js';
import type { BranchView } from '../model/views.js';
import { readUsers, scopeFolder, scopeKey, type AccessUser } from './access.js';
import { renderTemplate } from '../core/templates.js';

/** A path as one nginx word; characters that would end or open a directive are refused. */
function nginxPath(path: string, key: string): string {
  if (/[\s;{}"'#$\\]/.test(path))
    throw new UsageError(
      `${key} = ${path}: nginx paths here may not contain spaces, quotes, ";", "{", "}", "#", "$" or "\\"`,
    );
  return path;
}

/** `users`: the users as they will be after a change (read from disk when not given). */
export async function renderRoutes(
  cfg: Config,
  views: BranchView[],
  users?: AccessUser[],
): Promise<string> {
  if (!cfg.staging.tlsCertificate || !cfg.staging.tlsKey)
    throw new UsageError(
      `${cfg.file}: [staging] tls_certificate and tls_key are needed for the routes`,
    );
  users ??= await readUsers(cfg.root);
  const locked = !cfg.access.public;
  // Every branch site holds production data: a locked host with nobody to let in is not published.
  if (locked && users.length === 0)
    throw new UsageError(
      `the TLS host is locked and has no users yet: "karlstage access add NAME" adds one (or, to serve it without a login, write [access] public = yes in ${cfg.file})`,
    );
  const scopeOf = (u: AccessUser) => (u.customers === '*' ? '*' : `,${scopeKey(u)},`);
  const scopes = new Map(users.map((u) => [scopeOf(u), scopeFolder(scopeKey(u))]));
  scopes.set('*', 'all');
  return renderTemplate('nginx.conf', {
    config: cfg.file,
    host: cfg.staging.host,
    http_port: cfg.staging.httpPort,
    https_port: cfg.staging.httpsPort,
    https_suffix: cfg.staging.httpsPort === 443 ? '' : `:${cfg.staging.httpsPort}`,
    certificate: nginxPath(cfg.staging.tlsCertificate, '[staging] tls_certificate'),
    key: nginxPath(cfg.staging.tlsKey, '[staging] tls_key'),
    sites: nginxPath(layout.sites(cfg.root), 'the staging root'),
    locked,
    realm: 'KARL staging',
    users_file: nginxPath(layout.accessHtpasswd(cfg.root), 'the staging root'),
    allow: cfg.access.allow.map((cidr) => ({ cidr })),
    users: users.map((u) => ({ name: u.name, scope: scopeOf(u) })),
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
export function routesPlan(cfg: Config, text: string, command = 'routes'): Plan {
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
  const steps: Step[] = [
    {
      title: 'write the new routes beside the installed ones',
      effects: [`write ${fresh}`],
      run: async (ctx) => {
        await mkdir(dirname(target), { recursive: true });
        await writeFileAtomic(fresh, text, { mode: 0o644 });
        ctx.onUndo(() => rm(fresh, { force: true }));
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
  ];
  return { command, jobs: [{ name: 'routes', steps }] };
}
