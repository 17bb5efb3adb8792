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
// its startup and authentication), that is the number of times the client waited for the
// server; add one per connection for TCP's own handshake.
import { createServer, connect } from 'node:net';

/**
 * @param {{ host: string, port: number, delayMs?: number, listen?: string }} opts
 *   where to relay to; the delay each way; the address to listen on (127.0.0.1).
 */
export async function startRelay(opts) {
  let delayMs = opts.delayMs ?? 0;
  const stats = { connections: 0, turns: 0, bytesUp: 0, bytesDown: 0 };
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
    let last = 'server';
    pipe(client, upstream, (chunk) => {
      stats.bytesUp += chunk.length;
      if (last === 'server') stats.turns++;
      last = 'client';
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
    /** Round trips so far: TCP handshakes plus turns of the talk. */
    roundTrips: () => stats.connections + stats.turns,
    /** Counts back to zero (between the runs being measured). */
    reset() {
      Object.assign(stats, { connections: 0, turns: 0, bytesUp: 0, bytesDown: 0 });
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
