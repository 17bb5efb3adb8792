import { isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../config/config.js';
import type { Command } from '../core/command.js';
import { KarlstageError } from '../core/errors.js';
import { waitUntilAnswering } from '../core/http-probe.js';
import { splitCommand } from '../core/command-line.js';

/**
 * The deployment commands of karlstage.ini ([deployment] build, migrate, start,
 * restart, stop): command lines run in a branch site's folder without a shell,
 * each told about its site in the environment.
 */
export type DeploymentKey = 'build' | 'migrate' | 'start' | 'restart' | 'stop';

export interface SiteIdentity {
  name: string;
  slot: number;
  port: number;
}

/** What every deployment command is told about its branch site. */
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

/** The configured command line as an argument array; a relative program is found in the branch site. */
export function stepArgv(cfg: Config, key: DeploymentKey, dir: string): string[] | undefined {
  const text = cfg.deployment[key];
  if (!text) return undefined;
  const [program, ...args] = splitCommand(text, `[deployment] ${key}`) as [string, ...string[]];
  return [program.includes('/') && !isAbsolute(program) ? resolve(dir, program) : program, ...args];
}

/**
 * One deployment command of a branch site as a command; undefined when the key is
 * not set. The environment is computed when it runs: the revision (and for an
 * update the site's record) is only known by then.
 */
export function deploymentCommand(
  cfg: Config,
  key: DeploymentKey,
  branch: string,
  env: () => Record<string, string>,
): Command | undefined {
  const dir = join(cfg.root, branch);
  const argv = stepArgv(cfg, key, dir);
  if (!argv) return undefined;
  const [program, ...args] = argv as [string, ...string[]];
  return {
    program,
    args,
    step: `${branch}: ${key}`,
    cwd: dir,
    env,
    // Starting and stopping an app is bounded by start_timeout: a hung start must not hold
    // the site's lock (and watch, and a waiting visitor) for the hour a build may take.
    timeoutMs:
      (RUN_CONTROL.includes(key) ? cfg.deployment.startTimeout : cfg.deployment.timeout) * 1000,
  };
}

const RUN_CONTROL: DeploymentKey[] = ['start', 'restart', 'stop'];

/**
 * Run a start or restart command, then wait until the app answers HTTP on its port, within
 * [deployment] start_timeout in all: a start step that returns at once (a supervisor that
 * forks) does not mean the app runs. Returns how long it took until the app answered.
 */
export async function startAndWait(
  cfg: Config,
  port: number,
  exec: () => Promise<unknown>,
): Promise<number> {
  const started = Date.now();
  await exec();
  const left = cfg.deployment.startTimeout * 1000 - (Date.now() - started);
  if (!(await waitUntilAnswering(port, Math.max(0, left))))
    throw new KarlstageError(
      `the app did not answer on 127.0.0.1:${port} within ${cfg.deployment.startTimeout} s of its start ([deployment] start_timeout)`,
    );
  return Date.now() - started;
}
