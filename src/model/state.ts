import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import { KarlstageError } from '../core/errors.js';
import { printable } from '../core/printable.js';
import { layout } from './layout.js';
import { acquireLock, LOCKS } from './locks.js';
import { markerTexts, traces, writeChangedMarkers } from './marker.js';
import type { State } from './records.js';

export type {
  BranchState,
  BuiltRecord,
  DataRecord,
  PollRecord,
  RunRecord,
  State,
  UpdateRecord,
} from './records.js';

const EMPTY: State = { version: 1, branches: {} };

/** What is wrong with a value read from state.json; undefined when it has the right shape. */
export function stateProblem(value: unknown): string | undefined {
  const s = value as State;
  if (typeof s !== 'object' || s === null) return 'not an object';
  if (s.version !== 1) return `unknown version ${JSON.stringify(s.version)}`;
  if (typeof s.branches !== 'object' || s.branches === null || Array.isArray(s.branches))
    return 'no branches';
  for (const [name, b] of Object.entries(s.branches))
    if (
      typeof b !== 'object' ||
      b === null ||
      b.name !== name ||
      typeof b.slot !== 'number' ||
      typeof b.port !== 'number' ||
      typeof b.ref !== 'string' ||
      (b.vcs !== 'git' && b.vcs !== 'svn')
    )
      return `the record of "${printable(name)}" is damaged`;
  return undefined;
}

/** Parse state.json's text; the problem when it is damaged (truncated, empty, not JSON, wrong shape). */
export function parseState(text: string): { state?: State; problem?: string } {
  if (text.trim() === '') return { problem: 'it is empty' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // JSON.parse quotes the file's bytes: never raw (an escape sequence can steer a terminal).
    return {
      problem: `not JSON: ${printable((e as Error).message.replace(/\s+/g, ' ')).slice(0, 100)}`,
    };
  }
  const problem = stateProblem(value);
  return problem ? { problem } : { state: value as State };
}

export async function readState(root: string): Promise<State> {
  let text: string;
  try {
    text = await readFile(layout.state(root), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new KarlstageError(`cannot read ${layout.state(root)}: ${(e as Error).message}`);
    // Missing: a fresh root, or one whose state.json was deleted, which must not start afresh.
    const left = await traces(root);
    if (!left) return structuredClone(EMPTY);
    throw new KarlstageError(
      `${layout.state(root)} is missing, but this staging root has ${left.sites.length ? `branch sites (${left.sites.join(', ')})` : 'a last good copy of it'}: "karlstage repair" puts it back from the last good copy or rebuilds it from the branch sites' folders; nothing was changed`,
    );
  }
  const { state, problem } = parseState(text);
  if (state) return state;
  throw new KarlstageError(
    `${layout.state(root)} is damaged (${problem}): "karlstage repair" puts back the last good copy, or rebuilds it from the branch sites' folders; nothing was changed`,
  );
}

/** How long a run waits for state.json's own lock (KARLSTAGE_STATE_LOCK_WAIT seconds, default 30). */
const stateLockWait = () => Number(process.env.KARLSTAGE_STATE_LOCK_WAIT ?? 30);

/**
 * Read-modify-write of state.json under its own short lock, written atomically
 * (temp file + rename), so concurrent runs on different branches never lose
 * each other's changes and a kill never leaves half a file; a copy of each
 * good state is kept as state.json.last-good, for repair.
 */
export async function updateState(root: string, change: (state: State) => void): Promise<State> {
  await mkdir(dirname(layout.state(root)), { recursive: true });
  const release = await acquireLock(root, LOCKS.state, {
    command: 'state update',
    waitSeconds: stateLockWait(),
  });
  try {
    const state = await readState(root);
    const markers = markerTexts(Object.values(state.branches));
    change(state);
    const text = JSON.stringify(state, null, 2) + '\n';
    await writeFileAtomic(layout.state(root), text);
    // A second copy of the good state: what "karlstage repair" puts back when state.json is
    // damaged by hand or by a full disk (each write is atomic, so both are seldom hit at once).
    await writeFileAtomic(layout.stateBackup(root), text).catch(() => undefined);
    // And each site's own marker, when what it keeps (who it is, its hold, its dates) changed.
    await writeChangedMarkers(root, markers, Object.values(state.branches));
    return state;
  } finally {
    await release();
  }
}
