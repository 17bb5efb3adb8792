import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { GlobalOptions } from './context/context.js';
import { printable } from './core/printable.js';

/**
 * The commander program. Each action only turns flags into a typed options
 * object and calls the command function, imported lazily so that --help and
 * status start fast. Errors are handled once, in main().
 */
function seconds(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number of seconds');
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1)
    throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

/** The running command's result: printed as the one JSON document with --json. */
let outcome: unknown;

function globals(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Record<string, unknown>;
  return {
    config: o.config as string | undefined,
    dryRun: Boolean(o.dryRun),
    json: Boolean(o.json),
    quiet: Boolean(o.quiet),
    verbose: Boolean(o.verbose),
    color: o.color !== false,
    wait: o.wait as number | undefined,
  };
}

export function buildProgram(): Command {
  const program = new Command('karlstage')
    .description(
      'Run a staging server of KARL branch sites under one TLS host: https://HOST/BRANCH/CUSTOMER/',
    )
    .version(process.env.npm_package_version ?? '0.1.0', '-V, --version')
    .option(
      '-c, --config <file>',
      "karlstage.ini to use (default: $KARLSTAGE_CONFIG, else ./karlstage.ini or a parent folder's)",
    )
    .option('-n, --dry-run', 'print the plan (each command line, each file) and change nothing')
    .option('--json', 'print one JSON document on stdout')
    .option('-q, --quiet', 'print only errors')
    .option('-v, --verbose', 'also print each program run and how it ended (on stderr)')
    .option('--no-color', 'no colours (also: NO_COLOR=1)')
    .addOption(
      new Option(
        '--wait <seconds>',
        "wait this long for another run's lock, then exit 75",
      ).argParser(seconds),
    )
    .exitOverride()
    // commander's own messages quote the arguments given: escaped like everything printed.
    .configureOutput({
      writeErr: (text) => process.stderr.write(printable(text, { layout: true })),
    })
    .showHelpAfterError('(run "karlstage --help" for usage)')
    .addHelpText(
      'after',
      '\nExit status: 0 success, 1 failure, 2 bad usage or configuration, 75 locked by another run.',
    );

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
      const { init } = await import('./commands/init.js');
      outcome = await init({ ...globals(cmd), dir, ...o });
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
      const { parseCustomerList } = await import('./config/names.js');
      const { create } = await import('./commands/create.js');
      outcome = await create({
        ...globals(cmd),
        branch,
        ref: o.ref,
        customers: o.customers === undefined ? undefined : parseCustomerList(o.customers),
      });
    });

  program
    .command('switch <branch> <ref>')
    .description("switch a branch site's source to another ref, then build, migrate, restart")
    .option('-f, --force', 'discard local changes in the working copy')
    .action(async (branch: string, ref: string, o: { force?: boolean }, cmd: Command) => {
      const { switchBranch } = await import('./commands/switch.js');
      outcome = await switchBranch({ ...globals(cmd), branch, ref, force: o.force });
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
        const { update } = await import('./commands/update.js');
        outcome = await update({ ...globals(cmd), branches, ...o });
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
      const { poll } = await import('./commands/poll.js');
      outcome = await poll({ ...globals(cmd), branches, ...o });
    });

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
        const { runControl } = await import('./commands/run-control.js');
        outcome = await runControl(action, { ...globals(cmd), branches, ...o });
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
      const { watch } = await import('./commands/watch.js');
      outcome = await watch({ ...globals(cmd), ...o });
    });

  program
    .command('wake-service', { hidden: true })
    .description('the wake service nginx asks for a site that does not answer (watch starts it)')
    .action(async (_o, cmd: Command) => {
      const { wakeService } = await import('./commands/wake-service.js');
      outcome = await wakeService(globals(cmd));
    });

  program
    .command('cron')
    .description(
      'print the crontab lines (poll --build, nightly sync); --install writes [cron] file',
    )
    .option('--install', 'write them to [cron] file (default /etc/cron.d/karlstage)')
    .action(async (o: { install?: boolean }, cmd: Command) => {
      const { cron } = await import('./commands/cron.js');
      outcome = await cron({ ...globals(cmd), install: o.install });
    });

  program
    .command('status')
    .description(
      'one line per branch site: ref, revision, upstream, last update, last sync, port, customers, mail; then the data each holds per customer',
    )
    .option(
      '--disk',
      "disk use instead: each site's own and shared, each staging database, the dumps, free space",
    )
    .action(async (o: { disk?: boolean }, cmd: Command) => {
      const { status } = await import('./commands/status.js');
      outcome = await status({ ...globals(cmd), disk: o.disk });
    });

  program
    .command('sites')
    .description(
      'the site list the customer reads: html, json or text (also kept in .karlstage/sites/)',
    )
    .addOption(
      new Option('--format <format>', 'html, json or text')
        .choices(['html', 'json', 'text'])
        .default('text'),
    )
    .option('-o, --output <file>', 'write it to this file (atomically) instead of stdout')
    .action(async (o: { format: string; output?: string }, cmd: Command) => {
      const { sites } = await import('./commands/sites.js');
      outcome = await sites({ ...globals(cmd), format: o.format, output: o.output });
    });

  program
    .command('notify')
    .description('send a test message to [notify] webhook and mail (--test)')
    .option('--test', 'send a test message')
    .action(async (o: { test?: boolean }, cmd: Command) => {
      const { notifyTest } = await import('./commands/notify.js');
      outcome = await notifyTest({ ...globals(cmd), test: o.test });
    });

  program
    .command('prune')
    .description(
      'list the stale branch sites (ref gone upstream, or not updated for stale_after days); --yes removes them',
    )
    .option('-y, --yes', 'really remove them (never a held site or a mail branch)')
    .action(async (o: { yes?: boolean }, cmd: Command) => {
      const { prune } = await import('./commands/prune.js');
      outcome = await prune({ ...globals(cmd), yes: o.yes });
    });

  program
    .command('reset <branch>')
    .description(
      "fresh data for a branch site now, from each customer's golden copy (last night's sanitized copy; production is not read)",
    )
    .option('--customers <list>', 'comma-separated customers (default: every one it serves)')
    .action(async (branch: string, o: { customers?: string }, cmd: Command) => {
      const { parseCustomerList } = await import('./config/names.js');
      const { reset } = await import('./commands/reset.js');
      outcome = await reset({
        ...globals(cmd),
        branch,
        customers: o.customers === undefined ? undefined : parseCustomerList(o.customers),
      });
    });

  program
    .command('sync [branches...]')
    .description(
      'production → staging data: dump once per customer (read-only), golden copy, clone into each branch site, swap by rename',
    )
    .option(
      '--customers <list>',
      'comma-separated customers (default: every one with a production setting)',
    )
    .option('--nightly', 'every branch site not held (what cron runs)')
    .action(
      async (branches: string[], o: { customers?: string; nightly?: boolean }, cmd: Command) => {
        const { parseCustomerList } = await import('./config/names.js');
        const { sync } = await import('./commands/sync.js');
        outcome = await sync({
          ...globals(cmd),
          branches,
          nightly: o.nightly,
          customers: o.customers === undefined ? undefined : parseCustomerList(o.customers),
        });
      },
    );

  program
    .command('hold <branch>')
    .description(
      'hold a branch site out of the nightly sync (someone is testing on its data); --release ends that',
    )
    .option('--release', 'take part in the nightly sync again')
    .option('--reason <text>', 'why, for the others')
    .action(async (branch: string, o: { release?: boolean; reason?: string }, cmd: Command) => {
      const { hold } = await import('./commands/sync.js');
      outcome = await hold({ ...globals(cmd), branch, ...o });
    });

  program
    .command('routes')
    .description(
      'write the nginx configuration for the one TLS host, check it (nginx -t), install it, reload',
    )
    .action(async (_o, cmd: Command) => {
      const { routes } = await import('./commands/routes.js');
      outcome = await routes(globals(cmd));
    });

  program
    .command('mail [customer] [branch]')
    .description(
      "move a customer's staged mail-in to another branch site; without them, show the postfix configuration",
    )
    .option('--install', "write postfix's configuration, check it, start or reload postfix")
    .option('--caught', 'list the mail the branch sites sent that was kept, not sent')
    .action(
      async (
        customer: string | undefined,
        branch: string | undefined,
        o: { install?: boolean; caught?: boolean },
        cmd: Command,
      ) => {
        const { mail } = await import('./commands/mail.js');
        outcome = await mail({ ...globals(cmd), customer, branch, ...o });
      },
    );

  program
    .command('deliver <branch-or-recipient> [recipient]')
    .description(
      "postfix's pipe transport: the message on stdin into the branch site's Maildir (exit 67 bounces, 75 defers)",
    )
    .requiredOption('--mailboxes <file>', 'the mailboxes.json karlstage wrote')
    .option('--caught', 'keep it in the catch-all Maildir (mail-out to anyone but a tester)')
    .action(
      async (
        first: string,
        second: string | undefined,
        o: { mailboxes: string; caught?: boolean },
      ) => {
        const { deliver, readStdin } = await import('./commands/deliver.js');
        const { UsageError } = await import('./core/errors.js');
        if (o.caught ? second !== undefined : second === undefined)
          throw new UsageError(
            'usage: deliver --mailboxes FILE BRANCH RECIPIENT, or deliver --mailboxes FILE --caught RECIPIENT',
          );
        outcome = await deliver({
          mailboxes: o.mailboxes,
          caught: o.caught,
          branch: o.caught ? undefined : first,
          recipient: second ?? first,
          message: readStdin,
        });
      },
    );

  program
    .command('destroy <branch>')
    .description('stop the app and remove the branch site')
    .option('-y, --yes', 'really remove it')
    .action(async (branch: string, o: { yes?: boolean }, cmd: Command) => {
      const { destroy } = await import('./commands/destroy.js');
      outcome = await destroy({ ...globals(cmd), branch, yes: o.yes });
    });

  const access = program
    .command('access')
    .description('who may open the one TLS host: users (all customers, or some), hashes only');
  access
    .command('add <user>')
    .description(
      'let a user in; without --password-stdin a strong password is made and shown once (checked fast)',
    )
    .option('--customers <list>', 'only these customers (default: every one)')
    .option(
      '--password-stdin',
      'read the password from standard input (a chosen password: a slow hash, limited per address)',
    )
    .action(
      async (user: string, o: { customers?: string; passwordStdin?: boolean }, cmd: Command) => {
        const { parseCustomerList } = await import('./config/names.js');
        const { accessAdd } = await import('./commands/access.js');
        let password: string | undefined;
        if (o.passwordStdin) {
          const { readFileSync } = await import('node:fs');
          password = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
        }
        outcome = await accessAdd({
          ...globals(cmd),
          user,
          customers: o.customers === undefined ? undefined : parseCustomerList(o.customers),
          password,
        });
      },
    );
  access
    .command('remove <user>')
    .description('shut a user out')
    .action(async (user: string, _o, cmd: Command) => {
      const { accessRemove } = await import('./commands/access.js');
      outcome = await accessRemove({ ...globals(cmd), user });
    });
  access
    .command('list')
    .description('the users and their customers (never a hash or password), the allow list')
    .action(async (_o, cmd: Command) => {
      const { accessList } = await import('./commands/access.js');
      outcome = await accessList(globals(cmd));
    });

  program
    .command('repair')
    .description(
      "a damaged or missing state.json: put back the last good copy, or rebuild it from the branch sites' folders (holds and dates kept); add back a site the state lost",
    )
    .action(async (_o, cmd: Command) => {
      const { repair } = await import('./commands/repair.js');
      outcome = await repair(globals(cmd));
    });

  program
    .command('doctor')
    .description(
      'check tools and versions, configuration, repositories, databases (staging, production read-only), certificate and disk room',
    )
    .action(async (_o, cmd: Command) => {
      const { doctor } = await import('./commands/doctor.js');
      outcome = await doctor(globals(cmd));
    });

  program
    .command('demo [dir]')
    .description('build a throwaway staging server with a sample app, end to end, on this machine')
    .addOption(
      new Option('--vcs <vcs>', 'the sample repository: git or svn')
        .choices(['git', 'svn'])
        .default('git'),
    )
    .option('--base-port <port>', 'first app port (default: a free one)', positive)
    .option('--stop', 'stop a demo made before (its apps, nginx, PostgreSQL) and remove its folder')
    .action(
      async (
        dir: string | undefined,
        o: { vcs: 'git' | 'svn'; basePort?: number; stop?: boolean },
        cmd: Command,
      ) => {
        const { demo } = await import('./demo/demo.js');
        outcome = await demo({
          ...globals(cmd),
          dir,
          vcs: o.vcs,
          basePort: o.basePort,
          stop: o.stop,
        });
      },
    );

  return program;
}

