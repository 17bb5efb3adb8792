import { createServer, type IncomingMessage } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { onCleanup } from './tmp.js';

/**
 * A local webhook receiver: keeps every request (its path, headers and body) and answers
 * `status` (200); `hang` makes it take the request and never answer.
 */
export async function webhookReceiver(opts: { hang?: boolean; status?: number } = {}) {
  const got: { url: string; headers: IncomingMessage['headers']; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      got.push({ url: req.url ?? '', headers: req.headers, body });
      if (opts.hang) return;
      res.statusCode = opts.status ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const port = (server.address() as AddressInfo).port;
  return { port, url: `http://127.0.0.1:${port}/hook`, got };
}

/**
 * An SMTP server that greets, then answers EHLO with a "250-" line every `everyMs` and never
 * the last one: every idle timeout is reset, the conversation never ends. `connections` counts
 * the tries.
 */
export async function tricklingSmtp(everyMs = 2000) {
  const sockets: Socket[] = [];
  const timers: NodeJS.Timeout[] = [];
  let connections = 0;
  const server = createTcpServer((s) => {
    connections++;
    sockets.push(s);
    s.on('error', () => undefined);
    s.write('220 slow.example.org ESMTP\r\n');
    s.once('data', () => {
      let n = 0;
      const t = setInterval(() => s.writable && s.write(`250-still thinking ${++n}\r\n`), everyMs);
      timers.push(t);
      s.on('close', () => clearInterval(t));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(async () => {
    timers.forEach(clearInterval);
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => server.close(r));
  });
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    /** Connections the client has not closed. */
    open: () => sockets.filter((s) => !s.destroyed && !s.readableEnded).length,
  };
}
