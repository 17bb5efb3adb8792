import { Option } from 'commander';
import { count, type CommandSpec } from './spec.js';

/** Looking after the staging root itself: repair, doctor, the demo. */
export const HOUSE_COMMANDS: CommandSpec[] = [
  {
    use: 'repair',
    about:
      "a damaged or missing state.json: put back the last good copy, or rebuild it from the branch sites' folders (holds and dates kept); add back a site the state lost",
    run: async ({ g }) => (await import('../commands/repair.js')).repair(g),
  },
  {
    use: 'doctor',
    about:
      "check tools and versions, configuration, repositories, databases (staging, production read-only), certificate, disk room, and whether each site's app answers",
    run: async ({ g }) => (await import('../commands/doctor.js')).doctor(g),
  },
  {
    use: 'demo [dir]',
    about: 'build a throwaway staging server with a sample app, end to end, on this machine',
    options: [
      new Option('--vcs <vcs>', 'the sample repository: git or svn')
        .choices(['git', 'svn'])
        .default('git'),
      count('--base-port <port>', 'first app port (default: a free one)'),
      ['--stop', 'stop a demo made before (its apps, nginx, PostgreSQL) and remove its folder'],
    ],
    run: async ({ args: [dir], o, g }) =>
      (await import('../demo/demo.js')).demo({
        ...g,
        dir: dir as string | undefined,
        vcs: o.vcs,
        basePort: o.basePort,
        stop: o.stop,
      }),
  },
];
