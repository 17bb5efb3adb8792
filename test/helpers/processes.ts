import { execa, type ExecaChildProcess } from 'execa';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { BIN } from './staging.js';
import { onCleanup } from './tmp.js';

/** Start the built binary in the background, in its own process group (so a kill takes its children too). */
export function startCli(
  cwd: string,
  args: string[],
  env: Record<string, string> = {},
): ExecaChildProcess {
  const child = execa('node', [BIN, ...args], {
    cwd,
    env: { NO_COLOR: '1', ...env },
    reject: false,
    detached: true,
    stdin: 'ignore',
  });
  onCleanup(async () => {
    killGroup(child.pid);
    await child;
  });
  return child;
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
