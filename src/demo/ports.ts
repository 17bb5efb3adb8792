import { portIsFree } from '../core/ports.js';

/**
 * A base port whose next `count` ports are free on 127.0.0.1, for the demo,
 * the tests and the benchmarks. Picked below the kernel's ephemeral range
 * (32768 and up on Linux), where the outgoing connections of other programs
 * never land, so a port found free stays free.
 */
export async function freeBasePort(count: number): Promise<number> {
  // Test files run in parallel worker processes: each worker takes its own slice of the
  // range, so one cannot pick ports another has checked but not yet listened on.
  const worker = Number(process.env.VITEST_POOL_ID ?? 0);
  const [low, high] =
    worker > 0 ? [20000 + (worker - 1) * 1500, 20000 + worker * 1500] : [20000, 32000];
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = low + Math.floor(Math.random() * (high - low - count));
    let ok = true;
    for (let i = 1; i <= count && ok; i++) ok = await portIsFree(base + i);
    if (ok) return base;
  }
  throw new Error('no free ports found on 127.0.0.1');
}
