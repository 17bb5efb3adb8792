import { randomBytes } from 'node:crypto';
import { chown, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { nameProblem } from '../config/names.js';
import type { Command } from '../core/command.js';
import { KarlstageError, UsageError } from '../core/errors.js';
import { run } from '../core/runner.js';
import { layout } from '../model/layout.js';

/**
 * Who may open the one TLS host. Every branch site holds a copy of production
 * data, so the host is locked unless [access] public = yes: users managed by
 * `karlstage access`, each seeing every customer or only some. Passwords are
 * kept only as sha512-crypt hashes ($6$, which nginx verifies through
 * crypt(3)), made by `openssl passwd -6 -stdin` — the password goes on its
 * standard input, never on a command line. karlstage's list (users.json, 0600)
 * and the file nginx reads (htpasswd, 0640, readable by the web server's
 * group) hold hashes only.
 */
export interface AccessUser {
  name: string;
  /** The customers the user may open; "*" for every one. */
  customers: string[] | '*';
  hash: string;
  added: string;
}

/** User names: the same rule as branch and customer names (no ":", no space, no capitals). */
export function checkUserName(name: string): string {
  const problem = nameProblem(name);
  if (problem) throw new UsageError(`user name ${JSON.stringify(name)} is not allowed: ${problem}`);
  return name;
}

/** A strong password: 120 random bits, 20 URL-safe characters. */
export const generatePassword = (): string => randomBytes(15).toString('base64url');

/** The command that hashes a password given on its standard input. */
export function hashCommand(password: string): Command {
  if (!password)
    throw new UsageError(
      'the password is empty: give one, or leave out --password-stdin to get a strong one',
    );
  if (/[\r\n]/.test(password)) throw new UsageError('a password cannot hold a line break');
  return {
    program: 'openssl',
    args: ['passwd', '-6', '-stdin'],
    step: 'hash the password',
    input: () => `${password}\n`,
    timeoutMs: 30_000,
  };
}

export async function hashPassword(password: string): Promise<string> {
  const c = hashCommand(password);
  const hash = (
    await run(c.program, c.args as string[], {
      step: c.step,
      input: c.input!(),
      timeoutMs: c.timeoutMs,
    })
  ).stdout.trim();
  if (!hash.startsWith('$6$')) throw new KarlstageError(`openssl passwd gave no sha512-crypt hash`);
  return hash;
}

export async function readUsers(root: string): Promise<AccessUser[]> {
  let text: string;
  try {
    text = await readFile(layout.accessUsers(root), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  try {
    const users = JSON.parse(text) as AccessUser[];
    if (!Array.isArray(users)) throw new Error('not a list');
    return users;
  } catch (e) {
    throw new KarlstageError(
      `${layout.accessUsers(root)} is damaged (${(e as Error).message}): remove it and add the users again with "karlstage access add"`,
    );
  }
}

/**
 * Write karlstage's list and nginx's file. nginx reads its file on every
 * request: a user added or removed counts at once; scopes live in the routes.
 */
export async function writeUsers(cfg: Config, users: AccessUser[]): Promise<void> {
  const list = layout.accessUsers(cfg.root);
  const htpasswd = layout.accessHtpasswd(cfg.root);
  await mkdir(dirname(list), { recursive: true, mode: 0o750 });
  await writeFileAtomic(list, JSON.stringify(users, null, 2) + '\n', { mode: 0o600 });
  await writeFileAtomic(htpasswd, users.map((u) => `${u.name}:${u.hash}\n`).join(''), {
    mode: 0o640,
  });
  // Readable by the web server's group (nginx's workers), where that group exists.
  const gid = await groupId(cfg.access.group);
  if (gid !== undefined) {
    await chown(htpasswd, process.getuid?.() ?? 0, gid).catch(() => undefined);
    await chown(dirname(htpasswd), process.getuid?.() ?? 0, gid).catch(() => undefined);
  }
}

async function groupId(group: string): Promise<number | undefined> {
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  const line = text.split('\n').find((l) => l.split(':')[0] === group);
  const gid = line?.split(':')[2];
  return gid === undefined ? undefined : Number(gid);
}

/** A scope's key: "*" or the sorted customers; users with the same key share a site list. */
export const scopeKey = (u: Pick<AccessUser, 'customers'>): string =>
  u.customers === '*' ? '*' : [...u.customers].sort().join(',');

/** The site-list folder of a scope (.karlstage/sites/all or sites/scope-A_B: names hold no "_"). */
export const scopeFolder = (key: string): string =>
  key === '*' ? 'all' : `scope-${key.split(',').join('_')}`;
