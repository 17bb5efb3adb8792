import { Command } from 'commander';
import { globals, type Done } from './options.js';

/** The commands of the nightly data: sync, reset, hold. */
export function registerData(program: Command, done: Done): void {
  program
    .command('reset <branch>')
    .description(
      "fresh data for a branch site now, from each customer's golden copy (last night's sanitized copy; production is not read)",
    )
    .option('--customers <list>', 'comma-separated customers (default: every one it serves)')
    .action(async (branch: string, o: { customers?: string }, cmd: Command) => {
      const { parseCustomerList } = await import('../config/names.js');
      const { reset } = await import('../commands/reset.js');
      done(
        await reset({
          ...globals(cmd),
          branch,
          customers: o.customers === undefined ? undefined : parseCustomerList(o.customers),
        }),
      );
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
        const { parseCustomerList } = await import('../config/names.js');
        const { sync } = await import('../commands/sync.js');
        done(
          await sync({
            ...globals(cmd),
            branches,
            nightly: o.nightly,
            customers: o.customers === undefined ? undefined : parseCustomerList(o.customers),
          }),
        );
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
      const { hold } = await import('../commands/sync.js');
      done(await hold({ ...globals(cmd), branch, ...o }));
    });
}
