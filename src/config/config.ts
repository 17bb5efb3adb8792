import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { userInfo } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import leven from 'leven';
import { scheduleProblem } from '../core/cron-schedule.js';
import { durationText, parseDuration } from '../core/duration.js';
import { parseDsn } from '../core/dsn.js';
import { UsageError } from '../core/errors.js';
import { readIni, type IniSection } from '../core/ini-read.js';
import { addSecret, looksLikeToken } from '../core/redact.js';
import { splitCommand } from '../core/command-line.js';
import { userinfo } from '../core/url.js';
import { parseKeep } from './keep.js';
import { nameProblem } from './names.js';
import { CUSTOMER, CUSTOMER_PREFIX, SECTIONS, type KeySpec } from './schema.js';

/**
 * karlstage.ini, read strictly: every line, section and key is one the schema
 * (schema.ts) knows, every value is of its kind, and the named rules below
 * hold — or the file is refused (exit 2) with every problem at once, each
 * with its file, line, section and key. A configuration means exactly what it
 * says, or nothing runs.
 */
export const CONFIG_NAME = 'karlstage.ini';

export type VcsKind = 'git' | 'svn';

export interface CustomerConfig {
  name: string;
  production?: string;
  /** A backup file (or a glob: the newest match) to sync from instead of the live database. */
  productionDump?: string;
  productionFiles?: string;
  sanitize?: string;
  mailBranch: string;
  /** The operator allows staging databases on this customer's production cluster (checked by OID). */
  stagingOnProductionServer: boolean;
  /** Words or /regular expressions/ a sanitized copy must not contain (checked before it is used). */
  mustNotContain: string[];
}

export interface Config {
  file: string;
  root: string;
  staging: {
    host: string;
    basePort: number;
    database: string;
    httpsPort: number;
    httpPort: number;
    /** The addresses the TLS host listens on; none: every address. */
    listenAddresses: string[];
    tlsCertificate?: string;
    tlsKey?: string;
    mailDomain?: string;
    nginxConf: string;
    reload: string;
    /** The nginx program used to check a new configuration (nginx -t). */
    nginx: string;
    /** auto: create, switch and destroy refresh the routes; manual: only "karlstage routes". */
    routes: 'auto' | 'manual';
    /** Whether create and destroy make and drop the staging databases (no: someone else does). */
    manageDatabases: boolean;
    /** Testers' addresses: the only ones staging may mail (the mail_white_list file). */
    mailAllow: string[];
    jobs: number;
    /** Days without an update after which a branch site is stale. */
    staleAfter: number;
    /** A site with no logged-in request for this long is put to sleep; undefined: never. */
    idleAfterMs?: number;
    /** How long the first visitor of a sleeping site waits for it. */
    wakeWaitMs: number;
  };
  source: {
    vcs: VcsKind;
    url: string;
    path: string;
    default: string;
    timeout: number;
    retries: number;
  };
  deployment: {
    skeleton: string;
    build?: string;
    migrate?: string;
    start?: string;
    restart?: string;
    stop?: string;
    /** Where a branch site keeps each customer's blobs: BRANCH/<blobs>/CUSTOMER. */
    blobs: string;
    /** Where a branch site keeps each customer's staged mail-in: BRANCH/<maildir>/CUSTOMER. */
    maildir: string;
    /** Run by cron, per customer, in that customer's mail branch only (the customer is the last argument). */
    mailin?: string;
    timeout: number;
    /** Seconds a start or restart may take until the app answers on its port. */
    startTimeout: number;
  };
  customers: CustomerConfig[];
  access: {
    /** Anyone may open the host, without a login (only when [access] public = yes). */
    public: boolean;
    /** Addresses and CIDR blocks let in without a password. */
    allow: string[];
    /** The web server's group: it may read the password hashes. */
    group: string;
  };
  cron: { poll: string; sync: string; mailin: string; watch: string; user: string; file: string };
  /** Who hears of failures, new builds and recoveries. */
  notify: {
    /** Without its credentials, which travel as `webhookAuth` (an Authorization header). */
    webhook?: string;
    webhookAuth?: string;
    webhookSecret?: string;
    mail: string[];
    smtp: string;
  };
  /** The staging host's postfix, as "karlstage mail --install" writes it. */
  mail: {
    /** Its configuration folder (main.cf, master.cf). */
    postfix: string;
    queueDirectory: string;
    dataDirectory: string;
    /** Its log file (empty: syslog). */
    log?: string;
    /** Where it takes mail (no address: every one). */
    listen: { address?: string; port: number };
    /** The smtp next hop for allow-listed testers (empty: their MX). */
    relay?: string;
    /** Who the delivery runs as: owns the Maildirs. */
    user: string;
  };
  sync: { jobs: number; dumps: string; keep: string; files: string };
}

