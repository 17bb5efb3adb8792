import type { SiteAction } from '../branches/lifecycle.js';
import { count, customersOf, oneOf, type CommandSpec } from './spec.js';

type Name = string;
type Names = string[];

/** The commands that make, change and remove branch sites. */
export const BRANCH_COMMANDS: CommandSpec[] = [
  {
    use: 'init [dir]',
    about: 'write a commented karlstage.ini (flags fill it in)',
    options: [
      ['--host <host>', 'the one TLS host, e.g. karltest.example.com'],
      oneOf('--vcs <vcs>', 'svn or git', ['svn', 'git']),
      ['--url <url>', 'svn: repository root; git: clone URL'],
      ['--skeleton <location>', 'the deployment skeleton: local folder or git URL'],
      ['--default-ref <ref>', 'ref of a new branch site when none is given'],
      ['--database <dsn>', 'where staging databases live (libpq keywords or URL)'],
      count('--base-port <port>', 'first app port (branch N listens on base + N)'),
      ['--force', 'overwrite an existing karlstage.ini'],
    ],
    run: async ({ args: [dir], o, g }) =>
      (await import('../commands/init.js')).init({ ...g, dir: dir as Name | undefined, ...o }),
  },
  {
    use: 'create <branch>',
    about: 'make a branch site: skeleton, source at REF, instances.ini, build, start',
    options: [
      [
        '-r, --ref <ref>',
        'git branch/tag/commit, or svn trunk, branches/X, tags/X or a URL (default: [source] default)',
      ],
      ['--customers <list>', 'comma-separated customers (default: every [customer:NAME])'],
    ],
    run: async ({ args: [branch], o, g }) =>
      (await import('../commands/create.js')).create({
        ...g,
        branch: branch as Name,
        ref: o.ref,
        customers: await customersOf(o),
      }),
  },
  {
    use: 'switch <branch> <ref>',
    about: "switch a branch site's source to another ref, then build, migrate, restart",
    options: [['-f, --force', 'discard local changes in the working copy']],
    run: async ({ args: [branch, ref], o, g }) =>
      (await import('../commands/switch.js')).switchBranch({
        ...g,
        branch: branch as Name,
        ref: ref as Name,
        force: o.force,
      }),
  },
  {
    use: 'update [branches...]',
    about: 'update source, build, migrate, restart; skipped when that revision is already built',
    options: [
      ['-a, --all', 'every branch site'],
      ['-f, --force', 'build even when already built; discard local changes'],
      count('-j, --jobs <n>', 'branch sites at once (default: [staging] jobs)'),
    ],
    run: async ({ args: [branches], o, g }) =>
      (await import('../commands/update.js')).update({ ...g, branches: branches as Names, ...o }),
  },
  {
    use: 'poll [branches...]',
    about: 'ask upstream which branch sites are behind (no fetch); --build updates exactly those',
    options: [
      ['-b, --build', 'update the branch sites that are behind'],
      count('-j, --jobs <n>', 'branch sites built at once (default: [staging] jobs)'),
    ],
    run: async ({ args: [branches], o, g }) =>
      (await import('../commands/poll.js')).poll({ ...g, branches: branches as Names, ...o }),
  },
  {
    use: 'prune',
    about:
      'list the stale branch sites (ref gone upstream, or not updated for stale_after days); --yes removes them',
    options: [['-y, --yes', 'really remove them (never a held site or a mail branch)']],
    run: async ({ o, g }) => (await import('../commands/prune.js')).prune({ ...g, yes: o.yes }),
  },
  {
    use: 'destroy <branch>',
    about: 'stop the app and remove the branch site',
    options: [['-y, --yes', 'really remove it']],
    run: async ({ args: [branch], o, g }) =>
      (await import('../commands/destroy.js')).destroy({
        ...g,
        branch: branch as Name,
        yes: o.yes,
      }),
  },
];

const ACTIONS: [SiteAction, string][] = [
  ['start', "run the deployment's start command, and wait until the app answers"],
  ['stop', "run the deployment's stop command; the site stays stopped until start"],
  [
    'restart',
    "run the deployment's restart command (or stop and start), and wait until it answers",
  ],
  ['sleep', 'stop an idle site now; the first logged-in visitor wakes it'],
];

/** Keeping branch sites up: start, stop, restart, sleep, watch, and the wake service. */
export const RUN_CONTROL_COMMANDS: CommandSpec[] = [
  ...ACTIONS.map(([action, what]): CommandSpec => ({
    use: `${action} [branches...]`,
    about: `${what} (under each site's lock)`,
    options: [
      ['-a, --all', 'every branch site'],
      count('-j, --jobs <n>', 'branch sites at once (default: [staging] jobs)'),
    ],
    run: async ({ args: [branches], o, g }) =>
      (await import('../commands/run-control.js')).runControl(action, {
        ...g,
        branches: branches as Names,
        ...o,
      }),
  })),
  {
    use: 'watch',
    about:
      'cron, every minute: start again what should run and does not answer (with backoff), put idle sites to sleep, keep the wake service up',
    options: [
      [
        '--boot',
        'after a reboot (@reboot): start every site that was running, and the wake service',
      ],
      count('-j, --jobs <n>', 'sites started at once (default: [staging] jobs)'),
    ],
    run: async ({ o, g }) => (await import('../commands/watch.js')).watch({ ...g, ...o }),
  },
  {
    use: 'wake-service',
    hidden: true,
    about: 'the wake service nginx asks for a site that does not answer (watch starts it)',
    run: async ({ g }) => (await import('../commands/wake-service.js')).wakeService(g),
  },
];
