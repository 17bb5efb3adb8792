import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { exec, type Command, type Exec } from '../core/command.js';
import {
  asFailure,
  isKarlstageError,
  KarlstageError,
  StepError,
  UsageError,
} from '../core/errors.js';
import type { Plan, Step } from '../core/plan.js';
import { renderTemplate } from '../core/templates.js';
import { layout } from '../model/layout.js';
import { makeMaildir } from '../model/maildir.js';
import type { Mailboxes } from '../model/mailboxes.js';
import type { BranchView } from '../model/views.js';

/**
 * Staged mail on the staging host's postfix, which karlstage configures whole:
 * - mail-in: CUSTOMER.mail_domain goes to `karlstage:BRANCH` (its mail branch),
 *   whose pipe runs "karlstage deliver" into BRANCH/<maildir>/CUSTOMER;
 * - mail-out: the testers of [staging] testers go out (smtp, or [mail] relay),
 *   every other address — any domain, bounces, root@ — is caught (`*` in the
 *   transport map: it outranks every address class, so nothing slips past)
 *   into a catch-all Maildir.
 * The maps live in .karlstage/mail/, postfix's main.cf and master.cf in [mail] postfix.
 */
export interface MailRoute {
  customer: string;
  branch: string;
  domain: string;
}

const MARKER = '# karlstage: written by "karlstage mail --install"';
export const transportFile = (root: string) => join(layout.mail(root), 'transport');
export const relayDomainsFile = (root: string) => join(layout.mail(root), 'relay_domains');
const bin = fileURLToPath(new URL('../../bin/karlstage.js', import.meta.url));

/** The node and the launcher postfix's pipe and cron start: this installation's. */
export interface Programs {
  node: string;
  karlstage: string;
}
export const ourPrograms = (): Programs => ({ node: process.execPath, karlstage: bin });

/** The mail routes that are live: the mail branch exists and serves the customer. */
export function mailRoutes(cfg: Config, views: BranchView[]): MailRoute[] {
  if (!cfg.staging.mailDomain) return [];
  return cfg.customers.flatMap((c) => {
    const view = views.find((v) => v.site.name === c.mailBranch);
    return view && view.customers.includes(c.name)
      ? [
          {
            customer: c.name,
            branch: view.site.name,
            domain: `${c.name}.${cfg.staging.mailDomain}`,
          },
        ]
      : [];
  });
}

/** The customer's staged mail-in Maildir in a branch site. */
export const maildirOf = (cfg: Config, branch: string, customer: string) =>
  join(layout.branch(cfg.root, branch), cfg.deployment.maildir, customer);

/** Who mail-out reaches: the testers, and the people karlstage itself tells of failures ([notify] mail). */
export const mailOutTo = (cfg: Config): string[] => [
  ...new Set([...cfg.staging.testers, ...cfg.notify.mail]),
];

export function renderTransport(cfg: Config, routes: MailRoute[]): string {
  const domain = cfg.staging.mailDomain;
  const lines = [
    '# karlstage: where postfix sends each message. Generated: "karlstage mail CUSTOMER BRANCH"',
    '# moves a customer, [staging] testers names the testers.',
  ];
  for (const c of cfg.customers) {
    if (!domain) break;
    const r = routes.find((x) => x.customer === c.name);
    lines.push(
      r
        ? `${r.domain}\tkarlstage:${r.branch}`
        : `${c.name}.${domain}\terror:5.1.1 no branch site takes ${c.name}'s staged mail (its mail branch ${c.mailBranch} does not serve it)`,
    );
  }
  if (domain) lines.push(`.${domain}\terror:5.1.1 no such customer on this staging server`);
  const out = cfg.mail.relay ? `smtp:${cfg.mail.relay}` : 'smtp:';
  for (const a of mailOutTo(cfg)) lines.push(`${a}\t${out}`);
  lines.push('*\tkarlcatch:caught');
  return lines.join('\n') + '\n';
}

