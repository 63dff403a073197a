import { describe, expect, it } from "vitest";
import { parseSimProfiles } from "../../src/sim/profiles.js";
import { episodeIntensity, phaseAt, storyFraction } from "../../src/sim/story.js";

const profiles = parseSimProfiles({
  faults: { cut: { probability: 0.01 }, hang: { probability: 0.02, modes: ["no-headers"] } },
  models: [
    { id: "sim/cheap", ttft: { medianMs: 300 }, tokensPerSecond: { mean: 100 }, outputTokens: { median: 50 } },
    {
      id: "sim/free:free",
      ttft: { medianMs: 400 },
      tokensPerSecond: { mean: 100 },
      outputTokens: { median: 50 },
      faults: { rateLimit: { probability: 0.05, retryAfterSeconds: 2 }, cut: { probability: 0 } },
    },
  ],
  timeline: [
    { name: "brownout", models: ["sim/cheap"], from: 0.3, to: 0.6, ramp: 0.1, ttftMultiplier: 5, tokensPerSecondMultiplier: 0.5 },
    { name: "quota", models: ["sim/free:free"], from: 0.1, to: 0.2, faults: { rateLimit: { probability: 0.9, retryAfterSeconds: 7 } } },
    { name: "everyone-slow", models: "*", from: 0.5, to: 0.55, ttftMultiplier: 2 },
  ],
});

describe("storyFraction", () => {
  it("loops, or stops at the end", () => {
    expect(storyFraction(250, 1000, true)).toBeCloseTo(0.25);
    expect(storyFraction(1250, 1000, true)).toBeCloseTo(0.25);
    expect(storyFraction(-250, 1000, true)).toBeCloseTo(0.75);
    expect(storyFraction(1250, 1000, false)).toBe(1);
    expect(storyFraction(-5, 1000, false)).toBe(0);
    expect(() => storyFraction(1, 0, true)).toThrow(RangeError);
  });
});

describe("phaseAt", () => {
  it("ramps drift in and out inside the episode window", () => {
    const window = { from: 0.3, to: 0.6, ramp: 0.1 };
    expect(episodeIntensity(window, 0.29)).toBe(0);
    expect(episodeIntensity(window, 0.35)).toBeCloseTo(0.5);
    expect(episodeIntensity(window, 0.45)).toBe(1);
    expect(episodeIntensity(window, 0.55)).toBeCloseTo(0.5);
    expect(episodeIntensity(window, 0.6)).toBe(0);
    expect(phaseAt(profiles, "sim/cheap", 0.2).ttftMultiplier).toBe(1);
    expect(phaseAt(profiles, "sim/cheap", 0.35).ttftMultiplier).toBeCloseTo(3);
    const plateau = phaseAt(profiles, "sim/cheap", 0.45);
    expect(plateau.ttftMultiplier).toBe(5);
    expect(plateau.tokensPerSecondMultiplier).toBe(0.5);
    expect(plateau.episodes).toEqual(["brownout"]);
    expect(phaseAt(profiles, "sim/cheap", 0.7)).toMatchObject({ ttftMultiplier: 1, tokensPerSecondMultiplier: 1, episodes: [] });
  });

  it("multiplies overlapping episodes, and '*' reaches every model", () => {
    const both = phaseAt(profiles, "sim/cheap", 0.5);
    expect(both.episodes).toEqual(["brownout", "everyone-slow"]);
    expect(both.ttftMultiplier).toBeCloseTo(5 * 2, 5);
    expect(phaseAt(profiles, "sim/cheap", 0.52).ttftMultiplier).toBeCloseTo((1 + 4 * 0.8) * 2, 5); // ramping out
    expect(phaseAt(profiles, "sim/free:free", 0.52).ttftMultiplier).toBe(2);
  });

  it("inherits default faults kind by kind, and episodes raise them while active", () => {
    const cheap = phaseAt(profiles, "sim/cheap", 0.05).faults;
    expect(cheap.cut.probability).toBe(0.01);
    expect(cheap.hang).toEqual({ probability: 0.02, modes: ["no-headers"] });
    expect(cheap.rateLimit.probability).toBe(0);
    const free = phaseAt(profiles, "sim/free:free", 0.05).faults;
    expect(free.cut.probability).toBe(0);
    expect(free.hang.probability).toBe(0.02);
    expect(free.rateLimit).toEqual({ probability: 0.05, retryAfterSeconds: 2 });
    expect(phaseAt(profiles, "sim/free:free", 0.15).faults.rateLimit).toEqual({ probability: 0.9, retryAfterSeconds: 7 });
    expect(phaseAt(profiles, "sim/free:free", 0.2).faults.rateLimit.probability).toBe(0.05);
  });

  it("turns every fault off on request, but keeps the drift", () => {
    const off = phaseAt(profiles, "sim/free:free", 0.15, { faults: false });
    expect([off.faults.rateLimit, off.faults.serverError, off.faults.hang, off.faults.cut].map((f) => f.probability)).toEqual([0, 0, 0, 0]);
    expect(phaseAt(profiles, "sim/cheap", 0.45, { faults: false }).ttftMultiplier).toBe(5);
  });

  it("rejects an unknown model", () => {
    expect(() => phaseAt(profiles, "ghost/model", 0.5)).toThrow(/unknown simulated model "ghost\/model"/);
  });
});
