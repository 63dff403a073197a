import { describe, expect, it } from "vitest";
import { createFakeClock, createSystemClock } from "../../src/router/clock.js";
import { createSeededRng } from "../../src/router/rng.js";

describe("clocks", () => {
  it("the fake clock starts where told and moves only forward, by hand", () => {
    const clock = createFakeClock(500);
    expect(clock.now()).toBe(500);
    clock.advance(250);
    expect(clock.now()).toBe(750);
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(createFakeClock().now()).toBe(0);
  });

  it("the system clock is monotonic milliseconds", () => {
    const clock = createSystemClock();
    const a = clock.now();
    const b = clock.now();
    expect(b).toBeGreaterThanOrEqual(a);
    expect(Math.abs(a - performance.now())).toBeLessThan(1000);
  });
});

describe("seeded rng", () => {
  it("replays the same sequence for the same seed, a different one for another seed", () => {
    const draw = (seed: number) => {
      const rng = createSeededRng(seed);
      return Array.from({ length: 5 }, () => rng.next());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });

  it("is uniform enough on [0, 1) for load spreading and jitter", () => {
    const rng = createSeededRng(7);
    const bins = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const x = rng.next();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
      bins[Math.floor(x * 10)]! += 1;
    }
    for (const count of bins) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });
});
