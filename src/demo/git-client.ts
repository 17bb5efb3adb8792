import { simpleGit, type SimpleGit } from 'simple-git';

// (The demo builds its sample repositories with simple-git; karlstage itself runs git through the runner.)
// Programs git would start to talk to a person: never wanted here (cron has no terminal).
const INTERACTIVE = /^(GIT_)?(EDITOR|VISUAL|PAGER|SEQUENCE_EDITOR|ASKPASS)$|^SSH_ASKPASS$/i;

/**
 * A simple-git client that never prompts. simple-git guards GIT_* variables;
 * the environment here is the operator's own and ours, so it is passed on
 * (e.g. GIT_SSL_CAINFO for a private CA), less the interactive helpers.
 */
export function gitClient(
  baseDir?: string,
  timeoutMs?: number,
  extraEnv: Record<string, string> = {},
): SimpleGit {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !INTERACTIVE.test(k)) env[k] = v;
  // GIT_OPTIONAL_LOCKS=0: "git status" must not rewrite the index (a read stays a read).
  Object.assign(
    env,
    {
      GIT_TERMINAL_PROMPT: '0',
      GIT_OPTIONAL_LOCKS: '0',
      GIT_SSH_COMMAND: env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes',
    },
    extraEnv,
  );
  return simpleGit({
    baseDir,
    ...(timeoutMs ? { timeout: { block: timeoutMs } } : {}),
    allowEnvironment: Object.keys(env),
    // Our own fixed ssh command (BatchMode: fail rather than prompt), or the operator's.
    unsafe: { allowUnsafeSshCommand: true },
  }).env(env);
}
