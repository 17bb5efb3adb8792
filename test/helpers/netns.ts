import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { startCluster } from '../../src/demo/pg-cluster.js';
import { waitFor } from './processes.js';

/**
 * Database servers on machines of their own: each a network namespace made by
 * the test, joined to this one by a veth pair, with addresses of a private
 * range that exist only while the test runs. A server there listens on its
 * namespace's address only and has no unix socket, so karlstage can reach it
 * only over the network, as it reaches karl03 and karl05.
 *
 * Slot S (0-255) is the namespace `kstS`, the link `kstSh` on this side and the
 * addresses 10.247.S.1 (this side) and 10.247.S.2, .3, … (the namespace's). A
 * slot is claimed by creating its link, whose name the kernel lets exist once:
 * so test files running in parallel never get the same addresses. The link's
 * alias names its owner (pid and start time) and the cluster's folder; the
 * first use in a process removes every slot whose owner is gone (a test killed
 * midway): its processes, namespace, route, link and folder.
 *
 * A blackhole route for 10.247.S.0/24, below the link's own, keeps the slot's
 * addresses on this machine whatever state the link is in: traffic to them is
 * dropped here, never sent to the default gateway.
 */
const POOL = '10.247';
const BLACKHOLE_METRIC = '4242';
const OWNER = 'karlstage-test';

export interface NetHost {
  /** The namespace's name (for `ip netns exec`). */
  ns: string;
  /** The namespace's first address: where its server listens. */
  address: string;
  /** Its other addresses (the same machine reached another way). */
  more: string[];
  /** Cut the link: the namespace's side goes down, its packets are dropped silently. */
  cut(): Promise<void>;
  /** Put the link back. */
  mend(): Promise<void>;
  /** Stop what runs in it and remove it all. */
  remove(): Promise<void>;
}

const ip = async (...args: string[]) => (await execa('ip', args)).stdout;
const quietly = (...args: string[]) => execa('ip', args, { reject: false });

/** Why network namespaces cannot be made here; undefined when they can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add)';
  const probe = `kstprobe${process.pid}`;
  const r = await execa('ip', ['netns', 'add', probe], { reject: false });
  if (r.exitCode !== 0) return `ip netns add fails here: ${String(r.stderr).trim()}`;
  await quietly('netns', 'del', probe);
  return undefined;
}

/** A process's start time (field 22 of /proc/PID/stat): a pid alone may be reused. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

interface Owner {
  pid: number;
  start?: string;
  dir?: string;
}

function ownerOf(link: { ifalias?: string; link?: string }): Owner | undefined {
  const alias = /pid=(\d+) start=(\d+)(?: dir=(\S+))?/.exec(link.ifalias ?? '');
  if (alias) return { pid: Number(alias[1]), start: alias[2], dir: alias[3] };
  // Just made, alias not set yet: the peer's name says whose it is.
  const peer = /^kst\d+p(\d+)$/.exec(link.link ?? '');
  return peer ? { pid: Number(peer[1]) } : undefined;
}

const alive = (o: Owner) => {
  const now = startTime(o.pid);
  return now !== undefined && (o.start === undefined || o.start === now);
};

/** Everything of slot S, in an order that never lets its addresses leave this machine. */
async function removeSlot(slot: number, dir?: string): Promise<void> {
  const ns = `kst${slot}`;
  const pids = (await quietly('netns', 'pids', ns)).stdout.split('\n').filter(Boolean);
  for (const pid of pids)
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  await waitFor(`the processes of ${ns} to end`, () => pids.every((p) => !startTime(Number(p))));
  await quietly('netns', 'del', ns);
  if (dir?.startsWith('/tmp/ks-pg-')) await rm(dir, { recursive: true, force: true });
  await quietly('link', 'del', `kst${slot}h`);
  await quietly('route', 'del', 'blackhole', `${POOL}.${slot}.0/24`, 'metric', BLACKHOLE_METRIC);
}

let swept = false;

/** Remove the slots whose owners are gone (a killed test's leftovers). */
export async function sweepLeftovers(): Promise<string[]> {
  const links = JSON.parse(await ip('-j', 'link', 'show')) as {
    ifname: string;
    ifalias?: string;
    link?: string;
  }[];
  const owned = new Set<number>();
  const removed: string[] = [];
  for (const l of links) {
    const m = /^kst(\d+)h$/.exec(l.ifname);
    if (!m) continue;
    const o = ownerOf(l);
    if (o && alive(o)) owned.add(Number(m[1]));
    else {
      await removeSlot(Number(m[1]), o?.dir);
      removed.push(l.ifname);
    }
  }
  // A namespace or route whose link is gone: a removal that was itself cut short.
  for (const line of (await ip('netns', 'list')).split('\n')) {
    const m = /^kst(\d+)\b/.exec(line);
    if (m && !owned.has(Number(m[1]))) {
      await removeSlot(Number(m[1]));
      removed.push(`kst${m[1]}`);
    }
  }
  for (const line of (await ip('route', 'show', 'type', 'blackhole')).split('\n')) {
    const m = new RegExp(
      `^blackhole ${POOL.replace('.', '\\.')}\\.(\\d+)\\.0/24 .*metric ${BLACKHOLE_METRIC}`,
    ).exec(line);
    if (m && !owned.has(Number(m[1]))) await removeSlot(Number(m[1]));
  }
  return removed;
}

