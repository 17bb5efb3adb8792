import { Command, Option } from 'commander';
import { globals, type Done } from './options.js';

/** What karlstage publishes for people and programs: status, the site list, routes, access, mail, cron, notifications. */
export function registerPublish(program: Command, done: Done): void {
  program
    .command('cron')
    .description(
      'print the crontab lines (poll --build, nightly sync); --install writes [cron] file',
    )
    .option('--install', 'write them to [cron] file (default /etc/cron.d/karlstage)')
    .action(async (o: { install?: boolean }, cmd: Command) => {
      const { cron } = await import('../commands/cron.js');
      done(await cron({ ...globals(cmd), install: o.install }));
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
      const { status } = await import('../commands/status.js');
      done(await status({ ...globals(cmd), disk: o.disk }));
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
      const { sites } = await import('../commands/sites.js');
      done(await sites({ ...globals(cmd), format: o.format, output: o.output }));
    });

  program
    .command('notify')
    .description('send a test message to [notify] webhook and mail (--test)')
    .option('--test', 'send a test message')
    .action(async (o: { test?: boolean }, cmd: Command) => {
      const { notifyTest } = await import('../commands/notify.js');
      done(await notifyTest({ ...globals(cmd), test: o.test }));
    });

  program
    .command('routes')
    .description(
      'write the nginx configuration for the one TLS host, check it (nginx -t), install it, reload',
    )
    .action(async (_o, cmd: Command) => {
      const { routes } = await import('../commands/routes.js');
      done(await routes(globals(cmd)));
    });
}

/** Staged mail and who may open the TLS host. */
export function registerMailAndAccess(program: Command, done: Done): void {
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
        const { mail } = await import('../commands/mail.js');
        done(await mail({ ...globals(cmd), customer, branch, ...o }));
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
        const { deliver, readStdin } = await import('../commands/deliver.js');
        const { UsageError } = await import('../core/errors.js');
        if (o.caught ? second !== undefined : second === undefined)
          throw new UsageError(
            'usage: deliver --mailboxes FILE BRANCH RECIPIENT, or deliver --mailboxes FILE --caught RECIPIENT',
          );
        done(
          await deliver({
            mailboxes: o.mailboxes,
            caught: o.caught,
            branch: o.caught ? undefined : first,
            recipient: second ?? first,
            message: readStdin,
          }),
        );
      },
    );

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
        const { parseCustomerList } = await import('../config/names.js');
        const { accessAdd } = await import('../commands/access.js');
        let password: string | undefined;
        if (o.passwordStdin) {
          const { readFileSync } = await import('node:fs');
          password = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
        }
        done(
          await accessAdd({
            ...globals(cmd),
            user,
            customers: o.customers === undefined ? undefined : parseCustomerList(o.customers),
            password,
          }),
        );
      },
    );
  access
    .command('remove <user>')
    .description('shut a user out')
    .action(async (user: string, _o, cmd: Command) => {
      const { accessRemove } = await import('../commands/access.js');
      done(await accessRemove({ ...globals(cmd), user }));
    });
  access
    .command('list')
    .description('the users and their customers (never a hash or password), the allow list')
    .action(async (_o, cmd: Command) => {
      const { accessList } = await import('../commands/access.js');
      done(await accessList(globals(cmd)));
    });
}
