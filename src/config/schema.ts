/**
 * Every section and key karlstage.ini may hold: its kind, its default, and
 * whether it is required. A key or section not listed here is refused (with
 * a "did you mean" for a near miss), so a misspelt key can never leave a
 * default silently in force. templates/karlstage.ini explains each key, the
 * README's table lists them all.
 */
export type Kind =
  | 'text' // any single line
  | 'host' // a host name
  | 'int'
  | 'yes-no'
  | 'choice'
  | 'dsn' // a libpq connection string
  | 'path' // relative to the file's folder
  | 'relative' // a relative path inside a branch site
  | 'location' // a local folder or a URL
  | 'url' // a repository URL (or local path for svn file:// / git)
  | 'command' // a command line, split without a shell
  | 'schedule' // a cron schedule
  | 'keep' // a retention policy
  | 'addresses' // mail addresses, comma-separated
  | 'name' // a branch or customer name
  | 'user' // a system user name
  | 'cidrs' // IP addresses or CIDR blocks, comma-separated
  | 'ips' // IP addresses, comma-separated
  | 'listen' // PORT, or ADDRESS:PORT ([ADDRESS]:PORT for IPv6)
  | 'relay' // HOST, HOST:PORT or [HOST]:PORT (brackets: no MX lookup)
  | 'ref' // a ref of the source repository
  | 'patterns' // words or /regular expressions/, comma-separated
  | 'http-url' // an http:// or https:// address
  | 'duration' // 90s, 15m, 4h, 2d (or seconds); `off` where the spec allows it
  | 'secret'; // a password or token: never echoed

export interface KeySpec {
  kind: Kind;
  default?: string;
  required?: boolean;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** A duration that may be switched off with `off`. */
  off?: boolean;
}

const int = (def: number, min: number, max: number): KeySpec => ({
  kind: 'int',
  default: String(def),
  min,
  max,
});

export const SECTIONS: Record<string, Record<string, KeySpec>> = {
  staging: {
    host: { kind: 'host', required: true },
    base_port: int(6500, 1024, 65000),
    database: { kind: 'dsn', required: true },
    tls_certificate: { kind: 'path' },
    tls_key: { kind: 'path' },
    mail_domain: { kind: 'host' },
    https_port: int(443, 1, 65535),
    http_port: int(80, 1, 65535),
    // The addresses the TLS host listens on (and answers for besides its name); empty: every one.
    listen_addresses: { kind: 'ips', default: '' },
    nginx_conf: { kind: 'path', default: '/etc/nginx/conf.d/karlstage.conf' },
    reload: { kind: 'command', default: 'nginx -s reload' },
    nginx: { kind: 'command', default: 'nginx' },
    routes: { kind: 'choice', default: 'auto', choices: ['auto', 'manual'] },
    manage_databases: { kind: 'yes-no', default: 'yes' },
    mail_allow: { kind: 'addresses', default: '' },
    jobs: int(2, 1, 64),
    // A branch site not updated for this many days is stale ("karlstage prune" lists it).
    stale_after: int(30, 1, 3650),
    // A site with no logged-in request through the TLS host for this long sleeps (`off`: never).
    idle_after: { kind: 'duration', default: '4h', off: true, min: 60_000, max: 365 * 86_400_000 },
    // How long the first visitor of a sleeping site waits for it before a "waking up" page.
    wake_wait: { kind: 'duration', default: '15s', min: 1_000, max: 300_000 },
  },
  source: {
    vcs: { kind: 'choice', default: 'git', choices: ['git', 'svn'] },
    url: { kind: 'url', required: true },
    path: { kind: 'relative', default: 'src/karl' },
    default: { kind: 'ref' },
    timeout: int(120, 1, 86400),
    retries: int(2, 0, 10),
  },
  deployment: {
    skeleton: { kind: 'location', required: true },
    build: { kind: 'command' },
    migrate: { kind: 'command' },
    start: { kind: 'command' },
    restart: { kind: 'command' },
    stop: { kind: 'command' },
    mailin: { kind: 'command' },
    blobs: { kind: 'relative', default: 'var/blobs' },
    // Where a branch site keeps each customer's staged mail-in: BRANCH/<maildir>/CUSTOMER (a Maildir).
    maildir: { kind: 'relative', default: 'var/mail' },
    timeout: int(3600, 1, 7 * 86400),
    // Seconds a start or restart may take until the app answers HTTP on its port.
    start_timeout: int(120, 1, 86400),
  },
  cron: {
    poll: { kind: 'schedule', default: '*/5 * * * *' },
    sync: { kind: 'schedule', default: '0 2 * * *' },
    mailin: { kind: 'schedule', default: '*/2 * * * *' },
    // Restart what should run and does not answer; put idle sites to sleep; keep the wake service up.
    watch: { kind: 'schedule', default: '* * * * *' },
    user: { kind: 'user' },
    file: { kind: 'path', default: '/etc/cron.d/karlstage' },
  },
  access: {
    // Who may open the one TLS host: users managed by "karlstage access" (locked, the default),
    // or, only when written here, anyone (public = yes).
    public: { kind: 'yes-no', default: 'no' },
    // Addresses let in without a password (monitoring, the office).
    allow: { kind: 'cidrs', default: '' },
    // The group of the web server's workers: it may read the password hashes, nobody else.
    group: { kind: 'user', default: 'www-data' },
  },
  mail: {
    // The postfix configuration folder "karlstage mail --install" writes main.cf and master.cf to.
    postfix: { kind: 'path', default: '/etc/postfix' },
    queue_directory: { kind: 'path', default: '/var/spool/postfix' },
    data_directory: { kind: 'path', default: '/var/lib/postfix' },
    // Postfix's own log file; empty: syslog.
    log: { kind: 'path' },
    // Where postfix takes mail: staged mail-in from outside, mail-out from the branch sites.
    listen: { kind: 'listen', default: '25' },
    // Where mail to the testers of [staging] mail_allow goes; empty: straight to their MX.
    relay: { kind: 'relay' },
    // The user the delivery runs as (owns the Maildirs); never root or postfix.
    user: { kind: 'user', default: 'nobody' },
  },
  notify: {
    // JSON POSTed on a failure, a new build, a recovery (see the README for the payload).
    webhook: { kind: 'http-url' },
    // Sent as an HMAC-SHA256 signature of the body (X-Karlstage-Signature: sha256=HEX).
    webhook_secret: { kind: 'secret' },
    // Addresses mailed the same events, through `smtp`.
    mail: { kind: 'addresses', default: '' },
    smtp: { kind: 'relay', default: '[127.0.0.1]:25' },
  },
  sync: {
    jobs: int(2, 1, 32),
    dumps: { kind: 'path', default: '.karlstage/dumps' },
    keep: { kind: 'keep', default: '3 daily, 2 weekly, 1 monthly, 1 half-yearly, 1 yearly' },
    files: { kind: 'path', default: '.karlstage/files' },
  },
};

/** [customer:NAME]: one per customer. */
export const CUSTOMER: Record<string, KeySpec> = {
  production: { kind: 'dsn' },
  production_dump: { kind: 'path' },
  production_files: { kind: 'text' },
  sanitize: { kind: 'path' },
  mail_branch: { kind: 'name', default: 'branch1' },
  staging_on_production_server: { kind: 'yes-no', default: 'no' },
  // What a sanitized copy must never contain (real mail domains, say): checked before it is used.
  must_not_contain: { kind: 'patterns', default: '' },
};

export const CUSTOMER_PREFIX = 'customer:';
