import type { Config } from '../config/config.js';
import { parseDsn, withDatabase, type Dsn } from '../core/dsn.js';
import { StepError, UsageError } from '../core/errors.js';
import { run, type RunResult } from '../core/runner.js';
import { stagingAdmin, type ProductionGuard } from './guard.js';
import { goldenName, stagingDatabaseName, twin, withTwins } from './names.js';
import { endSessions, psql, quoteIdent, quoteLiteral, stagingEnv } from './pg.js';

/** The guard's own words when its check stopped a statement: a refusal (exit 2), not a failure. */
function refusal(e: unknown): UsageError | undefined {
  const said =
    e instanceof StepError ? /karlstage refuses to write .*/.exec(e.outputTail)?.[0] : undefined;
  return said ? new UsageError(`${said}; nothing was written`) : undefined;
}

/**
 * The staging database server, as karlstage writes it: the only place where
 * databases are created, renamed, dropped, or have their sessions ended, and
 * each such statement runs behind the production guard's check in the same
 * session. Reads (which databases exist) need no guard.
 */
export class StagingServer {
  readonly admin: Dsn;

  constructor(
    private readonly cfg: Config,
    private readonly guard: ProductionGuard,
    private readonly log?: string,
  ) {
    this.admin = stagingAdmin(cfg);
  }

  /** Another log for the same server (each run has its own). */
  logTo(log: string): StagingServer {
    return new StagingServer(this.cfg, this.guard, log);
  }

  private async write(targets: string[], sql: string[], step: string): Promise<RunResult> {
    try {
      return await psql(this.admin, [this.guard.statement(targets), ...sql], {
        step,
        log: this.log,
      });
    } catch (e) {
      throw refusal(e) ?? e;
    }
  }

  async names(): Promise<Set<string>> {
    const r = await psql(this.admin, 'SELECT datname FROM pg_database', {
      step: 'list the databases',
      log: this.log,
    });
    return new Set(r.stdout.split('\n').filter(Boolean));
  }

  async exists(db: string): Promise<boolean> {
    const r = await psql(
      this.admin,
      `SELECT 1 FROM pg_database WHERE datname = ${quoteLiteral(db)}`,
      { step: `look up ${db}`, log: this.log },
    );
    return r.stdout.trim() === '1';
  }

  /** A new database, empty or a file copy of `template` (whose sessions are ended first). */
  async create(db: string, template?: string, step = `create ${db}`): Promise<void> {
    const targets = template ? [db, template] : [db];
    await this.write(
      targets,
      [
        ...(template ? [endSessions([template])] : []),
        `CREATE DATABASE ${quoteIdent(db)}${template ? ` TEMPLATE ${quoteIdent(template)} STRATEGY FILE_COPY` : ''}`,
      ],
      step,
    );
  }

  /** End its sessions and drop it (if it exists). DROP DATABASE needs its own -c: no transaction. */
  async drop(db: string): Promise<void> {
    await this.write(
      [db],
      [endSessions([db]), `DROP DATABASE IF EXISTS ${quoteIdent(db)}`],
      `drop ${db}`,
    );
  }

  /**
   * The swap: in one transaction (sessions ended first), the live database
   * becomes `outgoing` (when there is one) and `incoming` becomes the live one,
   * so the site never lacks its database.
   */
  async swapIn(
    live: string,
    { incoming, outgoing, liveExists }: { incoming: string; outgoing: string; liveExists: boolean },
    step: string,
  ): Promise<void> {
    const moveOut = liveExists
      ? `ALTER DATABASE ${quoteIdent(live)} RENAME TO ${quoteIdent(outgoing)}; `
      : '';
    await this.write(
      [live, incoming, outgoing],
      [
        `${endSessions([live, incoming])} ${moveOut}ALTER DATABASE ${quoteIdent(incoming)} RENAME TO ${quoteIdent(live)};`,
      ],
      step,
    );
  }

  /** Rename a database (its sessions ended first). */
  async rename(from: string, to: string, step: string): Promise<void> {
    await this.write(
      [from, to],
      [`${endSessions([from])} ALTER DATABASE ${quoteIdent(from)} RENAME TO ${quoteIdent(to)};`],
      step,
    );
  }

  /**
   * Put yesterday's copy (LIVE's old twin) back under the live name. One
   * transaction renames tonight's copy (if any) out of the way and the old one
   * in, so the site never lacks its database; tonight's is then dropped.
   */
  async putBack(live: string): Promise<void> {
    const fresh = twin(live, 'new');
    await this.drop(fresh);
    const liveExists = await this.exists(live);
    await this.swapIn(
      live,
      { incoming: twin(live, 'old'), outgoing: fresh, liveExists },
      `put back yesterday's ${live}`,
    );
    await this.drop(fresh);
  }

  /** Run an SQL file in one transaction in `db`, after the guard's check in the same session. */
  async runFile(db: string, file: string, step: string, timeoutMs: number): Promise<void> {
    const guard = this.guard.statement([db]);
    await run(
      'psql',
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', ...(guard ? ['-c', guard] : []), '-1', '-f', file],
      {
        step,
        log: this.log,
        timeoutMs,
        env: stagingEnv(withDatabase(parseDsn(this.cfg.staging.database), db)),
      },
    );
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
  async createSiteDatabases(branch: string, customers: string[]): Promise<string[]> {
    const made: string[] = [];
    for (const customer of customers) {
      const db = stagingDatabaseName(branch, customer);
      const golden = goldenName(customer);
      for (const leftover of withTwins([db])) await this.drop(leftover);
      await this.create(
        db,
        (await this.exists(golden)) ? golden : undefined,
        `${branch}: create the database of ${customer}`,
      );
      made.push(db);
    }
    return made;
  }

  /** Drop databases and their twins: a killed sync's old copy must not come back in a new site of the same name. */
  async dropWithTwins(names: string[]): Promise<void> {
    for (const db of withTwins(names)) await this.drop(db);
  }
}
