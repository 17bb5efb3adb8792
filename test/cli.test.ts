// Covers: src/cli.ts src/cli/ src/demo/ bin/ src/core/ports.ts
import { execa } from 'execa';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { portIsFree } from '../src/core/ports.js';
import { selfSignedCert } from './helpers/nginx.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gitRepo, svnRepo, svnServe } from './helpers/repos.js';
import { BIN, stagingServer } from './helpers/staging.js';
import { onCleanup, tempDir } from './helpers/tmp.js';

async function karlstage(args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = await execa('node', [BIN, ...args], {
    cwd,
    env: { NO_COLOR: '1', ...env },
    reject: false,
    stdin: 'ignore',
  });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe('the built binary, end to end', () => {
  it('--help, --version, and bad usage (exit 2)', async () => {
    // A reader that stops early (| head) ends the output quietly.
    const piped = await execa('sh', ['-c', `node ${BIN} --help | head -1`]);
    expect(piped.stdout).toBe('Usage: karlstage [options] [command]');
    expect(piped.stderr).toBe('');

    const dir = await tempDir();
    const help = await karlstage(['--help'], dir);
    expect(help.exitCode).toBe(0);
    for (const c of ['init', 'create', 'switch', 'update', 'status', 'destroy', 'doctor', 'demo'])
      expect(help.stdout).toContain(`  ${c} `);
    expect(help.stdout).toContain(
      'Exit status: 0 success, 1 failure, 2 bad usage or configuration, 75 locked by another run.',
    );
    expect((await karlstage(['--version'], dir)).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const bad = await karlstage(['frobnicate'], dir);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("unknown command 'frobnicate'");
    const init = await karlstage(
      [
        'init',
        'srv',
        '--host',
        'karltest.hoster.com',
        '--vcs',
        'git',
        '--url',
        'https://git.example.org/karl.git',
      ],
      dir,
    );
    expect(init.exitCode, init.stderr).toBe(0);
    expect(await readFile(join(dir, 'srv', 'karlstage.ini'), 'utf8')).toContain(
      'host = karltest.hoster.com\n',
    );
    const twice = await karlstage(['init', 'srv'], dir);
    expect(twice.exitCode).toBe(2);
    expect(twice.stderr).toMatch(/exists already: edit it, or pass --force/);
    const badVcs = await karlstage(['init', 'x', '--vcs', 'cvs'], dir);
    expect(badVcs.exitCode).toBe(2);
    expect(existsSync(join(dir, 'x'))).toBe(false);
    const noConfig = await karlstage(['status'], dir);
    expect(noConfig.exitCode).toBe(2);
    expect(noConfig.stderr.trim()).toBe(
      'error: no karlstage.ini here or in any parent folder: run "karlstage init" or pass --config FILE',
    );
  });

  it('init, doctor, create, status, update, switch, destroy on svn served by svnserve', async () => {
    const repo = await svnRepo();
    const served = await svnServe(repo);
    const st = await stagingServer(repo, { url: served.url });
    const { cert, key } = await selfSignedCert(await tempDir('ks-cert-'), 'karltest.example.com');
    const ini = await readFile(st.config, 'utf8');
    await writeFile(
      st.config,
      ini
        .replace(/^tls_certificate = .*$/m, `tls_certificate = ${cert}`)
        .replace(/^tls_key = .*$/m, `tls_key = ${key}`),
    );
    const doctor = await st.cli(['doctor']);
    expect(doctor.exitCode, doctor.stdout + doctor.stderr).toBe(0);
    expect(doctor.stdout).toMatch(/^ok\s+svn\s+1\.\d+/m);
    expect(doctor.stdout).toMatch(/^ok\s+source\s+.*\/trunk exists/m);
    expect(doctor.stdout).toMatch(/^ok\s+disk\s+[\d.]+ GB free/m);
    expect(doctor.stdout).toMatch(
      /^ok\s+ports\s+branch sites use ports \d+–\d+; the kernel's ephemeral ports are \d+–\d+$/m,
    );
    expect(doctor.stderr).toBe('');
    // A base port inside the kernel's ephemeral range: said, as a warning.
    const good = await readFile(st.config, 'utf8');
    await writeFile(st.config, good.replace(/^base_port = .*$/m, 'base_port = 40000'));
    expect((await st.cli(['doctor'])).stdout).toMatch(/^warn\s+ports\s+.*they overlap/m);
    await writeFile(st.config, good);
    // --verbose: each program karlstage runs, and how it ended, on stderr.
    const verbose = await st.cli(['doctor', '--verbose']);
    expect(verbose.stderr).toMatch(/^\$ svn --version --quiet$/m);
    expect(verbose.stderr).toMatch(/^ {2}svn version: exit status 0 in \d+ ms$/m);

    expect((await st.cli(['create', 'branch1'])).exitCode).toBe(0);
    const created = await st.cli([
      'create',
      'branch2',
      '--ref',
      'branches/feature-x',
      '--customers',
      'osf',
      '--json',
    ]);
    expect(created.exitCode, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({
      ok: true,
      site: { name: 'branch2', ref: 'branches/feature-x', slot: 2 },
    });

    const status = await st.cli(['status', '--json']);
    const parsed = JSON.parse(status.stdout);
    expect(
      parsed.branches.map((b: { name: string; customers: string[] }) => [b.name, b.customers]),
    ).toEqual([
      ['branch1', ['osf', 'another']],
      ['branch2', ['osf']],
    ]);
    const table = await st.cli(['status']);
    expect(table.stdout.split('\n')[0]).toMatch(
      /^BRANCH\s+STATE\s+REF\s+REVISION\s+UPSTREAM\s+LAST UPDATE\s+LAST SYNC\s+PORT\s+CUSTOMERS\s+MAIL$/,
    );
    expect(table.stdout).toMatch(/^branch2\s+running [\d.]+ MB\s+branches\/feature-x\s+r\d+/m);
    expect(table.stdout).not.toContain('\u001b['); // no colour when not on a terminal
    expect(table.stdout).not.toContain('CUSTOMER '); // no data table before any sync or hold

    const upd = await st.cli(['update', '--all', '--force']);
    expect(upd.exitCode, upd.stderr).toBe(0);
    // Cron and CI get plain timestamped lines.
    expect(upd.stdout).toMatch(/\[\d\d:\d\d:\d\d\] branch1/);
    const same = await st.cli(['update', '--all']);
    expect(same.stdout).toMatch(/ok\s+branch1: already built at \d+ \(nothing new upstream\)/);

    const sw = await st.cli(['switch', 'branch2', 'trunk', '--quiet']);
    expect(sw.exitCode, sw.stderr).toBe(0);
    expect(sw.stdout).toBe('');

    const des = await st.cli(['destroy', 'branch2', '--yes']);
    expect(des.exitCode, des.stderr).toBe(0);
    expect(existsSync(join(st.root, 'branch2'))).toBe(false);
    expect(JSON.parse((await st.cli(['status', '--json'])).stdout).branches).toHaveLength(1);
  });

  it('never prints a password: not in status, plans, errors or logs', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    const outputs = [
      await st.cli(['create', 'branch1', '--dry-run', '--verbose']),
      await st.cli(['create', 'branch1']),
      await st.cli(['status', '--json']),
      await st.cli(['doctor']),
    ];
    for (const o of outputs) expect(o.stdout + o.stderr).not.toContain('s3cret-pw');
    const logs = await execa('grep', ['-r', 's3cret-pw', join(st.root, '.karlstage', 'logs')], {
      reject: false,
    });
    expect(logs.exitCode).toBe(1);
    // ...while the app's own instances.ini does carry the DSN it needs.
    expect(await readFile(join(st.root, 'branch1', 'etc', 'instances.ini'), 'utf8')).toContain(
      'password=s3cret-pw',
    );
  });

  it('demo builds two branch sites of two customers that answer, and they can be destroyed', async () => {
    const dir = await tempDir('ks-demo-');
    await chmod(dir, 0o755); // postfix delivers as nobody into the demo's Maildirs
    const r = await karlstage(['demo', join(dir, 'demo'), '--json'], dir);
    expect(r.exitCode, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as {
      root: string;
      sites: { branch: string; customer: string; url: string; answer: string }[];
      data: { branch: string; customer: string; docs: number; sanitized: number }[];
      postgres: { dir: string; stop: string };
      https: { url: string; port: number; user: string; password: string; cert: string };
      mail: { port: number; arrived: number; caught: { recipient: string }[] };
      stop: string;
    };
    let stopped = false;
    onCleanup(async () => {
      if (!stopped) await karlstage(['demo', join(dir, 'demo'), '--stop'], dir);
    });
    // The one TLS host, locked: the site list answers with the demo user's login, 401 without.
    expect(result.https.url).toBe(`https://karltest.localhost:${result.https.port}/`);
    expect(result.sites[0]!.url).toBe(
      `https://karltest.localhost:${result.https.port}/branch1/osf/`,
    );
    const ask = (user?: string) =>
      execa(
        'curl',
        [
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '--resolve',
          `karltest.localhost:${result.https.port}:127.0.0.1`,
          '--cacert',
          result.https.cert,
          ...(user ? ['-u', user] : []),
          result.https.url,
        ],
        { reject: false },
      );
    expect((await ask(`${result.https.user}:${result.https.password}`)).stdout).toBe('200');
    expect((await ask()).stdout).toBe('401');
    // doctor passes in the demo root (the self-signed certificate is a warning).
    const d = await karlstage(['doctor'], result.root);
    expect(d.exitCode, d.stdout + d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^warn\s+certificate\s+.*self-signed/m);
    // The nightly sync ran: production's rows in every branch site's database, sanitized.
    expect(result.data).toEqual([
      { branch: 'branch1', customer: 'osf', docs: 500, sanitized: 500 },
      { branch: 'branch1', customer: 'another', docs: 120, sanitized: 120 },
      { branch: 'branch2', customer: 'osf', docs: 500, sanitized: 500 },
      { branch: 'branch2', customer: 'another', docs: 120, sanitized: 120 },
    ]);
    expect(readdirSync(join(result.root, 'branch1', 'var', 'blobs', 'osf', '0a'))).toEqual([
      '0001.blob',
    ]);
    expect(result.sites.map((s) => `${s.branch}/${s.customer}`)).toEqual([
      'branch1/osf',
      'branch1/another',
      'branch2/osf',
      'branch2/another',
    ]);
    expect(result.sites[0]!.answer).toMatch(
      /^KARL demo: branch=branch1 revision=[0-9a-f]{40} customer=osf version=1.0/,
    );
    expect(result.sites[2]!.answer).toContain('version=1.1-feature-x');
    // Its postfix: the mail-in arrived in branch1's Maildir, the outside mail was caught.
    expect(result.mail).toMatchObject({
      arrived: 1,
      caught: [{ recipient: 'ceo@customer.example.com' }],
    });
    expect(d.stdout).toMatch(/^ok\s+mail\s+postfix .* runs, up to date/m);
    const again = await karlstage(['demo', join(dir, 'demo')], dir);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain('is not empty');
    // Stopping the demo stops its apps, its nginx and its PostgreSQL, and removes it.
    const stop = await karlstage(['demo', join(dir, 'demo'), '--stop'], dir);
    expect(stop.exitCode, stop.stderr).toBe(0);
    stopped = true;
    expect((await ask()).stdout).toBe('000');
    expect(existsSync(join(dir, 'demo'))).toBe(false);
    expect(existsSync(result.postgres.dir)).toBe(false);
    expect(await portIsFree(result.mail.port)).toBe(true);
  });
});
