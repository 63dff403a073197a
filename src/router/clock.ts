// Time sources for the routing brain: the process's monotonic clock, and a hand-driven one for tests.
import type { Clock } from "./types.js";

/** A clock that only moves when told to, for tests and simulations. */
export interface FakeClock extends Clock {
  /** Current fake time, in ms. */
  now(): number;
  /** Moves time forward by `ms` milliseconds (≥ 0: a monotonic clock never goes back). */
  advance(ms: number): void;
}

/**
 * The real clock: `performance.now()`, in ms with sub-ms resolution. Monotonic, unlike `Date.now()`,
 * so wall-clock steps (NTP, DST) never make a latency negative or a cooldown endless.
 */
export function createSystemClock(): Clock {
  return { now: () => performance.now() };
}

/** A clock starting at `startMs` (default 0 ms) that advances only through `advance`. */
export function createFakeClock(startMs = 0): FakeClock {
  let nowMs = startMs;
  return {
    now: () => nowMs,
    advance(ms: number): void {
      if (!(ms >= 0)) throw new RangeError(`advance(ms) needs a non-negative duration, got ${ms}`);
      nowMs += ms;
    },
  };
}
