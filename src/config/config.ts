import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { scheduleProblem } from '../core/cron-schedule.js';
import { duplicateKeys } from '../core/ini-edit.js';
import { parseKeep } from './keep.js';
import { parse } from 'ini';
import { UsageError } from '../core/errors.js';
import { nameProblem } from './names.js';
import { addSecret } from '../core/redact.js';
import { parseDsn } from '../core/dsn.js';

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
    /** Run by cron, per customer, in that customer's mail branch only (the customer is the last argument). */
    mailin?: string;
    timeout: number;
  };
  customers: CustomerConfig[];
  cron: { poll: string; sync: string; mailin: string; user: string; file: string };
  sync: { jobs: number; dumps: string; keep: string; files: string };
}

type Section = Record<string, unknown>;

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

export function loadConfig(explicit?: string, cwd = process.cwd()): Config {
  const file = findConfig(explicit, cwd);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  return parseConfig(text, file);
}

/** Validate the whole file at once: every problem is reported, each with file, section and key. */
export function parseConfig(text: string, file: string): Config {
  // ini does not allow a comment after a section header; people write one anyway.
  const cleaned = text.replace(/^(\s*\[[^\]]*\])\s*[;#].*$/gm, '$1');
  const raw = parse(cleaned) as Record<string, unknown>;
  const problems: string[] = [];
  const root = dirname(file);
  const at = (section: string, key: string) => `${file}: [${section}] ${key}`;

  const section = (name: string, required: boolean): Section => {
    const s = raw[name];
    if (s && typeof s === 'object') return s as Section;
    if (required) problems.push(`${file}: section [${name}] is missing`);
    return {};
  };
  const str = (s: Section, sec: string, key: string, fallback?: string): string => {
    const v = s[key];
    if (v === undefined || v === '') {
      if (fallback === undefined) problems.push(`${at(sec, key)} is required`);
      return fallback ?? '';
    }
    // The ini parser turns true, false and null into values; here they are words (false is a command).
    if (typeof v === 'boolean' || v === null) return String(v);
    if (typeof v !== 'string') {
      problems.push(`${at(sec, key)} must be a single value`);
      return fallback ?? '';
    }
    return v.trim();
  };
  const opt = (s: Section, sec: string, key: string): string | undefined => {
    const v = str(s, sec, key, '');
    return v === '' ? undefined : v;
  };
  const int = (
    s: Section,
    sec: string,
    key: string,
    fallback: number,
    min: number,
    max: number,
  ) => {
    const v = str(s, sec, key, String(fallback));
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) {
      problems.push(`${at(sec, key)} = ${v}: expected a whole number from ${min} to ${max}`);
      return fallback;
    }
    return n;
  };
  const path = (p: string) => (isAbsolute(p) ? p : resolve(root, p));

  const st = section('staging', true);
  const cr = section('cron', false);
  const sy = section('sync', false);
  const so = section('source', true);
  const de = section('deployment', true);

  const host = str(st, 'staging', 'host');
  if (host && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(host))
    problems.push(
      `${at('staging', 'host')} = ${host}: expected a host name such as karltest.example.com`,
    );
  const database = str(st, 'staging', 'database');
  if (database) {
    try {
      const dsn = parseDsn(database);
      addSecret(dsn.password);
    } catch (e) {
      problems.push(`${at('staging', 'database')}: ${(e as Error).message}`);
    }
  }

  const vcs = str(so, 'source', 'vcs', 'git');
  if (vcs !== 'git' && vcs !== 'svn')
    problems.push(`${at('source', 'vcs')} = ${vcs}: expected git or svn`);
  const srcPath = str(so, 'source', 'path', 'src/karl');
  if (isAbsolute(srcPath) || srcPath.split(/[\\/]/).some((p) => p === '..' || p === ''))
    problems.push(
      `${at('source', 'path')} = ${srcPath}: expected a relative path inside the branch site`,
    );

  const cfg: Config = {
    file,
    root,
    staging: {
      host,
      basePort: int(st, 'staging', 'base_port', 6500, 1024, 65000),
      database,
      httpsPort: int(st, 'staging', 'https_port', 443, 1, 65535),
      httpPort: int(st, 'staging', 'http_port', 80, 1, 65535),
      tlsCertificate: opt(st, 'staging', 'tls_certificate'),
      tlsKey: opt(st, 'staging', 'tls_key'),
      mailDomain: opt(st, 'staging', 'mail_domain'),
      nginxConf: str(st, 'staging', 'nginx_conf', '/etc/nginx/conf.d/karlstage.conf'),
      reload: str(st, 'staging', 'reload', 'nginx -s reload'),
      nginx: str(st, 'staging', 'nginx', 'nginx'),
      routes: str(st, 'staging', 'routes', 'auto') === 'manual' ? 'manual' : 'auto',
      manageDatabases: str(st, 'staging', 'manage_databases', 'yes') !== 'no',
      mailAllow: str(st, 'staging', 'mail_allow', '')
        .split(/[\s,]+/)
        .filter(Boolean),
      jobs: int(st, 'staging', 'jobs', 2, 1, 64),
    },
    source: {
      vcs: vcs === 'svn' ? 'svn' : 'git',
      url: str(so, 'source', 'url'),
      path: srcPath,
      default: str(so, 'source', 'default', vcs === 'svn' ? 'trunk' : 'main'),
      timeout: int(so, 'source', 'timeout', 120, 1, 86400),
      retries: int(so, 'source', 'retries', 2, 0, 10),
    },
    deployment: {
      skeleton: '',
      build: opt(de, 'deployment', 'build'),
      migrate: opt(de, 'deployment', 'migrate'),
      start: opt(de, 'deployment', 'start'),
      restart: opt(de, 'deployment', 'restart'),
      stop: opt(de, 'deployment', 'stop'),
      mailin: opt(de, 'deployment', 'mailin'),
      blobs: str(de, 'deployment', 'blobs', 'var/blobs'),
      timeout: int(de, 'deployment', 'timeout', 3600, 1, 7 * 86400),
    },
    customers: [],
    sync: {
      jobs: int(sy, 'sync', 'jobs', 2, 1, 32),
      dumps: path(str(sy, 'sync', 'dumps', '.karlstage/dumps')),
      keep: str(sy, 'sync', 'keep', '3 daily, 2 weekly, 1 monthly, 1 half-yearly, 1 yearly'),
      files: path(str(sy, 'sync', 'files', '.karlstage/files')),
    },
    cron: {
      poll: str(cr, 'cron', 'poll', '*/5 * * * *'),
      sync: str(cr, 'cron', 'sync', '0 2 * * *'),
      mailin: str(cr, 'cron', 'mailin', '*/2 * * * *'),
      user: str(cr, 'cron', 'user', userInfo().username),
      file: str(cr, 'cron', 'file', '/etc/cron.d/karlstage'),
    },
  };
  if (isAbsolute(cfg.deployment.blobs) || cfg.deployment.blobs.split('/').includes('..'))
    problems.push(
      `${at('deployment', 'blobs')} = ${cfg.deployment.blobs}: expected a relative path inside the branch site`,
    );
  const manage = str(st, 'staging', 'manage_databases', 'yes');
  if (manage !== 'yes' && manage !== 'no')
    problems.push(`${at('staging', 'manage_databases')} = ${manage}: expected yes or no`);
  const routes = str(st, 'staging', 'routes', 'auto');
  if (routes !== 'auto' && routes !== 'manual')
    problems.push(`${at('staging', 'routes')} = ${routes}: expected auto or manual`);
  for (const a of cfg.staging.mailAllow)
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(a))
      problems.push(`${at('staging', 'mail_allow')}: "${a}" is not a mail address`);
  if (cfg.staging.mailDomain && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(cfg.staging.mailDomain))
    problems.push(
      `${at('staging', 'mail_domain')} = ${cfg.staging.mailDomain}: expected a domain name`,
    );
  for (const d of duplicateKeys(cleaned))
    problems.push(
      d.key === 'mail_branch'
        ? `${file}: [${d.section}] mail_branch is given twice: a customer has exactly one mail branch ("karlstage mail CUSTOMER BRANCH" moves it)`
        : `${file}: [${d.section}] ${d.key} is given twice: keep one`,
    );
  try {
    parseKeep(cfg.sync.keep);
  } catch (e) {
    problems.push(`${at('sync', 'keep')} = ${cfg.sync.keep}: ${(e as Error).message}`);
  }
  for (const key of ['poll', 'sync', 'mailin'] as const) {
    const problem = scheduleProblem(cfg.cron[key]);
    if (problem) problems.push(`${at('cron', key)} = ${cfg.cron[key]}: ${problem}`);
  }
  if (!/^[a-z_][a-z0-9_-]*$/i.test(cfg.cron.user))
    problems.push(`${at('cron', 'user')} = ${cfg.cron.user}: expected a user name`);
  cfg.cron.file = path(cfg.cron.file);
  const skeleton = str(de, 'deployment', 'skeleton');
  cfg.deployment.skeleton = isRemoteLocation(skeleton) ? skeleton : skeleton && path(skeleton);

  for (const [name, value] of Object.entries(raw)) {
    if (!name.startsWith('customer:') || typeof value !== 'object' || !value) continue;
    const customer = name.slice('customer:'.length);
    const problem = nameProblem(customer);
    if (problem) {
      problems.push(`${file}: [${name}]: customer name not allowed: ${problem}`);
      continue;
    }
    const s = value as Section;
    const mailBranch = str(s, name, 'mail_branch', 'branch1');
    const mp = nameProblem(mailBranch);
    if (mp) problems.push(`${at(name, 'mail_branch')} = ${mailBranch}: ${mp}`);
    const production = opt(s, name, 'production');
    if (production) {
      try {
        addSecret(parseDsn(production).password);
      } catch (e) {
        problems.push(`${at(name, 'production')}: ${(e as Error).message}`);
      }
    }
    const sanitize = opt(s, name, 'sanitize');
    const shared = str(s, name, 'staging_on_production_server', 'no');
    if (shared !== 'yes' && shared !== 'no')
      problems.push(`${at(name, 'staging_on_production_server')} = ${shared}: expected yes or no`);
    cfg.customers.push({
      name: customer,
      production,
      productionFiles: opt(s, name, 'production_files'),
      productionDump: ((d) => d && path(d))(opt(s, name, 'production_dump')),
      sanitize: sanitize && path(sanitize),
      mailBranch,
      stagingOnProductionServer: shared === 'yes',
    });
  }

  if (problems.length > 0)
    throw new UsageError(
      `${file} has ${problems.length} problem${problems.length > 1 ? 's' : ''}: fix and run again`,
      problems,
    );
  return cfg;
}

/** A skeleton or repository given as a URL rather than a local folder. */
export function isRemoteLocation(location: string): boolean {
  return /^(git\+)?[a-z][a-z0-9+.-]*:\/\//i.test(location) || /^[\w.-]+@[\w.-]+:/.test(location);
}
