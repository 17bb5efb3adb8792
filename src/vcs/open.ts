import type { VcsKind } from '../config/config.js';
import type { Vcs, VcsOptions } from './vcs.js';

/** The git or svn implementation, loaded only when needed (git.ts and svn.ts import the interface, not this). */
export async function openVcs(kind: VcsKind, opts: VcsOptions): Promise<Vcs> {
  if (kind === 'git') {
    const { GitVcs } = await import('./git.js');
    return new GitVcs(opts);
  }
  const { SvnVcs } = await import('./svn.js');
  return new SvnVcs(opts);
}

/** The configured source repository; git sites share the object store given. */
export function sourceVcs(
  cfg: { source: { vcs: VcsKind; url: string; timeout: number; retries: number } },
  opts: { log?: string; store?: string; retries?: number } = {},
): Promise<Vcs> {
  return openVcs(cfg.source.vcs, {
    url: cfg.source.url,
    timeoutMs: cfg.source.timeout * 1000,
    retries: opts.retries ?? cfg.source.retries,
    log: opts.log,
    store: opts.store,
  });
}
