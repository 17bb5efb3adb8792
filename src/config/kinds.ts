import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { scheduleProblem } from '../core/cron-schedule.js';
import { durationText, parseDuration } from '../core/duration.js';
import { parseDsn } from '../core/dsn.js';
import { splitCommand } from '../core/command-line.js';
import { parseKeep } from './keep.js';
import { nameProblem } from './names.js';
import { HOST, isCidr, parseListen, parseRelay, splitList, splitPatterns } from './values.js';

/**
 * The kinds of value karlstage.ini holds, each with its check: what is wrong with a value of
 * that kind (undefined: nothing). A new kind is one entry here; the compiler then knows it.
 */

/** What a check may need to know of its key besides the value. */
export interface Bounds {
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** A duration that may be switched off with `off`. */
  off?: boolean;
}

/** What a key's checks need: its kind, bounds, default, whether it must be given. */
export interface KeySpec extends Bounds {
  kind: Kind;
  default?: string;
  required?: boolean;
}

/** A value's problem, given its key's bounds and its name (`[section] key`, for messages). */
type Check = (value: string, spec: Bounds, key: string) => string | undefined;

const fine: Check = () => undefined;

/** The message of what `read` throws, or undefined when it throws nothing. */
function thrown(read: () => unknown, clean = (m: string) => m): string | undefined {
  try {
    read();
    return undefined;
  } catch (e) {
    return clean((e as Error).message);
  }
}

/** The first of a comma- or space-separated list that `ok` refuses. */
const firstBad = (value: string, ok: (item: string) => boolean): string | undefined =>
  splitList(value).find((item) => !ok(item));

const MAIL_ADDRESS = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** must_not_contain: words or /regular expressions/, as PostgreSQL will read them. */
const patternsProblem: Check = (value) => {
  const patterns = splitPatterns(value);
  for (const [i, p] of patterns.entries()) {
    const re = /^\/(.+)\/$/.exec(p);
    // "/a{1,3}/" cut at its comma: one piece opens a regular expression that a later one
    // closes (a plain word such as /admin is a word).
    const opens = !re && p.startsWith('/');
    if (opens && patterns.slice(i + 1).some((q) => q.endsWith('/') && !q.startsWith('/')))
      return `${p}: a comma separates patterns, so a regular expression cannot hold one; write it without`;
    if (!re) continue;
    // They run as PostgreSQL regular expressions, joined as (p1)|(p2): where those differ from
    // JavaScript's, refuse rather than let a check pass that never looked.
    if (/\\[bB]/.test(re[1]!))
      return `${p}: \\b is not a word boundary in PostgreSQL; write \\y (or \\m, \\M)`;
    if (/\\[1-9]/.test(re[1]!)) return `${p}: back-references are not allowed`;
    const bad = thrown(() => new RegExp(re[1]!.replace(/\\[yYmM]/g, '')));
    if (bad) return `${p} is not a regular expression: ${bad}`;
  }
  return patterns.length ? undefined : 'expected words or /regular expressions/';
};

const httpUrlProblem: Check = (value) => {
  try {
    const u = new URL(value);
    if (!/^https?:$/.test(u.protocol)) return 'expected an http:// or https:// address';
    decodeURIComponent(u.username + u.password); // sent as a header: must read back
    return undefined;
  } catch {
    return 'expected an http:// or https:// address';
  }
};

const durationProblem: Check = (value, spec) => {
  if (spec.off && value === 'off') return undefined;
  const ms = parseDuration(value);
  const range = `from ${durationText(spec.min!)} to ${durationText(spec.max!)}`;
  if (ms === undefined)
    return `expected a duration such as 90s, 15m, 4h or 2d${spec.off ? ', or off' : ''} (${range})`;
  return ms >= spec.min! && ms <= spec.max! ? undefined : `expected a duration ${range}`;
};

