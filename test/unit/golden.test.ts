// Covers: src/branches/create.ts src/model/site-state.ts src/model/state.ts src/model/views.ts src/publish/access.ts src/publish/crontab.ts src/publish/mail.ts src/publish/routes.ts src/publish/site-list.ts src/publish/tls.ts src/publish/wake-service.ts templates/ src/core/templates.ts
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderInstances } from '../../src/branches/create.js';
import { init } from '../../src/commands/init.js';
import { parseConfig, type Config } from '../../src/config/config.js';
import type { BranchState } from '../../src/model/state.js';
import type { SiteRun } from '../../src/model/site-state.js';
import { publicBase, type BranchView } from '../../src/model/views.js';
import type { AccessUser } from '../../src/publish/access.js';
import { crontabText } from '../../src/publish/crontab.js';
import {
  mailRoutes,
  postfixText,
  renderRelayDomains,
  renderTransport,
  type Programs,
} from '../../src/publish/mail.js';
import { routesText } from '../../src/publish/routes.js';
import { collectSiteList, listForScope, siteFiles } from '../../src/publish/site-list.js';
import { parseNginxV } from '../../src/publish/tls.js';
import { wakePage } from '../../src/publish/wake-service.js';
import { expectGolden } from '../helpers/golden.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * Golden-output tests of every file karlstage renders from templates/: each is built from
 * fixed inputs (a configuration, sites, users, nginx's facts, programs, a date; no clock, no
 * disk but the templates) and compared byte for byte with test/golden/. A change of a template
 * or a renderer fails here with the difference; a change meant is recorded with
 *
 *     UPDATE_GOLDEN=1 npx vitest run test/unit/golden.test.ts
 *
 * (then review `git diff test/golden/` and commit it with the change).
 */

const ROOT = '/srv/karlstage';
const INI = `[staging]
host = karltest.example.com
base_port = 6500
database = host=db.example.com user=karl password=s3cr%t
tls_certificate = /etc/ssl/certs/karltest.pem
tls_key = /etc/ssl/private/karltest.key
mail_domain = karltest.example.com
testers = tester@example.com, qa@example.org

[source]
vcs = git
url = https://git.example.org/karl.git
default = main

[deployment]
skeleton = https://git.example.org/karl-buildout.git
mailin = bin/karlserve mailin --config "etc/karl config.ini"

[customer:osf]
mail_branch = branch1

[customer:acme]
mail_branch = branch3

[access]
allow = 192.0.2.0/24, 2001:db8::/32

[cron]
user = karl

[mail]
log = /var/log/karlstage/postfix.log
listen = 127.0.0.1:2525
relay = [smtp.example.com]:587

[notify]
mail = ops@example.com
`;

/** The fixed configuration, or an edit of its text. */
const config = (edit = (text: string) => text): Config =>
  parseConfig(edit(INI), `${ROOT}/karlstage.ini`);

const PROGRAMS: Programs = {
  node: '/usr/bin/node',
  karlstage: '/usr/lib/node_modules/karlstage/bin/karlstage.js',
};
const NOW = new Date('2026-03-04T05:06:07Z');
const SHA = (c: string) => c.repeat(40);
const commit = (subject: string, date: string) => ({ subject, author: 'Ada Lovelace', date });
const ok = (at: string, ms = 1000) => ({ at, result: 'ok' as const, durationMs: ms });

