import { isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../config/config.js';
import type { Step } from '../core/plan.js';
import { commandLine, run, splitCommand } from '../core/runner.js';

export type DeploymentStep = 'build' | 'migrate' | 'start' | 'restart' | 'stop';

export interface SiteIdentity {
  name: string;
  slot: number;
  port: number;
}

/** What every deployment step is told about its branch site. */
export function stepEnv(
  cfg: Config,
  site: SiteIdentity,
  revision?: string,
): Record<string, string> {
  return {
    KARLSTAGE_BRANCH: site.name,
    KARLSTAGE_SLOT: String(site.slot),
    KARLSTAGE_PORT: String(site.port),
    KARLSTAGE_HOST: cfg.staging.host,
    KARLSTAGE_PREFIX: `/${site.name}`,
    KARLSTAGE_ROOT: cfg.root,
    KARLSTAGE_SOURCE: join(cfg.root, site.name, cfg.source.path),
    ...(revision ? { KARLSTAGE_REVISION: revision } : {}),
  };
}

/** The configured command for a step as an argument array; a relative program is found in the branch site. */
export function stepCommand(cfg: Config, key: DeploymentStep, dir: string): string[] | undefined {
  const text = cfg.deployment[key];
  if (!text) return undefined;
  const argv = splitCommand(text, `[deployment] ${key}`);
  const [program, ...args] = argv as [string, ...string[]];
  return [program.includes('/') && !isAbsolute(program) ? resolve(dir, program) : program, ...args];
}

/**
 * A plan step running one configured deployment command; undefined when the key
 * is not set. The environment is computed when the step runs, since the
 * revision (and, for update, the site's record) is only known by then.
 */
export function deploymentStep(
  cfg: Config,
  key: DeploymentStep,
  branch: string,
  env: () => Record<string, string>,
): Step | undefined {
  const dir = join(cfg.root, branch);
  const argv = stepCommand(cfg, key, dir);
  if (!argv) return undefined;
  const [program, ...args] = argv as [string, ...string[]];
  return {
    title: key,
    preview: [`$ ${commandLine(program, args)}   (in ${dir})`],
    run: async (ctx) => {
      await run(program, args, {
        step: `${branch}: ${key}`,
        cwd: dir,
        env: env(),
        timeoutMs: cfg.deployment.timeout * 1000,
        log: ctx.log,
      });
    },
  };
}
