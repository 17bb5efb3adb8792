import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { messageOf, UsageError } from '../core/errors.js';
import { exec } from '../core/command.js';
import { stagingDatabaseName } from '../db/names.js';
import { startCluster, type PgCluster } from './pg-cluster.js';
import { sync } from '../commands/sync.js';
import { makeGitSample, makeSkeleton, makeSvnSample } from './sample-repos.js';
import { freeBasePort } from './ports.js';
import { create } from '../commands/create.js';
import { outputFor, type GlobalOptions } from '../context/context.js';
import { init } from '../commands/init.js';
import { status } from '../commands/status.js';
import { watch } from '../commands/watch.js';
import { accessAdd } from '../commands/access.js';
import type { Output } from '../core/output.js';
import { readState } from '../model/state.js';
import { askTls, selfSignedCert, startNginx } from './web-server.js';
import { mail } from '../commands/mail.js';
import {
  privatePostfix,
  sendMail,
  settleQueue,
  stopPostfix,
  type PrivatePostfix,
} from './mail-server.js';

export interface DemoOptions extends GlobalOptions {
  dir?: string;
  vcs?: 'git' | 'svn';
  basePort?: number;
  /** Stop a demo made before (its apps, its nginx, its PostgreSQL) and remove its folder. */
  stop?: boolean;
}

export interface DemoResult {
  dir: string;
  root: string;
  config: string;
  sites: { branch: string; customer: string; url: string; answer: string }[];
  /** What the nightly sync put into each branch site's database. */
  data: { branch: string; customer: string; docs: number; sanitized: number }[];
  /** The demo's PostgreSQL, left running like the apps: its folder and the command that stops it. */
  postgres?: { port: number; dir: string; stop: string };
  /** Staged mail through the demo's postfix: the mail-in that arrived, the mail-out caught. */
  mail?: {
    port: number;
    domain: string;
    maildir: string;
    arrived: number;
    caught: { recipient: string; subject: string }[];
  };
  /** The one TLS host, served by the demo's own nginx: where to go, as whom, and the certificate to trust. */
  https?: { url: string; port: number; user: string; password: string; cert: string };
  /** The command that stops the demo (apps, nginx, PostgreSQL) and removes it. */
  stop: string;
}

const HOST = 'karltest.localhost';

/** What --stop needs to find: written into the demo's folder. */
interface DemoRecord {
  root: string;
  nginx?: { prefix: string; main: string };
  postgres?: { dir: string; stop: string[] };
  postfix?: { etc: string };
}

/**
 * Two customers' "production" databases with people's e-mail addresses, a
 * sanitize script that replaces them, and a folder of production blobs.
 */
async function sampleProduction(pg: PgCluster, dir: string) {
  const sql = (db: string, query: string) =>
    exec({
      program: 'psql',
      args: ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', query],
      step: 'make the sample production data',
      env: () => ({ ...pg.env, PGDATABASE: db }),
    });
  for (const [db, rows] of [
    ['production_osf', 500],
    ['production_another', 120],
  ] as const) {
    await sql('postgres', `CREATE DATABASE ${db}`);
    await sql(
      db,
      `CREATE TABLE docs (id serial PRIMARY KEY, title text, owner_email text); INSERT INTO docs (title, owner_email) SELECT 'document ' || i, 'person' || i || '@customer.example.org' FROM generate_series(1, ${rows}) i`,
    );
  }
  const sanitize = join(dir, 'sanitize.sql');
  await writeFile(sanitize, "UPDATE docs SET owner_email = 'id' || id || '@staging.invalid';\n");
  const files = join(dir, 'production-blobs', 'osf');
  await mkdir(join(files, '0a'), { recursive: true });
  await writeFile(join(files, '0a', '0001.blob'), 'a blob written once, never changed\n');
  return {
    osf: pg.dsn('production_osf'),
    another: pg.dsn('production_another'),
    sanitize,
    files,
  };
}

/** What the demo started around the staging root: each part left out where it cannot run here. */
interface Servers {
  dir: string;
  vcs: 'git' | 'svn';
  repo: Awaited<ReturnType<typeof makeGitSample>>;
  skeleton: string;
  pg?: PgCluster;
  web?: { cert: string; key: string; nginx: Awaited<ReturnType<typeof startNginx>> };
  /** The demo's postfix, or why there is none. */
  postfix: PrivatePostfix | string;
}