export function renderMailboxes(cfg: Config, views: BranchView[]): Mailboxes {
  return {
    version: 1,
    root: cfg.root,
    ...(cfg.staging.mailDomain ? { domain: cfg.staging.mailDomain } : {}),
    customers: Object.fromEntries(
      mailRoutes(cfg, views).map((r) => [
        r.customer,
        { branch: r.branch, maildir: maildirOf(cfg, r.branch, r.customer) },
      ]),
    ),
    caught: layout.caught(cfg.root),
  };
}

const postmapProgram = () => ['/usr/sbin/postmap', '/usr/bin/postmap'].find((p) => existsSync(p));

/** The staged mail domains postfix takes mail for from anyone. */
export function renderRelayDomains(cfg: Config): string {
  const domains = cfg.staging.mailDomain
    ? cfg.customers.map((c) => `${c.name}.${cfg.staging.mailDomain}\tok\n`).join('')
    : '';
  return `# karlstage: the staged mail domains postfix takes from anyone.\n${domains}`;
}

/** postmap of each map (its database for postfix); none where postfix is not installed. */
export function postmapCommands(cfg: Config): Command[] {
  const postmap = postmapProgram();
  return postmap
    ? [relayDomainsFile(cfg.root), transportFile(cfg.root)].map((map) => ({
        program: postmap,
        args: [`hash:${map}`],
        step: 'postmap',
        timeoutMs: 30_000,
      }))
    : [];
}

/** Write the maps and mailboxes.json and, where postfix is installed, the maps' postmap databases. */
export async function writeTransport(
  cfg: Config,
  views: BranchView[],
  run: Exec,
): Promise<{ file: string; postmapped: boolean }> {
  const file = transportFile(cfg.root);
  await mkdir(dirname(file), { recursive: true, mode: 0o755 });
  await writeFileAtomic(relayDomainsFile(cfg.root), renderRelayDomains(cfg), { mode: 0o644 });
  await writeFileAtomic(file, renderTransport(cfg, mailRoutes(cfg, views)), { mode: 0o644 });
  await writeFileAtomic(
    layout.mailboxes(cfg.root),
    JSON.stringify(renderMailboxes(cfg, views), null, 2) + '\n',
    { mode: 0o644 },
  );
  const postmaps = postmapCommands(cfg);
  for (const c of postmaps) await run(c);
  return { file, postmapped: postmaps.length > 0 };
}

/** main.cf and master.cf as karlstage writes them. */
export async function renderPostfix(cfg: Config): Promise<{ main: string; master: string }> {
  return postfixText(cfg, ourPrograms());
}

/** main.cf and master.cf as a function of the configuration and the programs the pipe starts. */
export async function postfixText(
  cfg: Config,
  programs: Programs,
): Promise<{ main: string; master: string }> {
  for (const [what, path] of [
    ['node', programs.node],
    ['karlstage', programs.karlstage],
    ['the staging root', cfg.root],
  ] as const)
    if (/\s/.test(path))
      throw new UsageError(
        `${what} is at ${path}: postfix's master.cf cannot name a path with white space; move it`,
      );
  const { address, port } = cfg.mail.listen;
  const view = {
    config: cfg.file,
    domain: cfg.staging.mailDomain ?? '(no [staging] mail_domain)',
    queueDirectory: cfg.mail.queueDirectory,
    dataDirectory: cfg.mail.dataDirectory,
    log: cfg.mail.log,
    logFolder: cfg.mail.log && dirname(cfg.mail.log),
    hostname: cfg.staging.host,
    interfaces: address ?? 'all',
    protocols: address ? (address.includes(':') ? 'ipv6' : 'ipv4') : 'all',
    relayDomains: relayDomainsFile(cfg.root),
    transport: transportFile(cfg.root),
    listen: address ? `${address.includes(':') ? `[${address}]` : address}:${port}` : String(port),
    user: cfg.mail.user,
    node: programs.node,
    bin: programs.karlstage,
    mailboxes: layout.mailboxes(cfg.root),
  };
  return {
    main: await renderTemplate('postfix-main.cf', view),
    master: await renderTemplate('postfix-master.cf', view),
  };
}

