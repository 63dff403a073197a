// The brain's side of hedging and of new-model probing: pure, on a fake clock.
import { describe, expect, it } from "vitest";
import { HedgingSchema } from "../../src/config/schema.js";
import { createSeededRng } from "../../src/router/rng.js";
import type { Rng } from "../../src/router/types.js";
import { harness, model, request, route, serve, warm } from "./helpers.js";

const hedging = (overrides: Partial<ReturnType<typeof HedgingSchema.parse>> = {}) => ({ ...HedgingSchema.parse({}), ...overrides });

const cheap = model("cheap", { input: 0.05, output: 0.2 });
const fast = model("fast", { input: 1, output: 4 });
const dear = model("dear", { input: 2, output: 8 });

/** A brain that has measured cheap, fast and dear at these first-token times. */
const measured = (cheapMs: number, fastMs: number, dearMs: number) => {
  const h = harness([cheap, fast, dear]);
  warm(h, "cheap", cheapMs);
  warm(h, "fast", fastMs);
  warm(h, "dear", dearMs);
  return h;
};

describe("hedge delay", () => {
  it("is the target minus the fastest other candidate's prediction minus the margin", () => {
    const h = measured(300, 200, 250);
    const policy = route([cheap, fast, dear], { hedging: hedging({ marginMs: 50 }) });
    const decision = h.brain.decide(policy, request());
    expect(decision.plan[0]?.id).toBe("cheap");
    const fastMs = h.brain.snapshot(policy, request()).find((row) => row.id === "fast")?.predictedMs ?? Number.NaN;
    expect(decision.hedgeAfterMs).toBeCloseTo(800 - fastMs - 50, 6);
  });

  it("is left out when the first model's own slow tail comes after it, and when hedging is off", () => {
    const h = harness([cheap, fast]);
    warm(h, "cheap", 600);
    warm(h, "fast", 500);
    const policy = route([cheap, fast], { hedging: hedging() });
    // 800 − 500 − 50 would hedge at 250 ms, before most of cheap's answers; a hedge after its slow tail
    // (its p97.5, for a budget of 5 hedges per 100 requests) could no longer meet the target: none.
    expect(h.brain.estimateMs("cheap", "ttft", 97.5)).toBeGreaterThan(250);
    expect(h.brain.decide(policy, request()).hedgeAfterMs).toBeUndefined();
    const g = harness([cheap, fast]);
    warm(g, "cheap", 300);
    warm(g, "fast", 200);
    expect(g.brain.decide(route([cheap, fast], { hedging: hedging({ enabled: false }) }), request()).hedgeAfterMs).toBeUndefined();
    expect(g.brain.decide(route([cheap, fast], { hedging: hedging(), strategy: "ordered" }), request()).hedgeAfterMs).toBeUndefined();
  });

  it("always protects a probe: the hedge comes while the fastest other candidate can still meet the target", () => {
    const h = harness([fast]);
    warm(h, "fast", 300);
    h.sync([cheap, fast]);
    const policy = route([cheap, fast], { hedging: hedging({ marginMs: 50 }), exploration: { ratio: 0, staleAfterMs: 2000, newModelRatio: 1 } });
    const decision = h.brain.decide(policy, request());
    expect(decision.plan.map((m) => m.id)).toEqual(["cheap", "fast"]);
    expect(decision.probe).toBe(true);
    const fastMs = h.brain.snapshot(policy, request()).find((row) => row.id === "fast")?.predictedMs ?? Number.NaN;
    expect(decision.hedgeAfterMs).toBeCloseTo(800 - fastMs - 50, 6);
  });
});

describe("hedge choice and budget", () => {
  it("goes to the cheapest candidate that can deliver in the time left, else the fastest", () => {
    const h = measured(300, 400, 150);
    const policy = route([cheap, fast, dear], { hedging: hedging({ marginMs: 0, maxRatio: 0.5 }) });
    h.brain.decide(policy, request());
    const early = h.brain.hedge(policy, request(), new Set(["cheap"]), 200, false);
    expect("model" in early && early.model.id).toBe("fast");
    h.brain.decide(policy, request());
    h.brain.decide(policy, request());
    const late = h.brain.hedge(policy, request(), new Set(["cheap"]), 500, false);
    expect("model" in late && late.model.id).toBe("dear");
  });

  it("spends a token per hedge, earns maxRatio per decision, and says over_budget when empty; a probe's hedge borrows", () => {
    const h = harness([cheap, fast]);
    warm(h, "cheap", 300);
    warm(h, "fast", 200);
    const policy = route([cheap, fast], { hedging: hedging({ maxRatio: 0.1 }) });
    const tried = new Set(["cheap"]);
    h.brain.decide(policy, request());
    expect("model" in h.brain.hedge(policy, request(), tried, 500, false)).toBe(true);
    expect(h.brain.hedge(policy, request(), tried, 500, false)).toEqual({ refused: "over_budget" });
    expect("model" in h.brain.hedge(policy, request(), tried, 500, true)).toBe(true);
    let sent = 0;
    for (let i = 0; i < 100; i++) {
      h.brain.decide(policy, request());
      if ("model" in h.brain.hedge(policy, request(), tried, 500, false)) sent++;
    }
    // 100 decisions earn 10 tokens; the probe's hedge borrowed one of them, and one stays for probes.
    expect(sent).toBe(9);
  });

  it("counts a fallback against the budget, down to the token kept for probes' hedges", () => {
    const h = harness([cheap, fast]);
    warm(h, "cheap", 300);
    warm(h, "fast", 200);
    const policy = route([cheap, fast], { hedging: hedging({ maxRatio: 0.1 }) });
    const tried = new Set(["cheap"]);
    const hedgesSent = () => {
      let sent = 0;
      while ("model" in h.brain.hedge(policy, request(), tried, 500, false)) sent++;
      return sent;
    };
    // 2 tokens to start with and 0.1 per decision: 5 after 30 decisions, of which ordinary hedges leave one.
    for (let i = 0; i < 30; i++) h.brain.decide(policy, request());
    h.brain.fallbackStarted(policy);
    h.brain.fallbackStarted(policy);
    expect(hedgesSent()).toBe(2);
    for (let i = 0; i < 30; i++) h.brain.decide(policy, request());
    for (let i = 0; i < 10; i++) h.brain.fallbackStarted(policy);
    expect(hedgesSent()).toBe(0);
    expect("model" in h.brain.hedge(policy, request(), tried, 500, true)).toBe(true);
  });
});

