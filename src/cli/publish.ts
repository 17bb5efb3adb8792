import { Option } from 'commander';
import { customersOf, type CommandSpec } from './spec.js';

/** What karlstage publishes for people and programs: status, the site list, routes, cron, notifications. */
export const PUBLISH_COMMANDS: CommandSpec[] = [
  {
    use: 'status',
    about:
      'one line per branch site: state, ref, revision, upstream, last update, last sync, port, customers, mail; then the data each holds per customer',
    options: [
      [
        '--disk',
        "disk use instead: each site's own and shared, each staging database, the dumps, free space",
      ],
    ],
    run: async ({ o, g }) => (await import('../commands/status.js')).status({ ...g, disk: o.disk }),
  },
  {
    use: 'sites',
    about: 'the site list the customer reads: html, json or text (also kept in .karlstage/sites/)',
    options: [
      new Option('--format <format>', 'html, json or text')
        .choices(['html', 'json', 'text'])
        .default('text'),
      ['-o, --output <file>', 'write it to this file (atomically) instead of stdout'],
    ],
    run: async ({ o, g }) =>
      (await import('../commands/sites.js')).sites({ ...g, format: o.format, output: o.output }),
  },
  {
    use: 'routes',
    about:
      'write the nginx configuration for the one TLS host, check it (nginx -t), install it, reload',
    run: async ({ g }) => (await import('../commands/routes.js')).routes(g),
  },
  {
    use: 'cron',
    about:
      'print the crontab lines (poll --build, nightly sync, mail-in, watch, @reboot); --install writes [cron] file',
    options: [['--install', 'write them to [cron] file (default /etc/cron.d/karlstage)']],
    run: async ({ o, g }) =>
      (await import('../commands/cron.js')).cron({ ...g, install: o.install }),
  },
  {
    use: 'notify',
    about: 'send a test message to [notify] webhook and mail (--test)',
    options: [['--test', 'send a test message']],
    run: async ({ o, g }) =>
      (await import('../commands/notify.js')).notifyTest({ ...g, test: o.test }),
  },
];

/** Staged mail. */
export const MAIL_COMMANDS: CommandSpec[] = [
  {
    use: 'mail [customer] [branch]',
    about:
      "move a customer's staged mail-in to another branch site; without them, show the postfix configuration",
    options: [
      ['--install', "write postfix's configuration, check it, start or reload postfix"],
      ['--caught', 'list the mail the branch sites sent that was kept, not sent'],
    ],
    run: async ({ args: [customer, branch], o, g }) =>
      (await import('../commands/mail.js')).mail({
        ...g,
        customer: customer as string | undefined,
        branch: branch as string | undefined,
        ...o,
      }),
  },
  {
    use: 'deliver <branch-or-recipient> [recipient]',
    about:
      "postfix's pipe transport: the message on stdin into the branch site's Maildir (exit 67 bounces, 75 defers)",
    options: [
      new Option('--mailboxes <file>', 'the mailboxes.json karlstage wrote').makeOptionMandatory(),
      ['--caught', 'keep it in the catch-all Maildir (mail-out to anyone but a tester)'],
    ],
    run: async ({ args: [first, second], o }) => {
      const { deliver, readStdin } = await import('../commands/deliver.js');
      if (o.caught ? second !== undefined : second === undefined) {
        const { UsageError } = await import('../core/errors.js');
        throw new UsageError(
          'usage: deliver --mailboxes FILE BRANCH RECIPIENT, or deliver --mailboxes FILE --caught RECIPIENT',
        );
      }
      return deliver({
        mailboxes: o.mailboxes,
        caught: o.caught,
        branch: o.caught ? undefined : (first as string),
        recipient: (second ?? first) as string,
        message: readStdin,
      });
    },
  },
];

/** Who may open the TLS host: `karlstage access add|remove|list`. */
export const ACCESS_COMMANDS: CommandSpec[] = [
  {
    use: 'add <user>',
    about:
      'let a user in; without --password-stdin a strong password is made and shown once (checked fast)',
    options: [
      ['--customers <list>', 'only these customers (default: every one)'],
      [
        '--password-stdin',
        'read the password from standard input (a chosen password: a slow hash, limited per address)',
      ],
    ],
    run: async ({ args: [user], o, g }) => {
      const { readFileSync } = await import('node:fs');
      return (await import('../commands/access.js')).accessAdd({
        ...g,
        user: user as string,
        customers: await customersOf(o),
        password: o.passwordStdin ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : undefined,
      });
    },
  },
  {
    use: 'remove <user>',
    about: 'shut a user out',
    run: async ({ args: [user], g }) =>
      (await import('../commands/access.js')).accessRemove({ ...g, user: user as string }),
  },
  {
    use: 'list',
    about: 'the users and their customers (never a hash or password), the allow list',
    run: async ({ g }) => (await import('../commands/access.js')).accessList(g),
  },
];
