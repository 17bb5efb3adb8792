import type { Config } from '../config/config.js';
import type { Command, Procedure } from '../core/command.js';
import { parseDsn, withDatabase } from '../core/dsn.js';
import { StepError, UsageError } from '../core/errors.js';
import { stagingAdmin, type GuardVerdicts } from './guard.js';
import { goldenName, stagingDatabaseName, twin, withTwins } from './names.js';
import { endSessions, PSQL_FLAGS, quoteIdent, quoteLiteral, stagingEnv } from './pg.js';

/** SQL printing which of these databases exist, one name a line. */
const existing = (names: string[]) =>
  `SELECT datname FROM pg_database WHERE datname IN (${names.map(quoteLiteral).join(', ')})`;

/** The guard's own words when its check stopped a statement: a refusal (exit 2), not a failure. */
function refusal(e: StepError): Error | undefined {
  const said = /karlstage refuses to write .*/.exec(e.outputTail)?.[0];
  return said ? new UsageError(`${said}; nothing was written`) : undefined;
}

/**
 * The staging database server, as karlstage writes it: the only place where
 * statements that create, rename or drop databases (or end their sessions) are
 * made, each as a command whose first statement is the production guard's
 * check, in the same session. The commands are values: a plan declares them,
 * a dry run shows them, a run executes them.
 */
export class StagingServer {
  constructor(
    private readonly cfg: Config,
    private readonly guard: Pick<GuardVerdicts, 'statement'>,
  ) {}

  /** psql on the maintenance database: the statements in order, in one session; the first error stops it. */
  private psql(statements: string[], step: string, more: Partial<Command> = {}): Command {
    return {
      program: 'psql',
      args: [...PSQL_FLAGS, ...statements.filter(Boolean).flatMap((s) => ['-c', s])],
      step,
      env: () => stagingEnv(stagingAdmin(this.cfg)),
      timeoutMs: 10 * 60_000,
      explain: refusal,
      ...more,
    };
  }

  /**
   * A write, in one session: the guard's check and `checked` in one transaction (one round
   * trip, and nothing of `checked` runs when the check fails), then each of `alone` on its own
   * (CREATE and DROP DATABASE cannot run in a transaction). Every round trip counts when the
   * server is another machine (bench/remote-db.mjs): statements are joined where they may be.
   */
  private write(
    w: { targets: string[]; checked: string; alone?: string[] },
    step: string,
    more: Partial<Command> = {},
  ) {
    const first = [this.guard.statement(w.targets), w.checked].filter(Boolean).join(' ');
    return this.psql([first, ...(w.alone ?? [])], step, more);
  }

  /** Which of these databases exist (a read: one name per line). */
  lookUp(names: string[], step = 'look up the databases'): Command {
    return this.psql([existing(names)], step);
  }

  /**
   * `command` (psql on the maintenance database) that first looks up which of `names` exist,
   * printing each that does on a line of its own: one session, where two would cost a
   * connection more (some five round trips) on a server elsewhere.
   */
  lookingUp(names: string[], command: Command): Command {
    const flags = PSQL_FLAGS.length;
    return {
      ...command,
      args: [...command.args.slice(0, flags), '-c', existing(names), ...command.args.slice(flags)],
    };
  }

  /** A new database, empty or a file copy of `template` (whose sessions are ended first). */
  create(db: string, template?: string, step = `create ${db}`, when?: string): Command {
    return this.write(
      {
        targets: template ? [db, template] : [db],
        checked: template ? endSessions([template]) : '',
        alone: [
          `CREATE DATABASE ${quoteIdent(db)}${template ? ` TEMPLATE ${quoteIdent(template)} STRATEGY FILE_COPY` : ''}`,
        ],
      },
      step,
      when ? { when } : {},
    );
  }

  /** End its sessions and drop it if it exists (DROP DATABASE needs its own -c: no transaction). */
  drop(db: string, when?: string): Command {
    return this.dropAll([db], when);
  }

  /** End the sessions of these databases and drop those that exist, in one session. */
  private dropAll(dbs: string[], when?: string): Command {
    return this.write(
      {
        targets: dbs,
        checked: endSessions(dbs),
        alone: dbs.map((db) => `DROP DATABASE IF EXISTS ${quoteIdent(db)}`),
      },
      `drop ${dbs.join(', ')}`,
      when ? { when } : {},
    );
  }

