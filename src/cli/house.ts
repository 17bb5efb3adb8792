import { Command, Option } from 'commander';
import { globals, positive, type Done } from './options.js';

/** Looking after the staging root itself: repair, doctor, the demo. */
export function registerHouse(program: Command, done: Done): void {
  program
    .command('repair')
    .description(
      "a damaged or missing state.json: put back the last good copy, or rebuild it from the branch sites' folders (holds and dates kept); add back a site the state lost",
    )
    .action(async (_o, cmd: Command) => {
      const { repair } = await import('../commands/repair.js');
      done(await repair(globals(cmd)));
    });

  program
    .command('doctor')
    .description(
      'check tools and versions, configuration, repositories, databases (staging, production read-only), certificate and disk room',
    )
    .action(async (_o, cmd: Command) => {
      const { doctor } = await import('../commands/doctor.js');
      done(await doctor(globals(cmd)));
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
        const { demo } = await import('../demo/demo.js');
        done(
          await demo({
            ...globals(cmd),
            dir,
            vcs: o.vcs,
            basePort: o.basePort,
            stop: o.stop,
          }),
        );
      },
    );
}