/** The sample repository and skeleton, PostgreSQL, nginx and postfix; written down for --stop. */
async function startServers(dir: string, vcs: 'git' | 'svn', out: Output): Promise<Servers> {
  out.progress(`making a sample ${vcs} repository and a deployment skeleton`);
  const repo =
    vcs === 'git'
      ? await makeGitSample(join(dir, 'repos'))
      : await makeSvnSample(join(dir, 'repos'));
  const skeleton = await makeSkeleton(join(dir, 'skeleton'));
  const record: DemoRecord = { root: join(dir, 'staging') };
  const without = (what: string, install: string) => (e: unknown) => {
    out.line(
      out.c.yellow(
        `no ${what} in this demo: ${messageOf(e)} ("scripts/setup.sh demo" installs ${install})`,
      ),
    );
    return undefined;
  };
  // PostgreSQL for the nightly sync: production and staging databases in one throwaway cluster.
  out.progress('starting a throwaway PostgreSQL for the production and staging databases');
  const pg = await startCluster(randomBytes(12).toString('hex')).catch(
    without('nightly sync', 'it'),
  );
  if (pg) record.postgres = { dir: pg.dir, stop: pg.stopArgv };
  // The one TLS host: a self-signed certificate and the demo's own nginx on free high ports.
  out.progress(`starting nginx as the one TLS host https://${HOST}/ (a self-signed certificate)`);
  const web = await (async () => {
    const { cert, key } = await selfSignedCert(join(dir, 'tls'), HOST);
    return { cert, key, nginx: await startNginx(join(dir, 'nginx')) };
  })().catch(without('TLS host', 'nginx'));
  if (web) record.nginx = { prefix: web.nginx.prefix, main: web.nginx.main };
  // Staged mail: the demo's own postfix on a free high port (postfix -c needs root).
  const postfix =
    process.getuid?.() !== 0
      ? 'it needs root (postfix -c DIR)'
      : !existsSync('/usr/sbin/postfix')
        ? 'postfix is missing ("scripts/setup.sh demo" installs it)'
        : await privatePostfix(join(dir, 'postfix'));
  if (typeof postfix === 'string')
    out.line(out.c.yellow(`no staged mail in this demo: ${postfix}`));
  else record.postfix = { etc: postfix.etc };
  await writeFile(join(dir, 'demo.json'), JSON.stringify(record, null, 2) + '\n');
  return { dir, vcs, repo, skeleton, ...(pg ? { pg } : {}), ...(web ? { web } : {}), postfix };
}

