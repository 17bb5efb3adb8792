import { fileURLToPath } from 'node:url';
import { addSecret } from '../core/redact.js';
import { userinfo } from '../core/url.js';

/**
 * A password or token in a repository URL (https://user:TOKEN@host/x.git,
 * https://TOKEN@host/x.git) is taken out of the URL before any program sees
 * it: git gets it from an askpass program reading karlstage's environment,
 * svn on its standard input. So it never shows in `ps`, in a checkout's
 * .git/config or svn metadata, in a log, a plan or an error.
 */
export interface Credentials {
  username?: string;
  password?: string;
}

/** The askpass program shipped beside the launcher (bin/karlstage-askpass). */
export const ASKPASS = fileURLToPath(new URL('../../bin/karlstage-askpass', import.meta.url));

/** A URL without its secrets, and the credentials it carried (registered as secrets to mask). */
export function splitCredentials(text: string): { url: string; credentials?: Credentials } {
  const info = userinfo(text);
  if (!info) return { url: text }; // a local path, git's user@host:path, or no credentials
  const { username, password, sshLike, url: u } = info;
  // Over ssh the user name says who to log in as, and is no secret; over http(s) it may be a token.
  if (!password && sshLike) return { url: text };
  addSecret(password);
  if (!sshLike) addSecret(username);
  u.password = '';
  if (!sshLike) u.username = '';
  return {
    url: u.href,
    credentials: {
      ...(username && !sshLike ? { username } : {}),
      ...(password ? { password } : {}),
    },
  };
}

/** git's environment for these credentials: GIT_ASKPASS answers its prompts. */
export function gitCredentialEnv(c: Credentials | undefined): Record<string, string> {
  return {
    GIT_ASKPASS: ASKPASS,
    KARLSTAGE_ASKPASS_USERNAME: c?.username ?? '',
    KARLSTAGE_ASKPASS_PASSWORD: c?.password ?? '',
  };
}