/** Where the configuration is: --config, then KARLSTAGE_CONFIG, then this folder and its parents. */
export function findConfig(explicit?: string, cwd = process.cwd()): string {
  const given = explicit ?? process.env.KARLSTAGE_CONFIG;
  if (given) {
    const file = resolve(cwd, given);
    if (!existsSync(file)) throw new UsageError(`configuration ${file} does not exist`);
    return file;
  }
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const file = join(dir, CONFIG_NAME);
    if (existsSync(file)) return file;
    if (dirname(dir) === dir) break;
  }
  throw new UsageError(
    `no ${CONFIG_NAME} here or in any parent folder: run "karlstage init" or pass --config FILE`,
  );
}

/** Read, check and return the configuration, its passwords registered to be masked everywhere. */
export function loadConfig(explicit?: string, cwd = process.cwd()): Config {
  const file = findConfig(explicit, cwd);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const cfg = parseConfig(text, file);
  registerSecrets(cfg);
  return cfg;
}

/**
 * Passwords and tokens in connection strings, repository URLs and the webhook: masked in
 * everything printed or logged. User names are not secrets (masking one blanks that word out of
 * every message); a user name alone over http(s) that looks like a token is one.
 */
export function registerSecrets(cfg: Config): void {
  for (const dsn of [cfg.staging.database, ...cfg.customers.map((c) => c.production)])
    if (dsn) addSecret(parseDsn(dsn).password);
  for (const url of [cfg.source.url, cfg.deployment.skeleton]) {
    const u = userinfo(url);
    addSecret(u?.password);
    if (u && !u.sshLike && !u.password && looksLikeToken(u.username)) addSecret(u.username);
  }
  for (const secret of webhookSecrets(cfg)) addSecret(secret);
}

/**
 * [notify] webhook: a user and password in it (https://user:pw@host/…) go as an
 * Authorization header (fetch refuses a URL that holds them); the whole URL is
 * a secret, masked wherever it could be printed.
 */
export function webhookOf(text: string | undefined): { webhook?: string; webhookAuth?: string } {
  if (!text) return {};
  const u = new URL(text); // checked by its kind already
  if (!u.username && !u.password) return { webhook: u.href };
  const credentials = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
  u.username = '';
  u.password = '';
  return { webhook: u.href, webhookAuth: `Basic ${Buffer.from(credentials).toString('base64')}` };
}

/** Everything of a webhook but its scheme and host: its path, its query's values, its credentials. */
function webhookSecrets(cfg: Config): string[] {
  if (!cfg.notify.webhook) return [];
  const u = new URL(cfg.notify.webhook);
  const found = [u.href, u.pathname.length > 1 ? u.pathname : '', ...u.searchParams.values()];
  if (cfg.notify.webhookAuth) {
    const credentials = Buffer.from(cfg.notify.webhookAuth.slice(6), 'base64').toString();
    const [user = '', password = ''] = credentials.split(/:(.*)/s);
    // A user name alone (https://TOKEN@host) is the token.
    found.push(cfg.notify.webhookAuth, password || user);
  }
  return found;
}

/** A skeleton or repository given as a URL rather than a local folder. */
export function isRemoteLocation(location: string): boolean {
  return /^(git\+)?[a-z][a-z0-9+.-]*:\/\//i.test(location) || /^[\w.-]+@[\w.-]+:/.test(location);
}