  /**
   * The swap, in one transaction (sessions ended first): the live database, if
   * there is one, becomes `outgoing`, and `incoming` becomes the live one — so
   * the site never lacks its database.
   */
  swapIn(
    { live, incoming, outgoing }: { live: string; incoming: string; outgoing: string },
    step: string,
    when?: string,
  ): Command {
    const rename = (a: string, b: string) =>
      `EXECUTE ${quoteLiteral(`ALTER DATABASE ${quoteIdent(a)} RENAME TO ${quoteIdent(b)}`)};`;
    return this.write(
      {
        targets: [live, incoming, outgoing],
        checked: `${endSessions([live, incoming])} DO $swap$ BEGIN IF EXISTS (SELECT 1 FROM pg_database WHERE datname = ${quoteLiteral(live)}) THEN ${rename(live, outgoing)} END IF; ${rename(incoming, live)} END $swap$;`,
      },
      step,
      when ? { when } : {},
    );
  }

  /** Rename a database (its sessions ended first). */
  rename(from: string, to: string, step: string, when?: string): Command {
    return this.write(
      {
        targets: [from, to],
        checked: `${endSessions([from])} ALTER DATABASE ${quoteIdent(from)} RENAME TO ${quoteIdent(to)};`,
      },
      step,
      when ? { when } : {},
    );
  }

  /**
   * Put yesterday's copy (LIVE__old) back under the live name: tonight's copy,
   * if any, is swapped out to LIVE__new and dropped. Three writes, each with
   * its own check, in one session.
   */
  putBack(live: string, when?: string): Command[] {
    const fresh = twin(live, 'new');
    const [drop, swap] = [
      this.drop(fresh, when),
      this.swapIn(
        { live, incoming: twin(live, 'old'), outgoing: fresh },
        `put back yesterday's ${live}`,
        when,
      ),
    ];
    return [this.together([drop, swap, drop], swap.step)];
  }

  /** Several of its commands in one session, in order; the first error stops it. */
  together(commands: Command[], step: string): Command {
    const flags = PSQL_FLAGS.length;
    return {
      ...commands[0]!,
      step,
      args: [...PSQL_FLAGS, ...commands.flatMap((c) => c.args.slice(flags))],
    };
  }

  /** Run an SQL file in one transaction in `db`, after the guard's check in the same session. */
  runFile(db: string, file: string, step: string, timeoutMs: number): Command {
    const guard = this.guard.statement([db]);
    return {
      program: 'psql',
      args: [
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        ...(guard ? ['-c', guard] : []),
        '-1',
        '-f',
        file,
      ],
      step,
      env: () => this.envFor(db),
      timeoutMs,
      explain: refusal,
    };
  }

  /** The connection to one of its databases, as PG* variables (for pg_restore). */
  envFor(db: string): Record<string, string> {
    return stagingEnv(withDatabase(parseDsn(this.cfg.staging.database), db));
  }

  /**
   * A new branch site's databases, one per customer: a copy of the golden copy
   * when there is one, else empty. Leftovers of that name (an interrupted
   * create, or with their twins a destroyed site of the same name) go first.
   */
  siteDatabases(branch: string, customers: string[]): Procedure<string[]> {
    if (customers.length === 0) return { commands: [], run: async () => [] as string[] };
    const goldens = customers.map(goldenName);
    // Leftovers dropped in one session, which first looks up the golden copies.
    const drops = this.lookingUp(
      goldens,
      this.dropAll(withTwins(customers.map((c) => stagingDatabaseName(branch, c)))),
    );
    const per = customers.map((customer) => {
      const db = stagingDatabaseName(branch, customer);
      const golden = goldenName(customer);
      return {
        customer,
        db,
        copy: this.create(db, golden, `${branch}: copy ${golden}`, 'when that golden copy exists'),
        empty: this.create(
          db,
          undefined,
          `${branch}: create ${db}`,
          'when there is no golden copy yet',
        ),
      };
    });
    return {
      commands: [drops, ...per.flatMap((p) => [p.copy, p.empty])],
      run: async (run: (c: Command) => Promise<{ stdout: string }>) => {
        const have = new Set((await run(drops)).stdout.split('\n').filter(Boolean));
        for (const p of per) await run(have.has(goldenName(p.customer)) ? p.copy : p.empty);
        return per.map((p) => p.db);
      },
    };
  }

  /** Drop databases and their twins: a killed sync's old copy must not come back in a new site of the same name. */
  dropWithTwins(names: string[]): Command[] {
    return names.length ? [this.dropAll(withTwins(names))] : [];
  }
}
