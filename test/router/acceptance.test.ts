// The acceptance scenario: three models, 20 requests/s on a fake clock, the cheap one slows down and
// recovers; traffic must follow within seconds.
import { describe, expect, it } from "vitest";
import { createSeededRng } from "../../src/router/rng.js";
import type { Rng } from "../../src/router/types.js";
import { harness, model, request, route, serve } from "./helpers.js";

const cheap = model("cheap", { input: 0.05, output: 0.2, rank: 3 }); // no prior: the pessimistic default applies
const mid = model("mid", { input: 0.1, output: 0.4, rank: 2, prior: { ttftMs: 400, tokensPerSecond: 80 } });
const premium = model("premium", { input: 1, output: 4, rank: 1, prior: { ttftMs: 250, tokensPerSecond: 120 } });

/** Log-normal jitter around 1 (σ = 0.15). */
function jitter(rng: Rng): number {
  const u = Math.max(rng.next(), 1e-12);
  const v = rng.next();
  return Math.exp(0.15 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
}

/** Scripted TTFT of each model at simulated second `t`. */
function baseTtftMs(id: string, t: number): number {
  if (id === "cheap") return t >= 30 && t < 60 ? 1500 : 300;
  if (id === "mid") return 450;
  return 250;
}

interface Served {
  readonly t: number;
  readonly id: string;
  readonly reason: string;
}

function simulate(recoverySamples: number): Served[] {
  const h = harness([cheap, mid, premium], { seed: 11, stats: { recoverySamples } });
  const policy = route([cheap, mid, premium], { exploration: { ratio: 0.05, staleAfterMs: 2000, newModelRatio: 0 } });
  const latencyRng = createSeededRng(99);
  const start = h.clock.now();
  const log: Served[] = [];
  for (let i = 0; i < 20 * 90; i++) {
    const t = (h.clock.now() - start) / 1000;
    const decision = h.brain.decide(policy, request());
    const id = decision.plan[0]?.id ?? "none";
    serve(h, decision, baseTtftMs(id, t) * jitter(latencyRng));
    log.push({ t, id, reason: decision.reason });
    h.clock.advance(50);
  }
  return log;
}

const share = (log: readonly Served[], id: string, from: number, to: number): number => {
  const window = log.filter((s) => s.t >= from && s.t < to);
  return window.filter((s) => s.id === id).length / window.length;
};

describe("acceptance: traffic follows the cheapest model that meets p95 TTFT ≤ 800 ms", () => {
  const log = simulate(3);

  it("starts on the model with a good prior, explores the cheaper unmeasured one and adopts it", () => {
    expect(log[0]?.id).toBe("mid");
    const adopted = log.find((s) => s.id === "cheap" && s.reason === "within-target");
    expect(adopted).toBeDefined();
    expect(adopted?.t ?? 99).toBeLessThanOrEqual(8);
  });

  it("sends traffic to the cheap model while it meets the target", () => {
    expect(share(log, "cheap", 8, 30)).toBeGreaterThanOrEqual(0.99);
    expect(share(log, "premium", 0, 90)).toBe(0);
  });

  it("moves traffic off within a few seconds once the cheap model slows past the target", () => {
    const moved = log.find((s) => s.t >= 30 && s.id === "mid" && s.reason === "within-target");
    expect(moved).toBeDefined();
    expect((moved?.t ?? 99) - 30).toBeLessThan(3);
    // After the move only exploration probes reach the slow model: about one every staleAfterMs.
    expect(share(log, "mid", 34, 60)).toBeGreaterThanOrEqual(0.95);
    const probes = log.filter((s) => s.t >= 34 && s.t < 60 && s.id === "cheap");
    expect(probes.every((s) => s.reason === "explore")).toBe(true);
    expect(probes.length).toBeGreaterThanOrEqual(8);
    expect(probes.length).toBeLessThanOrEqual(14);
  });

  it("brings traffic back within seconds of recovery, through exploration and the recovery rule", () => {
    const back = log.find((s) => s.t >= 60 && s.id === "cheap" && s.reason === "within-target");
    expect(back).toBeDefined();
    expect((back?.t ?? 99) - 60).toBeLessThanOrEqual(10);
    expect(share(log, "cheap", 75, 90)).toBeGreaterThanOrEqual(0.99);
  });

  it("without the recovery rule the stale bad history would keep it out far longer", () => {
    const slow = simulate(1_000_000);
    const back = slow.find((s) => s.t >= 60 && s.id === "cheap" && s.reason === "within-target");
    expect(back === undefined || back.t - 60 > 20).toBe(true);
  });
});
