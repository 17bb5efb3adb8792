import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { KarlstageError } from '../core/errors.js';
import { layout } from './layout.js';
import { acquireLock, LOCKS } from './locks.js';

/** What karlstage knows about each branch site; .karlstage/state.json. */
export interface UpdateRecord {
  at: string;
  result: 'ok' | 'failed';
  revision?: string;
  durationMs: number;
  error?: string;
  note?: string;
}

export interface BuiltRecord {
  revision: string;
  ref: string;
  at: string;
  /** The built commit, for the site list. */
  commit?: { subject: string; author: string; date: string };
  /** Commits the built ref has that the default ref does not, where cheap to know. */
  ahead?: number;
}

export interface BranchState {
  name: string;
  slot: number;
  port: number;
  vcs: 'git' | 'svn';
  ref: string;
  /** What the ref is (git: branch, tag or commit; svn: a path), read upstream when it was chosen. */
  refKind?: 'branch' | 'tag' | 'commit' | 'path';
  createdAt: string;
  /** The revision checked out in the working copy. */
  revision?: string;
  /** The last revision built successfully (the last good one). */
  built?: BuiltRecord;
  lastUpdate?: UpdateRecord;
  /** The last poll of its upstream ref. */
  poll?: PollRecord;
  /** Per customer: the production data this site's database holds, and the last sync. */
  data?: Record<string, DataRecord>;
  /** Held out of the nightly sync (someone is testing on its data). */
  hold?: { since: string; by: string; reason?: string };
}

export interface DataRecord {
  /** When the production dump it holds was taken (null before the first successful sync). */
  asOf: string | null;
  dump?: string;
  lastSync?: { at: string; result: 'ok' | 'failed'; durationMs: number; error?: string };
}

export interface PollRecord {
  at: string;
  /** Upstream head revision; null when the ref is gone upstream. */
  remote: string | null;
  behind: boolean;
  /** New commits upstream, where the VCS can tell cheaply. */
  newCommits?: number;
  error?: string;
}

export interface State {
  version: 1;
  branches: Record<string, BranchState>;
}

const EMPTY: State = { version: 1, branches: {} };

export async function readState(root: string): Promise<State> {
  let text: string;
  try {
    text = await readFile(layout.state(root), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return structuredClone(EMPTY);
    throw e;
  }
  try {
    const state = JSON.parse(text) as State;
    if (state.version !== 1 || typeof state.branches !== 'object')
      throw new Error('unknown version');
    return state;
  } catch (e) {
    throw new KarlstageError(
      `${layout.state(root)} is damaged (${(e as Error).message}); restore it from a backup or remove it and re-create the branch sites`,
    );
  }
}

/**
 * Read-modify-write of state.json under its own short lock, written atomically
 * (temp file + rename), so concurrent runs on different branches never lose
 * each other's changes and a kill never leaves half a file.
 */
export async function updateState(root: string, change: (state: State) => void): Promise<State> {
  await mkdir(dirname(layout.state(root)), { recursive: true });
  const release = await acquireLock(root, LOCKS.state, {
    command: 'state update',
    waitSeconds: 30,
  });
  try {
    const state = await readState(root);
    change(state);
    await writeFileAtomic(layout.state(root), JSON.stringify(state, null, 2) + '\n');
    return state;
  } finally {
    await release();
  }
}

/** The smallest slot not taken: slots (and ports) are reused after destroy. */
export function freeSlot(state: State): number {
  const used = new Set(Object.values(state.branches).map((b) => b.slot));
  let slot = 1;
  while (used.has(slot)) slot++;
  return slot;
}
