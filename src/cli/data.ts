import { customersOf, type CommandSpec } from './spec.js';

/** The commands of the nightly data: sync, reset, hold. */
export const DATA_COMMANDS: CommandSpec[] = [
  {
    use: 'sync [branches...]',
    about:
      'production → staging data: dump once per customer (read-only), golden copy, clone into each branch site, swap by rename',
    options: [
      [
        '--customers <list>',
        'comma-separated customers (default: every one with a production setting)',
      ],
      ['--nightly', 'every branch site not held (what cron runs)'],
    ],
    run: async ({ args: [branches], o, g }) =>
      (await import('../commands/sync.js')).sync({
        ...g,
        branches: branches as string[],
        nightly: o.nightly,
        customers: await customersOf(o),
      }),
  },
  {
    use: 'reset <branch>',
    about:
      "fresh data for a branch site now, from each customer's golden copy (last night's sanitized copy; production is not read)",
    options: [['--customers <list>', 'comma-separated customers (default: every one it serves)']],
    run: async ({ args: [branch], o, g }) =>
      (await import('../commands/reset.js')).reset({
        ...g,
        branch: branch as string,
        customers: await customersOf(o),
      }),
  },
  {
    use: 'hold <branch>',
    about:
      'hold a branch site out of the nightly sync (someone is testing on its data); --release ends that',
    options: [
      ['--release', 'take part in the nightly sync again'],
      ['--reason <text>', 'why, for the others'],
    ],
    run: async ({ args: [branch], o, g }) =>
      (await import('../commands/sync.js')).hold({ ...g, branch: branch as string, ...o }),
  },
];
