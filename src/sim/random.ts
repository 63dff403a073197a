// Seeded pseudo-random numbers for the simulator: reproducible latency stories given a seed.

/** A seeded source of uniform numbers in [0, 1) plus the few distributions the simulator needs. */
export interface SimRng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform 32-bit unsigned integer; used to seed one child generator per request. */
  uint32(): number;
  /** Standard normal (mean 0, standard deviation 1), Box–Muller. */
  normal(): number;
  /** Uniform in [min, max). */
  uniform(min: number, max: number): number;
  /** Lognormal with the given median and sigma (the standard deviation of its logarithm). */
  lognormal(median: number, sigma: number): number;
  /** One element of a non-empty list, uniformly. */
  pick<T>(items: readonly T[]): T;
}

function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * Creates an sfc32 generator seeded through splitmix32, so nearby seeds give unrelated streams.
 * @param seed any number; only its low 32 bits matter.
 */
export function createSimRng(seed: number): SimRng {
  const init = splitmix32(seed);
  let a = init();
  let b = init();
  let c = init();
  let d = init();
  const uint32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) uint32();
  const next = (): number => uint32() / 4294967296;
  const normal = (): number => {
    const u = 1 - next(); // (0, 1]: log(0) is never taken
    const v = next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  return {
    next,
    uint32,
    normal,
    uniform: (min, max) => min + (max - min) * next(),
    lognormal: (median, sigma) => median * Math.exp(sigma * normal()),
    pick: <T>(items: readonly T[]): T => {
      const item = items[Math.floor(next() * items.length)];
      if (item === undefined) throw new RangeError("pick() needs a non-empty list");
      return item;
    },
  };
}
