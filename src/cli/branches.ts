import { Command, Option } from 'commander';
import { globals, positive, type Done } from './options.js';

/** The commands that make, change and remove branch sites, and keep them up. */
export function registerBranches(program: Command, done: Done): void {
  program
    .command('init [dir]')
    .description('write a commented karlstage.ini (flags fill it in)')
    .option('--host <host>', 'the one TLS host, e.g. karltest.example.com')
    .addOption(new Option('--vcs <vcs>', 'svn or git').choices(['svn', 'git']))
    .option('--url <url>', 'svn: repository root; git: clone URL')
    .option('--skeleton <location>', 'the deployment skeleton: local folder or git URL')
    .option('--default-ref <ref>', 'ref of a new branch site when none is given')
    .option('--database <dsn>', 'where staging databases live (libpq keywords or URL)')
    .option('--base-port <port>', 'first app port (branch N listens on base + N)', positive)
    .option('--force', 'overwrite an existing karlstage.ini')
    .action(async (dir: string | undefined, o, cmd: Command) => {
      const { init } = await import('../commands/init.js');
      done(await init({ ...globals(cmd), dir, ...o }));
    });

  program
    .command('create <branch>')
    .description('make a branch site: skeleton, source at REF, instances.ini, build, start')
    .option(
      '-r, --ref <ref>',
      'git branch/tag/commit, or svn trunk, branches/X, tags/X or a URL (default: [source] default)',
    )
    .option('--customers <list>', 'comma-separated customers (default: every [customer:NAME])')
    .action(async (branch: string, o: { ref?: string; customers?: string }, cmd: Command) => {
      const { parseCustomerList } = await import('../config/names.js');
      const { create } = await import('../commands/create.js');
      done(
        await create({
          ...globals(cmd),
          branch,
          ref: o.ref,
          customers: o.customers === undefined ? undefined : parseCustomerList(o.customers),
        }),
      );
    });

  program
    .command('switch <branch> <ref>')
    .description("switch a branch site's source to another ref, then build, migrate, restart")
    .option('-f, --force', 'discard local changes in the working copy')
    .action(async (branch: string, ref: string, o: { force?: boolean }, cmd: Command) => {
      const { switchBranch } = await import('../commands/switch.js');
      done(await switchBranch({ ...globals(cmd), branch, ref, force: o.force }));
    });

  program
    .command('update [branches...]')
    .description(
      'update source, build, migrate, restart; skipped when that revision is already built',
    )
    .option('-a, --all', 'every branch site')
    .option('-f, --force', 'build even when already built; discard local changes')
    .option('-j, --jobs <n>', 'branch sites at once (default: [staging] jobs)', positive)
    .action(
      async (
        branches: string[],
        o: { all?: boolean; force?: boolean; jobs?: number },
        cmd: Command,
      ) => {
        const { update } = await import('../commands/update.js');
        done(await update({ ...globals(cmd), branches, ...o }));
      },
    );

  program
    .command('poll [branches...]')
    .description(
      'ask upstream which branch sites are behind (no fetch); --build updates exactly those',
    )
    .option('-b, --build', 'update the branch sites that are behind')
    .option('-j, --jobs <n>', 'branch sites built at once (default: [staging] jobs)', positive)
    .action(async (branches: string[], o: { build?: boolean; jobs?: number }, cmd: Command) => {
      const { poll } = await import('../commands/poll.js');
      done(await poll({ ...globals(cmd), branches, ...o }));
    });

  program
    .command('prune')
    .description(
      'list the stale branch sites (ref gone upstream, or not updated for stale_after days); --yes removes them',
    )
    .option('-y, --yes', 'really remove them (never a held site or a mail branch)')
    .action(async (o: { yes?: boolean }, cmd: Command) => {
      const { prune } = await import('../commands/prune.js');
      done(await prune({ ...globals(cmd), yes: o.yes }));
    });

  program
    .command('destroy <branch>')
    .description('stop the app and remove the branch site')
    .option('-y, --yes', 'really remove it')
    .action(async (branch: string, o: { yes?: boolean }, cmd: Command) => {
      const { destroy } = await import('../commands/destroy.js');
      done(await destroy({ ...globals(cmd), branch, yes: o.yes }));
    });
}

/** Keeping branch sites up: start, stop, restart, sleep, watch, and the wake service. */
export function registerRunControl(program: Command, done: Done): void {
  for (const [action, what] of [
    ['start', "run the deployment's start step, and wait until the app answers"],
    ['stop', "run the deployment's stop step; the site stays stopped until start"],
    ['restart', "run the deployment's restart step (or stop and start), and wait until it answers"],
    ['sleep', 'stop an idle site now; the first logged-in visitor wakes it'],
  ] as const)
    program
      .command(`${action} [branches...]`)
      .description(`${what} (under each site's lock)`)
      .option('-a, --all', 'every branch site')
      .option('-j, --jobs <n>', 'branch sites at once (default: [staging] jobs)', positive)
      .action(async (branches: string[], o: { all?: boolean; jobs?: number }, cmd: Command) => {
        const { runControl } = await import('../commands/run-control.js');
        done(await runControl(action, { ...globals(cmd), branches, ...o }));
      });

  program
    .command('watch')
    .description(
      'cron, every minute: start again what should run and does not answer (with backoff), put idle sites to sleep, keep the wake service up',
    )
    .option(
      '--boot',
      'after a reboot (@reboot): start every site that was running, and the wake service',
    )
    .option('-j, --jobs <n>', 'sites started at once (default: [staging] jobs)', positive)
    .action(async (o: { boot?: boolean; jobs?: number }, cmd: Command) => {
      const { watch } = await import('../commands/watch.js');
      done(await watch({ ...globals(cmd), ...o }));
    });

  program
    .command('wake-service', { hidden: true })
    .description('the wake service nginx asks for a site that does not answer (watch starts it)')
    .action(async (_o, cmd: Command) => {
      const { wakeService } = await import('../commands/wake-service.js');
      done(await wakeService(globals(cmd)));
    });
}