/** Is [mail] postfix a configuration karlstage installed (for this karlstage.ini)? */
export async function postfixInstalled(cfg: Config): Promise<boolean> {
  const text = await readFile(join(cfg.mail.postfix, 'main.cf'), 'utf8').catch(() => '');
  return text.startsWith(`${MARKER} for ${cfg.file}\n`);
}

const postfixProgram = () =>
  ['/usr/sbin/postfix', '/usr/bin/postfix'].find((p) => existsSync(p)) ?? 'postfix';

const cmd = (step: string, program: string, args: string[], more: Partial<Command> = {}) =>
  ({ program, args, step, timeoutMs: 60_000, ...more }) satisfies Command;

/**
 * postfix prints a fatal error only to a terminal: run the same check under
 * script(1) to have its words (the folder comes in the environment, the command is constant).
 */
const checkWords = (dir: string) =>
  cmd(
    'postfix check (its words)',
    'script',
    ['-qec', 'postfix -c "$KS_POSTFIX" check', '/dev/null'],
    {
      env: () => ({ KS_POSTFIX: dir }),
    },
  );

/** Asks a user's uid (-u) or gid (-g); refused naming the key that names the user. */
const idCommand = (user: string, flag: '-u' | '-g', key: string) =>
  cmd(`id ${flag} ${user}`, 'id', [flag, '--', user], {
    explain: () =>
      new UsageError(
        `${key} = ${user}: there is no such user here; name one that exists (or make it: adduser --system ${user})`,
      ),
  });

/** What maildirUsers asks: the mail user's uid and gid, the cron user's gid. */
export const maildirUserCommands = (cfg: Config) => ({
  uid: idCommand(cfg.mail.user, '-u', '[mail] user'),
  gid: idCommand(cfg.mail.user, '-g', '[mail] user'),
  group: idCommand(cfg.cron.user, '-g', '[cron] user'),
});

/** Every folder above a Maildir must let the mail user through, or every delivery would be deferred. */
async function reachable(dir: string, who: { uid: number; gid: number }, user: string) {
  for (let d = dirname(dir); ; d = dirname(d)) {
    const s = await stat(d);
    const through =
      s.uid === who.uid ? s.mode & 0o100 : s.gid === who.gid ? s.mode & 0o010 : s.mode & 0o001;
    if (!through && who.uid !== 0)
      throw new UsageError(
        `postfix delivers as ${user}, who cannot enter ${d} (mode ${(s.mode & 0o777).toString(8)}): chmod o+x ${d}, or set [mail] user to one who can`,
      );
    if (dirname(d) === d) return;
  }
}

/**
 * Who owns the Maildirs; refuses (exit 2) a [mail] or [cron] user that does not exist here.
 * `run` runs maildirUserCommands: a step's ctx.exec, or exec for a read outside a plan.
 */
export async function maildirUsers(cfg: Config, run: Exec = exec) {
  const c = maildirUserCommands(cfg);
  const id = async (command: Command) => Number((await run(command)).stdout.trim());
  return {
    uid: await id(c.uid),
    gid: await id(c.gid),
    // Mail-in runs as the cron user: the Maildir's group, so it may read and move the messages.
    group: await id(c.group),
  };
}

/** The Maildirs of every live route and the catch-all, owned by the mail user (maildirUsers). */
export async function makeMaildirs(
  cfg: Config,
  views: BranchView[],
  users: Awaited<ReturnType<typeof maildirUsers>>,
): Promise<void> {
  const { group, ...who } = users;
  // From the staging root down, as "deliver" walks: a branch site folder replaced by a link is
  // refused here too.
  const places = [
    ...mailRoutes(cfg, views).map((r) => maildirOf(cfg, r.branch, r.customer)),
    layout.caught(cfg.root),
  ];
  // Only root can give it away; otherwise it stays as it is (made before, by root).
  const owner = process.getuid?.() === 0 ? { uid: who.uid, gid: group } : undefined;
  for (const dir of places) {
    await makeMaildir(cfg.root, dir, owner);
    await reachable(dir, who, cfg.mail.user);
  }
}

