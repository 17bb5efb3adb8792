import { readFile } from 'node:fs/promises';

/**
 * What "karlstage deliver" needs and nothing more, written by karlstage when
 * the mail routes change: the staged mail domain, each customer's mail branch
 * and Maildir, and the catch-all Maildir. The
 * delivery (run by postfix, as the mail user) reads only this file, never
 * karlstage.ini with its passwords.
 */
export interface Mailboxes {
  version: 1;
  /**
   * The staging root: every Maildir lies below it and is reached from it without following a
   * link. Files written before it was there: the root is the folder that holds .karlstage/.
   */
  root?: string;
  /** [staging] mail_domain: mail for CUSTOMER.<domain> is staged mail-in. */
  domain?: string;
  customers: Record<string, { branch: string; maildir: string }>;
  caught: string;
}

/** Read and check it; anything else than what karlstage writes is an error (the caller defers). */
export async function readMailboxes(file: string): Promise<Mailboxes> {
  const m = JSON.parse(await readFile(file, 'utf8')) as Partial<Mailboxes>;
  const ok =
    m.version === 1 &&
    (m.root === undefined || typeof m.root === 'string') &&
    typeof m.caught === 'string' &&
    typeof m.customers === 'object' &&
    m.customers !== null &&
    Object.values(m.customers).every(
      (c) => typeof c?.branch === 'string' && typeof c.maildir === 'string',
    );
  if (!ok) throw new Error(`${file} is not a mailboxes file karlstage wrote`);
  return m as Mailboxes;
}