/** Three sites: branch1 on main (all well), branch2 with every kind of trouble, branch3 asleep and gone upstream. */
const SITES: BranchState[] = [
  {
    name: 'branch1',
    slot: 1,
    port: 6501,
    vcs: 'git',
    ref: 'main',
    refKind: 'branch',
    createdAt: '2026-01-10T09:00:00Z',
    revision: SHA('a'),
    built: {
      revision: SHA('a'),
      ref: 'main',
      at: '2026-03-03T22:15:00Z',
      commit: commit('Calendar: weeks start on Monday', '2026-03-03T18:00:00+02:00'),
      ahead: 0,
    },
    lastUpdate: { ...ok('2026-03-03T22:15:00Z', 95_000), revision: SHA('a') },
    poll: { at: '2026-03-04T05:00:00Z', remote: SHA('a'), behind: false },
    data: {
      osf: {
        asOf: '2026-03-04T02:00:00Z',
        dump: '/srv/karlstage/.karlstage/dumps/osf-20260304T020000Z.dump',
        checkedPatterns: 2,
        lastSync: ok('2026-03-04T02:40:00Z', 600_000),
        migrate: { ...ok('2026-03-04T02:45:00Z', 12_300), dataOf: '2026-03-04T02:00:00Z' },
      },
      acme: {
        asOf: '2026-03-03T02:00:00Z',
        checkedPatterns: 1,
        lastSync: ok('2026-03-04T02:50:00Z'),
      },
    },
    run: { want: 'running', since: '2026-03-01T00:00:00Z' },
  },
  {
    name: 'branch2',
    slot: 2,
    port: 6502,
    vcs: 'git',
    ref: 'feature/calendar',
    refKind: 'branch',
    createdAt: '2026-02-01T09:00:00Z',
    revision: SHA('b'),
    built: {
      revision: SHA('b'),
      ref: 'feature/calendar',
      at: '2026-03-02T10:00:00Z',
      commit: commit('Show <b>all</b> events & "holidays"', '2026-03-02T09:30:00Z'),
      ahead: 5,
      changes: [
        commit('Show <b>all</b> events & "holidays"', '2026-03-02T09:30:00Z'),
        commit('Calendar: a month view', '2026-03-01T16:00:00Z'),
      ],
    },
    lastUpdate: {
      at: '2026-03-03T11:00:00Z',
      result: 'failed',
      durationMs: 30_000,
      error: 'build failed: bin/buildout exited 1',
    },
    poll: { at: '2026-03-04T05:00:00Z', remote: SHA('c'), behind: true, newCommits: 2 },
    data: {
      osf: {
        asOf: '2026-03-03T02:00:00Z',
        lastSync: {
          at: '2026-03-04T02:41:00Z',
          result: 'failed',
          durationMs: 5000,
          error: 'psql:/srv/karlstage/sanitize/osf.sql:12: ERROR: password=hunter2 rejected',
        },
        migrate: {
          at: '2026-03-04T02:42:00Z',
          dataOf: '2026-03-04T02:00:00Z',
          result: 'failed',
          durationMs: 4_200,
          error: 'KeyError: calendar_settings\nTraceback (most recent call last):',
        },
      },
      acme: {
        asOf: '2026-03-03T02:00:00Z',
        lastSync: {
          at: '2026-03-04T02:51:00Z',
          result: 'failed',
          durationMs: 2000,
          error: 'pg_restore: could not connect to host=db.example.com',
        },
      },
    },
    run: { want: 'running', since: '2026-03-01T00:00:00Z', downSince: '2026-03-04T04:58:00Z' },
  },
  {
    name: 'branch3',
    slot: 3,
    port: 6503,
    vcs: 'git',
    ref: 'old-feature',
    refKind: 'branch',
    createdAt: '2026-01-02T09:00:00Z',
    poll: { at: '2026-03-04T05:00:00Z', remote: null, behind: false },
    hold: { since: '2026-02-20T08:00:00Z', by: 'ada', reason: 'testing the import' },
    run: { want: 'sleeping', since: '2026-03-04T01:00:00Z', by: 'watch (idle 4h)' },
  },
];

const CUSTOMERS: Record<string, string[]> = {
  branch1: ['osf', 'acme'],
  branch2: ['osf', 'acme'],
  // acme's mail branch does not serve acme: its staged mail is refused.
  branch3: ['osf'],
};

function views(cfg: Config, sites = SITES): BranchView[] {
  return sites.map((site) => {
    const customers = CUSTOMERS[site.name]!;
    const mail = cfg.customers
      .filter((c) => c.mailBranch === site.name && customers.includes(c.name))
      .map((c) => c.name);
    return {
      site,
      customers,
      mail,
      mailWaiting: (site.name === 'branch1' ? { osf: 3 } : {}) as Record<string, number>,
      upstream: '',
      url: `${publicBase(cfg)}/${site.name}/`,
      ...(site.poll?.remote === null ? { stale: `${site.ref} is gone upstream` } : {}),
      ...(site.poll ? { checkedAt: site.poll.at } : {}),
    };
  });
}

const RUNS = new Map<string, SiteRun>([
  ['branch1', { state: 'running', since: '2026-03-01T00:00:00Z' }],
  ['branch2', { state: 'down', since: '2026-03-04T04:58:00Z' }],
  ['branch3', { state: 'sleeping', since: '2026-03-04T01:00:00Z', wakeSeconds: 12 }],
]);

const user = (name: string, customers: AccessUser['customers'], hash: string): AccessUser => ({
  name,
  customers,
  hash,
  added: '2026-01-01T00:00:00Z',
});
/** A person's password (slow hash), a generated one (fast), and users scoped to some customers. */
const USERS = [
  user('anna', '*', '$6$salt$slow'),
  user('monitor', '*', '{SSHA}fast'),
  user('olga', ['osf'], '$6$salt$slow'),
  user('pat', ['osf', 'acme'], '{SSHA}fast'),
];

