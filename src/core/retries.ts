import { UsageError } from './errors.js';

/** An error that trying again cannot cure (a URL that names no repository, a refused address). */
export const isFinal = (e: unknown): boolean =>
  e instanceof UsageError || (e instanceof Error && (e as { final?: boolean }).final === true);

/**
 * Network reads (clone, fetch, ls-remote, svn info URL) get a few retries with
 * backoff: a staging server's cron job should ride out a short outage. What
 * cannot succeed (isFinal) is not tried again; `signal` ends the waiting.
 */
export async function withRetries<T>(
  fn: () => Promise<T>,
  retries: number,
  opts: { signal?: AbortSignal } = {},
): Promise<T> {
  const { default: pRetry } = await import('p-retry');
  return pRetry(fn, {
    retries,
    minTimeout: 500,
    factor: 2,
    shouldRetry: ({ error }) => !isFinal(error),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}