/** An IPv4 or IPv6 address, with or without a prefix length in range. */
function isCidr(text: string): boolean {
  const [address = '', bits, ...rest] = text.split('/');
  const family = isIP(address);
  if (!family || rest.length) return false;
  if (bits === undefined) return true;
  return /^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

const HOST = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i;
const portOf = (text: string | undefined): number | undefined =>
  text !== undefined && /^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535
    ? Number(text)
    : undefined;

/** [mail] listen: "25" (every address), "127.0.0.1:2525" or "[::1]:2525". */
export function parseListen(text: string): { address?: string; port: number } | undefined {
  if (portOf(text)) return { port: portOf(text)! };
  const m = /^(?:\[([0-9a-f:.]+)\]|([0-9.]+)):(\d+)$/i.exec(text);
  const address = m?.[1] ?? m?.[2];
  const port = portOf(m?.[3]);
  if (!address || !port || isIP(address) !== (m?.[1] ? 6 : 4)) return undefined;
  return { address, port };
}

/**
 * [mail] relay: "smtp.example.org" (its MX), "smtp.example.org:587", "[192.0.2.1]:25"
 * (brackets: that very host, no MX lookup) — as postfix's smtp next hop.
 */
export function parseRelay(text: string): string | undefined {
  const m = /^(\[)?([^[\]:]+)(\])?(?::(\d+))?$/.exec(text);
  if (!m || Boolean(m[1]) !== Boolean(m[3])) return undefined;
  const host = m[2]!;
  if (!HOST.test(host) && !isIP(host)) return undefined;
  if (m[4] !== undefined && !portOf(m[4])) return undefined;
  // An address is always bracketed: there is no MX to look up for it.
  const bracket = m[1] || isIP(host) ? `[${host}]` : host;
  return m[4] ? `${bracket}:${m[4]}` : bracket;
}

/** must_not_contain: comma-separated words or /regular expressions/. */
export const splitPatterns = (value: string): string[] =>
  value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);

/** " (did you mean X?)" for a near miss among the known names, else "". */
function didYouMean(word: string, known: string[]): string {
  const near = known
    .map((k) => ({ k, d: leven(word.toLowerCase(), k) }))
    .filter(({ k, d }) => d <= Math.max(1, Math.floor(k.length / 3)))
    .sort((a, b) => a.d - b.d)[0];
  return near ? ` (did you mean ${near.k}?)` : '';
}

