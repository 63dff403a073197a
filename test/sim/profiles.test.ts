import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { parseSimProfiles, parseSimProfilesText, SimProfilesError, type ModelProfile, type SimProfiles } from "../../src/sim/profiles.js";
import { phaseAt } from "../../src/sim/story.js";

const shippedText = readFileSync(new URL("../../config/sim-profiles.yaml", import.meta.url), "utf8");
const gateway = parse(readFileSync(new URL("../../config/gateway.yaml", import.meta.url), "utf8")) as {
  models: { id: string; pricePerMTok: { input: number; output: number } }[];
};

function issuesOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof SimProfilesError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  throw new Error("expected the profiles to be rejected");
}

/** p95 TTFT of a lognormal profile (tail ignored), prompt prefill included, drift applied; ms. */
function p95TtftMs(model: ModelProfile, promptTokens: number, ttftMultiplier = 1): number {
  return (model.ttft.medianMs * Math.exp(1.645 * model.ttft.sigma) + (promptTokens / model.prefillTokensPerSecond) * 1000) * ttftMultiplier;
}

/** What a cheapest-within-target router would choose, knowing the true p95s, at a point of the story. */
function cheapestWithinTarget(profiles: SimProfiles, fraction: number, promptTokens: number, outputTokens: number): string | undefined {
  const byId = new Map(profiles.models.map((m) => [m.id, m]));
  const eligible = gateway.models
    .filter((m) => m.pricePerMTok.input + m.pricePerMTok.output > 0)
    .filter((m) => {
      const profile = byId.get(m.id);
      if (profile === undefined) throw new Error(`no profile for ${m.id}`);
      return p95TtftMs(profile, promptTokens, phaseAt(profiles, m.id, fraction).ttftMultiplier) <= 800;
    })
    .map((m) => ({ id: m.id, cost: promptTokens * m.pricePerMTok.input + outputTokens * m.pricePerMTok.output }))
    .sort((a, b) => a.cost - b.cost);
  return eligible[0]?.id;
}

describe("config/sim-profiles.yaml", () => {
  const shipped = parseSimProfilesText(shippedText, "sim-profiles.yaml");

  it("profiles exactly the 15 catalog models of config/gateway.yaml", () => {
    expect(shipped.models.map((m) => m.id).sort()).toEqual(gateway.models.map((m) => m.id).sort());
    expect(shipped.models).toHaveLength(15);
  });

  it("makes healthy models differ: fast ones, middling ones and a slow expensive one", () => {
    const medians = new Map(shipped.models.map((m) => [m.id, m.ttft.medianMs]));
    const fast = [...medians.values()].filter((ms) => ms >= 250 && ms <= 500);
    const middling = [...medians.values()].filter((ms) => ms >= 600 && ms <= 1200);
    expect(fast.length).toBeGreaterThanOrEqual(4);
    expect(middling.length).toBeGreaterThanOrEqual(3);
    expect(medians.get("stepfun/step-3.7-flash")).toBeGreaterThan(1200);
  });

  it("tells the story: qwen3.5-flash is the cheap pick when healthy, degrades from 30% to 60%, then recovers", () => {
    const flash = "qwen/qwen3.5-flash-02-23";
    expect(cheapestWithinTarget(shipped, 0.2, 300, 150)).toBe(flash);
    expect(cheapestWithinTarget(shipped, 0.7, 300, 150)).toBe(flash);
    const degradedPick = cheapestWithinTarget(shipped, 0.45, 300, 150);
    expect(degradedPick).toBeDefined();
    expect(degradedPick).not.toBe(flash);
    for (const fraction of [0.3, 0.45, 0.59]) {
      const multiplier = phaseAt(shipped, flash, fraction).ttftMultiplier;
      expect(multiplier).toBeGreaterThanOrEqual(4);
      expect(multiplier).toBeLessThanOrEqual(6);
    }
    expect(phaseAt(shipped, flash, 0.25).ttftMultiplier).toBe(1);
    expect(phaseAt(shipped, flash, 0.65).ttftMultiplier).toBe(1);
  });

  it("scripts 429 bursts with Retry-After on a :free model, and background hangs, 5xx and cuts", () => {
    const free = phaseAt(shipped, "google/gemma-4-26b-a4b-it:free", 0.14);
    expect(free.faults.rateLimit.probability).toBeGreaterThanOrEqual(0.5);
    expect(free.faults.rateLimit.retryAfterSeconds).toBeGreaterThan(0);
    const quiet = phaseAt(shipped, "google/gemini-2.5-flash-lite", 0.05).faults;
    expect(quiet.hang.probability).toBeGreaterThan(0);
    expect(quiet.serverError.probability).toBeGreaterThan(0);
    expect(quiet.cut.probability).toBeGreaterThan(0);
    expect(quiet.cut.probability).toBeLessThan(0.01);
  });
});

