import { mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * The programs a run has started, written down so that if the run is killed
 * alone (kill -9 of karlstage, not of its process group), the next run that
 * takes over its lock can stop what it left running: a build still writing
 * into a branch site must not race the new build. A child is recorded with its
 * start time, so a reused pid is never mistaken for it.
 */
let registry: string | undefined;
// Written only once the run holds a lock: before that nobody could take it over, and a
// refused command (which never gets one) must leave no trace.
let armed = false;
const running = new Map<number, string>(); // pid → start time

/** Linux: a process's parent and start time (clock ticks since boot), or undefined when it is gone. */
function procStat(pid: number): { ppid: number; start: string } | undefined {
  try {
    // The name (field 2) may hold spaces and parentheses: count the fields after its last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3 (state) on
    return { ppid: Number(fields[1]), start: fields[19]! };
  } catch {
    return undefined;
  }
}
/** A process's start time (clock ticks since boot): with the pid, it names one process for ever. */
export const startTime = (pid: number) => procStat(pid)?.start;

const fileFor = (runs: string, pid: number) => join(runs, `${pid}.children`);

/** Record this run's children in the folder `runs` (from the command context on). */
export function recordChildrenIn(runs: string): void {
  if (!registry)
    process.once('exit', () => {
      try {
        unlinkSync(registry!);
      } catch {
        // never written, or already gone
      }
    });
  registry = fileFor(runs, process.pid);
}

// Written synchronously, in the tick that spawned the child: a kill a moment later must
// still find it in the file (an asynchronous write lost that race in CI).
function save(): void {
  if (!registry || !armed) return;
  try {
    if (running.size === 0)
      rmSync(registry, { force: true }); // nothing running: no file
    else {
      mkdirSync(dirname(registry), { recursive: true });
      writeFileSync(registry, [...running].map(([pid, t]) => `${pid} ${t}\n`).join(''));
    }
  } catch {
    // bookkeeping must never fail a run
  }
}

/** The run now holds a lock: from here on its children are written down (those running now too). */
export function armChildRecord(): void {
  if (armed) return;
  armed = true;
  save();
}

export function childStarted(pid: number | undefined): void {
  const t = pid && registry ? startTime(pid) : undefined;
  if (!pid || !t) return;
  running.set(pid, t);
  save();
}

export function childEnded(pid: number | undefined): void {
  if (pid && running.delete(pid)) save();
}

/**
 * Stop what a dead run left running: each recorded child still alive (same
 * start time) and all its descendants, children first. Returns their pids.
 */
export async function stopLeftovers(runs: string, deadPid: number): Promise<number[]> {
  const file = fileFor(runs, deadPid);
  const text = await readFile(file, 'utf8').catch(() => '');
  const roots = text
    .split('\n')
    .map((l) => l.split(' '))
    .filter(([pid, t]) => pid && t && startTime(Number(pid)) === t)
    .map(([pid]) => Number(pid));
  const stopped = signalTree(roots, 'SIGKILL');
  await rm(file, { force: true });
  return stopped;
}

/** These processes and all their descendants (Linux /proc), parents first. */
export function withDescendants(roots: number[]): number[] {
  const all = new Set<number>(roots);
  if (roots.length) {
    const pids = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .map(Number);
    // Descendants: whoever's parent is already in the set, until nothing is added.
    for (let grew = true; grew;) {
      grew = false;
      for (const p of pids)
        if (!all.has(p) && all.has(procStat(p)?.ppid ?? -1)) {
          all.add(p);
          grew = true;
        }
    }
  }
  return [...all];
}

/**
 * Signal processes and every descendant, children first: a program that
 * timed out must not leave a grandchild (git's remote helper, say) running
 * and holding its output pipes. Returns the pids signalled.
 */
export function signalTree(roots: number[], signal: NodeJS.Signals): number[] {
  const tree = withDescendants(roots).reverse();
  for (const pid of tree) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone meanwhile
    }
  }
  return tree;
}
