// The quality bench's oracle must describe the simulator's real draws: its analytic TTFT mixture,
// quantiles, expected answer lengths and choices are checked against planResponse itself.
import { describe, expect, it } from "vitest";
import {
  chooseAnalytically,
  expectedCompletionTokens,
  normalCdf,
  oracleAtPercentiles,
  ttftCdf,
  ttftDistribution,
  ttftQuantile,
} from "../../bench/quality/oracle.mjs";
import { planResponse } from "../../src/sim/plan.js";
import { parseSimProfiles } from "../../src/sim/profiles.js";
import { createSimRng } from "../../src/sim/random.js";
import { phaseAt } from "../../src/sim/story.js";

const profiles = parseSimProfiles({
  models: [
    {
      id: "sim/fast-tail",
      ttft: { medianMs: 280, sigma: 0.25, tail: { probability: 0.1, multiplier: 1.5, addMs: 1000 } },
      prefillTokensPerSecond: 20000,
      tokensPerSecond: { mean: 150 },
      outputTokens: { median: 160, sigma: 0.5, max: 4096 },
    },
    { id: "sim/steady", ttft: { medianMs: 380, sigma: 0.28 }, prefillTokensPerSecond: 15000, tokensPerSecond: { mean: 130 }, outputTokens: { median: 160 } },
    { id: "sim/slow", ttft: { medianMs: 900, sigma: 0.3 }, tokensPerSecond: { mean: 100 }, outputTokens: { median: 200 } },
  ],
  timeline: [{ name: "drift", models: ["sim/fast-tail"], from: 0.5, to: 1, ttftMultiplier: 2, faults: { rateLimit: { probability: 1 } } }],
});
const modelOf = (id: string) => {
  const model = profiles.models.find((entry) => entry.id === id);
  if (model === undefined) throw new Error(`no ${id}`);
  return model;
};

describe("quality bench oracle", () => {
  it("matches the simulator's TTFT draws: mixture CDF, p95, prefill and drift", () => {
    const model = modelOf("sim/fast-tail");
    const phase = phaseAt(profiles, model.id, 0.6);
    const rng = createSimRng(5);
    const draws = Array.from(
      { length: 20000 },
      () => planResponse(model, phase, { promptTokens: 2000, maxTokens: 1 }, createSimRng(rng.uint32()), { latencyScale: 1, tokensPerChunk: 3 }).ttftMs,
    ).sort((a, b) => a - b);
    const dist = ttftDistribution(model, phase, 2000);
    for (const ms of [500, 700, 1000, 2400, 3000]) {
      expect(Math.abs(draws.filter((value) => value <= ms).length / draws.length - ttftCdf(dist, ms))).toBeLessThan(0.01);
    }
    const p95 = ttftQuantile(dist, 0.95);
    expect(p95 / (draws[Math.floor(0.95 * draws.length)] ?? 0)).toBeCloseTo(1, 1);
    expect(ttftCdf(dist, p95)).toBeCloseTo(0.95, 4);
  });

  it("expects the simulator's answer lengths, cut at max_tokens", () => {
    const model = modelOf("sim/fast-tail");
    const phase = phaseAt(profiles, model.id, 0);
    const rng = createSimRng(9);
    for (const maxTokens of [48, undefined]) {
      const lengths = Array.from(
        { length: 20000 },
        () => planResponse(model, phase, { promptTokens: 10, maxTokens }, createSimRng(rng.uint32()), { latencyScale: 1, tokensPerChunk: 64 }).completionTokens,
      );
      const mean = lengths.reduce((sum, value) => sum + value, 0) / lengths.length;
      expect(expectedCompletionTokens(model.outputTokens, maxTokens) / mean).toBeCloseTo(1, 2);
    }
  });

  it("picks the cheapest model whose true p95 meets the target, and skips rate-limited ones", () => {
    const candidates = [
      { id: "sim/fast-tail", pricePerMTok: { input: 0.07, output: 0.26 } },
      { id: "sim/steady", pricePerMTok: { input: 0.06, output: 0.33 } },
      { id: "sim/slow", pricePerMTok: { input: 0.01, output: 0.01 } },
    ];
    const choose = (fraction: number) =>
      chooseAnalytically({
        candidates,
        profileOf: modelOf,
        phaseOf: (id) => phaseAt(profiles, id, fraction),
        target: { percentile: 95, ms: 800 },
        promptTokens: 50,
        maxTokens: 100,
        completionTokensOf: (id, maxTokens) => expectedCompletionTokens(modelOf(id).outputTokens, maxTokens),
      });
    const healthy = choose(0);
    // fast-tail is cheaper than steady but 10% of its first tokens come >1 s late: p95 > 800 ms.
    expect(healthy.options.find((option) => option.id === "sim/fast-tail")?.p95Ms).toBeGreaterThan(1200);
    expect(healthy.oracle.id).toBe("sim/steady");
    expect(healthy.cheapest.id).toBe("sim/slow");
    expect(healthy.fastest.id).toBe("sim/steady");
    expect(healthy.oracle.attainment).toBeGreaterThan(0.95);
    expect(healthy.oracle.costUsd).toBeCloseTo((50 * 0.06 + expectedCompletionTokens(modelOf("sim/steady").outputTokens, 100) * 0.33) / 1e6, 12);
    const limited = choose(0.6);
    expect(limited.options.find((option) => option.id === "sim/fast-tail")).toMatchObject({ rateLimited: true, attainment: 0 });
    expect([limited.oracle.id, limited.fastest.id, limited.cheapest.id]).not.toContain("sim/fast-tail");
  });

  it("prices a margin: demanding p97.5 leaves a model whose p95 meets the target for a dearer, surer one", () => {
    const edge = {
      ttft: { medianMs: 450, sigma: 0.3, tail: { probability: 0, multiplier: 1 } },
      prefillTokensPerSecond: 1e9,
      outputTokens: { median: 100, sigma: 0.5, max: 4096 },
    };
    const sure = { ...edge, ttft: { medianMs: 300, sigma: 0.2, tail: { probability: 0, multiplier: 1 } } };
    const healthy = { ttftMultiplier: 1, faults: { rateLimit: { probability: 0 }, serverError: { probability: 0 }, hang: { probability: 0 } } };
    const levels = oracleAtPercentiles({
      candidates: [
        { id: "edge", pricePerMTok: { input: 0.1, output: 0.4 } },
        { id: "sure", pricePerMTok: { input: 0.2, output: 0.8 } },
      ],
      profileOf: (id) => (id === "edge" ? edge : sure),
      phaseAt: () => healthy,
      target: { ms: 800 },
      requests: [
        { fraction: 0, promptTokens: 40, maxTokens: 64 },
        { fraction: 0.5, promptTokens: 400, maxTokens: undefined },
      ],
      percentiles: [95, 97.5],
      completionTokensOf: (_id, maxTokens) => expectedCompletionTokens(edge.outputTokens, maxTokens),
    });
    // edge: p95 = 450 ms × e^(1.645 × 0.3) ≈ 737 ms, p97.5 ≈ 809 ms; sure: p97.5 ≈ 444 ms, at twice the price.
    expect(levels.map((level) => level.percentile)).toEqual([95, 97.5]);
    expect(levels[0]?.attainment).toBeCloseTo(normalCdf(Math.log(800 / 450) / 0.3), 6);
    expect(levels[1]?.attainment).toBeGreaterThan(0.9999);
    expect((levels[1]?.costUsd ?? 0) / (levels[0]?.costUsd ?? 1)).toBeCloseTo(2, 9);
  });
});
