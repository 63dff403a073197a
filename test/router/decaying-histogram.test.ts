import { describe, expect, it } from "vitest";
import { createDecayingHistogram } from "../../src/router/decaying-histogram.js";
import { createSeededRng } from "../../src/router/rng.js";

const HALF_LIFE_MS = 30_000;
/** Bucket width is 6 %; interpolation inside a bucket keeps the error within that. */
const BUCKET_ERROR = 0.06;

function exactQuantile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

describe("decaying histogram", () => {
  it("answers quantiles of a uniform distribution within the bucket error", () => {
    const rng = createSeededRng(1);
    const h = createDecayingHistogram({ halfLifeMs: HALF_LIFE_MS });
    const values: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const v = 100 + 900 * rng.next();
      values.push(v);
      h.add(v, 0);
    }
    for (const p of [0.05, 0.5, 0.9, 0.95, 0.99]) {
      const exact = exactQuantile(values, p);
      expect(Math.abs(h.quantile(p) - exact) / exact).toBeLessThan(BUCKET_ERROR);
    }
  });

  it("answers quantiles of a log-normal distribution within the bucket error", () => {
    const rng = createSeededRng(2);
    const h = createDecayingHistogram({ halfLifeMs: HALF_LIFE_MS });
    const values: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const gaussian = Math.sqrt(-2 * Math.log(Math.max(rng.next(), 1e-12))) * Math.cos(2 * Math.PI * rng.next());
      const v = Math.exp(Math.log(400) + 0.6 * gaussian);
      values.push(v);
      h.add(v, 0);
    }
    for (const p of [0.5, 0.95, 0.99]) {
      const exact = exactQuantile(values, p);
      expect(Math.abs(h.quantile(p) - exact) / exact).toBeLessThan(BUCKET_ERROR);
    }
    // Sanity of the scale: p50 of this log-normal is 400 ms, p95 ≈ 400·e^{0.6·1.645} ≈ 1073 ms.
    expect(h.quantile(0.5)).toBeGreaterThan(370);
    expect(h.quantile(0.5)).toBeLessThan(430);
    expect(h.quantile(0.95)).toBeGreaterThan(1000);
    expect(h.quantile(0.95)).toBeLessThan(1150);
  });

  it("fades old samples with the half-life: a sample one half-life older weighs half as much", () => {
    const h = createDecayingHistogram({ halfLifeMs: HALF_LIFE_MS });
    for (let i = 0; i < 100; i++) h.add(100, 0);
    for (let i = 0; i < 100; i++) h.add(1000, HALF_LIFE_MS);
    // Weights 1 : 2, so a third of the mass sits at 100 ms and two thirds at 1000 ms.
    expect(h.quantile(0.3)).toBeLessThan(110);
    expect(h.quantile(0.36)).toBeGreaterThan(900);
    expect(h.effectiveCount(HALF_LIFE_MS)).toBeCloseTo(150, 6);
    expect(h.effectiveCount(2 * HALF_LIFE_MS)).toBeCloseTo(75, 6);
  });

  it("never changes a quantile through time passing alone, only through new samples", () => {
    const h = createDecayingHistogram({ halfLifeMs: HALF_LIFE_MS });
    for (let i = 0; i < 50; i++) h.add(200 + i * 10, i * 100);
    const before = h.quantile(0.95);
    expect(h.effectiveCount(10 * HALF_LIFE_MS)).toBeLessThan(0.1);
    expect(h.quantile(0.95)).toBe(before);
    // A new sample long afterwards dominates the faded history.
    h.add(5000, 10 * HALF_LIFE_MS);
    expect(h.quantile(0.5)).toBeGreaterThan(4500);
  });

  it("counts a burst's samples as they are and a steady stream as (Σw)²/Σw², fading both with time", () => {
    const burst = createDecayingHistogram({ halfLifeMs: HALF_LIFE_MS });
    for (let i = 0; i < 40; i++) burst.add(300, 0);
    expect(burst.effectiveSampleSize(0)).toBeCloseTo(40, 6);
    expect(burst.effectiveSampleSize(HALF_LIFE_MS)).toBeCloseTo(20, 6);

    // One sample every 100 ms for 200 half-lives (renormalised on the way). With a = 2^(−100/1000), the
    // decayed weight is Σaᵏ = 1/(1−a) and the squares sum to 1/(1−a²): the ratio tends to 1 + a ≈ 1.93.
    const steady = createDecayingHistogram({ halfLifeMs: 1000 });
    for (let t = 0; t <= 200_000; t += 100) steady.add(t % 700 === 0 ? 900 : 300, t);
    const a = 2 ** -0.1;
    expect(steady.effectiveCount(200_000)).toBeCloseTo(1 / (1 - a), 6);
    expect(steady.effectiveSampleSize(200_000) / steady.effectiveCount(200_000)).toBeCloseTo(1 + a, 6);
    // Time passing thins both alike; rescaling sets both.
    expect(steady.effectiveSampleSize(201_000) / steady.effectiveCount(201_000)).toBeCloseTo(1 + a, 6);
    // A half-life change after a long idle spell fades the squares past underflow before the weights.
    const idle = createDecayingHistogram({ halfLifeMs: 1000 });
    for (let i = 0; i < 10; i++) idle.add(300, 0);
    idle.setHalfLife(2000, 1_000_000);
    expect(idle.effectiveCount(1_000_000)).toBeGreaterThan(0);
    expect(idle.effectiveSampleSize(1_000_000)).toBe(0);
    steady.scaleTo(5, 201_000);
    expect(steady.effectiveSampleSize(201_000)).toBeCloseTo(5, 9);
    steady.clear();
    expect(steady.effectiveSampleSize(201_000)).toBe(0);
  });

  it("keeps memory bounded and stays finite across a long run (renormalisation)", () => {
    const h = createDecayingHistogram({ halfLifeMs: 1000 });
    const buckets = h.bucketCount;
    expect(buckets).toBeGreaterThan(150);
    expect(buckets).toBeLessThan(300);
    // 2 000 half-lives: without rescaling the weights would overflow to Infinity.
    for (let i = 0; i < 200_000; i++) h.add(i % 2 === 0 ? 100 : 300, i * 10);
    expect(h.bucketCount).toBe(buckets);
    expect(Number.isFinite(h.effectiveCount(2_000_000))).toBe(true);
    const median = h.quantile(0.5);
    expect(median).toBeGreaterThan(90);
    expect(median).toBeLessThan(320);
    expect(h.quantile(0.95)).toBeGreaterThan(280);
    expect(h.quantile(0.95)).toBeLessThan(320);
  });

  it("records a timeout as at least its deadline and pushes the tail up", () => {
    const h = createDecayingHistogram({ halfLifeMs: HALF_LIFE_MS });
    for (let i = 0; i < 95; i++) h.add(300, 0);
    expect(h.quantile(0.95)).toBeLessThan(320);
    for (let i = 0; i < 10; i++) h.addAtLeast(1600, 0);
    expect(h.quantile(0.95)).toBeGreaterThanOrEqual(1600);
    expect(h.quantile(0.5)).toBeLessThan(320);
  });

  it("spreads a censored sample over the samples past its bound, as Kaplan–Meier does", () => {
    const h = createDecayingHistogram({ halfLifeMs: HALF_LIFE_MS });
    // A model whose slow answers take 2.5 s: 5 of 100 samples. Its hedged probes are cancelled at ~700 ms.
    for (let i = 0; i < 95; i++) h.add(300, 0);
    for (let i = 0; i < 5; i++) h.add(2500, 0);
    for (let i = 0; i < 20; i++) h.addAtLeast(700, 0);
    // "At least 700 ms" from this model is most likely a 2.5 s answer: 25 of 120 samples are slow.
    expect(h.quantile(0.95)).toBeGreaterThan(2300);
    expect(h.quantile(0.8)).toBeGreaterThan(2300);
    expect(h.quantile(0.75)).toBeLessThan(320);
    expect(h.effectiveCount(0)).toBeCloseTo(120, 6);
  });

  it("caches quantiles until a sample arrives", () => {
    const h = createDecayingHistogram({ halfLifeMs: HALF_LIFE_MS });
    h.add(100, 0);
    const first = h.quantile(0.95);
    expect(h.quantile(0.95)).toBe(first);
    h.add(10_000, 1);
    expect(h.quantile(0.95)).toBeGreaterThan(first * 10);
    expect(createDecayingHistogram({ halfLifeMs: HALF_LIFE_MS }).quantile(0.5)).toBeNaN();
  });

  it("rescales weight without moving quantiles, and clears", () => {
    const h = createDecayingHistogram({ halfLifeMs: HALF_LIFE_MS });
    h.add(100, 0);
    h.add(900, 0);
    const p95 = h.quantile(0.95);
    h.scaleTo(5, 0);
    expect(h.effectiveCount(0)).toBeCloseTo(5, 9);
    expect(h.quantile(0.95)).toBeCloseTo(p95, 9);
    h.clear();
    expect(h.effectiveCount(0)).toBe(0);
    expect(h.quantile(0.5)).toBeNaN();
  });
});
