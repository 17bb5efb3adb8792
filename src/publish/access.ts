import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { nameProblem } from '../config/names.js';
import type { Command, RunResult } from '../core/command.js';
import { KarlstageError, UsageError } from '../core/errors.js';
import { layout } from '../model/layout.js';

/**
 * Who may open the one TLS host. Every branch site holds a copy of production
 * data, so the host is locked unless [access] public = yes: users managed by
 * `karlstage access`, each seeing every customer or only some. Passwords are
 * kept only as hashes nginx verifies on every request. A password a person
 * chose gets a slow one, sha512-crypt ($6$, through crypt(3)), made by
 * `openssl passwd -6 -stdin` — the password goes on its standard input, never
 * on a command line. A password karlstage generated (144 random bits) gets a
 * fast one, salted SHA-1 ({SSHA}): slowing a guess down is what a guessable
 * password needs; 2^143 guesses on average are more work than today's
 * sha512-crypt of a 120-bit password (see docs/commands.md, "access").
 * karlstage's list (users.json, 0600) and the file nginx reads (htpasswd,
 * 0640, readable by the web server's group) hold hashes only.
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

/** A strong password: 144 random bits, 24 URL-safe characters. */
export const generatePassword = (): string => randomBytes(18).toString('base64url');

/**
 * The fast hash of a generated password: {SSHA}, base64 of SHA-1(password + salt) and the salt
 * (16 random bytes), as nginx's auth_basic verifies it without crypt(3). Only for passwords of
 * generatePassword: a password a person chose needs the slow hash of hashPassword.
 */
export function fastHash(password: string): string {
  const salt = randomBytes(16);
  const digest = createHash('sha1').update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

/** nginx checks this hash in microseconds (else: milliseconds, and the login limit applies). */
export const isFastHash = (hash: string): boolean => hash.startsWith('{SSHA}');

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

/** The slow hash, by hashCommand run in the step that declared it (`run`: its ctx.exec). */
export async function hashPassword(
  hashing: Command,
  run: (c: Command) => Promise<RunResult>,
): Promise<string> {
  const hash = (await run(hashing)).stdout.trim();
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
  await shareUsersFile(cfg);
}

/**
 * Make nginx's file readable by the web server's group (nginx's workers), where that group
 * exists: the file 0640, its folder 0750, both of [access] group. Also run by "routes", so a
 * changed [access] group counts at the next routes.
 */
export async function shareUsersFile(cfg: Config): Promise<void> {
  const htpasswd = layout.accessHtpasswd(cfg.root);
  const gid = await groupId(cfg.access.group);
  if (gid === undefined || !existsSync(htpasswd)) return;
  for (const [path, mode] of [
    [htpasswd, 0o640],
    [dirname(htpasswd), 0o750],
  ] as const) {
    await chown(path, process.getuid?.() ?? 0, gid).catch(() => undefined);
    await chmod(path, mode).catch(() => undefined);
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

/** An address as a number, and the size of its family's space. */
function rangeOf(cidr: string): { family: 4 | 6; start: bigint; end: bigint } | undefined {
  const [address = '', bitsText] = cidr.split('/');
  const family = isIP(address);
  if (!family) return undefined;
  const width = family === 4 ? 32 : 128;
  const bits = bitsText === undefined ? width : Number(bitsText);
  let value = 0n;
  if (family === 4) for (const part of address.split('.')) value = (value << 8n) | BigInt(part);
  else {
    // Expand "::" and an embedded IPv4 tail into eight 16-bit groups.
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(address)?.[1];
    const text = v4
      ? address.replace(
          v4,
          ((n) => `${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}`)(
            v4.split('.').reduce((a, p) => a * 256 + Number(p), 0),
          ),
        )
      : address;
    const [head = '', tail] = text.split('::');
    const groups = (s: string) => (s ? s.split(':') : []);
    const all =
      tail === undefined
        ? groups(head)
        : [
            ...groups(head),
            ...Array(8 - groups(head).length - groups(tail).length).fill('0'),
            ...groups(tail),
          ];
    for (const g of all) value = (value << 16n) | BigInt(parseInt(g, 16));
  }
  const host = (1n << BigInt(width - bits)) - 1n;
  const start = value & ~host & ((1n << BigInt(width)) - 1n);
  return { family: family as 4 | 6, start, end: start | host };
}

/**
 * The address families ("IPv4", "IPv6") an allow list lets in whole: such a list opens the host
 * to everyone, like [access] public = yes (0.0.0.0/0, or 0.0.0.0/1 with 128.0.0.0/1).
 */
export function openToEveryone(allow: string[]): string[] {
  const open: string[] = [];
  for (const family of [4, 6] as const) {
    const ranges = allow
      .map(rangeOf)
      .filter((r): r is NonNullable<typeof r> => r?.family === family)
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    let next = 0n; // the first address not yet covered
    for (const r of ranges) if (r.start <= next && r.end >= next) next = r.end + 1n;
    if (next === 1n << BigInt(family === 4 ? 32 : 128)) open.push(`IPv${family}`);
  }
  return open;
}
