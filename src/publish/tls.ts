import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { Config } from '../config/config.js';
import { exec } from '../core/command.js';
import { splitCommand } from '../core/command-line.js';

/**
 * What the TLS part of the routes is made of: Mozilla's "intermediate"
 * server-side TLS recommendation (the reference operators check against), and
 * what the installed nginx, its OpenSSL and the certificate offer.
 */
export const MOZILLA = {
  guideline: 'Mozilla guideline 6.0, intermediate',
  /** TLS 1.2: forward-secret (ECDHE) AEAD suites only; TLS 1.3 suites are all of that kind. */
  ciphers: [
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ],
  /** X25519MLKEM768 first where OpenSSL knows it (3.5 and later). */
  curves: ['X25519MLKEM768', 'X25519', 'prime256v1', 'secp384r1'],
} as const;

export interface NginxFacts {
  /** e.g. [1, 22, 1]; [0, 0, 0] when nginx could not be asked. */
  version: [number, number, number];
  /** Built with ngx_http_v2_module. */
  http2: boolean;
  /** The OpenSSL nginx runs with, e.g. [3, 0]. */
  openssl: [number, number];
}

/** Read what `nginx -V` says (the [staging] nginx program); a nginx that cannot be asked offers nothing. */
export function parseNginxV(text: string): NginxFacts {
  const v = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(text);
  const ssl =
    /running with OpenSSL (\d+)\.(\d+)/.exec(text) ?? /built with OpenSSL (\d+)\.(\d+)/.exec(text);
  return {
    version: v ? [Number(v[1]), Number(v[2]), Number(v[3])] : [0, 0, 0],
    http2: /--with-http_v2_module/.test(text),
    openssl: ssl ? [Number(ssl[1]), Number(ssl[2])] : [0, 0],
  };
}

export async function nginxFacts(cfg: Config): Promise<NginxFacts> {
  const [nginx, ...args] = splitCommand(cfg.staging.nginx, '[staging] nginx') as [
    string,
    ...string[],
  ];
  const r = await exec({
    program: nginx,
    args: [...args, '-V'],
    step: 'ask nginx what it offers (nginx -V)',
    timeoutMs: 10_000,
  }).catch(() => undefined);
  return parseNginxV(`${r?.stdout ?? ''}\n${r?.stderr ?? ''}`);
}

const atLeast = (v: readonly number[], min: readonly number[]) => {
  for (let i = 0; i < min.length; i++) if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) > min[i]!;
  return true;
};

/** HTTP/2 as this nginx spells it: "http2 on;" from 1.25.1, "listen … http2" before. */
export function http2Form(n: NginxFacts): 'directive' | 'listen' | undefined {
  if (!n.http2) return undefined;
  return atLeast(n.version, [1, 25, 1]) ? 'directive' : 'listen';
}

/** The key exchange groups of the recommendation that this OpenSSL knows. */
export const curvesFor = (n: NginxFacts): string[] =>
  MOZILLA.curves.filter((c) => c !== 'X25519MLKEM768' || atLeast(n.openssl, [3, 5]));

/** Whether the certificate names an OCSP responder (then its answer is stapled). */
export async function ocspResponder(certFile: string): Promise<string | undefined> {
  try {
    const info = new X509Certificate(await readFile(certFile)).infoAccess ?? '';
    return /^OCSP - URI:(\S+)/m.exec(info)?.[1];
  } catch {
    return undefined; // nginx -t names a certificate it cannot read
  }
}

/** The system's name servers (nginx resolves the OCSP responder itself), for "resolver". */
export async function nameServers(file = '/etc/resolv.conf'): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return [...text.matchAll(/^nameserver\s+(\S+)/gm)]
    .map((m) => m[1]!.replace(/%.*$/, ''))
    .filter((a) => isIP(a))
    .map((a) => (isIP(a) === 6 ? `[${a}]` : a));
}

/** Debian's bundle of trusted CAs, to verify a stapled answer. */
export const TRUSTED_CAS = '/etc/ssl/certs/ca-certificates.crt';
export const trustedCas = (): string | undefined =>
  existsSync(TRUSTED_CAS) ? TRUSTED_CAS : undefined;
