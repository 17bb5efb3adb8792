import { Command, CommanderError, Option } from 'commander';
import { BRANCH_COMMANDS, RUN_CONTROL_COMMANDS } from './cli/branches.js';
import { DATA_COMMANDS } from './cli/data.js';
import { HOUSE_COMMANDS } from './cli/house.js';
import { seconds, type Done } from './cli/options.js';
import { ACCESS_COMMANDS, MAIL_COMMANDS, PUBLISH_COMMANDS } from './cli/publish.js';
import { register } from './cli/spec.js';
import { printable } from './core/printable.js';

/**
 * The commander program. Each action only turns flags into a typed options
 * object and calls the command function, imported lazily so that --help and
 * status start fast. Errors are handled once, in main().
 */
/** The running command's result: printed as the one JSON document with --json. */
let outcome: unknown;

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
  const done: Done = (result) => {
    outcome = result;
  };
  for (const group of [
    BRANCH_COMMANDS,
    RUN_CONTROL_COMMANDS,
    DATA_COMMANDS,
    PUBLISH_COMMANDS,
    MAIL_COMMANDS,
  ])
    register(program, group, done);
  const access = program
    .command('access')
    .description('who may open the one TLS host: users (all customers, or some), hashes only');
  register(access, ACCESS_COMMANDS, done);
  register(program, HOUSE_COMMANDS, done);
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
