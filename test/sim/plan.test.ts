import { describe, expect, it } from "vitest";
import { estimatePromptTokens, fillerText, planResponse, type ResponsePlan } from "../../src/sim/plan.js";
import { parseSimProfiles, type SimProfilesInput } from "../../src/sim/profiles.js";
import { createSimRng } from "../../src/sim/random.js";
import { phaseAt } from "../../src/sim/story.js";

function profilesWith(faults: SimProfilesInput["faults"] = {}) {
  return parseSimProfiles({
    faults,
    models: [
      {
        id: "sim/model",
        ttft: { medianMs: 400, sigma: 0.3, tail: { probability: 0.05, multiplier: 4 } },
        prefillTokensPerSecond: 10000,
        tokensPerSecond: { mean: 100, jitter: 0.1 },
        outputTokens: { median: 120, sigma: 0.5, max: 1000 },
      },
    ],
  });
}

const options = { latencyScale: 1, tokensPerChunk: 3 };

function plans(count: number, seed: number, faults: SimProfilesInput["faults"] = {}, promptTokens = 1, maxTokens?: number): ResponsePlan[] {
  const profiles = profilesWith(faults);
  const model = profiles.models[0];
  if (model === undefined) throw new Error("no model");
  const phase = phaseAt(profiles, model.id, 0);
  const rng = createSimRng(seed);
  return Array.from({ length: count }, () => planResponse(model, phase, { promptTokens, maxTokens }, createSimRng(rng.uint32()), options));
}

const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};