/** What is wrong with a value of this kind; undefined when it is fine. */
function kindProblem(spec: KeySpec, value: string, key: string): string | undefined {
  switch (spec.kind) {
    case 'host':
      return /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(value)
        ? undefined
        : 'expected a host name such as karltest.example.com';
    case 'int': {
      const n = Number(value);
      return /^\d+$/.test(value) && n >= spec.min! && n <= spec.max!
        ? undefined
        : `expected a whole number from ${spec.min} to ${spec.max}`;
    }
    case 'yes-no':
      return value === 'yes' || value === 'no' ? undefined : 'expected yes or no';
    case 'choice':
      return spec.choices!.includes(value) ? undefined : `expected ${spec.choices!.join(' or ')}`;
    case 'dsn':
      try {
        parseDsn(value);
        return undefined;
      } catch (e) {
        return (e as Error).message;
      }
    case 'relative':
      return isAbsolute(value) || value.split(/[\\/]/).some((p) => p === '..' || p === '')
        ? 'expected a relative path inside the branch site'
        : undefined;
    case 'command':
      try {
        splitCommand(value, key);
        return undefined;
      } catch (e) {
        return (e as Error).message.replace(/^.*?: /, '');
      }
    case 'schedule':
      return scheduleProblem(value);
    case 'keep':
      try {
        parseKeep(value);
        return undefined;
      } catch (e) {
        return (e as Error).message;
      }
    case 'addresses': {
      const bad = value
        .split(/[\s,]+/)
        .filter(Boolean)
        .find((a) => !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(a));
      return bad ? `"${bad}" is not a mail address` : undefined;
    }
    case 'name':
      return nameProblem(value);
    case 'user':
      return /^[a-z_][a-z0-9_-]*$/i.test(value) ? undefined : 'expected a user name';
    case 'listen':
      return parseListen(value)
        ? undefined
        : 'expected a port (25) or ADDRESS:PORT (127.0.0.1:2525, [::1]:2525)';
    case 'relay':
      return parseRelay(value)
        ? undefined
        : 'expected HOST, HOST:PORT or [HOST]:PORT (smtp.example.org, [192.0.2.1]:25)';
    case 'ips': {
      const bad = value
        .split(/[\s,]+/)
        .filter(Boolean)
        .find((a) => !isIP(a));
      return bad ? `"${bad}" is not an IP address (127.0.0.1, 192.0.2.7, ::1)` : undefined;
    }
    case 'cidrs': {
      const bad = value
        .split(/[\s,]+/)
        .filter(Boolean)
        .find((a) => !isCidr(a));
      return bad
        ? `"${bad}" is not an IP address or CIDR block (10.0.0.0/8, 192.0.2.7, 2001:db8::/32)`
        : undefined;
    }
    case 'http-url': {
      try {
        const u = new URL(value);
        if (!/^https?:$/.test(u.protocol)) return 'expected an http:// or https:// address';
        decodeURIComponent(u.username + u.password); // sent as a header: must read back
        return undefined;
      } catch {
        return 'expected an http:// or https:// address';
      }
    }
    case 'patterns': {
      const patterns = splitPatterns(value);
      for (const [i, p] of patterns.entries()) {
        const re = /^\/(.+)\/$/.exec(p);
        // "/a{1,3}/" cut at its comma: one piece opens a regular expression that a later one
        // closes (a plain word such as /admin is a word).
        const opens = !re && p.startsWith('/');
        if (opens && patterns.slice(i + 1).some((q) => q.endsWith('/') && !q.startsWith('/')))
          return `${p}: a comma separates patterns, so a regular expression cannot hold one; write it without`;
        if (!re) continue;
        // They run as PostgreSQL regular expressions, joined as (p1)|(p2): where those differ from
        // JavaScript's, refuse rather than let a check pass that never looked.
        if (/\\[bB]/.test(re[1]!))
          return `${p}: \\b is not a word boundary in PostgreSQL; write \\y (or \\m, \\M)`;
        if (/\\[1-9]/.test(re[1]!)) return `${p}: back-references are not allowed`;
        try {
          new RegExp(re[1]!.replace(/\\[yYmM]/g, ''));
        } catch (e) {
          return `${p} is not a regular expression: ${(e as Error).message}`;
        }
      }
      return patterns.length ? undefined : 'expected words or /regular expressions/';
    }
    case 'duration': {
      if (spec.off && value === 'off') return undefined;
      const ms = parseDuration(value);
      const range = `from ${durationText(spec.min!)} to ${durationText(spec.max!)}`;
      if (ms === undefined)
        return `expected a duration such as 90s, 15m, 4h or 2d${spec.off ? ', or off' : ''} (${range})`;
      return ms >= spec.min! && ms <= spec.max! ? undefined : `expected a duration ${range}`;
    }
    case 'ref':
      return /^-|\s/.test(value) ? 'expected a ref: no spaces, not starting with "-"' : undefined;
    default:
      return undefined;
  }
}

/** The checked values of one section: each key's value, or its default. */
class Values {
  constructor(
    private readonly given: Map<string, string>,
    private readonly spec: Record<string, KeySpec>,
  ) {}
  str(key: string): string {
    return this.given.get(key) || this.spec[key]?.default || '';
  }
  opt(key: string): string | undefined {
    return this.str(key) || undefined;
  }
  int(key: string): number {
    return Number(this.str(key));
  }
  yes(key: string): boolean {
    return this.str(key) === 'yes';
  }
}

