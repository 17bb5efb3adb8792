// A TCP relay that adds a fixed delay each way, and counts what crosses it. This kernel has no
// netem, so this is how the tests and bench/remote-db.mjs put a slow network between karlstage and
// a PostgreSQL server. Shared by the tests (test/remote-db.test.ts) and the bench.
//
// Each chunk read from one side is written to the other `delayMs` later, in order, so a request
// and its answer cost 2 x delayMs more than without the relay: a round trip of 20 ms is
// delayMs = 10. Throughput is not limited (reading stops only while the other side is full).
//
// Round trips are counted per connection as the times the talk turned back to the server: the
// first bytes the client sends, and each time the client sends again after the server last
// spoke. With a protocol that waits for each answer (PostgreSQL's simple query protocol, and
// its startup and authentication), each turn but the last is a wait for the server; the last is
// the client's goodbye (Terminate), which it does not wait on, and in its place TCP's handshake
// is a wait the relay cannot see as a turn (it is delayed by one round trip all the same). So a
// connection's round trips are its turns.
import { createServer, connect } from 'node:net';
import { performance } from 'node:perf_hooks';

/** The parameters of a PostgreSQL startup message (protocol 3.0), if `chunk` is one. */
function startupOf(chunk) {
  if (chunk.length < 8 || chunk.readInt32BE(4) !== 196608) return {};
  const parts = chunk.subarray(8, chunk.readInt32BE(0)).toString('utf8').split('\0');
  const out = {};
  for (let i = 0; i + 1 < parts.length && parts[i]; i += 2) out[parts[i]] = parts[i + 1];
  return out;
}

/**
 * @param {{ host: string, port: number, delayMs?: number, listen?: string }} opts
 *   where to relay to; the delay each way; the address to listen on (127.0.0.1).
 */
export async function startRelay(opts) {
  let delayMs = opts.delayMs ?? 0;
  const stats = { connections: 0, turns: 0, bytesUp: 0, bytesDown: 0 };
  /** Per connection: what it asked for (PostgreSQL's startup message) and its turns. */
  const log = [];
  const sockets = new Set();

  // Write `chunk` to `to` after the delay, keeping order; stop reading `from` while `to` is full.
  const pipe = (from, to, count) => {
    const queue = [];
    let timer;
    const flush = () => {
      timer = undefined;
      const now = performance.now();
      while (queue.length && queue[0].due <= now) {
        const ok = to.write(queue.shift().chunk);
        if (!ok) from.pause();
      }
      if (queue.length) timer = setTimeout(flush, Math.max(0, queue[0].due - performance.now()));
      else if (from.readableEnded && !to.writableEnded) to.end();
    };
    to.on('drain', () => from.resume());
    from.on('data', (chunk) => {
      count(chunk);
      if (delayMs === 0 && queue.length === 0) {
        if (!to.write(chunk)) from.pause();
        return;
      }
      queue.push({ chunk, due: performance.now() + delayMs });
      if (!timer) timer = setTimeout(flush, delayMs);
    });
    from.on('end', () => {
      if (queue.length === 0) to.end();
    });
  };

  // Half-open allowed: a side that has said all it will say still gets what is under way to it.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    stats.connections++;
    sockets.add(client);
    const upstream = connect({ host: opts.host, port: opts.port, allowHalfOpen: true });
    sockets.add(upstream);
    // TCP's own handshake costs a round trip on a real network: the client's first bytes wait one.
    if (delayMs > 0) {
      client.pause();
      setTimeout(() => client.resume(), 2 * delayMs);
    }
    let last = 'server';
    const entry = { turns: 0, startup: {} };
    log.push(entry);
    pipe(client, upstream, (chunk) => {
      stats.bytesUp += chunk.length;
      if (last === 'server') {
        stats.turns++;
        entry.turns++;
      }
      last = 'client';
      if (!entry.startup.database) Object.assign(entry.startup, startupOf(chunk));
    });
    pipe(upstream, client, (chunk) => {
      stats.bytesDown += chunk.length;
      last = 'server';
    });
    const fail = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', fail).on('close', () => sockets.delete(client));
    upstream.on('error', fail).on('close', () => sockets.delete(upstream));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, opts.listen ?? '127.0.0.1', resolve);
  });
  return {
    host: opts.listen ?? '127.0.0.1',
    port: server.address().port,
    stats,
    /** Round trips so far: the turns of the talk (see above). */
    roundTrips: () => stats.turns,
    /** Each connection since the last reset: { turns, startup: { database, application_name, … } }. */
    log,
    /** Counts back to zero (between the runs being measured). */
    reset() {
      Object.assign(stats, { connections: 0, turns: 0, bytesUp: 0, bytesDown: 0 });
      log.length = 0;
    },
    /** A new delay each way, for the connections and chunks from now on. */
    setDelay(ms) {
      delayMs = ms;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
