import { userInfo } from 'node:os';
import { addSecret } from '../core/redact.js';
import type { KeySpec } from './kinds.js';
import {
  list,
  ms,
  msOrOff,
  oneOf,
  optional,
  optionalPath,
  path,
  text,
  whole,
  yesNo,
  type Reader,
} from './readers.js';
import { isRemoteLocation, parseListen, parseRelay, splitPatterns, webhookOf } from './values.js';

/**
 * Every section and key karlstage.ini may hold, each declared once: its kind (checked by
 * kinds.ts), its default, whether it is required, a one-line description, the field of `Config`
 * it fills and how it is read (`field: 'basePort', read: whole`: cfg.staging.basePort, a
 * number). The compiler derives the `Config` type from these fields and readers (readers.ts).
 *
 * A key or section not listed here is refused (with a "did you mean" for a near miss), so a
 * misspelt key can never leave a default silently in force.
 *
 * A new key: one declaration here, its line (and comment) in templates/karlstage.ini, and
 * `npm run docs:config` to put it in docs/configuration.md's table; test/unit/config-keys.test.ts
 * checks that the template and the table agree with the declarations.
 */
export interface KeyDecl extends KeySpec {
  /** One line for docs/configuration.md's table (markdown). */
  doc: string;
  /** The default as the table shows it, where it is worked out rather than written here. */
  defaultText?: string;
  /** The field of its section in `Config` it fills; none: its reader returns several fields. */
  field?: string;
  read: Reader;
}

/** A whole number from min to max. */
const int = (def: number, min: number, max: number) =>
  ({ kind: 'int', default: String(def), min, max, read: whole }) as const;

/** One of the choices; the first is the default. */
const choice = <const C extends string>(choices: readonly [C, ...C[]]) =>
  ({ kind: 'choice', default: choices[0], choices, read: oneOf(choices) }) as const;

