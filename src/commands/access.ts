import { configuredCustomer } from '../config/config.js';
import { publishSteps } from '../context/after-change.js';
import { commandContext, type CommandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs } from '../context/report.js';
import { UsageError } from '../core/errors.js';
import type { Plan, Step, StepContext } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { LOCKS, withLocks } from '../model/locks.js';
import { readState } from '../model/state.js';
import { branchViews } from '../model/views.js';
import {
  checkUserName,
  fastHash,
  generatePassword,
  hashCommand,
  hashPassword,
  readUsers,
  writeUsers,
  type AccessUser,
} from '../publish/access.js';
import { renderRoutes } from '../publish/routes.js';

export interface AccessAddOptions extends GlobalOptions {
  user: string;
  customers?: string[];
  /** The password, read from standard input (--password-stdin); else one is made and printed once. */
  password?: string;
}

/**
 * Routes that would be refused after the change (a locked host left without
 * users, no certificate configured) refuse the change itself, before anything
 * is written: exit 2 means nothing changed. With [staging] routes = manual the
 * routes are not installed by this command, and nothing is asked.
 */
async function refuseUnpublishable(ctx: CommandContext, users: AccessUser[]): Promise<void> {
  const { cfg } = ctx;
  if (cfg.staging.routes !== 'auto') return;
  await renderRoutes(cfg, await branchViews(cfg, await readState(cfg.root)), users);
}

/**
 * A change of the users, then what shows them: the site lists and (with [staging] routes =
 * auto) the routes, as steps of the same job. Passwords count at once (nginx reads its file on
 * every request); scopes live in the routes.
 */
async function userPlan(
  ctx: CommandContext,
  change: { command: string; name: string; users: AccessUser[]; steps: Step[] },
): Promise<Plan> {
  const { command, name, users, steps } = change;
  const publish = await publishSteps(ctx, { routes: true, mail: false, users });
  return { command, jobs: [{ name, steps: [...steps, ...publish] }] };
}

/** Carry out a change of the users under the access lock (and the routes lock: it installs them). */
async function change<T>(ctx: CommandContext, plan: Plan, what: string, then: () => T): Promise<T> {
  const { cfg, out, options } = ctx;
  const routes = cfg.staging.routes === 'auto';
  return withLocks(
    cfg.root,
    routes ? [LOCKS.access, LOCKS.routes] : [LOCKS.access],
    { command: plan.command, waitSeconds: options.wait ?? 30 },
    async () => {
      finishJobs(ctx, await carryOut(ctx, plan), what, {});
      if (!routes)
        out.warn('[staging] routes = manual: run "karlstage routes" for the scopes to take effect');
      return then();
    },
  );
}

/** Add a user who may open the TLS host, for every customer or only some. */
export async function accessAdd(opts: AccessAddOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  const name = checkUserName(opts.user);
  for (const c of opts.customers ?? [])
    configuredCustomer(cfg, c, '--customers names configured customers');
  const users = await readUsers(cfg.root);
  if (users.some((u) => u.name === name))
    throw new UsageError(
      `user "${name}" exists already: "karlstage access remove ${name}" first to change them`,
    );
  const made = opts.password === undefined;
  const password = opts.password ?? generatePassword();
  // A generated password: a fast hash; a chosen one: a slow one, made by a step of the plan
  // (hashCommand checks the password first: empty, line breaks, before anything).
  const hashing = made ? undefined : hashCommand(password);
  const user: AccessUser = {
    name,
    customers: opts.customers?.length ? [...new Set(opts.customers)].sort() : '*',
    // Until the step has made it, a stand-in of the same kind (the routes tell slow from fast).
    hash: made ? fastHash(password) : '$6$',
    added: new Date().toISOString(),
  };
  const scope = user.customers === '*' ? 'every customer' : user.customers.join(', ');
  await refuseUnpublishable(ctx, [...users, user]);
  const plan = await userPlan(ctx, {
    command: `access add ${name}`,
    name,
    users: [...users, user],
    steps: [
      ...(hashing
        ? [
            {
              title: 'hash the password (sha512-crypt)',
              commands: [hashing],
              readOnly: true,
              run: async (ctx: StepContext) => {
                user.hash = await hashPassword(hashing, ctx.exec);
              },
            },
          ]
        : []),
      {
        title: `let ${name} in (${scope})`,
        effects: [
          `write ${layout.accessUsers(cfg.root)} (its hash only)`,
          `write ${layout.accessHtpasswd(cfg.root)}`,
        ],
        run: () => writeUsers(cfg, [...users, user]),
      },
    ],
  });
  if (options.dryRun) return dryRun(ctx, plan);
  return change(ctx, plan, 'access add', () => {
    out.line(`${name} may open https://${cfg.staging.host}/ (${scope})`);
    // Printed once, never stored: only the hash is kept.
    if (made) out.line(`password for ${name}: ${password}   (shown once; keep it somewhere safe)`);
    return { user: name, customers: user.customers, ...(made ? { password } : {}) };
  });
}

export async function accessRemove(opts: GlobalOptions & { user: string }) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  const name = checkUserName(opts.user);
  const users = await readUsers(cfg.root);
  if (!users.some((u) => u.name === name))
    throw new UsageError(`there is no user "${name}": "karlstage access list" lists them`);
  const rest = users.filter((u) => u.name !== name);
  if (rest.length === 0 && !cfg.access.public && cfg.staging.routes === 'auto')
    throw new UsageError(
      `${name} is the last user of the locked TLS host, whose routes would then let no one in: add another user first ("karlstage access add NAME"), or write [access] public = yes in ${cfg.file}`,
    );
  await refuseUnpublishable(ctx, rest);
  const plan = await userPlan(ctx, {
    command: `access remove ${name}`,
    name,
    users: rest,
    steps: [
      {
        title: `shut ${name} out`,
        effects: [
          `write ${layout.accessUsers(cfg.root)}`,
          `write ${layout.accessHtpasswd(cfg.root)}`,
        ],
        run: () => writeUsers(cfg, rest),
      },
    ],
  });
  if (options.dryRun) return dryRun(ctx, plan);
  return change(ctx, plan, 'access remove', () => {
    out.line(`${name} may no longer open https://${cfg.staging.host}/`);
    return { user: name, removed: true };
  });
}

/** Who may open the TLS host, and which customers: never a hash or a password. */
export async function accessList(opts: GlobalOptions) {
  const { cfg, out } = await commandContext(opts);
  const users = (await readUsers(cfg.root)).map((u) => ({
    name: u.name,
    customers: u.customers,
    added: u.added,
  }));
  const state = cfg.access.public
    ? 'public: anyone may open it ([access] public = yes)'
    : users.length
      ? `locked: ${users.length} user${users.length > 1 ? 's' : ''}`
      : 'locked, and no users yet: "karlstage access add NAME" adds one';
  out.line(`https://${cfg.staging.host}/ is ${state}`);
  if (cfg.access.allow.length)
    out.line(`let in without a password: ${cfg.access.allow.join(', ')}`);
  for (const u of users)
    out.line(
      `  ${u.name.padEnd(20)} ${u.customers === '*' ? 'every customer' : u.customers.join(', ')}`,
    );
  return { public: cfg.access.public, allow: cfg.access.allow, users };
}
