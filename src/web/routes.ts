import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { Config } from '../config/config.js';
import { KarlstageError, UsageError } from '../core/errors.js';
import { layout } from '../core/layout.js';
import type { Step } from '../core/plan.js';
import { commandLine, run, splitCommand } from '../core/runner.js';
import type { State } from '../core/state.js';
import { renderTemplate } from '../core/templates.js';

/** A path as one nginx word; characters that would end or open a directive are refused. */
function nginxPath(path: string, key: string): string {
  if (/[\s;{}"'#$\\]/.test(path))
    throw new UsageError(
      `${key} = ${path}: nginx paths here may not contain spaces, quotes, ";", "{", "}", "#", "$" or "\\"`,
    );
  return path;
}

export async function renderRoutes(cfg: Config, state: State): Promise<string> {
  if (!cfg.staging.tlsCertificate || !cfg.staging.tlsKey)
    throw new UsageError(
      `${cfg.file}: [staging] tls_certificate and tls_key are needed for the routes`,
    );
  return renderTemplate('nginx.conf', {
    config: cfg.file,
    host: cfg.staging.host,
    http_port: cfg.staging.httpPort,
    https_port: cfg.staging.httpsPort,
    https_suffix: cfg.staging.httpsPort === 443 ? '' : `:${cfg.staging.httpsPort}`,
    certificate: nginxPath(cfg.staging.tlsCertificate, '[staging] tls_certificate'),
    key: nginxPath(cfg.staging.tlsKey, '[staging] tls_key'),
    sites: nginxPath(join(layout.meta(cfg.root), 'sites'), 'the staging root'),
    branches: Object.values(state.branches)
      .sort((a, b) => a.slot - b.slot)
      .map((b) => ({ name: b.name, port: b.port, ref: b.ref.replace(/[\r\n]/g, ' ') })),
  });
}

/**
 * Install routes safely: write the new file beside the installed one, check it
 * with `nginx -t` (a throwaway main configuration that includes only it), swap
 * it in with a rename, reload; if the reload fails, put the old file back.
 */
export function installSteps(cfg: Config, text: () => string): Step[] {
  const target = nginxPath(cfg.staging.nginxConf, '[staging] nginx_conf');
  const fresh = `${target}.karlstage-new`;
  const previous = `${target}.karlstage-previous`;
  const nginx = splitCommand(cfg.staging.nginx, '[staging] nginx');
  const reload = splitCommand(cfg.staging.reload, '[staging] reload');
  return [
    {
      title: 'write the new routes beside the installed ones',
      preview: [`write ${fresh}`],
      run: async (ctx) => {
        await mkdir(dirname(target), { recursive: true });
        await writeFileAtomic(fresh, text(), { mode: 0o644 });
        ctx.onUndo(() => rm(fresh, { force: true }));
      },
    },
    {
      title: 'check them with nginx -t',
      preview: [
        `$ ${commandLine(nginx[0]!, [...nginx.slice(1), '-t', '-q', '-p', 'TMP', '-c', 'TMP/check.conf'])}   (check.conf includes only ${fresh})`,
      ],
      run: async (ctx) => {
        const tmp = await mkdtemp(join(tmpdir(), 'karlstage-nginx-'));
        try {
          await mkdir(join(tmp, 'logs'));
          await writeFile(
            join(tmp, 'check.conf'),
            `pid ${tmp}/nginx.pid;\nerror_log ${tmp}/logs/error.log;\nevents {}\nhttp {\n    include ${fresh};\n}\n`,
          );
          await run(
            nginx[0]!,
            [...nginx.slice(1), '-t', '-q', '-p', tmp, '-c', join(tmp, 'check.conf')],
            { step: 'nginx -t', timeoutMs: 30_000, log: ctx.log },
          );
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
      },
    },
    {
      title: `install ${target} and reload`,
      preview: [
        `rename ${fresh} to ${target} (the old one kept as ${previous})`,
        `$ ${commandLine(reload[0]!, reload.slice(1))}`,
      ],
      run: async (ctx) => {
        const hadOld = existsSync(target);
        if (hadOld) await copyFile(target, previous);
        await rename(fresh, target);
        try {
          await run(reload[0]!, reload.slice(1), {
            step: 'reload nginx',
            timeoutMs: 60_000,
            log: ctx.log,
          });
        } catch (e) {
          if (hadOld) await rename(previous, target);
          else await rm(target, { force: true });
          await run(reload[0]!, reload.slice(1), {
            step: 'reload nginx with the old routes',
            timeoutMs: 60_000,
            log: ctx.log,
          }).catch(() => undefined);
          if (e instanceof KarlstageError) throw e;
          throw new KarlstageError(
            `reload failed: ${(e as Error).message}; the old routes are back`,
          );
        }
      },
    },
  ];
}