export const KINDS = {
  /** Any single line. */
  text: fine,
  /** A host name. */
  host: (value) =>
    HOST.test(value) ? undefined : 'expected a host name such as karltest.example.com',
  int: (value, spec) =>
    /^\d+$/.test(value) && Number(value) >= spec.min! && Number(value) <= spec.max!
      ? undefined
      : `expected a whole number from ${spec.min} to ${spec.max}`,
  'yes-no': (value) => (value === 'yes' || value === 'no' ? undefined : 'expected yes or no'),
  choice: (value, spec) =>
    spec.choices!.includes(value) ? undefined : `expected ${spec.choices!.join(' or ')}`,
  /** A libpq connection string. */
  dsn: (value) => thrown(() => parseDsn(value)),
  /** A path, relative to the file's folder. */
  path: fine,
  /** A relative path inside a branch site. */
  relative: (value) =>
    isAbsolute(value) || value.split(/[\\/]/).some((p) => p === '..' || p === '')
      ? 'expected a relative path inside the branch site'
      : undefined,
  /** A local folder or a URL. */
  location: fine,
  /** A repository URL (or a local path for svn file:// and git). */
  url: fine,
  /** A command line, split without a shell. */
  command: (value, _spec, key) =>
    thrown(
      () => splitCommand(value, key),
      (m) => m.replace(/^.*?: /, ''),
    ),
  /** A cron schedule. */
  schedule: (value) => scheduleProblem(value),
  /** A retention policy. */
  keep: (value) => thrown(() => parseKeep(value)),
  /** Mail addresses, comma-separated. */
  addresses: (value) => {
    const bad = firstBad(value, (a) => MAIL_ADDRESS.test(a));
    return bad ? `"${bad}" is not a mail address` : undefined;
  },
  /** A branch or customer name. */
  name: (value) => nameProblem(value),
  /** A system user name. */
  user: (value) => (/^[a-z_][a-z0-9_-]*$/i.test(value) ? undefined : 'expected a user name'),
  /** IP addresses or CIDR blocks, comma-separated. */
  cidrs: (value) => {
    const bad = firstBad(value, isCidr);
    return bad
      ? `"${bad}" is not an IP address or CIDR block (10.0.0.0/8, 192.0.2.7, 2001:db8::/32)`
      : undefined;
  },
  /** IP addresses, comma-separated. */
  ips: (value) => {
    const bad = firstBad(value, (a) => isIP(a) !== 0);
    return bad ? `"${bad}" is not an IP address (127.0.0.1, 192.0.2.7, ::1)` : undefined;
  },
  /** PORT, or ADDRESS:PORT ([ADDRESS]:PORT for IPv6). */
  listen: (value) =>
    parseListen(value)
      ? undefined
      : 'expected a port (25) or ADDRESS:PORT (127.0.0.1:2525, [::1]:2525)',
  /** HOST, HOST:PORT or [HOST]:PORT (brackets: no MX lookup). */
  relay: (value) =>
    parseRelay(value)
      ? undefined
      : 'expected HOST, HOST:PORT or [HOST]:PORT (smtp.example.org, [192.0.2.1]:25)',
  /** A ref of the source repository. */
  ref: (value) =>
    /^-|\s/.test(value) ? 'expected a ref: no spaces, not starting with "-"' : undefined,
  /** Words or /regular expressions/, comma-separated. */
  patterns: patternsProblem,
  /** An http:// or https:// address. */
  'http-url': httpUrlProblem,
  /** 90s, 15m, 4h, 2d (or seconds); `off` where the spec allows it. */
  duration: durationProblem,
  /** A password or token: never echoed. */
  secret: fine,
} satisfies Record<string, Check>;

export type Kind = keyof typeof KINDS;

/** Kinds whose value may hold a password or token: a problem with one never echoes it. */
export const UNSHOWN: ReadonlySet<Kind> = new Set<Kind>(['dsn', 'url', 'http-url', 'secret']);

/** What is wrong with a value of its key's kind; undefined when it is fine. */
export const kindProblem = (spec: KeySpec, value: string, key: string): string | undefined =>
  KINDS[spec.kind](value, spec, key);