const mine = new Map<number, string | undefined>();
process.on('exit', () => {
  // The test process ends without its afterAll (an error, a signal handled by vitest): what can
  // be done synchronously. A SIGKILL leaves it for the next run's sweep.
  for (const [slot] of mine) {
    const run = (...args: string[]) => {
      try {
        execFileSync('ip', args, { stdio: 'ignore' });
      } catch {
        // already gone
      }
    };
    try {
      const pids = execFileSync('ip', ['netns', 'pids', `kst${slot}`], { encoding: 'utf8' });
      for (const pid of pids.split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // no namespace
    }
    run('netns', 'del', `kst${slot}`);
    run('link', 'del', `kst${slot}h`);
    run('route', 'del', 'blackhole', `${POOL}.${slot}.0/24`, 'metric', BLACKHOLE_METRIC);
  }
});

/** A new namespace with `addresses` addresses of its own (the first is where its server listens). */
export async function netHost(addresses = 1): Promise<NetHost> {
  if (!swept) {
    swept = true;
    await sweepLeftovers();
  }
  const start = startTime(process.pid);
  for (let slot = 0; slot < 256; slot++) {
    const host = `kst${slot}h`;
    const peer = `kst${slot}p${process.pid}`;
    const claim = await execa('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer], {
      reject: false,
    });
    if (claim.exitCode !== 0) {
      if (/exists/i.test(String(claim.stderr))) continue;
      throw new Error(`ip link add ${host}: ${String(claim.stderr).trim()}`);
    }
    mine.set(slot, undefined);
    const ns = `kst${slot}`;
    const net = `${POOL}.${slot}`;
    await ip('link', 'set', host, 'alias', `${OWNER} pid=${process.pid} start=${start}`);
    await quietly('netns', 'del', ns); // a leftover of a removal cut short: the slot is ours now
    await ip('netns', 'add', ns);
    await ip('route', 'add', 'blackhole', `${net}.0/24`, 'metric', BLACKHOLE_METRIC);
    await ip('link', 'set', peer, 'netns', ns);
    await ip('addr', 'add', `${net}.1/24`, 'dev', host);
    await ip('link', 'set', host, 'up');
    const own = Array.from({ length: addresses }, (_, i) => `${net}.${i + 2}`);
    for (const a of own) await ip('-n', ns, 'addr', 'add', `${a}/24`, 'dev', peer);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', ns, 'link', 'set', peer, 'up');
    return {
      ns,
      address: own[0]!,
      more: own.slice(1),
      cut: async () => void (await ip('-n', ns, 'link', 'set', peer, 'down')),
      mend: async () => void (await ip('-n', ns, 'link', 'set', peer, 'up')),
      remove: async () => {
        await removeSlot(slot, mine.get(slot));
        mine.delete(slot);
      },
    };
  }
  throw new Error(`no free slot in ${POOL}.0.0/16 (256 namespaces kst0..kst255 in use)`);
}

export interface NetCluster {
  host: NetHost;
  address: string;
  port: number;
  /** The superuser's connection string for `db`, at `address` (the first one by default). */
  dsn(db?: string, address?: string): string;
  env: Record<string, string>;
  /** Run SQL as the superuser over the network; psql's unaligned output. */
  sql(db: string, query: string): Promise<string>;
  /** Someone else's open transaction on `db`: `query` run in it, its locks kept until release(). */
  hold(db: string, query: string): Promise<{ release(): Promise<void> }>;
}

/** A PostgreSQL cluster (superuser password "superpw") in a new namespace, on port 5432 there. */
export async function netCluster(addresses = 1): Promise<NetCluster & { stop(): Promise<void> }> {
  const host = await netHost(addresses);
  const c = await startCluster('superpw', [], {
    address: [host.address, ...host.more].join(','),
    port: 5432,
    wrap: ['ip', 'netns', 'exec', host.ns],
    clients: `${POOL}.0.0/16`,
  }).catch(async (e: unknown) => {
    await host.remove();
    throw e;
  });
  const slot = Number(host.ns.slice(3));
  mine.set(slot, c.dir);
  await ip(
    'link',
    'set',
    `kst${slot}h`,
    'alias',
    `${OWNER} pid=${process.pid} start=${startTime(process.pid)} dir=${c.dir}`,
  );
  const env = { ...c.env, PGCONNECT_TIMEOUT: '5' };
  const sql = async (db: string, query: string) =>
    String(
      (
        await execa('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', query], {
          env,
        })
      ).stdout,
    ).trim();
  const hold = async (db: string, query: string) => {
    const child = execa('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db], {
      env,
      reject: false,
    });
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        seen += String(d);
        if (seen.includes('HELD')) resolve();
      });
      void child.then((r) => reject(new Error(`psql ended before holding: ${r.stderr}`)));
      child.stdin!.write(`BEGIN;\n${query};\n\\echo HELD\n`);
    });
    return {
      release: async () => {
        child.stdin!.end('ROLLBACK;\n');
        await child;
      },
    };
  };
  return {
    host,
    address: host.address,
    port: 5432,
    dsn: (db = 'postgres', address = host.address) =>
      `host=${address} port=5432 user=postgres password=superpw dbname=${db}`,
    env,
    sql,
    hold,
    stop: async () => {
      await c.stop('immediate');
      await host.remove();
    },
  };
}