/** Validate the whole file at once: every problem is reported, each with file, line, section and key. */
export function parseConfig(text: string, file: string): Config {
  const root = dirname(file);
  const problems: string[] = [];
  // "FILE:LINE: [section] key" — as much of it as there is.
  const at = (line: number, section?: string, key?: string) =>
    [`${file}:${line}:`, section && `[${section}]`, key].filter(Boolean).join(' ');
  const { sections, problems: unreadable } = readIni(text);
  for (const p of unreadable)
    problems.push(
      p.key === 'mail_branch' && /given twice/.test(p.message)
        ? `${at(p.line, p.section, p.key)} is given twice: a customer has exactly one mail branch ("karlstage mail CUSTOMER BRANCH" moves it)`
        : `${at(p.line, p.section, p.key)}${p.section || p.key ? ':' : ''} ${p.message}`,
    );

  const known = [...Object.keys(SECTIONS), `${CUSTOMER_PREFIX}NAME`];
  const checked = (s: IniSection, spec: Record<string, KeySpec>): Values => {
    const given = new Map<string, string>();
    for (const e of s.entries) {
      const keySpec = spec[e.key];
      if (!keySpec) {
        problems.push(
          `${at(e.line, s.name, e.key)}: not a key of [${s.name.startsWith(CUSTOMER_PREFIX) ? `${CUSTOMER_PREFIX}NAME` : s.name}]${didYouMean(e.key, Object.keys(spec))}`,
        );
        continue;
      }
      if (e.value !== '') {
        const problem = kindProblem(keySpec, e.value, `[${s.name}] ${e.key}`);
        // A connection string or URL may hold a password: never echoed.
        const shown = ['dsn', 'url', 'http-url', 'secret'].includes(keySpec.kind)
          ? ''
          : ` = ${e.value}`;
        if (problem) problems.push(`${at(e.line, s.name, e.key)}${shown}: ${problem}`);
      }
      given.set(e.key, e.value);
    }
    for (const [key, keySpec] of Object.entries(spec))
      if (keySpec.required && !given.get(key))
        problems.push(`${at(s.line, s.name, key)} is required`);
    return new Values(given, spec);
  };

  const bySection = new Map<string, Values>();
  const customers: CustomerConfig[] = [];
  const path = (p: string) => (isAbsolute(p) ? p : resolve(root, p));
  for (const s of sections) {
    if (s.name.startsWith(CUSTOMER_PREFIX)) {
      const name = s.name.slice(CUSTOMER_PREFIX.length);
      const bad = nameProblem(name);
      if (bad) {
        problems.push(`${at(s.line, s.name)}: customer name not allowed: ${bad}`);
        continue;
      }
      const v = checked(s, CUSTOMER);
      customers.push({
        name,
        production: v.opt('production'),
        productionDump: ((d) => d && path(d))(v.opt('production_dump')),
        productionFiles: v.opt('production_files'),
        sanitize: ((d) => d && path(d))(v.opt('sanitize')),
        mailBranch: v.str('mail_branch'),
        stagingOnProductionServer: v.yes('staging_on_production_server'),
        mustNotContain: splitPatterns(v.str('must_not_contain')),
      });
      continue;
    }
    const spec = SECTIONS[s.name];
    if (!spec) {
      problems.push(`${at(s.line, s.name)}: not a known section${didYouMean(s.name, known)}`);
      continue;
    }
    bySection.set(s.name, checked(s, spec));
  }
  for (const name of ['staging', 'source', 'deployment'])
    if (!bySection.has(name)) problems.push(`${file}: section [${name}] is missing`);
  const sec = (name: string) => bySection.get(name) ?? new Values(new Map(), SECTIONS[name] ?? {});

  const st = sec('staging');
  const so = sec('source');
  const de = sec('deployment');
  const cr = sec('cron');
  const sy = sec('sync');
  const ac = sec('access');
  const ma = sec('mail');
  const no = sec('notify');
  const vcs = so.str('vcs') === 'svn' ? 'svn' : 'git';
  const skeleton = de.str('skeleton');
  const cfg: Config = {
    file,
    root,
    staging: {
      host: st.str('host'),
      basePort: st.int('base_port'),
      database: st.str('database'),
      httpsPort: st.int('https_port'),
      httpPort: st.int('http_port'),
      listenAddresses: st
        .str('listen_addresses')
        .split(/[\s,]+/)
        .filter(Boolean),
      tlsCertificate: ((p) => p && path(p))(st.opt('tls_certificate')),
      tlsKey: ((p) => p && path(p))(st.opt('tls_key')),
      mailDomain: st.opt('mail_domain'),
      nginxConf: path(st.str('nginx_conf')),
      reload: st.str('reload'),
      nginx: st.str('nginx'),
      routes: st.str('routes') === 'manual' ? 'manual' : 'auto',
      manageDatabases: st.yes('manage_databases'),
      mailAllow: st
        .str('mail_allow')
        .split(/[\s,]+/)
        .filter(Boolean),
      jobs: st.int('jobs'),
      staleAfter: st.int('stale_after'),
      idleAfterMs: st.str('idle_after') === 'off' ? undefined : parseDuration(st.str('idle_after')),
      wakeWaitMs: parseDuration(st.str('wake_wait')) ?? 15_000,
    },
    source: {
      vcs,
      url: so.str('url'),
      path: so.str('path'),
      default: so.str('default') || (vcs === 'svn' ? 'trunk' : 'main'),
      timeout: so.int('timeout'),
      retries: so.int('retries'),
    },
    deployment: {
      skeleton: isRemoteLocation(skeleton) ? skeleton : skeleton && path(skeleton),
      build: de.opt('build'),
      migrate: de.opt('migrate'),
      start: de.opt('start'),
      restart: de.opt('restart'),
      stop: de.opt('stop'),
      mailin: de.opt('mailin'),
      blobs: de.str('blobs'),
      maildir: de.str('maildir'),
      timeout: de.int('timeout'),
      startTimeout: de.int('start_timeout'),
    },
    customers,
    access: {
      public: ac.yes('public'),
      allow: ac
        .str('allow')
        .split(/[\s,]+/)
        .filter(Boolean),
      group: ac.str('group'),
    },
    mail: {
      postfix: path(ma.str('postfix')),
      queueDirectory: path(ma.str('queue_directory')),
      dataDirectory: path(ma.str('data_directory')),
      log: ((p) => p && path(p))(ma.opt('log')),
      listen: parseListen(ma.str('listen')) ?? { port: 25 },
      relay: ((r) => r && parseRelay(r))(ma.opt('relay')),
      user: ma.str('user'),
    },
    notify: {
      ...webhookOf(no.opt('webhook')),
      webhookSecret: ((s) => (s ? (addSecret(s), s) : undefined))(no.opt('webhook_secret')),
      mail: no
        .str('mail')
        .split(/[\s,]+/)
        .filter(Boolean),
      smtp: parseRelay(no.str('smtp')) ?? '[127.0.0.1]:25',
    },
    sync: {
      jobs: sy.int('jobs'),
      dumps: path(sy.str('dumps')),
      keep: sy.str('keep'),
      files: path(sy.str('files')),
    },
    cron: {
      poll: cr.str('poll'),
      sync: cr.str('sync'),
      mailin: cr.str('mailin'),
      watch: cr.str('watch'),
      user: cr.str('user') || userInfo().username,
      file: path(cr.str('file')),
    },
  };
  for (const rule of RULES) problems.push(...rule(cfg).map((p) => `${file}: ${p}`));

  if (problems.length > 0)
    throw new UsageError(
      `${file} has ${problems.length} problem${problems.length > 1 ? 's' : ''}: fix and run again`,
      problems,
    );
  return cfg;
}

