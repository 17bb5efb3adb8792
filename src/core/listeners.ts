import { readdir, readFile, readlink } from 'node:fs/promises';

/**
 * The processes that serve a TCP port (they hold its listening socket), and how much memory
 * they hold (resident set, from /proc): what a running branch site costs. Linux only; an
 * empty answer elsewhere. Read for many ports at once: one walk of /proc for all of them.
 */
async function listeningInodes(ports: Set<number>): Promise<Map<string, number>> {
  const inodes = new Map<string, number>(); // socket inode → port
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local address "0100007F:1965", state 0A = LISTEN, inode in column 10
      const port = parseInt(f[1]?.split(':')[1] ?? '', 16);
      if (f[3] === '0A' && ports.has(port) && f[9]) inodes.set(f[9], port);
    }
  }
  return inodes;
}

async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return kb ? Number(kb) * 1024 : 0;
}

/** Per port: the pids that hold its listening socket and their resident memory in bytes. */
export async function memoryOfListeners(
  ports: number[],
): Promise<Map<number, { pids: number[]; bytes: number }>> {
  const result = new Map<number, { pids: number[]; bytes: number }>();
  const inodes = await listeningInodes(new Set(ports));
  if (inodes.size === 0) return result;
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  await Promise.all(
    pids.map(async (pid) => {
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
      for (const fd of fds) {
        const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
        const port = inodes.get(/^socket:\[(\d+)\]$/.exec(target)?.[1] ?? '');
        if (port === undefined) continue;
        const entry = result.get(port) ?? { pids: [], bytes: 0 };
        if (!entry.pids.includes(Number(pid))) {
          entry.pids.push(Number(pid));
          entry.bytes += await residentBytes(Number(pid));
        }
        result.set(port, entry);
      }
    }),
  );
  return result;
}
