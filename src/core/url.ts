/**
 * The user information in a URL (scheme://user:password@host/…), read with the
 * WHATWG URL parser: a password, or over http(s) a user name that is a token,
 * must never be shown or handed to a program on its command line.
 */
export interface UserInfo {
  username: string;
  password: string;
  /** ssh-like schemes: the user name says who to log in as, and is no secret. */
  sshLike: boolean;
  url: URL;
}

export function userinfo(text: string): UserInfo | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined; // a local path, or git's user@host:path form
  }
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  if (!username && !password) return undefined;
  return { username, password, sshLike: /^(svn\+ssh|ssh|git\+ssh):$/.test(url.protocol), url };
}
