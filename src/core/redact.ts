/**
 * Passwords must never reach a terminal or a log. Everything printed or logged
 * goes through redact(): it masks the password part of URLs and libpq keyword
 * strings, and every literal secret registered (e.g. from the configuration).
 */
const MASK = '***';
const secrets = new Set<string>();

export function addSecret(secret: string | undefined): void {
  if (secret && secret.length >= 3) secrets.add(secret);
}

// scheme://user:password@host → scheme://user:***@host
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)([^\s@/]+)(@)/gi;
// Over http(s) a user name alone is often a token (https://TOKEN@host): masked when it looks
// like one (a person's name such as https://reader1@host is left as it is).
const URL_TOKEN = /(https?:\/\/)([^\s:/@]+)(@)/gi;

/**
 * Whether a user name is a token rather than a person's name: a known token prefix (GitHub,
 * GitLab, Slack), or long and made of letters and digits together, as generated tokens are.
 */
export function looksLikeToken(name: string): boolean {
  if (/^(gh[opsur]_|github_pat_|glpat-|xox[abpr]-|x-access-token$|oauth2$)/i.test(name))
    return true;
  return name.length >= 20 && /\d/.test(name) && /[a-z]/i.test(name) && !/[\s@]/.test(name);
}
// password=secret, password = 'a b', PGPASSWORD=secret
// (A value already masked is left alone: "password=***)" keeps its parenthesis.)
const KEYWORD_PASSWORD =
  /(\b(?:password|PGPASSWORD)\s*=\s*)(?!\*\*\*)('(?:[^'\\]|\\.)*'|[^\s'"]+)/gi;

export function redact(text: string): string {
  let out = text
    .replace(URL_PASSWORD, `$1${MASK}$3`)
    .replace(URL_TOKEN, (all, scheme: string, name: string, at: string) =>
      looksLikeToken(name) ? `${scheme}${MASK}${at}` : all,
    )
    .replace(KEYWORD_PASSWORD, `$1${MASK}`);
  for (const s of secrets) out = out.split(s).join(MASK);
  return out;
}