export const SECTIONS = {
  staging: {
    host: { kind: 'host', required: true, field: 'host', read: text, doc: 'the one TLS host' },
    base_port: {
      ...int(6500, 1024, 65000),
      field: 'basePort',
      doc: "branch site N's app listens on 127.0.0.1:(base_port + N)",
    },
    database: {
      kind: 'dsn',
      required: true,
      field: 'database',
      read: text,
      doc: 'where the staging databases live: libpq keywords or a `postgres://` URL (each branch × customer gets `ks_BRANCH_CUSTOMER`)',
    },
    tls_certificate: {
      kind: 'path',
      field: 'tlsCertificate',
      read: optionalPath,
      doc: "the TLS host's certificate",
    },
    tls_key: { kind: 'path', field: 'tlsKey', read: optionalPath, doc: 'its private key' },
    mail_domain: {
      kind: 'host',
      field: 'mailDomain',
      read: optional,
      doc: 'staged mail for CUSTOMER goes to CUSTOMER.mail_domain',
    },
    https_port: {
      ...int(443, 1, 65535),
      field: 'httpsPort',
      doc: 'where the web server listens for https',
    },
    http_port: {
      ...int(80, 1, 65535),
      field: 'httpPort',
      doc: 'where it listens for http (a redirect to https)',
    },
    listen_addresses: {
      kind: 'ips',
      default: '',
      field: 'listenAddresses',
      read: list,
      doc: 'the IP addresses it listens on, comma-separated (empty: every address); it answers only `host` and these (another name: 421)',
    },
    nginx_conf: {
      kind: 'path',
      default: '/etc/nginx/conf.d/karlstage.conf',
      field: 'nginxConf',
      read: path,
      doc: 'where `karlstage routes` installs the generated nginx configuration',
    },
    reload: {
      kind: 'command',
      default: 'nginx -s reload',
      field: 'reload',
      read: text,
      doc: 'how nginx reloads it',
    },
    nginx: {
      kind: 'command',
      default: 'nginx',
      field: 'nginx',
      read: text,
      doc: 'the nginx program that checks a new configuration first (`nginx -t`)',
    },
    routes: {
      ...choice(['auto', 'manual']),
      field: 'routes',
      doc: '`auto`: create, switch, destroy refresh the routes; `manual`: only `karlstage routes`',
    },
    manage_databases: {
      kind: 'yes-no',
      default: 'yes',
      field: 'manageDatabases',
      read: yesNo,
      doc: 'create makes and destroy drops the branch × customer databases (`no`: someone else does)',
    },
    testers: {
      kind: 'addresses',
      default: '',
      field: 'testers',
      read: list,
      doc: "the testers' mail addresses: the only ones staging may mail (every instance's `mail_white_list` file lists them)",
    },
    jobs: {
      ...int(2, 1, 64),
      field: 'jobs',
      doc: 'branch sites `update --all` works on at once',
    },
    stale_after: {
      ...int(30, 1, 3650),
      field: 'staleAfter',
      doc: 'days without an update after which a branch site is stale (`prune`)',
    },
    idle_after: {
      kind: 'duration',
      default: '4h',
      off: true,
      min: 60_000,
      max: 365 * 86_400_000,
      field: 'idleAfterMs',
      read: msOrOff,
      doc: 'a site with no logged-in request for this long sleeps (`90s`, `15m`, `4h`, `2d`; `off`: never); see [keeping sites up](keeping-sites-up.md)',
    },
    wake_wait: {
      kind: 'duration',
      default: '15s',
      min: 1_000,
      max: 300_000,
      field: 'wakeWaitMs',
      read: ms,
      doc: 'how long the first visitor of a sleeping site waits before a "waking up" page',
    },
  },
  source: {
    vcs: {
      ...choice(['git', 'svn']),
      field: 'vcs',
      doc: '`svn` or `git`',
    },
    url: {
      kind: 'url',
      required: true,
      field: 'url',
      read: text,
      doc: 'svn: the repository root (holding trunk/, branches/, tags/); git: the clone URL',
    },
    path: {
      kind: 'relative',
      default: 'src/karl',
      field: 'path',
      read: text,
      doc: 'where the source sits inside a branch site',
    },
    default: {
      kind: 'ref',
      defaultText: '`trunk` (svn), `main` (git)',
      field: 'default',
      read: (t, at) => t || (at.value('vcs') === 'svn' ? 'trunk' : 'main'),
      doc: 'the ref of a new branch site when `create` is given no `--ref`',
    },
    timeout: {
      ...int(120, 1, 86400),
      field: 'timeout',
      doc: 'seconds a network operation (clone, fetch, svn info) may take',
    },
    retries: {
      ...int(2, 0, 10),
      field: 'retries',
      doc: 'how often a failed network operation is tried again (with backoff)',
    },
  },
  deployment: {
    skeleton: {
      kind: 'location',
      required: true,
      field: 'skeleton',
      read: (t, at) => (isRemoteLocation(t) ? t : t && path(t, at)),
      doc: 'what every branch site starts from: a local folder, or a git URL (`git+https://…`)',
    },
    build: {
      kind: 'command',
      field: 'build',
      read: optional,
      doc: 'the build command (see [deployment commands](#deployment-commands))',
    },
    migrate: { kind: 'command', field: 'migrate', read: optional, doc: 'the migrate command' },
    start: { kind: 'command', field: 'start', read: optional, doc: 'starts the app' },
    restart: { kind: 'command', field: 'restart', read: optional, doc: 'restarts the app' },
    stop: { kind: 'command', field: 'stop', read: optional, doc: 'stops the app' },
    mailin: {
      kind: 'command',
      field: 'mailin',
      read: optional,
      doc: "mail-in, run by cron per customer in its mail branch (the customer's name appended)",
    },
    blobs: {
      kind: 'relative',
      default: 'var/blobs',
      field: 'blobs',
      read: text,
      doc: "where a branch site keeps each customer's files (BRANCH/var/blobs/CUSTOMER)",
    },
    maildir: {
      kind: 'relative',
      default: 'var/mail',
      field: 'maildir',
      read: text,
      doc: "where a branch site keeps each customer's staged mail-in (a Maildir per customer)",
    },
    timeout: {
      ...int(3600, 1, 7 * 86400),
      field: 'timeout',
      doc: 'seconds each deployment command may take',
    },
    start_timeout: {
      ...int(120, 1, 86400),
      field: 'startTimeout',
      doc: 'seconds a start or restart may take until the app answers HTTP on its port (it also bounds stop)',
    },
  },
  cron: {
    poll: {
      kind: 'schedule',
      default: '*/5 * * * *',
      field: 'poll',
      read: text,
      doc: 'when cron runs `poll --build`',
    },
    sync: {
      kind: 'schedule',
      default: '0 2 * * *',
      field: 'sync',
      read: text,
      doc: 'when cron runs the nightly sync',
    },
    mailin: {
      kind: 'schedule',
      default: '*/2 * * * *',
      field: 'mailin',
      read: text,
      doc: 'when cron runs mail-in',
    },
    // Restart what should run and does not answer; put idle sites to sleep; keep the wake service up.
    watch: {
      kind: 'schedule',
      default: '* * * * *',
      field: 'watch',
      read: text,
      doc: 'when cron runs `watch` (an `@reboot` line runs `watch --boot`)',
    },
    user: {
      kind: 'user',
      defaultText: 'you',
      field: 'user',
      read: (t) => t || userInfo().username,
      doc: "the cron.d file's user field: who the jobs run as",
    },
    file: {
      kind: 'path',
      default: '/etc/cron.d/karlstage',
      field: 'file',
      read: path,
      doc: 'where `karlstage cron --install` writes the lines',
    },
  },
  access: {
    // Who may open the one TLS host: users managed by "karlstage access" (locked, the default),
    // or, only when written here, anyone (public = yes).
    public: {
      kind: 'yes-no',
      default: 'no',
      field: 'public',
      read: yesNo,
      doc: '`yes`: serve the TLS host without a login (production data included)',
    },
    allow: {
      kind: 'cidrs',
      default: '',
      field: 'allow',
      read: list,
      doc: 'addresses and CIDRs let in without a password (`10.0.0.0/8, 192.0.2.7`)',
    },
    group: {
      kind: 'user',
      default: 'www-data',
      field: 'group',
      read: text,
      doc: "the group of nginx's workers, which may read the password hashes",
    },
  },
  mail: {
    postfix: {
      kind: 'path',
      default: '/etc/postfix',
      field: 'postfix',
      read: path,
      doc: 'the postfix configuration folder `mail --install` writes',
    },
    queue_directory: {
      kind: 'path',
      default: '/var/spool/postfix',
      field: 'queueDirectory',
      read: path,
      doc: "postfix's queue",
    },
    data_directory: {
      kind: 'path',
      default: '/var/lib/postfix',
      field: 'dataDirectory',
      read: path,
      doc: "postfix's data folder",
    },
    log: {
      kind: 'path',
      field: 'log',
      read: optionalPath,
      doc: "postfix's log file (none: syslog)",
    },
    // Where postfix takes mail: staged mail-in from outside, mail-out from the branch sites.
    listen: {
      kind: 'listen',
      default: '25',
      field: 'listen',
      read: (t) => parseListen(t) ?? { port: 25 },
      doc: 'where postfix takes mail: `PORT`, `ADDRESS:PORT`, `[IPV6]:PORT`',
    },
    relay: {
      kind: 'relay',
      field: 'relay',
      read: parseRelay,
      doc: "where tester mail goes: `HOST`, `HOST:PORT`, `[HOST]:PORT` (none: the testers' MX)",
    },
    user: {
      kind: 'user',
      default: 'nobody',
      field: 'user',
      read: text,
      doc: 'who delivers (owns the Maildirs); root and postfix are refused',
    },
  },
  notify: {
    // JSON POSTed on a failure, a new build, a recovery (see the README for the payload).
    webhook: {
      kind: 'http-url',
      read: webhookOf, // fills webhook and webhookAuth
      doc: 'an `http(s)://` address POSTed each event (JSON); a secret but for its scheme and host; `user:password@` in it goes as an `Authorization` header',
    },
    // Sent as an HMAC-SHA256 signature of the body (X-Karlstage-Signature: sha256=HEX).
    webhook_secret: {
      kind: 'secret',
      field: 'webhookSecret',
      read: (t) => (t ? (addSecret(t), t) : undefined),
      doc: 'signs the body (HMAC-SHA256, `X-Karlstage-Signature`); never printed',
    },
    mail: {
      kind: 'addresses',
      default: '',
      field: 'mail',
      read: list,
      doc: 'addresses mailed the same events',
    },
    smtp: {
      kind: 'relay',
      default: '[127.0.0.1]:25',
      field: 'smtp',
      read: (t) => parseRelay(t) ?? '[127.0.0.1]:25',
      doc: 'the mail server for them',
    },
  },
  sync: {
    jobs: { ...int(2, 1, 32), field: 'jobs', doc: 'pg_dump / pg_restore parallelism' },
    dumps: {
      kind: 'path',
      default: '.karlstage/dumps',
      field: 'dumps',
      read: path,
      doc: 'where dumps are kept',
    },
    keep: {
      kind: 'keep',
      default: '3 daily, 2 weekly, 1 monthly, 1 half-yearly, 1 yearly',
      field: 'keep',
      read: text,
      doc: 'which dumps to keep',
    },
    files: {
      kind: 'path',
      default: '.karlstage/files',
      field: 'files',
      read: path,
      doc: "the local mirror of each customer's production files",
    },
  },
} as const satisfies Record<string, Record<string, KeyDecl>>;

