import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { maskedDsn, parseDsn, withDatabase, type Dsn } from '../core/dsn.js';
import { briefly, KarlstageError, UsageError } from '../core/errors.js';
import { exec } from '../core/command.js';
import { productionEnv, psql, PSQL_FLAGS, quoteLiteral, stagingEnv } from './pg.js';

/**
 * Production is only ever read. Which server a connection reaches is asked of
 * the server itself — the cluster's system identifier (pg_control_system(),
 * readable by any role) and the database's OID — never worked out from how
 * the connection is spelled: hostaddr beside another name, another address of
 * the same machine, a port written differently, a multi-host list, defaults
 * from the environment or a service file all reach the same server.
 *
 * Before a command writes on the staging server, it establishes a guard:
 * staging on a customer's production cluster is refused unless that customer's
 * section says `staging_on_production_server = yes`; then every database the
 * command would create, rename or drop is compared by OID with production's.
 * And every such statement runs behind guard.statement(), which repeats the
 * check in the same session, so a check bypassed at the start cannot turn into
 * a dropped production database later.
 */
export interface Identity {
  /** pg_control_system().system_identifier: the cluster. */
  system: string;
  /** The database's OID on that cluster. */
  oid: string;
  database: string;
}

export interface ProductionServer {
  customer: string;
  /** The configured setting, password masked. */
  setting: string;
  identity?: Identity;
  /** Why it could not be asked. */
  error?: string;
  /** Not asked now: the identity it had when last asked (enough to guard repairs on staging). */
  remembered?: boolean;
  /** The customer's section allows staging on its production cluster. */
  shared: boolean;
}

const WHO = `SELECT c.system_identifier, d.oid, d.datname FROM pg_control_system() c, pg_database d WHERE d.datname = current_database()`;

/** Ask a server who it is, with a connection given as PG* variables. */
export async function askIdentity(
  env: Record<string, string>,
  step: string,
  log?: string,
): Promise<Identity> {
  const r = await exec(
    {
      program: 'psql',
      args: [...PSQL_FLAGS, '-F', ' ', '-c', WHO],
      step,
      env: () => env,
      timeoutMs: 30_000,
    },
    log,
  );
  const [system, oid, database] = r.stdout.trim().split(' ');
  if (!system || !oid || !database)
    throw new KarlstageError(`${step}: the server did not say who it is`);
  return { system, oid, database };
}

/** The staging server's maintenance connection: every create, rename and drop goes through it. */
export const stagingAdmin = (cfg: Config): Dsn =>
  withDatabase(parseDsn(cfg.staging.database), 'postgres');

/** Same database by its spelling alone (localhost = 127.0.0.1 = socket, default port): the fast first check. */
export function spelledAlike(a: Dsn, b: Dsn): boolean {
  const id = (d: Dsn) => {
    const raw = (d.host ?? d.hostaddr ?? '').split(',')[0]!.trim().toLowerCase();
    const local =
      raw === '' ||
      raw.startsWith('/') ||
      ['localhost', '127.0.0.1', '::1', '[::1]', 'localhost.localdomain'].includes(raw);
    const port = (d.port ?? '5432').split(',')[0]!.trim() || '5432';
    const user = d.user ?? process.env.PGUSER ?? process.env.USER ?? '';
    return `${local ? 'local' : raw}:${port}/${d.dbname ?? user}`;
  };
  return id(a) === id(b);
}

export interface GuardOptions {
  log?: string;
  /**
   * A file keeping each production's identity as last asked: on a night a
   * production cannot be asked, the repairs of its staging copies (putting
   * back yesterday's database) are still guarded by what it was.
   */
  memory?: string;
}

type Memory = Record<string, Identity & { at: string }>;

export class ProductionGuard {
  private constructor(
    private readonly cfg: Config,
    readonly staging: Identity,
    readonly productions: ProductionServer[],
    private readonly memory?: string,
  ) {}

  /**
   * Ask the staging server and each customer's production (read-only) who they
   * are. A production that cannot be asked is remembered (unknown()); staging
   * on a production cluster without the customer's written permission is refused.
   */
  static async establish(cfg: Config, opts: GuardOptions = {}): Promise<ProductionGuard> {
    const { log, memory } = opts;
    let staging: Identity;
    try {
      staging = await askIdentity(
        stagingEnv(stagingAdmin(cfg)),
        'ask the staging database server who it is',
        log,
      );
    } catch (e) {
      throw new KarlstageError(
        `cannot tell whether the staging database server is a production server, so nothing is written: ${briefly(e)}`,
      );
    }
    const remembered: Memory = memory
      ? await readFile(memory, 'utf8')
          .then((t) => JSON.parse(t) as Memory)
          .catch(() => ({}))
      : {};
    const productions: ProductionServer[] = [];
    for (const c of cfg.customers) {
      if (!c.production) continue;
      const p: ProductionServer = {
        customer: c.name,
        setting: maskedDsn(c.production),
        shared: c.stagingOnProductionServer,
      };
      try {
        p.identity = await askIdentity(
          productionEnv(parseDsn(c.production)),
          `ask ${c.name}'s production server who it is (read-only)`,
          log,
        );
      } catch (e) {
        p.error = briefly(e);
        const last = remembered[c.name];
        if (last)
          Object.assign(p, {
            identity: { system: last.system, oid: last.oid, database: last.database },
            remembered: true,
          });
      }
      productions.push(p);
    }
    const guard = new ProductionGuard(cfg, staging, productions, memory);
    for (const p of productions)
      if (p.identity?.system === staging.system && !p.shared)
        throw new UsageError(
          `refusing: [staging] database (${maskedDsn(cfg.staging.database)}) and [customer:${p.customer}] production (${p.setting}) reach the same PostgreSQL server (system identifier ${staging.system}); staging must not live on a production server. If this is meant (a small setup), add "staging_on_production_server = yes" to [customer:${p.customer}]`,
        );
    return guard;
  }

