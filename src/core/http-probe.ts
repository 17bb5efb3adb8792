import { request } from 'node:http';

/**
 * Does something answer HTTP on 127.0.0.1:port? Any answer counts (a 404 or a 500 is an app
 * that runs); a refused connection, a reset, or no answer within `timeoutMs` does not. A pid
 * that exists is not enough: an app that hangs or has not bound its port yet is not running.
 */
export function answersHttp(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: '/',
      method: 'HEAD',
      agent: false,
      headers: { 'user-agent': 'karlstage-probe', connection: 'close' },
    });
    const done = (answers: boolean) => {
      clearTimeout(timer);
      req.destroy();
      resolve(answers);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    req.once('response', (res) => {
      res.resume();
      done(true);
    });
    req.once('error', () => done(false));
    req.end();
  });
}

/** Ask until it answers or `timeoutMs` has passed (every 20 ms); true when it answered. */
export async function waitUntilAnswering(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (await answersHttp(port, Math.max(50, Math.min(1_000, left)))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}
