import { constants, existsSync } from 'node:fs';
import { access, statfs } from 'node:fs/promises';
import { isRemoteLocation } from '../core/config.js';
import { KarlstageError, messageOf } from '../core/errors.js';
import { readState } from '../core/state.js';
import { run } from '../core/runner.js';
import { sourceVcs } from '../branches/vcs.js';
import { GitVcs } from '../branches/git.js';
import { commandContext, type GlobalOptions } from './context.js';

export interface Check {
  name: string;
  level: 'ok' | 'warn' | 'fail';
  detail: string;
}

const GB = 1024 ** 3;

async function version(cmd: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await run(cmd, args, { step: `${cmd} version`, timeoutMs: 10_000 });
  return (stdout || stderr).trim().split('\n')[0] ?? '';
}

/** Checks tools and versions, the configuration, the repositories, and disk room. Read-only. */
export async function doctor(opts: GlobalOptions & { minFreeGb?: number }): Promise<Check[]> {
  const { cfg, out } = await commandContext(opts);
  const checks: Check[] = [];
  const check = async (
    name: string,
    fn: () => Promise<string | { level: Check['level']; detail: string }>,
    missing: Check['level'] = 'fail',
  ) => {
    try {
      const r = await fn();
      checks.push(typeof r === 'string' ? { name, level: 'ok', detail: r } : { name, ...r });
    } catch (e) {
      checks.push({ name, level: missing, detail: messageOf(e).split('\n')[0] ?? '' });
    }
  };

  await check('node', async () => {
    const major = Number(process.versions.node.split('.')[0]);
    if (major < 20)
      throw new Error(`node ${process.versions.node} is too old: karlstage needs node 20 or later`);
    return `node ${process.versions.node}`;
  });
  await check(
    'configuration',
    async () => `${cfg.file}: ${cfg.customers.length} customer(s), ${cfg.source.vcs} source`,
  );
  const needGit = cfg.source.vcs === 'git' || isRemoteLocation(cfg.deployment.skeleton);
  await check('git', () => version('git', ['--version']), needGit ? 'fail' : 'warn');
  await check(
    'svn',
    () => version('svn', ['--version', '--quiet']),
    cfg.source.vcs === 'svn' ? 'fail' : 'warn',
  );
  for (const [tool, args] of [
    ['psql', ['--version']],
    ['pg_dump', ['--version']],
    ['rsync', ['--version']],
    ['nginx', ['-v']],
  ] as const)
    await check(tool, () => version(tool, [...args]), 'warn');
  await check(
    'state',
    async () => `${Object.keys((await readState(cfg.root)).branches).length} branch site(s)`,
  );
  await check('staging root', async () => {
    await access(cfg.root, constants.W_OK);
    return `${cfg.root} is writable`;
  });
  await check('disk', async () => {
    const s = await statfs(cfg.root);
    const free = (s.bavail * s.bsize) / GB;
    const text = `${free.toFixed(1)} GB free in ${cfg.root}`;
    if (free < (opts.minFreeGb ?? 5))
      return {
        level: 'warn',
        detail: `${text}: each branch site needs room for a build and its data`,
      };
    return text;
  });
  await check('skeleton', async () => {
    const s = cfg.deployment.skeleton;
    if (!isRemoteLocation(s)) {
      if (!existsSync(s)) throw new Error(`${s} does not exist`);
      return `${s} (local folder)`;
    }
    const git = new GitVcs({
      url: s.replace(/^git\+/, ''),
      timeoutMs: cfg.source.timeout * 1000,
      retries: 0,
    });
    await git.remoteHead('HEAD');
    return `${s} is reachable`;
  });
  await check('source', async () => {
    const vcs = await sourceVcs({ source: { ...cfg.source, retries: 0 } });
    await vcs.checkRef(cfg.source.default);
    return `${vcs.describeRef(cfg.source.default)} exists`;
  });

  out.result({ ok: checks.every((c) => c.level !== 'fail'), checks });
  const mark = { ok: out.c.green('ok  '), warn: out.c.yellow('warn'), fail: out.c.red('FAIL') };
  for (const c of checks) out.line(`${mark[c.level]}  ${c.name.padEnd(14)} ${c.detail}`);
  const failed = checks.filter((c) => c.level === 'fail');
  if (failed.length)
    throw new KarlstageError(
      `doctor: ${failed.length} check(s) failed: ${failed.map((c) => c.name).join(', ')}`,
    );
  return checks;
}
