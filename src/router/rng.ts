// Seeded pseudo-random numbers, so every random routing choice can be replayed in a test.
import type { Rng } from "./types.js";

/**
 * mulberry32: a 32-bit-state generator, fast and statistically good enough for load spreading and
 * jitter (not for anything secret). The same `seed` (any number; only its low 32 bits count) always
 * yields the same sequence of values in [0, 1).
 */
export function createSeededRng(seed: number): Rng {
  let state = seed >>> 0;
  return {
    next(): number {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}
