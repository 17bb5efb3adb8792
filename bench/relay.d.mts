// Types of bench/relay.mjs, for the tests that use it.
export interface Relay {
  host: string;
  port: number;
  stats: { connections: number; turns: number; bytesUp: number; bytesDown: number };
  /** Round trips so far: the turns of the talk (see relay.mjs). */
  roundTrips(): number;
  /** Each connection since the last reset: its startup parameters and turns. */
  log: { turns: number; startup: Record<string, string> }[];
  reset(): void;
  setDelay(ms: number): void;
  close(): Promise<void>;
}
export function startRelay(opts: {
  host: string;
  port: number;
  delayMs?: number;
  listen?: string;
}): Promise<Relay>;
