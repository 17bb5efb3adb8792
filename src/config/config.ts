import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import leven from 'leven';
import { parseDsn } from '../core/dsn.js';
import { UsageError } from '../core/errors.js';
import { readIni, type IniProblem, type IniSection } from '../core/ini-read.js';
import { addSecret, looksLikeToken } from '../core/redact.js';
import { userinfo } from '../core/url.js';
import { kindProblem, UNSHOWN, type KeySpec } from './kinds.js';
import { checkName, nameProblem } from './names.js';
import { readSection, type FieldsOf } from './readers.js';
import { CUSTOMER, CUSTOMER_PREFIX, SECTIONS, RENAMED } from './schema.js';

export { isRemoteLocation, parseListen, parseRelay, splitPatterns, webhookOf } from './values.js';

/**
 * karlstage.ini, read strictly: every line, section and key is one the schema
 * (schema.ts) knows, every value is of its kind, and the named rules below
 * hold — or the file is refused (exit 2) with every problem at once, each
 * with its file, line, section and key. A configuration means exactly what it
 * says, or nothing runs.
 */
export const CONFIG_NAME = 'karlstage.ini';

type Sections = typeof SECTIONS;

/**
 * The configuration as read: one object per section, whose fields are what its keys'
 * declarations fill (schema.ts: `base_port` → `staging.basePort`, a number). The compiler
 * works the types out from the declarations; nothing here lists a key again.
 */
export type SectionsConfig = { -readonly [S in keyof Sections]: FieldsOf<Sections[S]> };

/** One [customer:NAME] section: its name, and the fields its keys fill (schema.ts, CUSTOMER). */
export interface CustomerConfig extends FieldsOf<typeof CUSTOMER> {
  name: string;
}

export interface Config extends SectionsConfig {
  /** The file read, and its folder: the staging root. */
  file: string;
  root: string;
  customers: CustomerConfig[];
}

export type VcsKind = Config['source']['vcs'];

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

/** " (did you mean X?)" for a near miss among the known names, else "". */
function didYouMean(word: string, known: string[]): string {
  const near = known
    .map((k) => ({ k, d: leven(word.toLowerCase(), k) }))
    .filter(({ k, d }) => d <= Math.max(1, Math.floor(k.length / 3)))
    .sort((a, b) => a.d - b.d)[0];
  return near ? ` (did you mean ${near.k}?)` : '';
}

/** Where a problem is, "FILE:LINE: [section] key" — as much of it as there is; and the problems. */
class Problems {
  readonly list: string[] = [];
  constructor(readonly file: string) {}
  at(line: number, section?: string, key?: string): string {
    return [`${this.file}:${line}:`, section && `[${section}]`, key].filter(Boolean).join(' ');
  }
  add(...found: string[]): void {
    this.list.push(...found);
  }
}

/** A line the ini reader could not take. */
function unreadable(p: IniProblem, problems: Problems): string {
  const where = problems.at(p.line, p.section, p.key);
  return p.key === 'mail_branch' && /given twice/.test(p.message)
    ? `${where} is given twice: a customer has exactly one mail branch ("karlstage mail CUSTOMER BRANCH" moves it)`
    : `${where}${p.section || p.key ? ':' : ''} ${p.message}`;
}

/** One section's keys, each checked against its declaration: the values given, by key. */
function checkSection(
  s: IniSection,
  spec: Record<string, KeySpec>,
  problems: Problems,
): Map<string, string> {
  const given = new Map<string, string>();
  for (const e of s.entries) {
    const keySpec = spec[e.key];
    if (!keySpec) {
      const shown = s.name.startsWith(CUSTOMER_PREFIX) ? `${CUSTOMER_PREFIX}NAME` : s.name;
      const renamed = RENAMED[s.name]?.[e.key];
      problems.add(
        renamed
          ? `${problems.at(e.line, s.name, e.key)}: renamed: write ${renamed} = … instead`
          : `${problems.at(e.line, s.name, e.key)}: not a key of [${shown}]${didYouMean(e.key, Object.keys(spec))}`,
      );
      continue;
    }
    if (e.value !== '') {
      const problem = kindProblem(keySpec, e.value, `[${s.name}] ${e.key}`);
      // A connection string or URL may hold a password: never echoed.
      const shown = UNSHOWN.has(keySpec.kind) ? '' : ` = ${e.value}`;
      if (problem) problems.add(`${problems.at(e.line, s.name, e.key)}${shown}: ${problem}`);
    }
    given.set(e.key, e.value);
  }
  for (const [key, keySpec] of Object.entries(spec))
    if (keySpec.required && !given.get(key))
      problems.add(`${problems.at(s.line, s.name, key)} is required`);
  return given;
}

/** A key's text: as given, else its default, else "". */
const textIn =
  (given: Map<string, string>, spec: Record<string, KeySpec>) =>
  (key: string): string =>
    given.get(key) || spec[key]?.default || '';

/** Validate the whole file at once: every problem is reported, each with file, line, section and key. */
export function parseConfig(text: string, file: string): Config {
  const root = dirname(file);
  const problems = new Problems(file);
  const { sections, problems: unreadableLines } = readIni(text);
  for (const p of unreadableLines) problems.add(unreadable(p, problems));

  const known = [...Object.keys(SECTIONS), `${CUSTOMER_PREFIX}NAME`];
  const bySection = new Map<string, Map<string, string>>();
  const customers: CustomerConfig[] = [];
  for (const s of sections) {
    if (s.name.startsWith(CUSTOMER_PREFIX)) {
      const name = s.name.slice(CUSTOMER_PREFIX.length);
      const bad = nameProblem(name);
      if (bad) {
        problems.add(`${problems.at(s.line, s.name)}: customer name not allowed: ${bad}`);
        continue;
      }
      const given = checkSection(s, CUSTOMER, problems);
      customers.push({ name, ...readSection(CUSTOMER, textIn(given, CUSTOMER), root) });
      continue;
    }
    const spec = (SECTIONS as Record<string, Record<string, KeySpec>>)[s.name];
    if (!spec) {
      problems.add(
        `${problems.at(s.line, s.name)}: not a known section${didYouMean(s.name, known)}`,
      );
      continue;
    }
    bySection.set(s.name, checkSection(s, spec, problems));
  }
  for (const name of ['staging', 'source', 'deployment'])
    if (!bySection.has(name)) problems.add(`${file}: section [${name}] is missing`);

  const read = Object.fromEntries(
    Object.entries(SECTIONS).map(([name, declared]) => {
      const given = bySection.get(name) ?? new Map<string, string>();
      return [name, readSection(declared, textIn(given, declared), root)];
    }),
  ) as SectionsConfig;
  const cfg: Config = { file, root, ...read, customers };
  for (const rule of RULES) problems.add(...rule(cfg).map((p) => `${file}: ${p}`));

  const n = problems.list.length;
  if (n > 0)
    throw new UsageError(
      `${file} has ${n} problem${n > 1 ? 's' : ''}: fix and run again`,
      problems.list,
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

/**
 * A configured customer by name (checked first), or the one refusal that says there is none:
 * `hint` says what to do where the name came from (a flag, an argument).
 */
export function configuredCustomer(cfg: Config, name: string, hint = ''): CustomerConfig {
  const c = cfg.customers.find((x) => x.name === checkName('customer', name));
  if (!c)
    throw new UsageError(`there is no [customer:${name}] in ${cfg.file}${hint ? `: ${hint}` : ''}`);
  return c;
}
