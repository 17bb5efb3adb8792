import { constants, existsSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { access, readFile, statfs } from 'node:fs/promises';
import { isRemoteLocation } from '../config/config.js';
import { briefly, KarlstageError, UsageError } from '../core/errors.js';
import { parseDsn, withDatabase } from '../core/dsn.js';
import { askIdentity, type Identity } from '../db/guard.js';
import { productionEnv, psql, serverVersion, stagingEnv, toolMajor } from '../db/pg.js';
import { newestMatch } from '../sync/backups.js';
import { databaseSizes, dumpsOf, freeBytes, mb } from '../sync/disk.js';
import { startTime } from '../core/children.js';
import { listLocks, liveHolder } from '../core/lock.js';
import { layout } from '../model/layout.js';
import { LOCKS, lockRoom } from '../model/locks.js';
import { readMarkers } from '../model/marker.js';
import { listPending } from '../model/pending.js';
import { siteRuns } from '../model/site-state.js';
import { siteCustomers, sourceProblem } from '../model/sites.js';
import { readState, type State } from '../model/state.js';
import { exec } from '../core/command.js';
import { sourceVcs } from '../vcs/open.js';
import { isFastHash, openToEveryone, readUsers } from '../publish/access.js';
import { LOGIN_LIMIT } from '../publish/routes.js';
import { askWorkerPid, workerOf, workerProblem } from '../publish/workers.js';
import { mailHealth } from '../publish/mail.js';
import { GitVcs } from '../vcs/git.js';
import { direct } from '../vcs/vcs.js';
import type { Config } from '../config/config.js';
import { commandContext, outputFor, type GlobalOptions } from '../context/context.js';
import type { Output } from '../core/output.js';
import { withResult } from '../context/report.js';

export interface Check {
  name: string;
  level: 'ok' | 'warn' | 'fail';
  detail: string;
}

const GB = 1024 ** 3;

/** The programs karlstage runs, and how each says its version. */
const TOOLS = [
  ['git', ['--version']],
  ['svn', ['--version', '--quiet']],
  ['psql', ['--version']],
  ['pg_dump', ['--version']],
  ['rsync', ['--version']],
  ['nginx', ['-v']],
  ['openssl', ['version']],
] as const;

/** 150004 → "15.4". */
const versionText = (v: number) => `${Math.floor(v / 10000)}.${v % 10000}`;

async function version(cmd: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await exec({
    program: cmd,
    args,
    step: `${cmd} version`,
    timeoutMs: 10_000,
  });
  return (stdout || stderr).trim().split('\n')[0] ?? '';
}

function report(out: Output, checks: Check[]): void {
  const mark = { ok: out.c.green('ok  '), warn: out.c.yellow('warn'), fail: out.c.red('FAIL') };
  const width = Math.max(...checks.map((c) => c.name.length));
  for (const c of checks) out.line(`${mark[c.level]}  ${c.name.padEnd(width)}  ${c.detail}`);
}

/** Checks tools and versions, the configuration, the repositories, and disk room. Read-only. */
export async function doctor(opts: GlobalOptions & { minFreeGb?: number }) {
  // A configuration with problems is reported in full, and the tools are still checked.
  let cfg: Config | undefined;
  let refused: UsageError | undefined;
  try {
    cfg = (await commandContext(opts)).cfg;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    refused = e;
  }
  const out = await outputFor(opts);
  const checks: Check[] = [];
  const check = async (
    name: string,
    fn: () => Promise<string | { level: Check['level']; detail: string }>,
    missing: Check['level'] = 'fail',
  ) => {
    try {
      const r = await fn();
      checks.push(typeof r === 'string' ? { name, level: 'ok', detail: r } : { name, ...r });
    } catch (e) {
      checks.push({ name, level: missing, detail: briefly(e).split('\n')[0] ?? '' });
    }
  };

  await check('node', async () => {
    const major = Number(process.versions.node.split('.')[0]);
    if (major < 20)
      throw new Error(`node ${process.versions.node} is too old: karlstage needs node 20 or later`);
    return `node ${process.versions.node}`;
  });
  if (refused)
    for (const problem of refused.details.length ? refused.details : [refused.message])
      checks.push({ name: 'configuration', level: 'fail', detail: problem });
  else
    await check(
      'configuration',
      async () => `${cfg!.file}: ${cfg!.customers.length} customer(s), ${cfg!.source.vcs} source`,
    );
  if (!cfg) {
    for (const [tool, args] of TOOLS) await check(tool, () => version(tool, [...args]), 'warn');
    report(out, checks);
    throw withResult(refused!, { ok: false, checks });
  }
  // State is read once, by every check that needs it (a damaged state.json fails each of them).
  let stateRead: Promise<State> | undefined;
  const d: Doctor = {
    cfg,
    opts,
    check,
    checks,
    root: cfg.root,
    state: () => (stateRead ??= readState(cfg.root)),
  };
  for (const group of [
    toolChecks,
    siteChecks,
    hostChecks,
    databaseChecks,
    publishChecks,
    appChecks,
  ])
    await group(d);
  const result = { ok: checks.every((c) => c.level !== 'fail'), checks };
  report(out, checks);
  const failed = checks.filter((c) => c.level === 'fail');
  if (failed.length)
    throw withResult(
      new KarlstageError(
        `doctor: ${failed.length} check(s) failed: ${failed.map((c) => c.name).join(', ')}`,
      ),
      result,
    );
  return result;
}

/** What every group of checks works with. */
interface Doctor {
  cfg: Config;
  opts: GlobalOptions & { minFreeGb?: number };
  check: (
    name: string,
    fn: () => Promise<string | { level: Check['level']; detail: string }>,
    missing?: Check['level'],
  ) => Promise<void>;
  checks: Check[];
  root: string;
  state: () => Promise<State>;
}

/** The programs karlstage runs, with their versions. */
async function toolChecks(d: Doctor): Promise<void> {
  const { cfg, check } = d;
  // What this configuration cannot do without: a failure; the others a warning.
  const needed = {
    git: cfg.source.vcs === 'git' || isRemoteLocation(cfg.deployment.skeleton),
    svn: cfg.source.vcs === 'svn',
  } as Record<string, boolean>;
  for (const [tool, args] of TOOLS)
    await check(tool, () => version(tool, [...args]), needed[tool] ? 'fail' : 'warn');
}

/** The state, changes left half-done, each branch site's folder, stuck locks. */
async function siteChecks(d: Doctor): Promise<void> {
  const { cfg, check, checks, state, root } = d;
  await check('state', async () => {
    const known = (await state()).branches;
    const found = `${Object.keys(known).length} branch site(s)`;
    // Folders that say they are branch sites, unknown to the state: no routes, no updates.
    const lost = (await readMarkers(root)).filter((m) => !known[m.name]).map((m) => m.name);
    return lost.length
      ? {
          level: 'warn',
          detail: `${found}; state.json lacks ${lost.join(', ')}, whose folder says it is one: "karlstage repair" adds it`,
        }
      : found;
  });
  // A change left half-done (its run gone), or a marker that cannot be read: the next run redoes it.
  for (const [branch, p] of Object.entries(await listPending(root))) {
    if (!p.damaged && p.start && startTime(p.pid) === p.start) continue; // under way
    const known = Boolean((await state().catch(() => undefined))?.branches[branch]);
    const again =
      p.op === 'destroy'
        ? `destroy ${branch} --yes`
        : known
          ? `update ${branch}`
          : `create ${branch}`;
    checks.push({
      name: `pending ${branch}`,
      level: 'warn',
      detail: `${p.damaged ?? `a ${p.op} of ${p.started} was interrupted`}: the next "karlstage ${again}" finishes it`,
    });
  }
  // Each branch site: broken (folder or instances.ini, the one line every command says), or its source removed by hand.
  for (const b of Object.values((await state().catch(() => ({ branches: {} }))).branches))
    await check(`site ${b.name}`, async () => {
      const instances = await siteCustomers(root, b.name);
      const source = sourceProblem(root, b.name, cfg.source.path);
      if (source) throw new Error(source);
      const text = `serves ${instances.map((i) => i.name).join(', ')}`;
      const escaped = instances.flatMap((i) => i.percentEscapes.map((k) => `${k} of ${i.name}`));
      if (escaped.length)
        return {
          level: 'warn',
          detail: `${text}; "%%" in ${escaped.join(', ')} is "%" to Python 3 but stays "%%" for a Python 2 karlserve (docs/configuration.md)`,
        };
      return text;
    });
  // Locks whose holder cannot be alive: harmless (the next run takes them over), but worth knowing.
  for (const lock of await listLocks(lockRoom(cfg.root)))
    if (lock.dead)
      checks.push({
        name: `lock ${lock.name}`,
        level: 'warn',
        detail: `stuck: ${lock.dead}${lock.owner ? ` (held for "${lock.owner.command}" since ${lock.owner.since})` : ''}; the next run takes it over`,
      });
}

/** The staging root, disk room, ports, the skeleton, the source and its store. */
async function hostChecks(d: Doctor): Promise<void> {
  const { cfg, opts, check, state } = d;
  await check('staging root', async () => {
    await access(cfg.root, constants.W_OK);
    return `${cfg.root} is writable`;
  });
  await check('disk', async () => {
    const s = await statfs(cfg.root);
    const free = (s.bavail * s.bsize) / GB;
    const text = `${free.toFixed(1)} GB free in ${cfg.root}`;
    if (free < (opts.minFreeGb ?? 5))
      return {
        level: 'warn',
        detail: `${text}: each branch site needs room for a build and its data`,
      };
    return text;
  });
  await check('ports', async () => {
    // An app's port inside the kernel's ephemeral range can be taken by any outgoing connection.
    const [low = 32768, high = 60999] = (
      await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768 60999')
    )
      .trim()
      .split(/\s+/)
      .map(Number);
    const ports = Object.values((await state()).branches).map((b) => b.port);
    const top = Math.max(cfg.staging.basePort + 1, ...ports);
    const text = `branch sites use ports ${cfg.staging.basePort + 1}–${top}; the kernel's ephemeral ports are ${low}–${high}`;
    if (top >= low && cfg.staging.basePort + 1 <= high)
      return {
        level: 'warn',
        detail: `${text}: they overlap, so an outgoing connection can take a site's port; set [staging] base_port lower`,
      };
    return text;
  });
  await check('room for the sync', async () => {
    // About what the next nightly sync writes: each customer's newest dump again, and the
    // golden copies (each new golden copy is made before yesterday's is dropped).
    const dumps = await dumpsOf(cfg);
    const goldens = ((await databaseSizes(cfg)) ?? []).filter((d) =>
      d.name.startsWith('ks__golden_'),
    );
    const need =
      dumps.reduce((a, d) => a + d.newestBytes, 0) + goldens.reduce((a, d) => a + d.bytes, 0);
    const free = await freeBytes(cfg.sync.dumps).catch(() => freeBytes(cfg.root));
    const text = `${mb(free)} free for the dumps; the next sync needs about ${mb(need)} (the newest dumps and the golden copies)`;
    if (dumps.length === 0) return 'no dumps yet: nothing to compare';
    return free < need
      ? { level: 'warn', detail: `${text}: make room, or the sync stops before its dump` }
      : text;
  });
  await check('skeleton', async () => {
    const s = cfg.deployment.skeleton;
    if (!isRemoteLocation(s)) {
      if (!existsSync(s)) throw new Error(`${s} does not exist`);
      return `${s} (local folder)`;
    }
    const git = new GitVcs({
      url: s.replace(/^git\+/, ''),
      timeoutMs: cfg.source.timeout * 1000,
      retries: 0,
    });
    await git.reachable();
    return `${s} is reachable`;
  });
  await check('source', async () => {
    const vcs = await sourceVcs({ source: { ...cfg.source, retries: 0 } });
    await vcs.checkRef(cfg.source.default);
    return `${vcs.describeRef(cfg.source.default)} exists`;
  });
  if (cfg.source.vcs === 'git')
    // The object store every git site shares: whole, and how big (made by the first create).
    await check(
      'git store',
      async () => {
        const store = layout.gitStore(cfg.root);
        const git = new GitVcs({
          url: cfg.source.url,
          timeoutMs: cfg.source.timeout * 1000,
          retries: 0,
          store,
        });
        const size = await git.storeCheck().run(direct());
        return `${store}: whole (fsck), ${size} of packed objects`;
      },
      Object.keys((await state().catch(() => ({ branches: {} }))).branches).length
        ? 'fail'
        : 'warn',
    );
}

/** The staging database server and each production, asked read-only. */
async function databaseChecks(d: Doctor): Promise<void> {
  const { cfg, check } = d;
  let stagingId: Identity | undefined;
  if (cfg.staging.database)
    await check(
      'staging db',
      async () => {
        const admin = withDatabase(parseDsn(cfg.staging.database), 'postgres');
        const v = await serverVersion(stagingEnv(admin), 'connect to the staging database server');
        stagingId = await askIdentity(stagingEnv(admin), 'ask the staging server who it is');
        if (v < 150000)
          throw new Error(
            `PostgreSQL ${versionText(v)}: the staging server needs 15 or later (clones use STRATEGY FILE_COPY)`,
          );
        const may = await psql(
          admin,
          'SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user',
          { step: 'look up the privileges' },
        );
        if (may.stdout.trim() !== 't')
          throw new Error(
            `PostgreSQL ${versionText(v)}, but this user may not create databases: ALTER ROLE … CREATEDB`,
          );
        return `PostgreSQL ${versionText(v)}, may create databases; cluster ${stagingId.system}`;
      },
      cfg.staging.manageDatabases ? 'fail' : 'warn',
    );
  for (const c of cfg.customers) {
    if (c.production)
      await check(
        `production ${c.name}`,
        async () => {
          const env = productionEnv(parseDsn(c.production!));
          const v = await serverVersion(
            env,
            `connect to ${c.name}'s production database (read-only)`,
          );
          const id = await askIdentity(env, `ask ${c.name}'s production server who it is`);
          const where = `cluster ${id.system}, database ${id.database} (OID ${id.oid})`;
          if (id.system === stagingId?.system) {
            // The same server as staging: the guard refuses every write unless the operator allowed it.
            if (!c.stagingOnProductionServer)
              return {
                level: 'fail',
                detail: `${where}: the SAME cluster as the staging server; karlstage refuses to write there unless [customer:${c.name}] says staging_on_production_server = yes`,
              };
          }
          const dumpMajor = await toolMajor('pg_dump');
          if (Math.floor(v / 10000) > dumpMajor)
            throw new Error(
              `PostgreSQL ${versionText(v)} is newer than pg_dump ${dumpMajor}: install the client tools of ${Math.floor(v / 10000)}`,
            );
          const shared =
            id.system === stagingId?.system
              ? 'same cluster as staging (allowed: staging_on_production_server = yes)'
              : stagingId
                ? 'not the staging cluster'
                : 'the staging cluster could not be asked';
          return `PostgreSQL ${versionText(v)}, reachable read-only; pg_dump ${dumpMajor} can dump it; ${where}, ${shared}`;
          // A warning: the sites work without it; only the nightly sync of this customer would fail.
        },
        'warn',
      );
    else if (c.productionDump)
      await check(
        `backup ${c.name}`,
        async () => {
          const newest = await newestMatch(c.productionDump!);
          if (!newest) throw new Error(`no file matches ${c.productionDump}`);
          return `${newest.path} of ${newest.mtime.toISOString()}`;
        },
        'warn',
      );
  }
}

/** The certificate, who may open the host, nginx's workers, staged mail. */
async function publishChecks(d: Doctor): Promise<void> {
  const { cfg, check } = d;
  await check('certificate', async () => {
    const { tlsCertificate: certFile, tlsKey: keyFile } = cfg.staging;
    if (!certFile || !keyFile) throw new Error('[staging] tls_certificate and tls_key are not set');
    const cert = new X509Certificate(await readFile(certFile));
    const key = createPrivateKey(await readFile(keyFile));
    if (!cert.checkPrivateKey(key)) throw new Error(`${keyFile} is not the key of ${certFile}`);
    if (!cert.checkHost(cfg.staging.host))
      throw new Error(
        `${certFile} does not cover ${cfg.staging.host} (it is for ${cert.subjectAltName ?? cert.subject})`,
      );
    const days = Math.floor((new Date(cert.validTo).getTime() - Date.now()) / 86_400_000);
    if (days < 0) throw new Error(`${certFile} expired on ${cert.validTo}`);
    const text = `${certFile} covers ${cfg.staging.host}, key matches, expires in ${days} days`;
    if (days < 14) return { level: 'warn', detail: `${text}: renew it` };
    // Fine for a demo or a closed network; browsers of other people will warn.
    if (cert.issuer === cert.subject && cert.verify(cert.publicKey))
      return { level: 'warn', detail: `${text}; self-signed: browsers warn unless they trust it` };
    return text;
  });

  await check('access', async () => {
    const users = await readUsers(cfg.root);
    if (cfg.access.public)
      return {
        level: 'warn',
        detail: 'public: anyone may open it ([access] public = yes), production data included',
      };
    if (users.length === 0)
      return {
        // With routes = auto the next create, switch or destroy could not publish: a failure.
        level: cfg.staging.routes === 'auto' ? 'fail' : 'warn',
        detail:
          'locked, and no users yet: "routes" refuses to publish; "karlstage access add NAME" adds one',
      };
    // An allow list that lets every address in is public = yes by another name.
    const open = openToEveryone(cfg.access.allow);
    if (open.length)
      return {
        level: 'warn',
        detail: `public: [access] allow = ${cfg.access.allow.join(', ')} lets every ${open.join(' and every ')} address in without a password, production data included`,
      };
    const scoped = users.filter((u) => u.customers !== '*').length;
    const slow = users.filter((u) => !isFastHash(u.hash)).length;
    return `locked: ${users.length} user${users.length > 1 ? 's' : ''}${scoped ? ` (${scoped} limited to some customers)` : ''}${cfg.access.allow.length ? `; let in without a password: ${cfg.access.allow.join(', ')}` : ''}${slow ? `; ${slow} with a chosen password (a slow check, ${LOGIN_LIMIT.rate} requests/s per address)` : ''}`;
  });

  // Who nginx's workers run as, and whether they can read the users file and the site list.
  if (cfg.staging.tlsCertificate)
    await check(
      'nginx workers',
      async () => {
        const problem = await workerProblem(cfg);
        if (problem) return { level: 'fail', detail: problem };
        const w = await workerOf(await askWorkerPid(cfg));
        return `run as ${w.user} (${w.groups.join(', ')}); they can read the ${cfg.access.public ? '' : 'users file and the '}site list`;
      },
      'warn',
    );

  await check('mail', () => mailHealth(cfg));
}

/** Each branch site's app, the wake service and the cron lines. */
async function appChecks(d: Doctor): Promise<void> {
  const { cfg, check, checks, state } = d;
  // Each branch site's app: does it answer when it should? (Running means its port answers HTTP.)
  const sites = Object.values((await state().catch(() => ({ branches: {} }))).branches);
  const runs = await siteRuns(cfg, sites);
  for (const site of sites.sort((a, b) => a.slot - b.slot)) {
    const run = runs.get(site.name)!;
    const since = run.since ? ` since ${run.since.slice(0, 16).replace('T', ' ')}` : '';
    checks.push(
      run.state === 'down'
        ? {
            name: `app ${site.name}`,
            level: 'fail',
            detail: `should run and does not answer on 127.0.0.1:${site.port}${since}${run.error ? ` (${run.error})` : ''}; "karlstage start ${site.name}", or watch starts it`,
          }
        : {
            name: `app ${site.name}`,
            level: 'ok',
            detail: `${run.state}${since}${run.state === 'running' ? ` on 127.0.0.1:${site.port}` : ''}${run.by && run.state !== 'running' ? ` (${run.by})` : ''}`,
          },
    );
  }
  await check('wake service', async () => {
    const holder = await liveHolder(lockRoom(cfg.root), LOCKS.wake);
    if (holder) return `running (pid ${holder.pid}) on ${layout.wakeSocket(cfg.root)}`;
    const sleeping = sites.filter((s) => runs.get(s.name)?.state === 'sleeping').length;
    return {
      level: sleeping ? 'fail' : 'warn',
      detail: `not running${sleeping ? `: ${sleeping} sleeping site(s) cannot be woken` : ''}; "karlstage watch" starts it (is the watch cron line installed? "karlstage cron --install")`,
    };
  });
  await check('cron', async () => {
    const installed = await readFile(cfg.cron.file, 'utf8').catch(() => undefined);
    if (installed === undefined)
      return {
        level: 'warn',
        detail: `${cfg.cron.file} is not there: "karlstage cron --install" writes it`,
      };
    const missing = ['poll --build', 'sync --nightly', ' watch', 'watch --boot'].filter(
      (w) => !installed.includes(w),
    );
    return missing.length
      ? {
          level: 'warn',
          detail: `${cfg.cron.file} lacks ${missing.map((m) => m.trim()).join(', ')}: run "karlstage cron --install" again`,
        }
      : `${cfg.cron.file}: poll, nightly sync, watch and @reboot`;
  });
}