/**
 * The one top-level handler: prints the command's result as one JSON document
 * with --json, maps errors to exit statuses and prints them once — on stderr
 * for people, and with --json also as the one document on stdout.
 */
export async function main(argv: string[]): Promise<number> {
  // `karlstage status | head`: a reader that went away is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const json = argv.includes('--json');
  const { redact } = await import('./core/redact.js');
  const { jsonText } = await import('./core/printable.js');
  // JSON escapes C0 itself; jsonText also C1 and DEL, so no byte of it can steer a terminal.
  const document = (value: unknown) => process.stdout.write(redact(jsonText(value, 2)) + '\n');
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    if (json) document(outcome ?? { ok: true });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.version' ||
        e.code === 'commander.help'
      )
        return 0;
      // commander has printed the problem already
      if (json) document({ ok: false, exitCode: 2, error: e.message.replace(/^error: /, '') });
      return 2;
    }
    const { isKarlstageError, osError, StepError } = await import('./core/errors.js');
    const { Output } = await import('./core/output.js');
    const noColor = argv.includes('--no-color');
    const out = await Output.create({ color: !noColor }, process.stderr);
    // A full disk or a refused permission is the machine's state, not a bug: one line.
    const known = osError(e) ?? (isKarlstageError(e) ? e : undefined);
    if (known) {
      out.error(known.message, known.details);
      if (json)
        document({
          ok: false,
          exitCode: known.exitCode,
          error: known.message,
          ...(known instanceof StepError ? { step: known.step, command: known.commandLine } : {}),
          details: known.details,
          ...(known.result ?? {}),
        });
      return known.exitCode;
    }
    out.error(`internal error, please report it: ${(e as Error)?.message ?? String(e)}`, [
      String((e as Error)?.stack ?? ''),
    ]);
    if (json)
      document({
        ok: false,
        exitCode: 1,
        error: `internal error: ${(e as Error)?.message ?? String(e)}`,
      });
    return 1;
  }
}
