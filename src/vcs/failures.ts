import { StepError, UsageError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import type { VcsOptions } from './vcs.js';

/**
 * Before anything is created, a repository that cannot be reached (after the
 * retries) is a problem with the input: one line that says what to check.
 */
export async function unreachable<T>(opts: VcsOptions, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof StepError)) throw e;
    const attempts = opts.retries + 1;
    const why = whyFailed(e);
    throw new UsageError(
      `cannot reach ${redact(opts.url)} (${attempts} attempt${attempts > 1 ? 's' : ''}): ${why}; check [source] url and the network`,
      e.details,
    );
  }
}

/** The line of a git or svn failure that says why: git's first "fatal:", svn's last error code. */
export function whyFailed(e: unknown): string {
  if (!(e instanceof StepError)) return e instanceof Error ? e.message : String(e);
  const lines = e.outputTail.split('\n').map((l) => l.trim());
  return (
    lines.find((l) => l.startsWith('fatal:')) ??
    lines.filter((l) => /^svn: E\d+:/.test(l)).at(-1) ??
    e.message.replace(/^.*? failed: /, '')
  );
}