describe("a new model", () => {
  /** Log-normal jitter around 1 (σ = 0.2). */
  const jitter = (rng: Rng) => Math.exp(0.2 * Math.sqrt(-2 * Math.log(Math.max(rng.next(), 1e-12))) * Math.cos(2 * Math.PI * rng.next()));

  it("is one a config change brings in or reprices, not one of the catalog the gateway started with", () => {
    const incumbent = model("incumbent", { input: 0.1, output: 0.4 });
    const slow = model("slow", { input: 0.05, output: 0.2 }); // no prior: the slow default, so never chosen unmeasured
    const h = harness([incumbent, slow]);
    warm(h, "incumbent", 350, 200);
    const policy = route([incumbent, slow], { hedging: hedging(), exploration: { ratio: 0, staleAfterMs: 2000, newModelRatio: 0.25 } });
    const probed = () => {
      let count = 0;
      for (let i = 0; i < 40; i++) {
        const decision = h.brain.decide(policy, request());
        if (decision.probe) count++;
        serve(h, decision, 350);
        h.clock.advance(50);
      }
      return count;
    };
    expect(probed()).toBe(0);
    // A catalog refresh halves its price: now it is new, and measured at once.
    h.sync([incumbent, model("slow", { input: 0.025, output: 0.1 })]);
    expect(probed()).toBeGreaterThanOrEqual(5);
  });

  it("made cheapest by a config edit serves most traffic within 3 s at 20 req/s, its probes hedged within the target", () => {
    const incumbent = model("incumbent", { input: 0.1, output: 0.4 });
    const newcomer = model("newcomer", { input: 0.05, output: 0.2 }); // no prior: the slow default applies
    const h = harness([incumbent]);
    warm(h, "incumbent", 350, 200);
    h.sync([incumbent, newcomer]);
    const policy = route([incumbent, newcomer], { hedging: hedging(), exploration: { ratio: 0.02, staleAfterMs: 2000, newModelRatio: 0.25 } });
    const rng = createSeededRng(5);
    const start = h.clock.now();
    const served: { t: number; id: string; missed: boolean; reason: string; hedged: boolean }[] = [];
    for (let i = 0; i < 20 * 4; i++) {
      const decision = h.brain.decide(policy, request());
      const id = decision.plan[0]?.id ?? "none";
      const ttftMs = (id === "newcomer" ? 250 : 350) * jitter(rng);
      serve(h, decision, ttftMs);
      // A probe that is slower than its hedge delay is rescued by the hedge on the incumbent.
      const hedgedMs =
        decision.probe && decision.hedgeAfterMs !== undefined && ttftMs > decision.hedgeAfterMs ? decision.hedgeAfterMs + 350 * jitter(rng) : ttftMs;
      served.push({
        t: (h.clock.now() - start) / 1000,
        id,
        missed: Math.min(ttftMs, hedgedMs) > 800,
        reason: decision.reason,
        hedged: decision.probe && decision.hedgeAfterMs !== undefined,
      });
      h.clock.advance(50);
    }
    const window = served.filter((s) => s.t >= 2 && s.t < 3);
    expect(window.filter((s) => s.id === "newcomer").length / window.length).toBeGreaterThan(0.5);
    expect(served.every((s) => !s.missed)).toBe(true);
    // Until it was adopted on its own merit, every request it served was a probe protected by a hedge.
    const adopted = served.findIndex((s) => s.id === "newcomer" && s.reason === "within-target");
    expect(adopted).toBeGreaterThan(0);
    const probes = served.slice(0, adopted).filter((s) => s.id === "newcomer");
    expect(probes.length).toBeGreaterThanOrEqual(4);
    expect(probes.every((s) => s.reason === "explore" && s.hedged)).toBe(true);
  });
});

describe("fallback choice", () => {
  it("is the cheapest untried candidate predicted within the time left, else none: the plan's order stands", () => {
    const h = measured(300, 400, 150);
    const policy = route([cheap, fast, dear], { hedging: hedging({ marginMs: 50 }) });
    const tried = new Set(["cheap"]);
    // 550 ms left: fast (400) is cheaper than dear; 250 ms left: only dear (150) makes it.
    expect(h.brain.fallback(policy, request(), tried, 200)?.id).toBe("fast");
    expect(h.brain.fallback(policy, request(), tried, 500)?.id).toBe("dear");
    // The target has passed (with its margin): no choice by the time left.
    expect(h.brain.fallback(policy, request(), tried, 760)).toBeUndefined();
    // A fastest route keeps its order, fastest first.
    expect(h.brain.fallback(route([cheap, fast, dear], { strategy: "fastest", hedging: hedging() }), request(), tried, 200)).toBeUndefined();
  });
});