describe("planResponse", () => {
  it("draws TTFT around the profiled median, with the profiled share of slow tails", () => {
    const drawn = plans(4000, 7);
    const median = quantile(
      drawn.map((p) => p.ttftMs),
      0.5,
    );
    expect(median).toBeGreaterThan(380);
    expect(median).toBeLessThan(425);
    const tails = drawn.filter((p) => p.tail).length / drawn.length;
    expect(tails).toBeGreaterThan(0.035);
    expect(tails).toBeLessThan(0.065);
    // p99 is dominated by the ×4 tail: far above a pure lognormal's 400·e^(2.33·0.3) ≈ 800 ms
    expect(
      quantile(
        drawn.map((p) => p.ttftMs),
        0.99,
      ),
    ).toBeGreaterThan(1100);
  });

  it("adds a tail's addMs after its multiplier, and leaves the other requests as drawn", () => {
    const base = parseSimProfiles({
      models: [{ id: "sim/m", ttft: { medianMs: 300, sigma: 0.25, tail: { probability: 0.1 } }, tokensPerSecond: { mean: 100 }, outputTokens: { median: 50 } }],
    });
    const added = parseSimProfiles({
      models: [
        {
          id: "sim/m",
          ttft: { medianMs: 300, sigma: 0.25, tail: { probability: 0.1, multiplier: 2, addMs: 1000 } },
          tokensPerSecond: { mean: 100 },
          outputTokens: { median: 50 },
        },
      ],
    });
    const draw = (profiles: typeof base): ResponsePlan[] => {
      const model = profiles.models[0];
      if (model === undefined) throw new Error("no model");
      const rng = createSimRng(21);
      return Array.from({ length: 2000 }, () =>
        planResponse(model, phaseAt(profiles, model.id, 0), { promptTokens: 1, maxTokens: 10 }, createSimRng(rng.uint32()), options),
      );
    };
    const plain = draw(base);
    const slow = draw(added);
    expect(slow.filter((p) => p.tail).length).toBeGreaterThan(140);
    slow.forEach((plan, i) => {
      const before = plain[i];
      if (before === undefined) throw new Error("missing plan");
      expect(plan.tail).toBe(before.tail);
      const prefillMs = 1000 / 10000;
      if (plan.tail) expect(plan.ttftMs).toBeCloseTo((before.ttftMs - prefillMs) * 2 + 1000 + prefillMs, 6);
      else expect(plan.ttftMs).toBe(before.ttftMs);
    });
  });

  it("adds prefill time for long prompts: N tokens / prefillTokensPerSecond", () => {
    const short = plans(20, 3, {}, 1);
    const long = plans(20, 3, {}, 20001);
    short.forEach((plan, i) => expect((long[i]?.ttftMs ?? 0) - plan.ttftMs).toBeCloseTo(2000, 6));
  });

  it("splits the answer into chunks paced by tokens per second", () => {
    for (const plan of plans(50, 11)) {
      expect(plan.chunks.reduce((sum, c) => sum + c.tokens, 0)).toBe(plan.completionTokens);
      expect(plan.chunks[0]?.delayMs).toBe(plan.ttftMs);
      const decodeMs = plan.chunks.slice(1).reduce((sum, c) => sum + c.delayMs, 0);
      const expectedMs = ((plan.completionTokens - (plan.chunks[0]?.tokens ?? 0)) / plan.tokensPerSecond) * 1000;
      expect(decodeMs).toBeGreaterThan(expectedMs * 0.7);
      expect(decodeMs).toBeLessThan(expectedMs * 1.3);
      expect(plan.finishReason).toBe("stop");
    }
  });

  it("stops at max_tokens with finish_reason length", () => {
    const [plan] = plans(1, 5, {}, 10, 7);
    expect(plan?.completionTokens).toBe(7);
    expect(plan?.finishReason).toBe("length");
    expect(plan?.chunks.map((c) => c.tokens)).toEqual([3, 3, 1]);
    const [roomy] = plans(1, 5, {}, 10, 100000);
    expect(roomy?.finishReason).toBe("stop");
  });

  it("draws faults at their probabilities, after the latencies, so latencies do not depend on faults", () => {
    const faulty = plans(3000, 9, {
      rateLimit: { probability: 0.1 },
      serverError: { probability: 0.1 },
      hang: { probability: 0.1 },
      cut: { probability: 0.5 },
    });
    const clean = plans(3000, 9);
    const share = (kind: string) => faulty.filter((p) => p.fault?.kind === kind).length / faulty.length;
    expect(share("rate-limit")).toBeCloseTo(0.1, 1);
    expect(share("server-error")).toBeCloseTo(0.09, 1);
    expect(share("hang")).toBeCloseTo(0.081, 1);
    expect(share("cut")).toBeCloseTo(0.36, 1);
    expect(clean.every((p) => p.fault === null)).toBe(true);
    expect(faulty.map((p) => p.ttftMs)).toEqual(clean.map((p) => p.ttftMs));
    for (const plan of faulty) {
      if (plan.fault?.kind === "cut" && plan.chunks.length >= 2) {
        expect(plan.fault.afterChunks).toBeGreaterThanOrEqual(1);
        expect(plan.fault.afterChunks).toBeLessThan(plan.chunks.length);
      }
    }
  });

  it("scales every delay with latencyScale", () => {
    const profiles = profilesWith();
    const model = profiles.models[0];
    if (model === undefined) throw new Error("no model");
    const phase = phaseAt(profiles, model.id, 0);
    const full = planResponse(model, phase, { promptTokens: 50, maxTokens: undefined }, createSimRng(1), options);
    const tenth = planResponse(model, phase, { promptTokens: 50, maxTokens: undefined }, createSimRng(1), { ...options, latencyScale: 0.1 });
    expect(tenth.ttftMs).toBeCloseTo(full.ttftMs / 10, 6);
    expect(tenth.chunks.map((c) => c.delayMs * 10)).toEqual(full.chunks.map((c) => expect.closeTo(c.delayMs, 6)));
  });
});

describe("helpers", () => {
  it("estimates prompt tokens as a quarter of the message characters", () => {
    expect(estimatePromptTokens([{ role: "user", content: "x".repeat(40) }])).toBe(10);
    expect(
      estimatePromptTokens([
        { role: "system", content: "abc" },
        { role: "user", content: [{ type: "text", text: "defgh" }, { type: "image_url" }] },
      ]),
    ).toBe(2);
    expect(estimatePromptTokens("nonsense")).toBe(1);
  });

  it("writes one filler word per token, and slices concatenate to the whole", () => {
    expect(fillerText(0, 9).split(" ")).toHaveLength(9);
    expect(fillerText(0, 4) + fillerText(4, 50) + fillerText(54, 3)).toBe(fillerText(0, 57));
  });

  it("repeats itself for the same seed", () => {
    expect(plans(5, 42).map((p) => p.ttftMs)).toEqual(plans(5, 42).map((p) => p.ttftMs));
    expect(plans(5, 42).map((p) => p.ttftMs)).not.toEqual(plans(5, 43).map((p) => p.ttftMs));
  });
});
