import { describe, expect, it } from "vitest";
import { createModelStats } from "../../src/router/model-stats.js";
import { isCold, liveWeight, normalQuantile, predictMs, predictTtftMs, upperP } from "../../src/router/predict.js";
import { defaultStats } from "./settings.js";

const config = defaultStats({ minSamples: 5, coldPenalty: 1.5, prefillTokensPerSecond: 20_000, defaultPrior: { ttftMs: 2000, tokensPerSecond: 30 } });
const HALF_LIFE_MS = config.halfLifeMs;

function statsWith(ttftMs: number, count: number, promptTokens = 1000, nowMs = 0) {
  const stats = createModelStats(HALF_LIFE_MS);
  for (let i = 0; i < count; i++) stats.recordSuccess(nowMs, ttftMs, ttftMs + 99 * 10, promptTokens, 100);
  return stats;
}

describe("prediction", () => {
  it("uses the prior times coldPenalty without samples, the default prior when the model has none", () => {
    const empty = createModelStats(HALF_LIFE_MS);
    expect(predictTtftMs(empty, { ttftMs: 300, tokensPerSecond: 100 }, 0, 95, config, 0)).toBeCloseTo(450, 9);
    expect(predictTtftMs(empty, undefined, 0, 95, config, 0)).toBeCloseTo(3000, 9);
    // The prompt's prefill time is added on top (20 000 tokens at 20 000 tokens/s = 1 s).
    expect(predictTtftMs(empty, undefined, 20_000, 95, config, 0)).toBeCloseTo(4000, 9);
    expect(isCold(empty, "ttft", config, 0)).toBe(true);
  });

  it("blends live and prior with weight min(1, n / minSamples)", () => {
    expect(liveWeight(0, 5)).toBe(0);
    expect(liveWeight(2.5, 5)).toBe(0.5);
    expect(liveWeight(50, 5)).toBe(1);
    const half = statsWith(200, 5, 0); // 5 samples…
    half.ttftMs.scaleTo(2.5, 0); // …weighing 2.5
    const live = half.ttftMs.quantile(upperP(0.95, 2.5, config.confidenceZ));
    const predicted = predictTtftMs(half, { ttftMs: 400, tokensPerSecond: 100 }, 0, 95, config, 0);
    expect(predicted).toBeCloseTo(0.5 * live + 0.5 * 600, 6);
    const full = statsWith(200, 20, 0);
    expect(predictTtftMs(full, { ttftMs: 400, tokensPerSecond: 100 }, 0, 95, config, 0)).toBeCloseTo(
      full.ttftMs.quantile(upperP(0.95, 20, config.confidenceZ)),
      9,
    );
    expect(isCold(full, "ttft", config, 0)).toBe(false);
  });

  it("reverts to the prior as samples age: effective count decays with the half-life", () => {
    const stats = statsWith(200, 10, 0);
    const fresh = predictTtftMs(stats, undefined, 0, 95, config, 0);
    const aged = predictTtftMs(stats, undefined, 0, 95, config, 3 * HALF_LIFE_MS); // 10 → 1.25 samples
    expect(fresh).toBeLessThan(250);
    expect(aged).toBeGreaterThan(2000);
  });

  it("shifts time to first token by the prompt size relative to the sampled mean", () => {
    const stats = statsWith(400, 50, 2000);
    const atMean = predictTtftMs(stats, undefined, 2000, 95, config, 0);
    const bigger = predictTtftMs(stats, undefined, 22_000, 95, config, 0);
    expect(bigger - atMean).toBeCloseTo(1000, 6); // 20 000 more tokens / 20 000 per second
    // A much smaller prompt never predicts below a quarter of the measured quantile.
    const huge = statsWith(400, 50, 100_000);
    expect(predictTtftMs(huge, undefined, 0, 95, config, 0)).toBeCloseTo(huge.ttftMs.quantile(upperP(0.95, 50, config.confidenceZ)) / 4, 6);
  });

  it("reads the percentile at an upper confidence bound that shrinks as samples grow", () => {
    expect(upperP(0.95, 5, 1.645)).toBe(0.975);
    expect(upperP(0.95, 300, 1.645)).toBe(0.971);
    expect(upperP(0.95, 1000, 1.645)).toBe(0.961);
    expect(upperP(0.5, 1, 1.645)).toBe(0.75);
    expect(upperP(0.95, 1000, 0)).toBe(0.95);
    // 96 samples at 200 ms and 4 at 1000 ms: the plain p95 sits in the fast mass, the bound (p97.5) does not.
    const stats = createModelStats(HALF_LIFE_MS);
    for (let i = 0; i < 100; i++) stats.recordSuccess(0, i % 25 === 0 ? 1000 : 200, 1500, 0, 100);
    const plain = predictTtftMs(stats, undefined, 0, 95, { ...config, confidenceZ: 0 }, 0);
    const bounded = predictTtftMs(stats, undefined, 0, 95, config, 0);
    expect(plain).toBeLessThan(300);
    expect(bounded).toBeGreaterThan(900);
  });

  it("sizes the bound by the samples' effective sample size, which a steady stream doubles", () => {
    // 5 samples a second for ten half-lives: 95 in 100 first tokens at 300 ms, then 1.0, 1.4 … 2.6 s.
    const stats = createModelStats(HALF_LIFE_MS);
    const endMs = 10 * HALF_LIFE_MS;
    for (let i = 0, t = 0; t <= endMs; i++, t += 200) stats.recordSuccess(t, i % 100 < 95 ? 300 : 1000 + ((i % 100) - 95) * 400, 3000, 0, 100);
    const weight = stats.ttftMs.effectiveCount(endMs);
    const size = stats.ttftMs.effectiveSampleSize(endMs);
    expect(size / weight).toBeGreaterThan(1.99);
    const predicted = predictTtftMs(stats, undefined, 0, 95, config, endMs);
    expect(predicted).toBeCloseTo(stats.ttftMs.quantile(upperP(0.95, size, config.confidenceZ)), 9);
    expect(predicted).toBeLessThan(stats.ttftMs.quantile(upperP(0.95, weight, config.confidenceZ)) - 50);
  });

  it("predicts total as first token plus expected output tokens at the per-token quantile", () => {
    const stats = statsWith(300, 50, 0); // 100 output tokens in 990 ms after the first: 10 ms per token
    const ttft = predictMs(stats, undefined, "ttft", 95, 0, 200, config, 0);
    const total = predictMs(stats, undefined, "total", 95, 0, 200, config, 0);
    expect(total - ttft).toBeGreaterThan(200 * 10 * 0.94);
    expect(total - ttft).toBeLessThan(200 * 10 * 1.06);
    expect(predictMs(stats, undefined, "total", 95, 0, 400, config, 0) - ttft).toBeGreaterThan(2 * 200 * 10 * 0.94);
  });

  it("timeouts count as at least their deadline and push the prediction past it", () => {
    const stats = statsWith(300, 90, 0);
    for (let i = 0; i < 10; i++) stats.recordTimeout(0, "ttft", 1600);
    expect(predictTtftMs(stats, undefined, 0, 95, config, 0)).toBeGreaterThanOrEqual(1600);
    expect(stats.timeoutRate()).toBeCloseTo(0.1, 9);
  });
});

