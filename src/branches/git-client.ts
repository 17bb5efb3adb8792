import { simpleGit, type SimpleGit } from 'simple-git';

/**
 * A simple-git client that never prompts (cron has no terminal). simple-git
 * guards GIT_* variables; the environment here is the operator's own and
 * ours, so it is passed on as it is (e.g. GIT_SSL_CAINFO for a private CA).
 */
export function gitClient(baseDir?: string, timeoutMs?: number, extraEnv: Record<string, string> = {}): SimpleGit {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, { GIT_TERMINAL_PROMPT: '0', GIT_SSH_COMMAND: env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes' }, extraEnv);
  return simpleGit({
    baseDir,
    ...(timeoutMs ? { timeout: { block: timeoutMs } } : {}),
    allowEnvironment: Object.keys(env),
    // Our own fixed ssh command (BatchMode: fail rather than prompt), or the operator's.
    unsafe: { allowUnsafeSshCommand: true },
  }).env(env);
}