/** Wait until postfix greets on [mail] listen (an SMTP 220), or say why not. */
async function greeting(cfg: Config, timeoutMs = 15_000): Promise<void> {
  const host = cfg.mail.listen.address ?? '127.0.0.1';
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await new Promise<string>((done) => {
      const s = connect({ host, port: cfg.mail.listen.port });
      const end = (why: string) => {
        s.destroy();
        done(why);
      };
      s.setTimeout(3000, () => end('no greeting within 3 s'));
      s.once('data', (d) => end(d.toString().split('\r\n')[0] ?? ''));
      s.once('error', (e) => end(e.message));
    });
    // Our postfix names itself with myhostname (the staging host).
    if (last.startsWith(`220 ${cfg.staging.host} `)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new KarlstageError(
    `postfix does not answer on ${host}:${cfg.mail.listen.port} (${last})${cfg.mail.log ? `: see ${cfg.mail.log}` : ''}`,
  );
}

/** Postfix reads main.cf again until it is older than a second: written files are dated back. */
const settle = async (...files: string[]) => {
  const past = new Date(Date.now() - 60_000);
  for (const f of files) if (existsSync(f)) await utimes(f, past, past);
};

/** [mail] postfix holds another's configuration, or postfix is missing: refused (exit 2). */
async function refuseForeignPostfix(cfg: Config): Promise<void> {
  const dir = cfg.mail.postfix;
  const old = await readFile(join(dir, 'main.cf'), 'utf8').catch(() => undefined);
  if (old !== undefined && !old.startsWith(MARKER))
    throw new UsageError(
      `${dir}/main.cf was not written by karlstage: move it aside, or set [mail] postfix to an empty folder`,
    );
  if (old !== undefined && !(await postfixInstalled(cfg)))
    throw new UsageError(
      `${dir}/main.cf was written for another karlstage.ini (${old.split('\n')[0]?.replace(/.* for /, '')}): one staging root per postfix`,
    );
  if (!postmapProgram()) throw new UsageError('postfix is not installed: apt-get install postfix');
}

/**
 * "mail --install": the maps and Maildirs, then main.cf and master.cf written
 * beside the installed ones and checked there (postconf, postfix check) — a
 * broken main.cf in place would break the running postfix — then swapped in
 * and postfix reloaded (or started), and asked for its greeting. Anything
 * refused or failing puts the old files back.
 */
export function installPlan(cfg: Config, views: BranchView[], command: string): Plan {
  const dir = cfg.mail.postfix;
  const stage = `${dir}.karlstage-new`;
  const postfix = postfixProgram();
  const postconfCheck = cmd('postconf -n', 'postconf', ['-c', stage, '-n']);
  const check = cmd('postfix check', postfix, ['-c', stage, 'check']);
  const status = cmd('postfix status', postfix, ['-c', dir, 'status'], { okExitCodes: [1] });
  const reload = cmd('postfix reload', postfix, ['-c', dir, 'reload']);
  const start = cmd('postfix start', postfix, ['-c', dir, 'start']);
  const stop = cmd('postfix stop', postfix, ['-c', dir, 'stop'], { okExitCodes: [1] });
  const ids = maildirUserCommands(cfg);
  const files = ['main.cf', 'master.cf'];
  let rendered: { main: string; master: string } | undefined;
  let users: Awaited<ReturnType<typeof maildirUsers>> | undefined;
  const steps: Step[] = [
    {
      title: `check ${dir} and the users of the Maildirs`,
      commands: [ids.uid, ids.gid, ids.group],
      readOnly: true,
      run: async (ctx) => {
        await refuseForeignPostfix(cfg);
        rendered = await renderPostfix(cfg);
        users = await maildirUsers(cfg, ctx.exec); // refused before anything is written
      },
    },
    {
      title: 'write the mail maps and Maildirs',
      commands: postmapCommands(cfg),
      effects: [
        `write ${transportFile(cfg.root)}, ${relayDomainsFile(cfg.root)} and ${layout.mailboxes(cfg.root)}`,
        `make each mail branch's ${cfg.deployment.maildir}/CUSTOMER and ${layout.caught(cfg.root)} (owned by ${cfg.mail.user})`,
      ],
      run: async (ctx) => {
        await writeTransport(cfg, views, ctx.exec);
        // The maps are written: from here a refusal is a failure (exit 2 means nothing changed).
        await makeMaildirs(cfg, views, users!).catch((e: unknown) => {
          throw isKarlstageError(e) ? asFailure(e) : e;
        });
      },
    },
    {
      title: `check the new configuration (${stage})`,
      commands: [postconfCheck, check, { ...checkWords(stage), when: 'when the check fails' }],
      effects: [`write ${stage}/main.cf and master.cf, removed afterwards if refused`],
      run: async (ctx) => {
        await rm(stage, { recursive: true, force: true });
        await mkdir(stage, { recursive: true, mode: 0o755 });
        ctx.onUndo(() => rm(stage, { recursive: true, force: true }));
        await writeFileAtomic(join(stage, 'main.cf'), rendered!.main, { mode: 0o644 });
        await writeFileAtomic(join(stage, 'master.cf'), rendered!.master, { mode: 0o644 });
        await settle(...files.map((f) => join(stage, f)));
        if (cfg.mail.log) await mkdir(dirname(cfg.mail.log), { recursive: true });
        await mkdir(cfg.mail.queueDirectory, { recursive: true, mode: 0o755 });
        await ctx.exec(postconfCheck);
        try {
          await ctx.exec(check);
        } catch (e) {
          const words = await ctx.exec(checkWords(stage)).then(
            () => '',
            (w: StepError) => w.outputTail,
          );
          if (e instanceof StepError && words.trim())
            throw new StepError({
              step: e.step,
              commandLine: e.commandLine,
              outputTail: words,
              reason: 'postfix refused the new configuration',
            });
          throw e;
        }
      },
    },
    {
      title: `install it in ${dir} and reload postfix`,
      commands: [
        status,
        { ...reload, when: 'when postfix runs' },
        { ...start, when: 'when postfix is not running' },
        status,
        { ...reload, when: 'when it does not take the new files: with the old ones' },
        { ...stop, when: 'when it does not take the new files and was not running' },
      ],
      effects: [
        `rename ${stage}/main.cf and master.cf into ${dir} (the old ones kept as *.karlstage-old)`,
      ],
      run: async (ctx) => {
        await mkdir(dir, { recursive: true, mode: 0o755 });
        const running = (await ctx.exec(status)).exitCode === 0;
        const kept: string[] = [];
        for (const f of files)
          if (existsSync(join(dir, f))) {
            await copyFile(join(dir, f), join(dir, `${f}.karlstage-old`));
            kept.push(f);
          }
        try {
          for (const f of files) await rename(join(stage, f), join(dir, f));
          await rm(stage, { recursive: true, force: true });
          await settle(...files.map((f) => join(dir, f)));
          await ctx.exec(running ? reload : start);
          // Ours that answers: another mail server on the port would greet too.
          if ((await ctx.exec(status)).exitCode !== 0)
            throw new KarlstageError('postfix is not running after the reload');
          await greeting(cfg);
        } catch (e) {
          for (const f of files)
            if (kept.includes(f)) await rename(join(dir, `${f}.karlstage-old`), join(dir, f));
            else await rm(join(dir, f), { force: true });
          await settle(...files.map((f) => join(dir, f)));
          // Back as it was: reloaded with the old files, or stopped if it was not running.
          if (running) await ctx.exec(reload).catch(() => undefined);
          else await ctx.exec(stop).catch(() => undefined);
          const why = e instanceof Error ? e.message : String(e);
          throw new KarlstageError(
            `postfix did not take the new configuration: ${why}; the old one is back`,
            1,
            e instanceof KarlstageError ? e.details : [],
          );
        }
      },
    },
  ];
  return { command, jobs: [{ name: 'postfix', steps }] };
}

/** Bringing the staged mail up to date: the commands a step declares, and how it runs them. */
export interface MailRefresh {
  commands: Command[];
  effects: string[];
  run(views: BranchView[], run: Exec): Promise<{ file: string; postmapped: boolean }>;
}

/**
 * After the sites changed: new maps, Maildirs for new routes, and postfix told (when karlstage
 * installed it: read now, as a fact of the plan). Undefined when this staging root has no
 * staged mail.
 */
export async function mailRefresh(cfg: Config): Promise<MailRefresh | undefined> {
  const installed = await postfixInstalled(cfg);
  if (!installed && !cfg.staging.mailDomain) return undefined;
  const postfix = postfixProgram();
  const ids = maildirUserCommands(cfg);
  const status = cmd('postfix status', postfix, ['-c', cfg.mail.postfix, 'status'], {
    okExitCodes: [1],
  });
  const reload = cmd('postfix reload', postfix, ['-c', cfg.mail.postfix, 'reload'], {
    when: 'when postfix runs',
  });
  return {
    commands: [
      ...postmapCommands(cfg),
      ...(installed ? [ids.uid, ids.gid, ids.group, status, reload] : []),
    ],
    effects: [
      `write ${transportFile(cfg.root)}, ${relayDomainsFile(cfg.root)} and ${layout.mailboxes(cfg.root)}`,
      ...(installed ? ['make the Maildirs of new mail routes (owned by [mail] user)'] : []),
    ],
    run: async (views, run) => {
      const written = await writeTransport(cfg, views, run);
      if (!installed) return written;
      await makeMaildirs(cfg, views, await maildirUsers(cfg, run));
      // The maps changed: trivial-rewrite must read them again before the next message.
      if ((await run(status)).exitCode === 0) await run(reload);
      return written;
    },
  };
}

/** doctor's word on staged mail: installed, current, running — or what to do. */
export async function mailHealth(
  cfg: Config,
): Promise<string | { level: 'warn' | 'fail'; detail: string }> {
  if (!(await postfixInstalled(cfg)))
    return cfg.staging.mailDomain
      ? {
          level: 'warn',
          detail: `${cfg.mail.postfix} is not karlstage's: staged mail-in is not delivered and mail-out is not caught; "karlstage mail --install" sets postfix up`,
        }
      : 'not used (no [staging] mail_domain, postfix not installed by karlstage)';
  const { main, master } = await renderPostfix(cfg);
  const installedText = async (f: string) =>
    readFile(join(cfg.mail.postfix, f), 'utf8').catch(() => '');
  if ((await installedText('main.cf')) !== main || (await installedText('master.cf')) !== master)
    return {
      level: 'warn',
      detail: `${cfg.mail.postfix} is out of date with ${cfg.file}: "karlstage mail --install"`,
    };
  const running = await exec(
    cmd('postfix status', postfixProgram(), ['-c', cfg.mail.postfix, 'status'], {
      okExitCodes: [1],
    }),
  );
  if (running.exitCode !== 0)
    return {
      level: 'fail',
      detail: `postfix (${cfg.mail.postfix}) is not running: staged mail is refused; "karlstage mail --install" starts it`,
    };
  return `postfix (${cfg.mail.postfix}) runs, up to date, taking mail on ${cfg.mail.listen.address ?? '*'}:${cfg.mail.listen.port}`;
}
