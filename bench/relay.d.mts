// Types of bench/relay.mjs, for the tests that use it.
export interface Relay {
  host: string;
  port: number;
  stats: { connections: number; turns: number; bytesUp: number; bytesDown: number };
  /** Round trips so far: TCP handshakes plus turns of the talk. */
  roundTrips(): number;
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
