import { dirname, resolve } from 'node:path';
import { KarlstageError } from '../core/errors.js';
import { NotAFolder } from '../core/no-links.js';
import { printable } from '../core/printable.js';
import { deliverToMaildir } from '../model/maildir.js';
import { readMailboxes, type Mailboxes } from '../model/mailboxes.js';

/**
 * Postfix's pipe transport (master.cf runs it, as [mail] user, without a
 * shell): the message on stdin goes into one Maildir, or the exit status says
 * why not in postfix's words (sysexits): 67 (EX_NOUSER) bounces it with the
 * reason, 75 (EX_TEMPFAIL) keeps it queued and tried again — whatever went
 * wrong that is not the message's own fault, so no mail is ever lost. It
 * reads only mailboxes.json, never karlstage.ini, and takes no lock: mail
 * that arrives during an update waits in the Maildir for mail-in.
 */
export const EX_NOUSER = 67;
export const EX_TEMPFAIL = 75;

export interface DeliverOptions {
  mailboxes: string;
  /** The branch site postfix routed it to (${nexthop}); absent with --caught. */
  branch?: string;
  recipient: string;
  caught?: boolean;
  message: () => Promise<Buffer>;
}

const bounce = (why: string) => new KarlstageError(why, EX_NOUSER);
const later = (why: string) => new KarlstageError(why, EX_TEMPFAIL);

// A recipient as people write one: letters and digits of any script and the few signs
// addresses use (no "/", no quotes, no spaces, no control character of any kind, C1 included)
// at a domain of letters, digits and "-" between dots. Anything else is not staged mail.
const LOCAL = /^[\p{L}\p{M}\p{N}!#$%&'*+=?^_`{|}~-]+(?:\.[\p{L}\p{M}\p{N}!#$%&'*+=?^_`{|}~-]+)*$/u;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Whether `recipient` is a plausible mail address (nothing a terminal or a path could trip on). */
export function plausibleAddress(recipient: string): boolean {
  const at = recipient.lastIndexOf('@');
  const [local, domain] = [recipient.slice(0, at), recipient.slice(at + 1)];
  return (
    at > 0 &&
    local.length <= 64 &&
    domain.length <= 253 &&
    LOCAL.test(local) &&
    domain.split('.').length > 1 &&
    domain.split('.').every((l) => LABEL.test(l))
  );
}

/** The Maildir this message belongs in, or the bounce or deferral that says why there is none. */
export function mailboxFor(m: Mailboxes, branch: string, recipient: string): string {
  if (!plausibleAddress(recipient))
    throw bounce(`"${printable(recipient)}" is not a staged mail address`);
  const domain = recipient.slice(recipient.lastIndexOf('@') + 1).toLowerCase();
  const suffix = m.domain ? `.${m.domain.toLowerCase()}` : undefined;
  const customer = suffix && domain.endsWith(suffix) ? domain.slice(0, -suffix.length) : '';
  const box = Object.hasOwn(m.customers, customer) ? m.customers[customer] : undefined;
  if (!box) throw bounce(`no customer "${customer || domain}" takes staged mail on this server`);
  // Moved meanwhile ("karlstage mail CUSTOMER BRANCH", or the old branch site destroyed):
  // postfix routes it again on the next try, so it is deferred, never bounced.
  if (box.branch !== branch)
    throw later(`${customer}'s staged mail now goes to ${box.branch}, not ${branch}`);
  return box.maildir;
}

/** Why a Maildir could not take the message, in the words the deferral carries. */
function whyNot(dir: string, e: NodeJS.ErrnoException): KarlstageError {
  if (e instanceof NotAFolder)
    return later(
      `${e.path} is ${e.link ? 'a symbolic link' : 'not a folder'}: staged mail is never delivered through it; remove it, then run "karlstage mail --install"`,
    );
  if (e.code === 'ENOENT')
    return later(`the Maildir ${dir} is missing: "karlstage mail --install" makes it`);
  return later(`cannot write to ${dir}: ${e.message}`);
}

export async function deliver(opts: DeliverOptions): Promise<{ file: string }> {
  try {
    const m = await readMailboxes(opts.mailboxes).catch((e: Error) => {
      throw later(`cannot read ${opts.mailboxes}: ${e.message}`);
    });
    const dir = opts.caught ? m.caught : mailboxFor(m, opts.branch ?? '', opts.recipient);
    // Files written before mailboxes.json named the root: it is the folder that holds .karlstage/.
    const root = m.root ?? resolve(dirname(opts.mailboxes), '..', '..');
    const message = await opts.message();
    const file = await deliverToMaildir(root, dir, message).catch((e: NodeJS.ErrnoException) => {
      throw whyNot(dir, e);
    });
    return { file };
  } catch (e) {
    // Anything unforeseen is temporary: the message stays queued rather than bounce.
    if (e instanceof KarlstageError) throw e;
    throw later(`delivery failed: ${(e as Error).message}`);
  }
}

export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
