// Covers: src/commands/init.ts src/config/config.ts src/core/errors.ts
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findConfig, loadConfig, parseConfig } from '../../src/config/config.js';
import { init } from '../../src/commands/init.js';
import { UsageError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/tmp.js';

describe('configuration', () => {
  it('init writes a commented file that loads, with the flags filled in', async () => {
    const dir = await tempDir();
    const { file } = await init({
      quiet: true,
      dir,
      host: 'karltest.hoster.com',
      vcs: 'git',
      url: 'https://git.example.org/karl.git',
      skeleton: './skel',
    });
    const cfg = loadConfig(file);
    expect(cfg.staging.host).toBe('karltest.hoster.com');
    expect(cfg.source).toMatchObject({
      vcs: 'git',
      url: 'https://git.example.org/karl.git',
      default: 'main',
      path: 'src/karl',
    });
    expect(cfg.deployment.skeleton).toBe(join(dir, 'skel'));
    expect(cfg.customers.map((c) => c.name)).toEqual(['osf']);
    await expect(init({ quiet: true, dir })).rejects.toThrow(/exists already/);
  });

  it('reads true and false as the words (commands) they are, not as booleans', async () => {
    const dir = await tempDir();
    const { file } = await init({ quiet: true, dir });
    const { readFile } = await import('node:fs/promises');
    await writeFile(
      file,
      (await readFile(file, 'utf8'))
        .replace(/^migrate = .*$/m, 'migrate = false')
        .replace(/^build = .*$/m, 'build = true'),
    );
    const cfg = loadConfig(file);
    expect(cfg.deployment.migrate).toBe('false');
    expect(cfg.deployment.build).toBe('true');
  });

  it('must_not_contain: a word that starts with a slash is a word, not a cut regular expression', async () => {
    const dir = await tempDir();
    const { file } = await init({ quiet: true, dir });
    const { readFile } = await import('node:fs/promises');
    const ini = await readFile(file, 'utf8');
    const withPatterns = (p: string) =>
      writeFile(
        file,
        ini.replace(/^\[customer:osf\]$/m, `[customer:osf]\nmust_not_contain = ${p}`),
      );
    await withPatterns('/admin, @osf.org, /acme\\y/');
    expect(loadConfig(file).customers[0]!.mustNotContain).toEqual([
      '/admin',
      '@osf.org',
      '/acme\\y/',
    ]);
    await withPatterns('@osf.org, /a{1,3}/');
    const refused = (() => {
      try {
        loadConfig(file);
      } catch (e) {
        return (e as UsageError).details.join('\n');
      }
    })();
    expect(refused).toMatch(/\/a\{1: a comma separates patterns/);
  });

  it('init refuses flags that would make a bad file, and writes nothing', async () => {
    const dir = await tempDir();
    await expect(init({ quiet: true, dir, host: 'bad host!' })).rejects.toBeInstanceOf(UsageError);
    expect(() => findConfig(undefined, dir)).toThrow(/no karlstage.ini/);
  });

  it('is found in a parent folder, or through KARLSTAGE_CONFIG', async () => {
    const dir = await tempDir();
    await init({ quiet: true, dir });
    await mkdir(join(dir, 'branch1', 'src'), { recursive: true });
    expect(findConfig(undefined, join(dir, 'branch1', 'src'))).toBe(join(dir, 'karlstage.ini'));
    process.env.KARLSTAGE_CONFIG = join(dir, 'karlstage.ini');
    try {
      expect(findConfig(undefined, '/')).toBe(join(dir, 'karlstage.ini'));
    } finally {
      delete process.env.KARLSTAGE_CONFIG;
    }
  });

  it('reports every problem at once, each with file, line, section and key', () => {
    const text = `[staging]  ; the server
host = not a host
base_port = eighty
database = this is wrong
[source]
vcs = cvs
path = ../outside
[deployment]
timeout = -1
[customer:Bad]
[customer:osf]
mail_branch = ../x
`;
    try {
      parseConfig(text, '/etc/ks.ini');
      expect.unreachable();
    } catch (e) {
      const err = e as UsageError;
      expect(err.exitCode).toBe(2);
      expect(err.message).toBe('/etc/ks.ini has 10 problems: fix and run again');
      expect(err.details).toEqual([
        '/etc/ks.ini:2: [staging] host = not a host: expected a host name such as karltest.example.com',
        '/etc/ks.ini:3: [staging] base_port = eighty: expected a whole number from 1024 to 65000',
        '/etc/ks.ini:4: [staging] database: not a connection string: expected keyword=value at "this is wrong"',
        '/etc/ks.ini:6: [source] vcs = cvs: expected git or svn',
        '/etc/ks.ini:7: [source] path = ../outside: expected a relative path inside the branch site',
        '/etc/ks.ini:5: [source] url is required',
        '/etc/ks.ini:9: [deployment] timeout = -1: expected a whole number from 1 to 604800',
        '/etc/ks.ini:8: [deployment] skeleton is required',
        '/etc/ks.ini:10: [customer:Bad]: customer name not allowed: use 1 to 31 lower-case letters, digits and "-", starting with a letter',
        '/etc/ks.ini:12: [customer:osf] mail_branch = ../x: names starting with "." are reserved',
      ]);
    }
  });

  it('a webhook that is no address, or whose credentials do not decode, is refused (not a crash)', () => {
    const base =
      '[staging]\nhost = a.example\ndatabase = dbname=x\n[source]\nurl = /r\n[deployment]\nskeleton = /s\n';
    for (const webhook of ['not a url', 'https://%zz@hooks.example.org/x']) {
      const refused = (() => {
        try {
          parseConfig(`${base}[notify]\nwebhook = ${webhook}\n`, '/etc/ks.ini');
        } catch (e) {
          return e;
        }
      })();
      expect(refused).toBeInstanceOf(UsageError);
      expect((refused as UsageError).details).toEqual([
        '/etc/ks.ini:9: [notify] webhook: expected an http:// or https:// address',
      ]);
    }
  });

  it('a missing file says what to do', async () => {
    const dir = await tempDir();
    expect(() => loadConfig(join(dir, 'nope.ini'))).toThrow(/does not exist/);
    await writeFile(join(dir, 'karlstage.ini'), '');
    try {
      loadConfig(undefined, dir);
      expect.unreachable();
    } catch (e) {
      expect((e as UsageError).details).toContain(
        `${join(dir, 'karlstage.ini')}: section [staging] is missing`,
      );
    }
  });
});