describe("standard normal quantile", () => {
  it("is symmetric, within 5e-4 of the table, and finite at 0 (a draw of the margin may be 0)", () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 6);
    expect(normalQuantile(0.975)).toBeCloseTo(1.96, 3);
    expect(normalQuantile(0.025)).toBeCloseTo(-1.96, 3);
    expect(normalQuantile(0.95)).toBeCloseTo(1.6449, 3);
    expect(normalQuantile(0.1)).toBeCloseTo(-1.2816, 3);
    expect(Number.isFinite(normalQuantile(0))).toBe(true);
    expect(normalQuantile(0)).toBeLessThan(-30);
  });
});

describe("model statistics", () => {
  it("rebuilds from recent samples when told to forget older history", () => {
    const stats = createModelStats(HALF_LIFE_MS);
    for (let i = 0; i < 200; i++) stats.recordSuccess(i, 1500, 2000, 500, 50);
    stats.recordSuccess(1000, 300, 800, 500, 50);
    stats.recordSuccess(2000, 320, 820, 500, 50);
    stats.recordSuccess(3000, 310, 810, 500, 50);
    expect(stats.ttftMs.quantile(0.95)).toBeGreaterThan(1400);
    stats.forgetBefore(1000, 3000, 5);
    expect(stats.ttftMs.quantile(0.95)).toBeLessThan(340);
    expect(stats.ttftMs.effectiveCount(3000)).toBeCloseTo(5, 6);
  });

  it("derives a non-streamed attempt's first-token time from the per-token estimate", () => {
    const streamed = createModelStats(HALF_LIFE_MS);
    for (let i = 0; i < 20; i++) streamed.recordSuccess(0, 300, 300 + 99 * 10, 500, 100); // 10 ms per token
    const derived = streamed.recordSuccess(0, undefined, 2000, 500, 101, 50);
    expect(derived).toBeGreaterThan(2000 - 100 * 10 * 1.06);
    expect(derived).toBeLessThan(2000 - 100 * 10 * 0.94);
    // Without live decode samples the prior's per-token time is used; never below a tenth of the total.
    const fresh = createModelStats(HALF_LIFE_MS);
    expect(fresh.recordSuccess(0, undefined, 2000, 500, 101, 15)).toBeCloseTo(500, 9);
    expect(fresh.recordSuccess(0, undefined, 2000, 500, 1001, 15)).toBeCloseTo(200, 9);
    expect(fresh.ttftMs.effectiveCount(0)).toBe(2);
    expect(fresh.perTokenMs.effectiveCount(0)).toBe(0);
  });

  it("tracks in-band outcome rates and the newest sample time", () => {
    const stats = createModelStats(HALF_LIFE_MS);
    expect(stats.errorRate()).toBeNaN();
    expect(stats.newestSampleAtMs).toBe(Number.NEGATIVE_INFINITY);
    stats.recordSuccess(10, 100, 200, 10, 5);
    stats.recordError(20);
    stats.recordError(20);
    stats.recordTimeout(30, "ttft", 1600);
    expect(stats.errorRate()).toBeCloseTo(0.5, 2);
    expect(stats.newestSampleAtMs).toBe(30);
  });
});
