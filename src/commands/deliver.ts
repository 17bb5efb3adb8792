import { KarlstageError } from '../core/errors.js';
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

/** The Maildir this message belongs in, or the bounce or deferral that says why there is none. */
export function mailboxFor(m: Mailboxes, branch: string, recipient: string): string {
  // Never part of a path (the Maildir comes from mailboxes.json), but refused all the same.
  // eslint-disable-next-line no-control-regex
  if (/[/\\\s\x00-\x1f\x7f]|\.\./.test(recipient) || !/^[^@]+@[^@]+$/.test(recipient))
    throw bounce(`"${recipient}" is not a staged mail address`);
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

export async function deliver(opts: DeliverOptions): Promise<{ file: string }> {
  try {
    const m = await readMailboxes(opts.mailboxes).catch((e: Error) => {
      throw later(`cannot read ${opts.mailboxes}: ${e.message}`);
    });
    const dir = opts.caught ? m.caught : mailboxFor(m, opts.branch ?? '', opts.recipient);
    const file = await deliverToMaildir(dir, await opts.message()).catch(
      (e: NodeJS.ErrnoException) => {
        throw later(
          e.code === 'ENOENT'
            ? `the Maildir ${dir} is missing: "karlstage mail --install" makes it`
            : `cannot write to ${dir}: ${e.message}`,
        );
      },
    );
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
