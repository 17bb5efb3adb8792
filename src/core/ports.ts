import { createServer } from 'node:net';

/** Whether nothing listens on 127.0.0.1:port right now (a listen that succeeds, at once closed). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