/** karlstage.ini by init, then pointed at what the demo started. */
async function demoConfig(
  s: Servers,
  basePort: number,
  quiet: { quiet: boolean; color?: boolean },
): Promise<string> {
  const { repo, pg, web, postfix } = s;
  const { file } = await init({
    ...quiet,
    dir: join(s.dir, 'staging'),
    host: HOST,
    vcs: s.vcs,
    url: repo.url,
    skeleton: s.skeleton,
    defaultRef: repo.defaultRef,
    database: pg ? pg.dsn() : 'host=127.0.0.1 user=karl dbname=karl',
    basePort,
  });
  let ini = await readFile(file, 'utf8');
  if (web)
    ini = ini
      .replace(/^tls_certificate = .*$/m, `tls_certificate = ${web.cert}`)
      .replace(/^tls_key = .*$/m, `tls_key = ${web.key}`)
      .replace(/^https_port = .*$/m, `https_port = ${web.nginx.httpsPort}`)
      .replace(/^http_port = .*$/m, `http_port = ${web.nginx.httpPort}`)
      .replace(/^nginx_conf = .*$/m, `nginx_conf = ${web.nginx.conf}`)
      .replace(/^reload = .*$/m, `reload = ${web.nginx.reload}`)
      .replace(/^listen_addresses =.*$/m, `listen_addresses = ${web.nginx.address}`)
      .replace(/^group = .*$/m, `group = ${web.nginx.workers.group}`);
  else ini = ini.replace('routes = auto', 'routes = manual');
  if (pg) {
    const production = await sampleProduction(pg, s.dir);
    ini = ini
      .replace(
        /^production = .*$/m,
        // One throwaway cluster plays production and staging: the operator's written permission.
        `production = ${production.osf}\nstaging_on_production_server = yes`,
      )
      .replace(/^# production_files = .*$/m, `production_files = ${production.files}`)
      .replace(/^# sanitize = .*$/m, `sanitize = ${production.sanitize}`);
    ini += `\n[customer:another]\nmail_branch = branch2\nproduction = ${production.another}\nstaging_on_production_server = yes\nsanitize = ${production.sanitize}\n`;
  } else {
    ini = ini.replace('manage_databases = yes', 'manage_databases = no');
    ini += '\n[customer:another]\nmail_branch = branch2\n';
  }
  if (typeof postfix !== 'string')
    ini =
      ini.replace(/^testers =.*$/m, `testers = ${TESTER}`) +
      `\n${postfix.section.replace('[mail]', "[mail]\n# The demo's own postfix.")}`;
  await writeFile(file, ini);
  return file;
}

/**
 * A throwaway staging server, end to end: a sample application repository, a
 * sample deployment skeleton, karlstage.ini, two branch sites of two customers
 * each, built and started, served by a real nginx as the one TLS host (locked,
 * one demo user); then the nightly sync, and each site is asked what it runs
 * through that host.
 */
export async function demo(opts: DemoOptions): Promise<DemoResult | { stopped: string }> {
  const out = await outputFor(opts);
  if (opts.stop) return stopDemo(opts, out);
  const vcs = opts.vcs ?? 'git';
  const dir = opts.dir
    ? resolve(opts.cwd ?? process.cwd(), opts.dir)
    : await mkdtemp(join(tmpdir(), 'karlstage-demo-'));
  if (existsSync(dir) && (await readdir(dir)).length > 0)
    throw new UsageError(`${dir} is not empty: give an empty or new folder for the demo`);
  if (opts.dryRun)
    throw new UsageError(
      'demo builds a throwaway server; --dry-run has nothing to show (try it on create)',
    );
  const quiet = { quiet: true, color: opts.color };
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755); // the web server reads the site list in it

  out.line(out.c.bold(`karlstage demo in ${dir}`));
  const s = await startServers(dir, vcs, out);
  const file = await demoConfig(s, opts.basePort ?? (await freeBasePort(2)), quiet);
  const g = { ...quiet, config: file };

  // The host is locked: one demo user, who sees every customer.
  const user = 'demo';
  const added = (await accessAdd({ ...g, user })) as { password?: string };
  const login = { user, password: added.password ?? '' };
  out.progress(`creating branch1 at ${s.repo.defaultRef}`);
  await create({ ...g, branch: 'branch1' });
  out.progress(`creating branch2 at ${s.repo.featureRef}`);
  await create({ ...g, branch: 'branch2', ref: s.repo.featureRef });
  // What cron's watch line does every minute: here, it starts the wake service (sleeping sites
  // wake for a logged-in visitor).
  if (s.web) await watch(g);
  if (s.pg) {
    out.progress('the nightly sync: production → golden copy (sanitized) → every branch site');
    await sync({ ...g, branches: [], nightly: true });
  }
  const mailed = typeof s.postfix === 'string' ? undefined : await stagedMail(g, s.postfix, out);
  const st = await status(g);
  const base = s.web ? `https://${HOST}:${s.web.nginx.httpsPort}` : undefined;
  // Say how to run karlstage the way this run was started (a clone has no global install).
  const launcher = process.argv[1]?.endsWith('karlstage.js')
    ? `node ${process.argv[1]}`
    : 'karlstage';
  const result: DemoResult = {
    dir,
    root: join(dir, 'staging'),
    config: file,
    sites: await askSites(s, st.branches, login),
    data: s.pg ? await countRows(s.pg, st.branches) : [],
    ...(s.pg ? { postgres: { port: s.pg.port, dir: s.pg.dir, stop: s.pg.stopCommand } } : {}),
    ...(mailed ? { mail: mailed } : {}),
    ...(s.web && base
      ? { https: { url: `${base}/`, port: s.web.nginx.httpsPort, ...login, cert: s.web.cert } }
      : {}),
    stop: `${launcher} demo ${dir} --stop`,
  };
  await printDemo(out, result, { s, launcher });
  return result;
}

type Branches = Awaited<ReturnType<typeof status>>['branches'];

/** What each site answers: through the TLS host, as the demo user; without nginx, the app itself. */
async function askSites(
  s: Servers,
  branches: Branches,
  login: { user: string; password: string },
): Promise<DemoResult['sites']> {
  const base = s.web ? `https://${HOST}:${s.web.nginx.httpsPort}` : undefined;
  const sites: DemoResult['sites'] = [];
  for (const b of branches)
    for (const customer of b.customers) {
      const answer = s.web
        ? await askTls(
            { host: HOST, port: s.web.nginx.httpsPort, ca: s.web.cert },
            `/${b.name}/${customer}/`,
            `${login.user}:${login.password}`,
          )
        : {
            status: 0,
            body: await (await fetch(`http://127.0.0.1:${b.port}/${customer}/`)).text(),
          };
      sites.push({
        branch: b.name,
        customer,
        url: base ? `${base}/${b.name}/${customer}/` : `http://127.0.0.1:${b.port}/${customer}/`,
        answer: answer.body.trim(),
      });
    }
  return sites;
}

/** What the nightly sync put into each site's database: its rows, and how many were sanitized. */
async function countRows(pg: PgCluster, branches: Branches): Promise<DemoResult['data']> {
  const data: DemoResult['data'] = [];
  for (const b of branches)
    for (const customer of b.customers) {
      const [docs, sanitized] = (
        await exec({
          program: 'psql',
          args: [
            '-XAtF,',
            '-c',
            "SELECT count(*), count(*) FILTER (WHERE owner_email LIKE '%@staging.invalid') FROM docs",
          ],
          step: 'count',
          env: () => ({ ...pg.env, PGDATABASE: stagingDatabaseName(b.name, customer) }),
        })
      ).stdout
        .trim()
        .split(',')
        .map(Number);
      data.push({ branch: b.name, customer, docs: docs ?? 0, sanitized: sanitized ?? 0 });
    }
  return data;
}

/** Where everything is, what each site answered, and what to try next. */
async function printDemo(
  out: Output,
  result: DemoResult,
  how: { s: Servers; launcher: string },
): Promise<void> {
  const { s } = how;
  const { dir, root, https, mail: mailed } = result;
  out.line();
  out.line(out.c.bold('Made:'));
  out.line(
    `  ${join(dir, 'repos')}      the sample application repository (${s.vcs}: ${s.repo.url})`,
  );
  out.line(`  ${s.skeleton}   the sample deployment skeleton`);
  out.line(`  ${root}    the staging root: karlstage.ini, branch1/, branch2/, .karlstage/`);
  out.line();
  if (https) {
    const tls = { host: HOST, port: https.port, ca: https.cert };
    const list = await askTls(tls, '/', `${https.user}:${https.password}`);
    const locked = await askTls(tls, '/');
    out.line(out.c.bold(`The one TLS host, locked: ${https.url}`));
    out.line(
      `  user ${https.user}, password ${https.password}   (a self-signed certificate: ${https.cert})`,
    );
    out.line(
      `  the site list at / answers ${list.status} with that login, ${locked.status} without`,
    );
    out.line(
      `  curl --resolve ${HOST}:${https.port}:127.0.0.1 --cacert ${https.cert} -u ${https.user}:${https.password} ${https.url}branch1/osf/`,
    );
    out.line();
  }
  out.line(out.c.bold('Each site answers:'));
  for (const site of result.sites) out.line(`  ${site.url}  ${site.answer}`);
  out.line();
  if (mailed) {
    out.line(out.c.bold(`Staged mail, through the demo's postfix on 127.0.0.1:${mailed.port}:`));
    out.line(`  someone@${mailed.domain} arrived in ${mailed.maildir} (${mailed.arrived} message)`);
    for (const c of mailed.caught)
      out.line(`  mail to ${c.recipient} ("${c.subject}") was caught, not sent`);
    out.line();
  }
  if (s.pg) {
    out.line(out.c.bold('The nightly sync copied production into every branch site:'));
    for (const d of result.data)
      out.line(
        `  ${d.branch}/${d.customer}: ${d.docs} documents from production, ${d.sanitized === d.docs ? 'every' : `${d.sanitized} of ${d.docs}`} owner e-mail sanitized`,
      );
    out.line();
  }
  out.line(out.c.bold('Look around:'));
  for (const line of lookAround(result, how)) out.line(`  ${line}`);
}

/** The commands worth trying in the demo's staging root. */
function lookAround(result: DemoResult, how: { s: Servers; launcher: string }): string[] {
  const { s, launcher: k } = how;
  return [
    `cd ${result.root}`,
    `${k} status`,
    `${k} doctor`,
    `${k} switch branch2 ${s.repo.defaultRef}      # then ask branch2 again`,
    `${k} update --all --dry-run`,
    ...(s.web
      ? [`${k} sleep branch2          # asleep: the next logged-in request wakes it (curl above)`]
      : []),
    `${k} access add anna --customers osf   # sees osf only`,
    ...(s.pg
      ? [
          `${k} sync --nightly      # again: one dump per customer, each site's swap time`,
          `${k} hold branch2 --reason "testing"; ${k} status`,
        ]
      : []),
    ...(result.mail ? [`${k} mail --caught`] : []),
    `${result.stop}   # stops the apps, nginx, postfix and PostgreSQL, and removes ${result.dir}`,
  ];
}

const TESTER = 'tester@example.org';

/** Postfix installed by "mail --install"; one mail-in message and one mail-out to a real-looking person. */
async function stagedMail(g: { config: string; quiet: boolean }, pf: PrivatePostfix, out: Output) {
  out.progress("installing postfix's configuration (mail --install) and sending two messages");
  try {
    await mail({ ...g, install: true });
    const domain = `osf.${HOST}`;
    await sendMail(pf.port, `app@${HOST}`, `someone@${domain}`, 'Staged mail-in for osf');
    await sendMail(pf.port, `app@${HOST}`, 'ceo@customer.example.com', 'Your weekly digest');
    await settleQueue(pf.etc);
    const root = dirname(g.config);
    const maildir = join(root, 'branch1', 'var', 'mail', 'osf');
    const arrived = (await readdir(join(maildir, 'new'))).length;
    const { caught } = (await mail({ ...g, caught: true })) as {
      caught: { recipient: string; subject: string }[];
    };
    return { port: pf.port, domain, maildir, arrived, caught };
  } catch (e) {
    out.line(out.c.yellow(`no staged mail in this demo: ${messageOf(e)}`));
    return undefined;
  }
}

/** Stop a demo: its apps, its nginx and its PostgreSQL; then remove its folder. */
async function stopDemo(opts: DemoOptions, out: Output): Promise<{ stopped: string }> {
  if (!opts.dir)
    throw new UsageError("demo --stop needs the demo's folder: karlstage demo DIR --stop");
  const dir = resolve(opts.cwd ?? process.cwd(), opts.dir);
  const text = await readFile(join(dir, 'demo.json'), 'utf8').catch(() => undefined);
  if (!text) throw new UsageError(`${dir} is not a karlstage demo (no demo.json there)`);
  const record = JSON.parse(text) as DemoRecord;
  const state = await readState(record.root).catch(() => ({ branches: {} }));
  // The wake service first: it must not wake what is being stopped.
  const wake = await readFile(join(record.root, '.karlstage', 'locks', 'wake-service.lock'), 'utf8')
    .then((t) => (JSON.parse(t) as { pid?: number }).pid)
    .catch(() => undefined);
  if (wake) {
    out.progress('stopping the wake service');
    try {
      process.kill(wake, 'SIGTERM');
    } catch {
      // gone already
    }
  }
  for (const b of Object.keys(state.branches)) {
    out.progress(`stopping the app of ${b}`);
    await exec({
      program: join(record.root, b, 'bin', 'supervisorctl'),
      args: ['shutdown'],
      step: `stop ${b}`,
      cwd: join(record.root, b),
      timeoutMs: 60_000,
    }).catch(() => undefined);
  }
  if (record.postfix) {
    out.progress('stopping postfix');
    await stopPostfix(record.postfix.etc);
  }
  if (record.nginx) {
    out.progress('stopping nginx');
    await exec({
      program: 'nginx',
      args: ['-p', record.nginx.prefix, '-c', record.nginx.main, '-s', 'quit'],
      step: 'stop nginx',
      timeoutMs: 30_000,
    }).catch(() => undefined);
  }
  if (record.postgres) {
    out.progress('stopping PostgreSQL');
    const [program, ...args] = record.postgres.stop as [string, ...string[]];
    await exec({ program, args, step: 'stop PostgreSQL', cwd: '/', timeoutMs: 60_000 }).catch(
      () => undefined,
    );
    await rm(record.postgres.dir, { recursive: true, force: true });
  }
  await rm(dir, { recursive: true, force: true });
  out.line(`stopped the demo and removed ${dir}`);
  return { stopped: dir };
}
