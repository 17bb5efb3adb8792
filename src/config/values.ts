import { isIP } from 'node:net';

/**
 * What a value of karlstage.ini means, for the kinds that need more than a look: read by the
 * kinds' checks (kinds.ts) and by the declarations that turn a value into its field (schema.ts).
 */

/** A skeleton or repository given as a URL rather than a local folder. */
export function isRemoteLocation(location: string): boolean {
  return /^(git\+)?[a-z][a-z0-9+.-]*:\/\//i.test(location) || /^[\w.-]+@[\w.-]+:/.test(location);
}

/** An IPv4 or IPv6 address, with or without a prefix length in range. */
export function isCidr(text: string): boolean {
  const [address = '', bits, ...rest] = text.split('/');
  const family = isIP(address);
  if (!family || rest.length) return false;
  if (bits === undefined) return true;
  return /^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

export const HOST = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i;
const portOf = (text: string | undefined): number | undefined =>
  text !== undefined && /^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535
    ? Number(text)
    : undefined;

/** [mail] listen: "25" (every address), "127.0.0.1:2525" or "[::1]:2525". */
export function parseListen(text: string): { address?: string; port: number } | undefined {
  if (portOf(text)) return { port: portOf(text)! };
  const m = /^(?:\[([0-9a-f:.]+)\]|([0-9.]+)):(\d+)$/i.exec(text);
  const address = m?.[1] ?? m?.[2];
  const port = portOf(m?.[3]);
  if (!address || !port || isIP(address) !== (m?.[1] ? 6 : 4)) return undefined;
  return { address, port };
}

/**
 * [mail] relay: "smtp.example.org" (its MX), "smtp.example.org:587", "[192.0.2.1]:25"
 * (brackets: that very host, no MX lookup) — as postfix's smtp next hop.
 */
export function parseRelay(text: string): string | undefined {
  const m = /^(\[)?([^[\]:]+)(\])?(?::(\d+))?$/.exec(text);
  if (!m || Boolean(m[1]) !== Boolean(m[3])) return undefined;
  const host = m[2]!;
  if (!HOST.test(host) && !isIP(host)) return undefined;
  if (m[4] !== undefined && !portOf(m[4])) return undefined;
  // An address is always bracketed: there is no MX to look up for it.
  const bracket = m[1] || isIP(host) ? `[${host}]` : host;
  return m[4] ? `${bracket}:${m[4]}` : bracket;
}

/** must_not_contain: comma-separated words or /regular expressions/. */
export const splitPatterns = (value: string): string[] =>
  value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);

/** Addresses, IP addresses, CIDR blocks: separated by commas or white space. */
export const splitList = (value: string): string[] => value.split(/[\s,]+/).filter(Boolean);

/**
 * [notify] webhook: a user and password in it (https://user:pw@host/…) go as an
 * Authorization header (fetch refuses a URL that holds them); the whole URL is
 * a secret, masked wherever it could be printed.
 */
export function webhookOf(text: string | undefined): { webhook?: string; webhookAuth?: string } {
  // Not an address: refused by its kind's check, so there is nothing to read.
  if (!text || !URL.canParse(text)) return {};
  const u = new URL(text);
  if (!u.username && !u.password) return { webhook: u.href };
  let credentials: string;
  try {
    credentials = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
  } catch {
    return {}; // refused by its kind's check too: it could not be sent
  }
  u.username = '';
  u.password = '';
  return { webhook: u.href, webhookAuth: `Basic ${Buffer.from(credentials).toString('base64')}` };
}
