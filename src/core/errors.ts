/** Exit statuses, as DESIGN.md fixes them. */
export const EXIT = { ok: 0, failure: 1, usage: 2, locked: 75 } as const;

/** An error the user can act on: printed as one line (plus details), never as a stack. */
export class KarlstageError extends Error {
  /** What the command got done before it failed: part of the JSON document with --json. */
  result?: object;

  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad input, bad usage or bad configuration: exit 2, and nothing was changed. */
export class UsageError extends KarlstageError {
  constructor(message: string, details: string[] = []) {
    super(message, EXIT.usage, details);
  }
}

/**
 * A refusal that comes after something was changed is a failure (exit 1): exit 2
 * promises that nothing was changed. The message stays; only the status changes.
 */
export function asFailure(e: KarlstageError): KarlstageError {
  if (e.exitCode !== EXIT.usage) return e;
  return Object.assign(new KarlstageError(e.message, EXIT.failure, e.details), {
    ...(e.result ? { result: e.result } : {}),
  });
}

/** Another run holds a lock and --wait ran out: exit 75 (EX_TEMPFAIL). */
export class LockedError extends KarlstageError {
  constructor(message: string) {
    super(message, EXIT.locked);
  }
}

/** A bug in karlstage, not a problem the operator can fix: shown with its stack and a request to report it. */
export class InternalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InternalError';
  }
}

/** An external program failed: carries the step, its command line and the tail of its output. */
/** What a failed program left: its step, masked command line, output tail and the reason. */
export interface Failure {
  step: string;
  commandLine: string;
  outputTail: string;
  reason: string;
  logFile?: string;
}

export class StepError extends KarlstageError {
  readonly step: string;
  readonly commandLine: string;
  readonly outputTail: string;
  readonly logFile?: string;

  constructor(f: Failure) {
    const details = [`$ ${f.commandLine}`];
    if (f.outputTail.trim())
      details.push(
        ...f.outputTail
          .trimEnd()
          .split('\n')
          .map((l) => `  ${l}`),
      );
    if (f.logFile) details.push(`full output: ${f.logFile}`);
    const cause = causeOf(f.outputTail);
    super(
      `${f.step} failed: ${f.reason}${cause && !f.reason.includes(cause) ? ` (${cause})` : ''}`,
      EXIT.failure,
      details,
    );
    this.step = f.step;
    this.commandLine = f.commandLine;
    this.outputTail = f.outputTail;
    if (f.logFile) this.logFile = f.logFile;
  }

  /** The same failure, its reason in better words (a program's own "fatal:" line, say). */
  because(reason: string): StepError {
    const { step, commandLine, outputTail, logFile } = this;
    return new StepError({
      step,
      commandLine,
      outputTail,
      reason,
      ...(logFile ? { logFile } : {}),
    });
  }
}

/**
 * The line of a program's output that says why it failed, picked by what it
 * says, not where it stands: a full disk or a refused permission beats a lost
 * connection, which beats a follow-up such as "a worker process died
 * unexpectedly", which beats any other line that reads like an error. What a
 * program quotes back (pg_dump's "Query was:", psql's STATEMENT and LINE n, a
 * query running on over many lines) is never the cause, whatever words it holds.
 */
const CAUSES = [
  /no space left on device|disk quota exceeded|read-only file system/i,
  /permission denied|authentication failed|password authentication/i,
  /connection refused|could not connect|could not translate host name|name or service not known|server closed the connection|terminating connection|no route to host|connection timed out/i,
  /\b(error|fatal|failed|panic)\b/i,
];
// A line that starts quoting what was sent: what follows it is the quote, up to the next message.
const QUOTE_START =
  /^(?:[\w./-]+:\s+)?(?:(?:detail|DETAIL):\s+)?(?:Query|Command) was:|^(?:psql:\S*:\d+:\s+)?(?:STATEMENT|QUERY|CONTEXT):|^LINE \d+:/;
// A line a program writes in its own voice: "pg_dump: error: …", "ERROR:  …", "fatal: …".
const SAYS =
  /^(?:[\w./-]+(?::[\w./-]+)*:\s+)?(?:error|fatal|panic|detail|hint|warning|notice|ERROR|FATAL|PANIC|DETAIL|HINT|WARNING|NOTICE|LOG)\b/;
const SEVERE = /^(?:[\w./-]+(?::[\w./-]+)*:\s+)?(?:error|fatal|panic|ERROR|FATAL|PANIC)\b/;

/** The output's lines, trimmed, without what the program quotes back. */
function ownWords(output: string): string[] {
  const said: string[] = [];
  let quoting = false;
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (QUOTE_START.test(line)) quoting = true;
    else if (quoting && SAYS.test(raw)) quoting = false;
    if (!quoting) said.push(line);
  }
  return said;
}

export function causeOf(output: string): string | undefined {
  const lines = ownWords(output);
  const generic = CAUSES.at(-1)!;
  for (const pattern of CAUSES) {
    const matching = lines.filter((l) => pattern.test(l));
    // Of the lines that merely read like an error, one in a program's own "error:" voice, the last.
    const line =
      pattern === generic
        ? (matching.filter((l) => SEVERE.test(l)).at(-1) ?? matching.at(-1))
        : matching[0];
    if (line) return line.length > 240 ? `${line.slice(0, 237)}...` : line;
  }
  return undefined;
}

/**
 * The operating system refused a file operation because of where it ran, not
 * because of a bug: a full disk, a quota, a read-only or missing permission,
 * a broken device. Such an error is one line naming the file and the cause
 * (exit 1), never an "internal error" with a stack.
 */
const OS_CAUSES = new Set([
  'ENOSPC',
  'EDQUOT',
  'EROFS',
  'EACCES',
  'EPERM',
  'EIO',
  'EMFILE',
  'ENFILE',
  'EFBIG',
  'ENAMETOOLONG',
  'ELOOP',
  'ENOTDIR',
  'EISDIR',
  'EXDEV',
  'EBUSY',
  'ETXTBSY',
]);
const VERBS: Record<string, string> = {
  open: 'open',
  write: 'write',
  fsync: 'write',
  close: 'write',
  read: 'read',
  rename: 'rename',
  mkdir: 'make the folder',
  rmdir: 'remove',
  unlink: 'remove',
  rm: 'remove',
  copyfile: 'copy',
  link: 'link',
  symlink: 'link',
  chmod: 'change the mode of',
  chown: 'change the owner of',
  scandir: 'read the folder',
  utime: 'date',
};

/** The one-line error for an operating system's refusal (see OS_CAUSES); undefined for anything else. */
export function osError(e: unknown, file?: string): KarlstageError | undefined {
  if (e instanceof KarlstageError || !(e instanceof Error)) return undefined;
  const { code, syscall, path, dest } = e as NodeJS.ErrnoException & { dest?: string };
  if (!code || !OS_CAUSES.has(code)) return undefined;
  // "ENOSPC: no space left on device, write" -> "no space left on device"
  const cause = e.message.replace(/^E[A-Z]+: /, '').replace(/, \w+( '.*')?$/, '');
  const verb = (syscall && VERBS[syscall]) ?? 'write';
  const what = file ?? path;
  const target = what ? ` ${what}${verb === 'rename' && dest ? ` to ${dest}` : ''}` : '';
  return new KarlstageError(`cannot ${verb}${target}: ${cause} (${code})`);
}

/** One line for a status table: the message, which for a failed program names its cause already. */
export function briefly(e: unknown): string {
  return messageOf(e);
}

export function isKarlstageError(e: unknown): e is KarlstageError {
  return e instanceof KarlstageError;
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
