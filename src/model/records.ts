/**
 * What state.json holds, record by record: the shapes of the staging root's state (read and
 * written by state.ts, kept in each site's marker by marker.ts).
 */
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
  /** The newest of them (at most 20), newest first: the site list's "what changed". */
  changes?: { subject: string; author: string; date: string }[];
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
  /** Rebuilt by repair from a marker that kept no dates: never stale by age until its next update. */
  datesUnknown?: true;
  /** Whether its app should run, and how its starts went (absent: made before; it should run). */
  run?: RunRecord;
}

/**
 * What should become of a branch site's app, and how its starts went: what `start`, `stop`,
 * `sleep`, `watch` and the wake service decide by. Whether it runs is never stored: it is
 * asked of its port (model/site-state.ts).
 */
export interface RunRecord {
  /**
   * running: it should answer (watch starts it again when it does not); sleeping: stopped
   * for idleness, the first logged-in visitor wakes it; stopped: by the operator, nothing
   * starts it but `karlstage start`.
   */
  want: 'running' | 'sleeping' | 'stopped';
  /** Since when it is wanted so, and who or what decided it. */
  since: string;
  by?: string;
  /** The last start: when, whether the app answered, and in how long (the wake page's estimate). */
  lastStart?: { at: string; ok: boolean; ms: number; by: string; error?: string };
  /** Starts that failed in a row, and when watch (or a visitor) may try again: the backoff. */
  failures?: number;
  retryAt?: string;
  /** When it was first found not answering while it should run. */
  downSince?: string;
  /** A "down" notification went out: a "recovered" one follows when it answers again. */
  toldDown?: boolean;
}

export interface DataRecord {
  /** When the production dump it holds was taken (null before the first successful sync). */
  asOf: string | null;
  dump?: string;
  /** The copy was checked for this many must_not_contain patterns, and found clean. */
  checkedPatterns?: number;
  lastSync?: { at: string; result: 'ok' | 'failed'; durationMs: number; error?: string };
  /**
   * The branch's migrate on a fresh copy of production: does this code work on the customer's
   * real data? (dataOf: when that copy's dump was taken.)
   */
  migrate?: {
    at: string;
    dataOf: string | null;
    result: 'ok' | 'failed';
    durationMs: number;
    error?: string;
  };
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