const DEBIAN_NGINX = `nginx version: nginx/1.22.1
built with OpenSSL 3.0.22 25 Aug 2026 (running with OpenSSL 3.0.19 27 Jan 2026)
configure arguments: --with-http_ssl_module --with-http_v2_module`;
const NEWER_NGINX = `nginx version: nginx/1.27.4
built with OpenSSL 3.5.0 8 Apr 2025
configure arguments: --with-http_ssl_module --with-http_v2_module`;

describe('golden output of every template karlstage renders', () => {
  it('nginx.conf: locked (users, some scoped, an allow list) and public (own port, addresses, stapling)', async () => {
    const cfg = config();
    await expectGolden(
      'nginx-locked.conf',
      await routesText(cfg, views(cfg), {
        users: USERS,
        nginx: parseNginxV(DEBIAN_NGINX),
        nameServers: [],
      }),
    );
    const open = config((text) =>
      text
        .replace('allow = 192.0.2.0/24, 2001:db8::/32', 'public = yes')
        .replace(
          '[staging]\n',
          '[staging]\nhttps_port = 8443\nlisten_addresses = 192.0.2.7, 2001:db8::7\n',
        ),
    );
    await expectGolden(
      'nginx-public.conf',
      await routesText(open, views(open).slice(0, 1), {
        users: [],
        nginx: parseNginxV(NEWER_NGINX),
        ocsp: 'http://ocsp.example.com/',
        nameServers: ['192.0.2.53', '[2001:db8::53]'],
        trusted: '/etc/ssl/certs/ca-certificates.crt',
      }),
    );
  });

  it('postfix: main.cf, master.cf, the transport map (a customer whose mail branch does not serve it) and relay_domains', async () => {
    const cfg = config();
    const { main, master } = await postfixText(cfg, PROGRAMS);
    await expectGolden('main.cf', main);
    await expectGolden('master.cf', master);
    await expectGolden('transport', renderTransport(cfg, mailRoutes(cfg, views(cfg))));
    await expectGolden('relay_domains', renderRelayDomains(cfg));
  });

  it('crontab: poll, watch, @reboot, mail-in in the mail branch only, the nightly sync', async () => {
    const cfg = config();
    await expectGolden('crontab', await crontabText(cfg, views(cfg), PROGRAMS));
  });

  it('instances.ini of a new branch site ("%" doubled for ConfigParser)', async () => {
    await expectGolden(
      'instances.ini',
      await renderInstances(config(), 'branch1', ['osf', 'acme']),
    );
  });

  it('the site list, with problems, without, and as a scoped user sees it', async () => {
    const cfg = config();
    const troubled = collectSiteList(cfg, views(cfg), RUNS, NOW);
    const files = await siteFiles(troubled);
    expect(Object.keys(files)).toEqual(['index.html', 'sites.json', 'sites.txt', 'down.html']);
    await expectGolden('sites.html', files['index.html']!);
    await expectGolden('sites.json', files['sites.json']!);
    await expectGolden('sites.txt', files['sites.txt']!);
    await expectGolden('down.html', files['down.html']!);

    const clean = collectSiteList(cfg, views(cfg, SITES.slice(0, 1)), RUNS, NOW);
    expect(clean.branches.flatMap((b) => b.problems)).toEqual([]);
    const cleanFiles = await siteFiles(clean);
    await expectGolden('sites-clean.html', cleanFiles['index.html']!);
    await expectGolden('sites-clean.json', cleanFiles['sites.json']!);
    await expectGolden('sites-clean.txt', cleanFiles['sites.txt']!);

    // acme's users hear nothing of osf's failing migrate.
    await expectGolden(
      'sites-scoped-acme.txt',
      (await siteFiles(listForScope(troubled, ['acme'])))['sites.txt']!,
    );
  });

  it("the wake service's page: waking a site for a customer, and no such site", async () => {
    await expectGolden(
      'wake-waking.html',
      await wakePage({
        branch: 'branch2',
        customer: 'osf',
        title: 'branch2 could not be started',
        text: 'bin/supervisord: <error> "port taken" & exit 1. The operator has been told; it is tried again in a minute or two.',
        retry: 60,
      }),
    );
    await expectGolden(
      'wake-no-site.html',
      await wakePage({ title: 'No such branch site', text: 'There is no branch site here.' }),
    );
  });

  it('karlstage.ini as "karlstage init" writes it', async () => {
    const dir = await tempDir();
    const { file } = await init({
      quiet: true,
      dir,
      host: 'karltest.example.com',
      vcs: 'git',
      url: 'https://git.example.org/karl.git',
      defaultRef: 'main',
      database: 'host=db.example.com user=karl',
      skeleton: 'https://git.example.org/karl-buildout.git',
      basePort: 6500,
    });
    await expectGolden('karlstage.ini', await readFile(join(dir, 'karlstage.ini'), 'utf8'));
    expect(file).toBe(join(dir, 'karlstage.ini'));
  });
});