describe("profiles validation", () => {
  const base = () => parse(shippedText) as { models: Record<string, unknown>[]; timeline: Record<string, unknown>[] } & Record<string, unknown>;

  it("names the path of every bad field at once, list entries with their id or name", () => {
    const doc = base();
    const flash = doc.models[8] as { ttft: { medianMs: number } };
    flash.ttft.medianMs = -5;
    doc.models[2] = { ...doc.models[2], id: doc.models[1]?.id };
    (doc.timeline[1] as { models: string[] }).models = ["ghost/model"];
    (doc.timeline[2] as { to: number }).to = 0.1;
    (doc.models[0] as Record<string, unknown>).colour = "blue";
    const issues = issuesOf(() => parseSimProfiles(doc, "test.yaml"));
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^models\[8\] \(qwen\/qwen3\.5-flash-02-23\)\.ttft\.medianMs: .*>0/),
        'models[2] (xiaomi/mimo-v2.5).id: duplicate model id "xiaomi/mimo-v2.5"',
        'timeline[1] (qwen-flash-brownout).models[0]: unknown model "ghost/model"',
        "timeline[2] (seed-flash-hangs).to: must be greater than `from`",
        expect.stringMatching(/^models\[0\] .*: Unrecognized key: "colour"/),
      ]),
    );
  });

  it("rejects probabilities and fractions outside 0..1 and a ramp that does not fit", () => {
    const doc = base();
    (doc.timeline[0] as { faults: { rateLimit: { probability: number } } }).faults.rateLimit.probability = 1.5;
    (doc.timeline[1] as { ramp: number }).ramp = 0.3;
    const issues = issuesOf(() => parseSimProfiles(doc));
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^timeline\[0\] \(gemma-free-quota\)\.faults\.rateLimit\.probability: .*<=1/),
        "timeline[1] (qwen-flash-brownout).ramp: ramp in plus ramp out must fit inside [from, to)",
      ]),
    );
  });

  it("reports YAML syntax errors with line and column", () => {
    const issues = issuesOf(() => parseSimProfilesText("models:\n  - id: a\n    ttft: { medianMs: 1\n", "broken.yaml"));
    expect(issues[0]).toMatch(/^line \d+, column \d+: /);
  });

  it("applies defaults to a minimal file", () => {
    const profiles = parseSimProfiles({
      models: [{ id: "sim/a", ttft: { medianMs: 100 }, tokensPerSecond: { mean: 50 }, outputTokens: { median: 20 } }],
    });
    expect(profiles.story).toEqual({ durationMs: 120000, loop: true, tokensPerChunk: 3 });
    expect(profiles.models[0]?.ttft).toEqual({ medianMs: 100, sigma: 0.3, tail: { probability: 0, multiplier: 1, addMs: 0 } });
    expect(profiles.models[0]?.prefillTokensPerSecond).toBe(10000);
    expect(profiles.timeline).toEqual([]);
  });
});
