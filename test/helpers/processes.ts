import { execa, type ExecaChildProcess } from 'execa';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { BIN } from './staging.js';
import { onCleanup } from './tmp.js';

export interface Background extends Promise<{ exitCode: number; stdout: string; stderr: string }> {
  pid: number | undefined;
  /** The exit status once it ended; null while it runs. */
  exitCode(): number | null;
  /** What it has printed so far, stdout and stderr. */
  output(): string;
}

/**
 * Start the built binary in the background, in its own process group (so a kill takes its
 * children too). Its output goes to files, read when it ends: a run that goes on while the
 * test does other things never depends on the test draining its pipes.
 */
export function startCli(
  cwd: string,
  args: string[],
  env: Record<string, string> = {},
): Background {
  const dir = mkdtempSync(join(tmpdir(), 'ks-run-'));
  const [out, err] = [join(dir, 'stdout'), join(dir, 'stderr')];
  const fds = [openSync(out, 'w'), openSync(err, 'w')] as const;
  const child: ExecaChildProcess = execa('node', [BIN, ...args], {
    cwd,
    env: { NO_COLOR: '1', ...env },
    reject: false,
    detached: true,
    stdio: ['ignore', fds[0], fds[1]],
  });
  fds.forEach((fd) => closeSync(fd));
  let code: number | null = null;
  const done = child.then(async (r) => {
    code = r.exitCode ?? -1;
    const read = (f: string) => readFile(f, 'utf8').catch(() => '');
    return { exitCode: code, stdout: await read(out), stderr: await read(err) };
  });
  onCleanup(async () => {
    killGroup(child.pid);
    await done;
    rmSync(dir, { recursive: true, force: true });
  });
  const output = () =>
    [out, err].map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : '')).join('');
  return Object.assign(done, { pid: child.pid, exitCode: () => code, output });
}

export function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 30_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const fileExists = (path: string) => () => existsSync(path);

/** A TCP server on 127.0.0.1 that accepts connections and never answers: a hung repository server. */
export async function blackhole(): Promise<{ port: number }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => server.close(r));
  });
  return { port: (server.address() as { port: number }).port };
}

/** Every running process's command line, its arguments joined by spaces: what `ps` shows. */
export function commandLines(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      } catch {
        return ''; // ended meanwhile
      }
    });
}