  /** Write down the identities just asked (for the nights they cannot be asked). */
  async remember(): Promise<void> {
    if (!this.memory) return;
    const asked = this.productions.filter((p) => p.identity && !p.remembered);
    if (asked.length === 0) return;
    const kept: Memory = await readFile(this.memory, 'utf8')
      .then((t) => JSON.parse(t) as Memory)
      .catch(() => ({}));
    const at = new Date().toISOString();
    for (const p of asked) {
      const { system, oid, database } = p.identity!;
      kept[p.customer] = { system, oid, database, at };
    }
    await writeFileAtomic(this.memory, JSON.stringify(kept, null, 2) + '\n');
  }

  /** Its production was asked now, or when last asked: repairs on staging can be guarded. */
  canRepair(customer: string): boolean {
    const p = this.productions.find((x) => x.customer === customer);
    return !p || Boolean(p.identity);
  }

  /** Why a customer's production server could not be asked now; undefined when it was. */
  unknown(customer: string): string | undefined {
    const p = this.productions.find((x) => x.customer === customer);
    return p?.error
      ? `cannot tell whether the staging server is ${customer}'s production server (${p.error}), so nothing of ${customer}'s is written`
      : undefined;
  }

  /**
   * Before anything runs: none of these databases may be a production database —
   * by spelling (fast), and on a shared cluster by OID, asked of the server.
   */
  async refuseProduction(targets: string[], log?: string): Promise<void> {
    const staging = parseDsn(this.cfg.staging.database);
    for (const c of this.cfg.customers) {
      if (!c.production) continue;
      const production = parseDsn(c.production);
      for (const db of targets)
        if (spelledAlike(withDatabase(staging, db), production))
          throw new UsageError(
            `refusing: the staging database "${db}" would be ${c.name}'s production database ([customer:${c.name}] production = ${maskedDsn(c.production)}): fix [staging] database or that setting`,
          );
    }
    const shared = this.productions.filter((p) => p.identity?.system === this.staging.system);
    if (shared.length === 0 || targets.length === 0) return;
    const r = await psql(
      stagingAdmin(this.cfg),
      `SELECT oid, datname FROM pg_database WHERE datname IN (${targets.map(quoteLiteral).join(', ')})`,
      { step: 'look up the databases it would write', log },
    );
    for (const line of r.stdout.split('\n').filter(Boolean)) {
      const [oid, name] = line.split('|');
      const p = shared.find((x) => x.identity?.oid === oid);
      if (p)
        throw new UsageError(
          `refusing: the staging database "${name}" is ${p.customer}'s production database (OID ${oid} on the cluster ${this.staging.system}); nothing was changed. Give production a name karlstage does not use, or keep staging on another server`,
        );
    }
  }

  /**
   * A statement that fails its session when any of `targets` is a production
   * database (by cluster and OID): run first, in the same session, before each
   * create, rename, drop or session-ending statement.
   */
  statement(targets: string[]): string {
    const known = this.productions.filter((p) => p.identity);
    if (known.length === 0 || targets.length === 0) return '';
    const pairs = known
      .map((p) => `(${p.identity!.system}::bigint, ${p.identity!.oid}::oid)`)
      .join(', ');
    return `DO $karlstage$ DECLARE hit text; BEGIN SELECT d.datname INTO hit FROM pg_database d, pg_control_system() c WHERE d.datname IN (${targets.map(quoteLiteral).join(', ')}) AND (c.system_identifier, d.oid) IN (${pairs}) LIMIT 1; IF hit IS NOT NULL THEN RAISE EXCEPTION 'karlstage refuses to write "%": it is a production database', hit; END IF; END $karlstage$;`;
  }
}

/**
 * What a plan needs of the guard: its verdicts, asked when the guard was established. A plan
 * is built from them without asking any server (unit tests give made-up ones).
 */
export type GuardVerdicts = Pick<
  ProductionGuard,
  'statement' | 'unknown' | 'canRepair' | 'remember'
>;
