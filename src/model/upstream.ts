import type { PollRecord } from './state.js';

/** A branch site against upstream, in the words status, poll and the site list use (pure: poll loads it on every run). */
export type UpstreamState =
  'up to date' | 'behind' | 'gone upstream' | 'not polled' | 'poll failed';

export function upstreamState(p: PollRecord | undefined): UpstreamState {
  if (!p) return 'not polled';
  if (p.error) return 'poll failed';
  if (p.remote === null) return 'gone upstream';
  return p.behind ? 'behind' : 'up to date';
}

export function describePoll(p: PollRecord | undefined): string {
  const state = upstreamState(p);
  return state === 'behind' && p?.newCommits !== undefined ? `behind (${p.newCommits} new)` : state;
}

export function shortRevision(rev: string | undefined, vcs: string): string {
  if (!rev) return '-';
  return vcs === 'svn' ? `r${rev}` : rev.slice(0, 10);
}
