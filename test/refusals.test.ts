// Covers: src/config/ src/commands/ src/context/ src/core/duration.ts
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { gitRepo, svnRepo } from './helpers/repos.js';
import { buildCount, stagingServer } from './helpers/staging.js';

/**
 * The corpus of bad configuration and bad input we keep: every case is
 * refused with exit 2, one clear message naming what to fix, and nothing
 * changed on disk. A configuration means exactly what it says, or nothing runs.
 */

/** A change to the good karlstage.ini, the command that must refuse it, and what it must say. */
interface ConfigCase {
  name: string;
  edit: (ini: string) => string;
  says: RegExp;
  /** The command that reads it (default: status; every command checks the whole file). */
  args?: string[];
}

const inSection = (section: string, line: string) => (ini: string) =>
  ini.replace(`[${section}]\n`, `[${section}]\n${line}\n`);
const replace = (key: string, value: string) => (ini: string) =>
  ini.replace(new RegExp(`^${key} =.*$`, 'm'), `${key} = ${value}`);

const configCases: ConfigCase[] = [
  {
    name: 'a misspelt key (manage_database)',
    edit: inSection('staging', 'manage_database = no'),
    says: /:\d+: \[staging\] manage_database: not a key of \[staging\] \(did you mean manage_databases\?\)/,
  },
  {
    name: 'a misspelt key (rotues)',
    edit: inSection('staging', 'rotues = manual'),
    says: /\[staging\] rotues: not a key of \[staging\] \(did you mean routes\?\)/,
  },
  {
    name: 'a misspelt customer key (prodution)',
    edit: inSection('customer:osf', 'prodution = host=db dbname=x'),
    says: /\[customer:osf\] prodution: not a key of \[customer:NAME\] \(did you mean production\?\)/,
  },
  {
    name: 'a line without "="',
    edit: inSection('staging', 'just some words'),
    says: /:\d+: not a \[section\], key = value or comment: just some words/,
  },
  {
    name: 'an unknown section',
    edit: (ini) => `${ini}\n[stagging]\nhost = x\n`,
    says: /:\d+: \[stagging\]: not a known section \(did you mean staging\?\)/,
  },
  {
    name: 'a key outside any section',
    edit: (ini) => `jobs = 4\n${ini}`,
    says: /:1: jobs: jobs is outside any \[section\]: move it into one/,
  },
  {
    name: 'shell syntax in migrate (refused by every command, not only update)',
    edit: replace('migrate', 'bin/karlserve evolve && rm -rf /'),
    says: /\[deployment\] migrate = bin\/karlserve evolve && rm -rf \/: shell syntax is not run; put it in a script and name the script/,
  },
  {
    name: 'shell syntax in the reload command',
    edit: replace('reload', 'nginx -s reload; echo done'),
    says: /\[staging\] reload = .*: shell syntax is not run/,
  },
  {
    name: 'an unknown libpq keyword',
    edit: replace('database', 'host=db.example.com user=karl bogus=1'),
    says: /\[staging\] database: "bogus" is not a libpq connection keyword/,
  },
  {
    name: 'a libpq keyword that cannot be passed on safely',
    edit: replace('database', 'host=db.example.com user=karl keepalives=0'),
    says: /"keepalives" cannot be passed on safely here: put it in a libpq service file and write service=NAME/,
  },
  {
    name: 'several hosts in a URL',
    edit: replace('database', 'postgres://karl@a:5432,b:5432/db'),
    says: /several hosts in a URL: write the keyword form/,
  },
  {
    name: 'a connection keyword given twice',
    edit: replace('database', 'host=a host=b'),
    says: /\[staging\] database: "host" is given twice/,
  },
  {
    name: 'a section given twice',
    edit: (ini) => `${ini}\n[sync]\njobs = 3\n`,
    says: /\[sync\]: \[sync\] is given twice \(first on line \d+\): keep one/,
  },
  {
    name: 'a key given twice',
    edit: inSection('staging', 'jobs = 3\njobs = 4'),
    says: /\[staging\] jobs: jobs is given twice in \[staging\] \(first on line \d+\): keep one/,
  },
  {
    name: 'a second mail branch for one customer',
    edit: inSection('customer:osf', 'mail_branch = branch2'),
    says: /\[customer:osf\] mail_branch is given twice: a customer has exactly one mail branch/,
  },
  {
    name: 'a quote that is not closed',
    edit: replace('testers', '"tester@example.org'),
    says: /\[staging\] testers: the quote " is not closed/,
  },
  {
    name: 'text after a quoted value',
    edit: replace('testers', '"tester@example.org" more'),
    says: /\[staging\] testers: text after the closing quote: more/,
  },
  {
    name: 'routes = sometimes',
    edit: replace('routes', 'sometimes'),
    says: /routes = sometimes: expected auto or manual/,
  },
  {
    name: 'manage_databases = false',
    edit: replace('manage_databases', 'false'),
    says: /manage_databases = false: expected yes or no/,
  },
  {
    name: 'a port out of range',
    edit: replace('base_port', '80'),
    says: /base_port = 80: expected a whole number from 1024 to 65000/,
  },
  {
    name: 'https_port = 0',
    edit: replace('https_port', '0'),
    says: /https_port = 0: expected a whole number from 1 to 65535/,
  },
  {
    name: 'a schedule with four fields',
    edit: replace('poll', '*/5 * * *'),
    says: /\[cron\] poll = \*\/5 \* \* \*: expected 5 fields/,
  },
  {
    name: 'a schedule that never runs (31 February)',
    edit: replace('poll', '0 2 31 2 *'),
    says: /\[cron\] poll = 0 2 31 2 \*: day 31 never comes in February: this schedule would never run/,
  },
  {
    name: 'a keep policy that is not one',
    edit: replace('keep', 'forever'),
    says: /keep = forever: "forever" is not a rule/,
  },
  {
    name: 'dumps where a branch site would live',
    edit: replace('dumps', 'dumps'),
    says: /\[sync\] dumps = .*\/dumps: the folder dumps\/ is where a branch site named "dumps" would live/,
  },
  {
    name: 'a customer name that is not one',
    edit: (ini) => `${ini}\n[customer:Bad]\n`,
    says: /\[customer:Bad\]: customer name not allowed: use 1 to 31 lower-case letters/,
  },
  {
    name: 'a tester address that is not one',
    edit: replace('testers', 'not-an-address'),
    says: /testers = not-an-address: "not-an-address" is not a mail address/,
  },
  {
    name: 'vcs = cvs',
    edit: replace('vcs', 'cvs'),
    says: /\[source\] vcs = cvs: expected git or svn/,
  },
  {
    name: 'a source path outside the site',
    edit: replace('path', '../elsewhere'),
    says: /\[source\] path = \.\.\/elsewhere: expected a relative path inside the branch site/,
  },
  {
    name: 'blobs at an absolute path',
    edit: replace('blobs', '/srv/blobs'),
    says: /\[deployment\] blobs = \/srv\/blobs: expected a relative path inside the branch site/,
  },
  {
    name: 'a default ref that reads as an option',
    edit: replace('default', '--upload-pack=x'),
    says: /default = --upload-pack=x: expected a ref/,
  },
  {
    name: 'a customer with two production sources',
    edit: inSection('customer:osf', 'production_dump = /backups/osf-*.dump'),
    says: /\[customer:osf\] has both production and production_dump: keep the one the nightly sync should read/,
  },
  {
    name: 'a cron user with a space',
    edit: inSection('cron', 'user = karl staging'),
    says: /\[cron\] user = karl staging: expected a user name/,
  },
  {
    name: 'a permission that is neither yes nor no',
    edit: inSection('customer:osf', 'staging_on_production_server = maybe'),
    says: /staging_on_production_server = maybe: expected yes or no/,
  },
  {
    name: 'the source URL missing',
    edit: (ini) => ini.replace(/^url = .*\n/m, ''),
    says: /\[source\] url is required/,
  },
  {
    name: 'a regular expression cut by a comma (must_not_contain)',
    edit: inSection('customer:osf', 'must_not_contain = @osf.org, /a{1,3}/'),
    says: /\[customer:osf\] must_not_contain = .*: \/a\{1: a comma separates patterns/,
  },
  {
    name: 'a JavaScript word boundary PostgreSQL reads as a backspace',
    edit: inSection('customer:osf', 'must_not_contain = /\\bacme\\b/'),
    says: /\\b is not a word boundary in PostgreSQL; write \\y/,
  },
  {
    name: 'a back-reference in a pattern',
    edit: inSection('customer:osf', 'must_not_contain = /(a)\\1/'),
    says: /back-references are not allowed/,
  },
  {
    name: 'a webhook that is not http(s), its address kept out of the message',
    edit: (ini) => `${ini}\n[notify]\nwebhook = ftp://user:pw@example.org/x\n`,
    says: /^(?!.*pw@).*\[notify\] webhook: expected an http:\/\/ or https:\/\/ address/m,
  },
  {
    name: 'postfix delivering as root',
    edit: (ini) => `${ini}\n[mail]\nuser = root\n`,
    says: /\[mail\] user = root: postfix never delivers as root or as postfix/,
  },
  {
    name: 'a listen address that is no address',
    edit: (ini) => `${ini}\n[mail]\nlisten = mail.example.org:25\n`,
    says: /\[mail\] listen = mail\.example\.org:25: expected a port \(25\) or ADDRESS:PORT/,
  },
  {
    name: 'stale_after of zero days',
    edit: inSection('staging', 'stale_after = 0'),
    says: /\[staging\] stale_after = 0: /,
  },
  {
    name: 'a missing [deployment] section',
    edit: (ini) => ini.replace('[deployment]', '[deployment-old]'),
    says: /section \[deployment\] is missing/,
  },
  {
    name: 'idle_after that is not a duration',
    edit: inSection('staging', 'idle_after = 4 hours'),
    says: /\[staging\] idle_after = 4 hours: expected a duration such as 90s, 15m, 4h or 2d, or off/,
    args: ['watch'],
  },
  {
    name: 'wake_wait that is not a duration (off is not one here)',
    edit: inSection('staging', 'wake_wait = off'),
    says: /\[staging\] wake_wait = off: expected a duration such as 90s, 15m, 4h or 2d \(from 1s to 5m\)/,
  },
  {
    name: 'idle_after shorter than watch can see',
    edit: inSection('staging', 'idle_after = 10s'),
    says: /\[staging\] idle_after = 10s: expected a duration from 1m to 365d/,
  },
  {
    name: 'a key that was renamed (mail_allow is testers now)',
    edit: (ini: string) => ini.replace(/^testers =.*$/m, 'mail_allow = tester@example.org'),
    says: /\[staging\] mail_allow: renamed: write testers = … instead/,
  },
];

/** Command-line input that must be refused: arguments, what they must say. */
const inputCases: [string[], RegExp][] = [
  [['create', '../x'], /^error: branch name "\.\.\/x" is not allowed: /],
  [['create', 'Branch'], /branch name "Branch" is not allowed/],
  [['create', 'sites'], /"sites" is reserved/],
  [
    ['create', 'branch2', '--customers', 'nosuch'],
    /there is no \[customer:nosuch\] in .*: add its section first/,
  ],
  [['create', 'branch2', '--customers', 'osf,Bad'], /customer name "Bad" is not allowed/],
  [['create', 'branch2', '--ref', '--upload-pack=x'], /git ref "--upload-pack=x" is not allowed/],
  [['create', 'branch2', '--ref', 'no-such-branch'], /ref "no-such-branch" does not exist in/],
  [['create', 'branch1'], /branch site "branch1" exists already/],
  [['switch', 'nope', 'main'], /there is no branch site "nope"/],
  [['switch', 'branch1', 'no-such-branch'], /ref "no-such-branch" does not exist/],
  [['update'], /name the branch sites to update, or pass --all/],
  [['update', 'branch1', '--all'], /give branch names or --all, not both/],
  [['update', 'nope'], /there is no branch site "nope"/],
  [['update', 'branch1', '--jobs', '0'], /expected a whole number of at least 1/],
  [['destroy', 'branch1'], /pass --yes to confirm/],
  [['destroy', 'nope', '--yes'], /there is no branch site "nope"/],
  [['sync', 'branch1', '--nightly'], /give branch names or --nightly, not both/],
  [['sync', '--customers', 'nosuch'], /there is no \[customer:nosuch\]/],
  [['hold', 'nope'], /there is no branch site "nope"/],
  [['mail', 'nosuch', 'branch1'], /there is no \[customer:nosuch\]/],
  [['mail', 'osf', 'nope'], /there is no branch site "nope"/],
  [['poll', 'nope'], /there is no branch site "nope"/],
  [['stop', 'nope'], /there is no branch site "nope"/],
  [['start'], /name the branch sites to start, or pass --all/],
  [['sleep', 'branch1', '--all'], /give branch names or --all, not both/],
  [['restart', '../x'], /branch name "\.\.\/x" is not allowed/],
  [['reset', 'nope'], /there is no branch site "nope"/],
  [['reset', 'branch1', '--customers', 'nosuch'], /there is no \[customer:nosuch\]/],
  [['mail', 'osf'], /give CUSTOMER BRANCH, or --install, or --caught, or nothing/],
  [['mail', '--install', '--caught'], /give CUSTOMER BRANCH, or --install, or --caught/],
  [['notify'], /notify sends a test message: pass --test/],
  [
    ['deliver', '--mailboxes', 'x.json', 'branch1'],
    /usage: deliver --mailboxes FILE BRANCH RECIPIENT/,
  ],
  [['status', '--wait', '-1'], /expected a whole number of seconds/],
  [['sites', '--format', 'pdf'], /argument 'pdf' is invalid/],
  [
    ['init', 'elsewhere', '--host', 'karltest.example.com\n[staging]'],
    /--host: a value with a line break/,
  ],
  [
    ['init', 'elsewhere', '--url', 'https://git.example.org/karl.git\nvcs = svn'],
    /--url: a value with a line break/,
  ],
  [
    ['init', 'elsewhere', '--default-ref', 'main ; or trunk'],
    /\[source\] default = main ; or trunk: expected a ref/,
  ],
];

describe('what karlstage refuses (exit 2, one clear message, nothing changed)', () => {
  it(`refuses ${configCases.length} kinds of bad configuration, every command, before anything runs`, async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const good = await readFile(st.config, 'utf8');
    // Everything but karlstage.ini itself, which this test rewrites.
    const snapshot = async () => (await st.snapshot()).replace(/^karlstage\.ini .*$/m, '');
    const before = await snapshot();
    for (const c of configCases) {
      const bad = c.edit(good);
      expect(bad, c.name).not.toBe(good);
      await writeFile(st.config, bad);
      const r = await st.cli(c.args ?? ['status']);
      expect(r.exitCode, `${c.name}: ${r.stderr}`).toBe(2);
      expect(r.stderr, c.name).toMatch(
        /^error: .*karlstage\.ini has \d+ problems?: fix and run again$/m,
      );
      expect(r.stderr, c.name).toMatch(c.says);
      expect(r.stdout, c.name).toBe('');
      await writeFile(st.config, good);
      expect(await snapshot(), c.name).toBe(before);
    }
    // doctor reports everything the configuration check reports, and still checks the tools.
    await writeFile(st.config, configCases[0]!.edit(configCases[1]!.edit(good)));
    const d = await st.cli(['doctor']);
    expect(d.exitCode).toBe(2);
    expect(d.stdout).toMatch(/^FAIL\s+configuration\s+.*manage_database: not a key/m);
    expect(d.stdout).toMatch(/^FAIL\s+configuration\s+.*rotues: not a key/m);
    expect(d.stdout).toMatch(/^ok\s+git\s+git version/m);
    await writeFile(st.config, good);
  });

  it(`refuses ${inputCases.length} kinds of bad input on the command line`, async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const before = await st.snapshot();
    for (const [args, says] of inputCases) {
      const r = await st.cli(args);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(says);
      // One clear line (commander adds its own hint line for its usage errors).
      expect(r.stderr.trim().split('\n').length, args.join(' ')).toBeLessThanOrEqual(2);
      expect(await st.snapshot(), args.join(' ')).toBe(before);
    }
    expect(existsSync(join(st.root, 'branch2'))).toBe(false);
    expect(existsSync(join(st.root, 'elsewhere'))).toBe(false);
  });

  it('an svn ref that cannot be reached is named, and what cannot succeed is tried once', async () => {
    const repo = await svnRepo();
    const st = await stagingServer(repo, { source: { retries: '3' } });
    const before = await st.snapshot();
    const r = await st.cli(['create', 'branch2', '--ref', 'file:///etc', '--verbose']);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /^error: cannot reach the ref file:\/\/\/etc \(1 attempt\): svn: E180001: Unable to open repository 'file:\/\/'; check --ref$/m,
    );
    // --verbose shows every program run: svn asked once, not four times.
    expect(r.stderr.split('\n').filter((l) => /^\$ svn .* list /.test(l))).toHaveLength(1);
    expect(await st.snapshot()).toBe(before);
    expect(existsSync(join(st.root, 'branch2'))).toBe(false);
  });

  it('a refusal found late still changes nothing, generated files included; a mixed result is 1', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2' });
    const ini = join(st.root, 'branch2', 'etc', 'instances.ini');
    await writeFile(ini, '[instance:osf\ngarbage\n');
    // Local changes in branch1, and something new upstream for it to update to.
    await writeFile(join(st.root, 'branch1', 'src', 'karl', 'server.mjs'), '// changed here\n');
    await repo.commit(repo.defaultRef, { 'NEWS.txt': 'news\n' }, 'News');
    // One user, and routes installed after every change: the host must never be left without one.
    const add = await st.cli(['access', 'add', 'anna', '--password-stdin'], {}, 'annas-pw-12\n');
    expect(add.exitCode, add.stderr).toBe(0);
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace('routes = manual', 'routes = auto'),
    );
    // The shared git store is a cache of upstream: a ref is looked up there, so it may fetch.
    const snapshot = async () => (await st.snapshot()).replace(/^\.karlstage\/git\/.*\n/gm, '');
    const before = await snapshot();
    const missing = '0123456789abcdef0123456789abcdef01234567';
    for (const [args, says] of [
      // Found only after the store fetched: the site list and mail maps are not written either.
      [['create', 'branch3', '--ref', missing], /ref "0123456789abcdef.*" does not exist in/],
      [['switch', 'branch1', missing, '--force'], /ref "0123456789abcdef.*" does not exist in/],
      // Found under the site's lock: nothing recorded, no marker left, no site list.
      [['update', 'branch1'], /branch1\/src\/karl has local changes: commit or revert them/],
      [
        ['access', 'remove', 'anna'],
        /anna is the last user of the locked TLS host, whose routes would then let no one in/,
      ],
    ] as [string[], RegExp][]) {
      const r = await st.cli(args);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(says);
      expect(await snapshot(), args.join(' ')).toBe(before);
    }
    expect(existsSync(join(st.root, 'branch3'))).toBe(false);
    // A broken site fails its own job (exit 1, like a site whose folder is gone: its failure is
    // recorded), and neither its file nor its build is touched.
    const broken = await st.cli(['update', 'branch2', '--force']);
    expect(broken.exitCode, broken.stderr).toBe(1);
    expect(broken.stderr).toMatch(/branch2\/etc\/instances\.ini line 1: .*Python refuses/);
    expect(await readFile(ini, 'utf8')).toBe('[instance:osf\ngarbage\n');
    expect(await buildCount(st.root, 'branch2')).toBe(1);

    // One site refused, the other rebuilt: that changed something, so it is not a 2.
    const mixed = await st.cli(['update', '--all', '--force']);
    expect(mixed.exitCode, mixed.stderr).toBe(1);
    expect(mixed.stderr).toMatch(/^error: update: 1 of 2 failed$/m);
    expect(mixed.stderr).toMatch(/branch2: .*instances\.ini line 1: /);
    expect(await buildCount(st.root, 'branch1')).toBe(2);
  });

  it('with --json a refusal is one JSON document on stdout too', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    const r = await st.cli(['create', '../x', '--json']);
    expect(r.exitCode).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({
      ok: false,
      exitCode: 2,
      error: expect.stringMatching(/branch name "\.\.\/x" is not allowed/),
      details: [],
    });
  });

  it('a configuration means exactly what it says', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    const good = await readFile(st.config, 'utf8');
    // A byte-order mark does not hide the first section; a comment after a value is a comment;
    // ";" and "#" inside a value stay; a service file name is passed on to libpq.
    await writeFile(
      st.config,
      '\uFEFF' +
        good
          .replace(/^build = .*$/m, 'build = bin/buildout -N   ; the build')
          .replace(/^database = .*$/m, "database = service=karlstaging password='se;cr#et'"),
    );
    const r = await st.cli(['create', 'branch1', '--dry-run']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\$ .*\/bin\/buildout -N {3}\(in /);
    const { parseConfig } = await import('../src/config/config.js');
    const cfg = parseConfig(await readFile(st.config, 'utf8'), st.config);
    expect(cfg.staging.host).toBe('karltest.example.com');
    expect(cfg.deployment.build).toBe('bin/buildout -N');
    expect(cfg.staging.database).toBe("service=karlstaging password='se;cr#et'");
  });
});
