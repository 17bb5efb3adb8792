import { StepError, UsageError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { isFinal } from '../core/retries.js';
import type { VcsOptions } from './vcs.js';

/**
 * Before anything is created, a repository that cannot be reached (after the
 * retries) is a problem with the input: one line that says what to check. With
 * `ref` (a ref given as a full URL), that ref is named, not [source] url. What
 * could not succeed (isFinal: no repository there, a refused login) was tried once.
 */
export async function unreachable<T>(
  opts: VcsOptions,
  fn: () => Promise<T>,
  ref?: string,
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof StepError)) throw e;
    const final = isFinal(e);
    const attempts = final ? 1 : opts.retries + 1;
    const why = whyFailed(e);
    const what = ref ? `the ref ${redact(ref)}` : redact(opts.url);
    const check = `${ref ? 'check --ref' : 'check [source] url'}${final ? '' : ' and the network'}`;
    throw new UsageError(
      `cannot reach ${what} (${attempts} attempt${attempts > 1 ? 's' : ''}): ${why}; ${check}`,
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