/**
 * The named rules: what no single key can say on its own. Each returns its
 * problems; all of them are reported together with the keys' own.
 */
type Rule = (cfg: Config) => string[];

/** A folder karlstage writes inside the staging root must not sit where a branch site could be. */
const dataFoldersAreNotBranchSites: Rule = (cfg) =>
  (
    [
      ['[sync] dumps', cfg.sync.dumps],
      ['[sync] files', cfg.sync.files],
    ] as const
  ).flatMap(([key, dir]) => {
    const rel = relative(cfg.root, dir);
    const first = rel.split(sep)[0] ?? '';
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || nameProblem(first)) return [];
    return [
      `${key} = ${dir}: the folder ${first}/ is where a branch site named "${first}" would live; use a folder under .karlstage/ or outside the staging root`,
    ];
  });

/** The mail branch is a branch name (checked per key); a mail domain is needed to route mail. */
const customersAreDistinct: Rule = (cfg) => {
  const seen = new Set<string>();
  return cfg.customers.flatMap((c) => {
    if (seen.has(c.name)) return [`[customer:${c.name}] is given twice: keep one`];
    seen.add(c.name);
    return [];
  });
};

/** A customer syncs from one source: the live database or a backup, not both. */
const oneProductionSource: Rule = (cfg) =>
  cfg.customers
    .filter((c) => c.production && c.productionDump)
    .map(
      (c) =>
        `[customer:${c.name}] has both production and production_dump: keep the one the nightly sync should read`,
    );

/** Postfix's pipe refuses root and its own account; master.cf splits its argv on white space. */
const mailIsDeliverable: Rule = (cfg) => [
  ...(['root', 'postfix'].includes(cfg.mail.user)
    ? [
        `[mail] user = ${cfg.mail.user}: postfix never delivers as root or as postfix; name another user (nobody, or one of its own)`,
      ]
    : []),
];

const RULES: Rule[] = [
  dataFoldersAreNotBranchSites,
  customersAreDistinct,
  oneProductionSource,
  mailIsDeliverable,
];