/** [customer:NAME]: one per customer. */
export const CUSTOMER = {
  production: {
    kind: 'dsn',
    field: 'production',
    read: optional,
    doc: 'read-only source of the nightly sync (libpq keywords or a URL)',
  },
  production_dump: {
    kind: 'path',
    field: 'productionDump',
    read: optionalPath,
    doc: 'a backup file or glob to sync from instead (the newest match)',
  },
  production_files: {
    kind: 'text',
    field: 'productionFiles',
    read: optional,
    doc: "the customer's files, rsync'ed nightly (a path or host:path)",
  },
  sanitize: {
    kind: 'path',
    field: 'sanitize',
    read: optionalPath,
    doc: 'SQL run on the restored copy before any branch site sees it',
  },
  mail_branch: {
    kind: 'name',
    default: 'branch1',
    field: 'mailBranch',
    read: text,
    doc: "the branch site receiving this customer's staged mail",
  },
  staging_on_production_server: {
    kind: 'yes-no',
    default: 'no',
    field: 'stagingOnProductionServer',
    read: yesNo,
    doc: "`yes`: the operator allows the staging databases on this customer's production cluster (each write is then checked by OID)",
  },
  must_not_contain: {
    kind: 'patterns',
    default: '',
    field: 'mustNotContain',
    read: splitPatterns,
    doc: 'words or `/regexes/` a sanitized copy must not contain (checked before it is used)',
  },
} as const satisfies Record<string, KeyDecl>;

export const CUSTOMER_PREFIX = 'customer:';

/** Keys that were renamed: the old name is refused with the new one (a config means what it says). */
export const RENAMED: Record<string, Record<string, string>> = {
  // "allow list" was both [access] allow and this; the testers' list has its own name now.
  staging: { mail_allow: 'testers' },
};
