import { describe, expect, it } from "vitest";
import { createBrain } from "../../src/router/brain.js";
import { createFakeClock } from "../../src/router/clock.js";
import { createSeededRng } from "../../src/router/rng.js";
import type { Decision } from "../../src/router/types.js";
import { defaultHealth, defaultStats, harness, ids, model, request, route, serve, warm, type Harness } from "./helpers.js";

/** A catalog prior that meets the routes' 800 ms target. */
const FAST_PRIOR = { ttftMs: 400, tokensPerSecond: 100 };

describe("filters", () => {
  it("drops models whose context window cannot hold prompt plus max output", () => {
    const small = model("small", { input: 0.01, contextTokens: 8000 });
    const large = model("large", { input: 0.5, contextTokens: 200_000 });
    const h = harness([small, large]);
    warm(h, "small", 200);
    warm(h, "large", 200);
    const policy = route([small, large]);
    expect(ids(h.brain.decide(policy, request({ promptTokens: 7000 })))).toEqual(["small", "large"]);
    expect(ids(h.brain.decide(policy, request({ promptTokens: 7000, maxOutputTokens: 1001 })))).toEqual(["large"]);
    const none = h.brain.decide(policy, request({ promptTokens: 300_000 }));
    expect(none.plan).toEqual([]);
    expect(none.excludedBy).toBe("context");
    expect(none.retryAfterMs).toBeUndefined();
  });

  it("drops models lacking a capability the request needs", () => {
    const text = model("text", { input: 0.01, capabilities: ["tools", "json"] });
    const vision = model("vision", { input: 0.5, capabilities: ["tools", "json", "vision"] });
    const h = harness([text, vision]);
    warm(h, "text", 200);
    warm(h, "vision", 200);
    expect(ids(h.brain.decide(route([text, vision]), request({ needs: new Set(["vision"]) })))).toEqual(["vision"]);
    expect(ids(h.brain.decide(route([text, vision]), request()))).toEqual(["text", "vision"]);
  });
});

describe("cheapest within target", () => {
  it("picks the cheapest model predicted within target; the plan lists the other within-target ones by cost, then the rest by speed", () => {
    const a = model("a", { input: 0.05, output: 0.1 });
    const b = model("b", { input: 0.1, output: 0.2 });
    const c = model("c", { input: 0.3, output: 0.6 });
    const slow = model("slow", { input: 0.01, output: 0.01 });
    const slower = model("slower", { input: 0.02, output: 0.02 });
    const h = harness([a, b, c, slow, slower]);
    warm(h, "a", 700);
    warm(h, "b", 300);
    warm(h, "c", 200);
    warm(h, "slow", 1200);
    warm(h, "slower", 2500);
    const decision = h.brain.decide(route([slower, slow, c, b, a]), request());
    expect(ids(decision)).toEqual(["a", "b", "c", "slow", "slower"]);
    expect(decision.reason).toBe("within-target");
    expect(decision.atRisk).toBe(false);
    expect(decision.predictedMs).toBeGreaterThan(650);
    expect(decision.predictedMs).toBeLessThan(800);
  });

  it("serves best effort — the lowest predicted latency, at risk — when nothing meets the target", () => {
    const cheap = model("cheap", { input: 0.01 });
    const fast = model("fast", { input: 0.9 });
    const h = harness([cheap, fast]);
    warm(h, "cheap", 2500);
    warm(h, "fast", 1200);
    const decision = h.brain.decide(route([cheap, fast]), request());
    expect(ids(decision)).toEqual(["fast", "cheap"]);
    expect(decision.reason).toBe("best-effort");
    expect(decision.atRisk).toBe(true);
  });

  it("breaks cost ties by rank, then score", () => {
    const r2 = model("r2", { rank: 2, score: 200 });
    const r1 = model("r1", { rank: 1, score: 100 });
    const r1better = model("r1better", { rank: 1, score: 150 });
    const h = harness([r2, r1, r1better]);
    for (const id of ["r2", "r1", "r1better"]) warm(h, id, 300);
    // Equal costs are near-ties whatever nearTieRatio says, shared at random; `cheapest` lists them in order.
    expect(ids(h.brain.decide(route([r2, r1, r1better], { strategy: "cheapest" }), request()))).toEqual(["r1better", "r1", "r2"]);
  });

  it("draws the bound's margin per decision: a model just past its bound gets a share, one whose plain percentile misses none", () => {
    const far = model("far", { input: 0.01, output: 0.05 });
    const edge = model("edge", { input: 0.05, output: 0.2 });
    const safe = model("safe", { input: 1, output: 4 });
    const h = harness([far, edge, safe]);
    // edge: 4 in 100 first tokens at 1.5 s. Its p95 meets 800 ms; its bound, the p97.5 at 100 samples, does not.
    warm(h, "edge", 300, 96);
    warm(h, "edge", 1500, 4);
    warm(h, "far", 1500, 100);
    warm(h, "safe", 300, 100);
    const policy = route([far, edge, safe]);
    expect(h.brain.snapshot(policy).find((row) => row.id === "edge")?.predictedMs).toBeGreaterThan(800);
    const firsts = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const first = ids(h.brain.decide(policy, request()))[0] ?? "";
      firsts.set(first, (firsts.get(first) ?? 0) + 1);
    }
    // Within when the drawn z falls under about −1.2 (the p96 reads 300 ms): some 12% of decisions.
    expect(firsts.get("edge")).toBeGreaterThan(50);
    expect(firsts.get("edge")).toBeLessThan(250);
    expect(firsts.get("far")).toBeUndefined();
    expect((firsts.get("edge") ?? 0) + (firsts.get("safe") ?? 0)).toBe(1000);
  });

  it("spreads load over near-equal candidates by the power of two choices", () => {
    const a = model("a", { input: 0.1, output: 0.4 });
    const b = model("b", { input: 0.102, output: 0.408 }); // 2 % dearer: within nearTieRatio 0.05
    const far = model("far", { input: 0.2, output: 0.8 });
    const h = harness([a, b, far], { seed: 5 });
    for (const id of ["a", "b", "far"]) warm(h, id, 300);
    const policy = route([a, b, far]);
    // 100 requests/s, each lasting 250 ms: about 25 in flight at any time.
    const finishing: { at: number; id: string }[] = [];
    const counts = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const now = h.clock.now();
      for (let k = finishing.length - 1; k >= 0; k--) {
        const f = finishing[k];
        if (f && f.at <= now) {
          h.brain.attemptFinished({ modelId: f.id, route: policy.name, outcome: "ok", ttftMs: 300, totalMs: 700, promptTokens: 500, outputTokens: 100 });
          finishing.splice(k, 1);
        }
      }
      const decision = h.brain.decide(policy, request());
      const id = decision.plan[0]?.id ?? "none";
      h.brain.attemptStarted(id, decision.probe);
      finishing.push({ at: now + 250, id });
      counts.set(id, (counts.get(id) ?? 0) + 1);
      h.clock.advance(10);
    }
    const shareA = (counts.get("a") ?? 0) / 4000;
    expect(shareA).toBeGreaterThan(0.2);
    expect(shareA).toBeLessThan(0.8);
    expect(counts.get("far") ?? 0).toBe(0);
  });

  it("a cheaper candidate outside nearTieRatio gets no share", () => {
    const a = model("a", { input: 0.1, output: 0.4 });
    const b = model("b", { input: 0.2, output: 0.8 });
    const h = harness([a, b]);
    warm(h, "a", 300);
    warm(h, "b", 300);
    for (let i = 0; i < 200; i++) expect(h.brain.decide(route([a, b]), request()).plan[0]?.id).toBe("a");
  });
});

describe("other strategies", () => {
  const cheapSlow = model("cheap-slow", { input: 0.01, output: 0.02, rank: 3 });
  const midMid = model("mid", { input: 0.1, output: 0.2, rank: 2 });
  const dearFast = model("dear-fast", { input: 1, output: 2, rank: 1 });
  const setup = () => {
    const h = harness([cheapSlow, midMid, dearFast]);
    warm(h, "cheap-slow", 1500);
    warm(h, "mid", 500);
    warm(h, "dear-fast", 150);
    return h;
  };

  it("fastest: lowest predicted latency first, whatever it costs", () => {
    const h = setup();
    const decision = h.brain.decide(route([cheapSlow, midMid, dearFast], { strategy: "fastest" }), request());
    expect(ids(decision)).toEqual(["dear-fast", "mid", "cheap-slow"]);
    expect(decision.reason).toBe("within-target");
    const tight = h.brain.decide(route([cheapSlow, midMid, dearFast], { strategy: "fastest", target: { metric: "ttft", percentile: 95, ms: 100 } }), request());
    expect(tight.reason).toBe("best-effort");
    expect(tight.atRisk).toBe(true);
  });

  it("cheapest: lowest expected cost regardless of latency", () => {
    const h = setup();
    const decision = h.brain.decide(route([dearFast, midMid, cheapSlow], { strategy: "cheapest" }), request());
    expect(ids(decision)).toEqual(["cheap-slow", "mid", "dear-fast"]);
    expect(decision.atRisk).toBe(true);
  });

  it("ordered: the configured order, skipping what is unusable", () => {
    const h = setup();
    const policy = route([midMid, dearFast, cheapSlow], { strategy: "ordered" });
    expect(ids(h.brain.decide(policy, request()))).toEqual(["mid", "dear-fast", "cheap-slow"]);
    h.brain.attemptFinished({ modelId: "mid", route: policy.name, outcome: "rate_limited", retryAfterMs: 5000 });
    expect(ids(h.brain.decide(policy, request()))).toEqual(["dear-fast", "cheap-slow"]);
  });

  it("uses the request's expected output tokens in cost: many output tokens favour the cheaper output price", () => {
    const cheapIn = model("cheap-in", { input: 0.01, output: 1 });
    const cheapOut = model("cheap-out", { input: 1, output: 0.01 });
    const h = harness([cheapIn, cheapOut]);
    warm(h, "cheap-in", 300);
    warm(h, "cheap-out", 300);
    const policy = route([cheapIn, cheapOut], { strategy: "cheapest" });
    expect(h.brain.decide(policy, request({ promptTokens: 10_000, maxOutputTokens: 10 })).plan[0]?.id).toBe("cheap-in");
    expect(h.brain.decide(policy, request({ promptTokens: 10, maxOutputTokens: 10_000 })).plan[0]?.id).toBe("cheap-out");
  });
});

describe("expected output tokens", () => {
  it("max_tokens first, else the route's observed average, else stats.defaultOutputTokens", () => {
    const m = model("m");
    const h = harness([m], { stats: { defaultOutputTokens: 256 } });
    const policy = route([m]);
    expect(h.brain.decide(policy, request({ maxOutputTokens: 1000 })).expectedOutputTokens).toBe(1000);
    expect(h.brain.decide(policy, request()).expectedOutputTokens).toBe(256);
    for (const outputTokens of [40, 60, 50]) {
      h.brain.attemptStarted("m", false);
      h.brain.attemptFinished({ modelId: "m", route: policy.name, outcome: "ok", ttftMs: 200, totalMs: 900, outputTokens });
    }
    expect(h.brain.decide(policy, request()).expectedOutputTokens).toBe(50);
  });

  it("non-streamed traffic (total time only) still measures a first-token target", () => {
    const m = model("m", { prior: { ttftMs: 900, tokensPerSecond: 100 } });
    const h = harness([m]);
    const policy = route([m]);
    expect(h.brain.decide(policy, request()).atRisk).toBe(true); // prior 900 ms × 1.5
    for (let i = 0; i < 20; i++) {
      h.brain.attemptStarted("m", false);
      h.brain.attemptFinished({ modelId: "m", route: policy.name, outcome: "ok", totalMs: 1300, promptTokens: 500, outputTokens: 101 });
      h.clock.advance(10);
    }
    // 1300 ms − 100 tokens × 10 ms (the prior's 100 tokens/s) ≈ 300 ms to first token.
    const decision = h.brain.decide(policy, request({ promptTokens: 500 }));
    expect(decision.atRisk).toBe(false);
    expect(decision.predictedMs).toBeGreaterThan(280);
    expect(decision.predictedMs).toBeLessThan(330);
  });

  it("a total-latency target grows with the expected output", () => {
    const m = model("m");
    const h = harness([m]);
    warm(h, "m", 200); // 100 tokens in 500 ms after the first: ~5 ms per token
    const policy = route([m], { target: { metric: "total", percentile: 95, ms: 3000 } });
    const short = h.brain.decide(policy, request({ maxOutputTokens: 100 }));
    const long = h.brain.decide(policy, request({ maxOutputTokens: 1000 }));
    expect(long.predictedMs - short.predictedMs).toBeGreaterThan(900 * 5 * 0.9);
    expect(short.atRisk).toBe(false);
    expect(long.atRisk).toBe(true);
  });
});

describe("cold models", () => {
  const measured = model("measured", { input: 0.5, output: 1 });
  const rosy = model("rosy", { input: 0.01, output: 0.02, prior: { ttftMs: 50, tokensPerSecond: 500 } });

  it("a cold model with a rosy prior never displaces a measured fast model on speed alone", () => {
    const h = harness([measured, rosy]);
    warm(h, "measured", 300, 200);
    const policy = route([measured, rosy], { strategy: "fastest" });
    for (let i = 0; i < 200; i++) {
      const decision = h.brain.decide(policy, request());
      expect(decision.plan[0]?.id).toBe("measured");
      serve(h, decision, 300);
      h.clock.advance(50);
    }
    // Its prediction on its own is better (50 ms × 1.5): only the ranking rule keeps it second.
    const row = h.brain.snapshot(policy, request()).find((r) => r.id === "rosy");
    expect(row?.predictedMs).toBeLessThan(300);
    expect(row?.wouldChoose).toBe(false);
  });

  it("but a cheaper cold model with a good prior is explored, and wins on speed once measured fast", () => {
    const h = harness([measured, rosy]);
    warm(h, "measured", 300, 200);
    const policy = route([measured, rosy], { strategy: "fastest", exploration: { ratio: 0.1, staleAfterMs: 2000, newModelRatio: 0 } });
    const firsts: string[] = [];
    for (let i = 0; i < 400; i++) {
      const decision = h.brain.decide(policy, request());
      const id = serve(h, decision, decision.plan[0]?.id === "rosy" ? 100 : 300) ?? "none";
      firsts.push(decision.reason === "explore" ? `explore:${id}` : id);
      h.clock.advance(50);
    }
    expect(firsts.slice(0, 20)).not.toContain("rosy");
    expect(firsts).toContain("explore:rosy");
    // Measured fast after a few probes, it takes the regular traffic (the other is now the one explored).
    const regular = firsts.slice(-100).filter((id) => !id.startsWith("explore:"));
    expect(regular.length).toBeGreaterThan(90);
    expect(regular.every((id) => id === "rosy")).toBe(true);
  });

  it("measured latency that misses the target is not shielded from a promising cold model", () => {
    const h = harness([measured, rosy]);
    warm(h, "measured", 1200, 200);
    const decision = h.brain.decide(route([measured, rosy], { strategy: "fastest" }), request());
    expect(decision.plan[0]?.id).toBe("rosy");
    expect(decision.reason).toBe("within-target");
  });

  it("with cheapest-within-target a cold model whose prior is within target is used on price", () => {
    const h = harness([measured, rosy]);
    warm(h, "measured", 300, 200);
    const decision = h.brain.decide(route([measured, rosy]), request());
    expect(decision.plan[0]?.id).toBe("rosy");
    expect(decision.reason).toBe("within-target");
  });
});

describe("rate limits (429)", () => {
  it("keeps a model out of every plan until its Retry-After, then brings it back", () => {
    const a = model("a", { input: 0.01 });
    const b = model("b", { input: 0.5 });
    const h = harness([a, b]);
    warm(h, "a", 200);
    warm(h, "b", 200);
    const policy = route([a, b]);
    h.brain.attemptStarted("a", false);
    h.brain.attemptFinished({ modelId: "a", route: policy.name, outcome: "rate_limited", retryAfterMs: 2000 });
    expect(h.brain.state("a")).toBe("cooling");
    for (let t = 0; t < 2000; t += 100) {
      expect(ids(h.brain.decide(policy, request()))).toEqual(["b"]);
      expect(ids(h.brain.planList("pinned", [a], "pinned", request()))).toEqual([]);
      h.clock.advance(100);
    }
    expect(ids(h.brain.decide(policy, request()))).toEqual(["a", "b"]);
    expect(h.brain.state("a")).toBe("ok");
  });

  it("returns an empty plan with the shortest remaining cooldown when every candidate is cooling", () => {
    const a = model("a");
    const b = model("b");
    const h = harness([a, b]);
    h.brain.attemptFinished({ modelId: "a", route: "r", outcome: "rate_limited", retryAfterMs: 5000 });
    h.brain.attemptFinished({ modelId: "b", route: "r", outcome: "rate_limited", retryAfterMs: 3000 });
    h.clock.advance(1000);
    const decision = h.brain.decide(route([a, b]), request());
    expect(decision.plan).toEqual([]);
    expect(decision.retryAfterMs).toBe(2000);
    expect(decision.excludedBy).toBe("cooling");
  });

  it("client errors and the gateway's own errors never count against a model", () => {
    const a = model("a");
    const h = harness([a], { health: { consecutiveFailures: 2 } });
    for (let i = 0; i < 20; i++) h.brain.attemptFinished({ modelId: "a", route: "r", outcome: "client_error" });
    for (let i = 0; i < 20; i++) h.brain.attemptFinished({ modelId: "a", route: "r", outcome: "gateway_error" });
    expect(h.brain.state("a")).toBe("ok");
    expect(ids(h.brain.decide(route([a]), request()))).toEqual(["a"]);
  });
});

describe("circuit breaker in decisions", () => {
  const flaky = model("flaky", { input: 0.01 });
  const steady = model("steady", { input: 0.5 });
  const fail = (h: ReturnType<typeof harness>, probe = false) => {
    h.brain.attemptStarted("flaky", probe);
    h.brain.attemptFinished({ modelId: "flaky", route: "test-route", outcome: "error", probe });
  };

  it("opens on a flapping model, admits exactly one probe when half-open, closes on success", () => {
    const h = harness([flaky, steady], { health: { consecutiveFailures: 3, openMs: 10_000 } });
    warm(h, "flaky", 200);
    warm(h, "steady", 300);
    const policy = route([flaky, steady]);
    fail(h);
    fail(h);
    h.brain.attemptFinished({ modelId: "flaky", route: policy.name, outcome: "ok", ttftMs: 200, totalMs: 500 });
    expect(h.brain.state("flaky")).toBe("ok"); // the streak was broken
    fail(h);
    fail(h);
    fail(h);
    expect(h.brain.state("flaky")).toBe("open");
    expect(ids(h.brain.decide(policy, request()))).toEqual(["steady"]);
    expect(h.brain.snapshot(policy).find((r) => r.id === "flaky")?.exclusion).toBe("open");

    h.clock.advance(10_000);
    expect(h.brain.state("flaky")).toBe("half-open");
    const probe = h.brain.decide(policy, request());
    expect(ids(probe)).toEqual(["flaky", "steady"]);
    expect(probe.probe).toBe(true);
    h.brain.attemptStarted("flaky", true);
    // While the probe is out, no other plan may contain the model, first or later.
    for (let i = 0; i < 50; i++) {
      h.clock.advance(100);
      expect(ids(h.brain.decide(policy, request()))).toEqual(["steady"]);
    }
    h.brain.attemptFinished({ modelId: "flaky", route: policy.name, outcome: "ok", ttftMs: 200, totalMs: 500, probe: true });
    expect(h.brain.state("flaky")).toBe("ok");
    const after = h.brain.decide(policy, request());
    expect(ids(after)).toEqual(["flaky", "steady"]);
    expect(after.probe).toBe(false);
  });

  it("a half-open model that would not go first stays out of the plan: only plan[0] may be a probe", () => {
    const dear = model("dear", { input: 0.9 });
    const cheap = model("cheap", { input: 0.01 });
    const h = harness([dear, cheap], { health: { consecutiveFailures: 1, openMs: 1000 } });
    warm(h, "dear", 200);
    warm(h, "cheap", 300);
    h.brain.attemptFinished({ modelId: "dear", route: "test-route", outcome: "error" });
    h.clock.advance(1000);
    expect(h.brain.state("dear")).toBe("half-open");
    const decision = h.brain.decide(route([dear, cheap]), request());
    expect(ids(decision)).toEqual(["cheap"]);
    expect(decision.probe).toBe(false);
    // Once cheap is unusable, dear would be chosen: it goes first, as the probe.
    h.brain.attemptFinished({ modelId: "cheap", route: "test-route", outcome: "rate_limited", retryAfterMs: 60_000 });
    const probe = h.brain.decide(route([dear, cheap]), request());
    expect(ids(probe)).toEqual(["dear"]);
    expect(probe.probe).toBe(true);
  });

  it("a failed probe reopens the circuit for another openMs", () => {
    const h = harness([flaky, steady], { health: { consecutiveFailures: 2, openMs: 5000 } });
    warm(h, "flaky", 200);
    warm(h, "steady", 300);
    const policy = route([flaky, steady]);
    fail(h);
    fail(h);
    h.clock.advance(5000);
    const probe = h.brain.decide(policy, request());
    expect(probe.probe).toBe(true);
    fail(h, true);
    expect(h.brain.state("flaky")).toBe("open");
    h.clock.advance(4999);
    expect(ids(h.brain.decide(policy, request()))).toEqual(["steady"]);
    h.clock.advance(1);
    expect(h.brain.decide(policy, request()).probe).toBe(true);
  });

  it("a probe reserved by a decision but never started frees its slot after the first-token deadline", () => {
    const h = harness([flaky, steady], { health: { consecutiveFailures: 1, openMs: 1000 } });
    warm(h, "flaky", 200);
    warm(h, "steady", 300);
    const policy = route([flaky, steady]);
    fail(h);
    h.clock.advance(1000);
    expect(h.brain.decide(policy, request()).probe).toBe(true);
    expect(ids(h.brain.decide(policy, request()))).toEqual(["steady"]);
    h.clock.advance(policy.deadlines.firstTokenMs);
    expect(h.brain.decide(policy, request()).probe).toBe(true);
  });

  it("when every candidate's circuit is open, probes the one that opened earliest", () => {
    const a = model("a");
    const b = model("b");
    const h = harness([a, b], { health: { consecutiveFailures: 1, openMs: 60_000 } });
    h.brain.attemptFinished({ modelId: "b", route: "r", outcome: "error" });
    h.clock.advance(10);
    h.brain.attemptFinished({ modelId: "a", route: "r", outcome: "error" });
    const policy = route([a, b]);
    const decision = h.brain.decide(policy, request());
    expect(ids(decision)).toEqual(["b"]);
    expect(decision.probe).toBe(true);
    expect(decision.reason).toBe("best-effort");
    h.brain.attemptStarted("b", true);
    const next = h.brain.decide(policy, request());
    expect(ids(next)).toEqual(["a"]);
    h.brain.attemptStarted("a", true);
    const third = h.brain.decide(policy, request());
    expect(third.plan).toEqual([]);
    expect(third.excludedBy).toBe("open");
    expect(third.retryAfterMs).toBeUndefined();
  });

  it("ordinary timeouts never open a circuit: a merely slow route still serves", () => {
    const slow = model("slow");
    const h = harness([slow], { health: { consecutiveFailures: 2 } });
    const policy = route([slow]);
    for (let i = 0; i < 30; i++) {
      h.brain.attemptStarted("slow", false);
      h.brain.attemptFinished({ modelId: "slow", route: policy.name, outcome: "timeout", deadlineMs: 1600, timeoutMetric: "ttft" });
    }
    const decision = h.brain.decide(policy, request());
    expect(ids(decision)).toEqual(["slow"]);
    expect(decision.atRisk).toBe(true);
    expect(decision.predictedMs).toBeGreaterThanOrEqual(1600);
  });
});

describe("exploration", () => {
  it("probes a model in the middle of a recovery streak next, so it is re-admitted in seconds", () => {
    // Their catalog priors meet the target: browned out, not slow by nature, so probed at the route's rate.
    const slowCheap = ["a", "b", "c", "d"].map((id, i) => model(id, { input: 0.01 * (i + 1), output: 0.01 * (i + 1), rank: i + 2, prior: FAST_PRIOR }));
    const dear = model("dear", { input: 1, output: 1, rank: 1 });
    const h = harness([...slowCheap, dear]);
    for (const m of slowCheap) warm(h, m.id, 1500);
    warm(h, "dear", 300);
    const policy = route([...slowCheap, dear], { exploration: { ratio: 1, staleAfterMs: 2000, newModelRatio: 0 } });
    h.clock.advance(2500);
    const start = h.clock.now();
    let readmittedAfterMs: number | undefined;
    for (let i = 0; i < 200 && readmittedAfterMs === undefined; i++) {
      const decision = h.brain.decide(policy, request());
      if (decision.plan[0]?.id === "a" && decision.reason === "within-target") readmittedAfterMs = h.clock.now() - start;
      // "a" has recovered; the other cheap ones are still slow.
      serve(h, decision, decision.plan[0]?.id === "a" ? 300 : decision.plan[0]?.id === "dear" ? 300 : 1500);
      h.clock.advance(100);
    }
    expect(readmittedAfterMs).toBeDefined();
    // Three probes in a row, one decision apart once the streak started (rotation alone: ~2 s each).
    expect(readmittedAfterMs as number).toBeLessThan(2000);
  });

  const chosen = model("chosen", { input: 0.5 });
  // Cheaper models whose priors meet the target: worth probing at the route's rate when stale.
  const stale1 = model("stale1", { input: 0.01, prior: FAST_PRIOR });
  const stale2 = model("stale2", { input: 0.02, prior: FAST_PRIOR });

  /** `chosen` measured fast, the cheaper `cheap` measured slow (its prior meets the target): a recovery's start. */
  const slowCheap = () => {
    const cheap = model("cheap", { input: 0.01, prior: FAST_PRIOR });
    const h = harness([chosen, cheap]);
    warm(h, "chosen", 300, 100);
    warm(h, "cheap", 1500, 50);
    h.clock.advance(2500);
    return { cheap, h };
  };

  /** Serves `chosen` until a decision probes (ordinary requests earn the tokens probes need); returns that decision. */
  const untilProbe = (h: Harness, decide: () => Decision): Decision => {
    let decision = decide();
    for (let i = 0; i < 100 && decision.reason !== "explore"; i++) {
      expect(decision.plan[0]?.id).toBe("chosen");
      serve(h, decision, 300);
      h.clock.advance(10);
      decision = decide();
    }
    return decision;
  };

  it("the budget binds: 1000 decisions at ratio 0.02 explore exactly 20 times", () => {
    const stale = Array.from({ length: 30 }, (_, i) => model(`stale-${i}`, { input: 0.01 }));
    const h = harness([chosen, ...stale]);
    warm(h, "chosen", 300, 100);
    // Long shots all (no prior, never measured): they share a probe per 8 ms, which the budget outlasts.
    const policy = route([chosen, ...stale], { exploration: { ratio: 0.02, staleAfterMs: 1, newModelRatio: 0 } });
    let explores = 0;
    let gap = Number.POSITIVE_INFINITY;
    let last = -1;
    for (let i = 0; i < 1000; i++) {
      const decision = h.brain.decide(policy, request());
      if (decision.reason === "explore") {
        explores++;
        if (last >= 0) gap = Math.min(gap, i - last);
        last = i;
        h.brain.attemptStarted(decision.plan[0]?.id ?? "", true); // never finishes: each model is probed once at most
      } else serve(h, decision, 300);
      h.clock.advance(1);
    }
    expect(explores).toBe(20);
    expect(gap).toBe(50); // evenly spread, never bunched
  });

  it("shares one probe per eight staleAfterMs between the long shots", () => {
    const shots = Array.from({ length: 4 }, (_, i) => model(`shot-${i}`, { input: 0.01 }));
    const h = harness([chosen, ...shots]);
    warm(h, "chosen", 300, 100);
    const policy = route([chosen, ...shots], { exploration: { ratio: 0.5, staleAfterMs: 100, newModelRatio: 0 } });
    const probedAt: number[] = [];
    for (let i = 0; i < 400; i++) {
      const decision = h.brain.decide(policy, request());
      if (decision.probe) probedAt.push(h.clock.now());
      serve(h, decision, decision.probe ? 2000 : 300);
      h.clock.advance(10);
    }
    // 4 s: one long-shot probe per 800 ms, where each of the four alone would be probed five times.
    expect(probedAt.length).toBe(5);
    for (let k = 1; k < probedAt.length; k++) expect((probedAt[k] ?? 0) - (probedAt[k - 1] ?? 0)).toBeGreaterThanOrEqual(800);
  });

  it("never has two probes in flight for one model", () => {
    const h = harness([chosen, stale1, stale2]);
    warm(h, "chosen", 300, 100);
    // The cheaper ones are known to be slow, so only exploration sends them anything.
    warm(h, "stale1", 2000, 100);
    warm(h, "stale2", 2000, 100);
    const policy = route([chosen, stale1, stale2], { exploration: { ratio: 0.02, staleAfterMs: 2000, newModelRatio: 0 } });
    h.clock.advance(5000);
    const outstanding = new Map<string, number>();
    const pending: { at: number; id: string }[] = [];
    let explores = 0;
    let maxOutstanding = 0;
    for (let i = 0; i < 1000; i++) {
      const decision = h.brain.decide(policy, request());
      const id = decision.plan[0]?.id ?? "none";
      if (decision.reason === "explore") {
        explores++;
        expect(decision.probe).toBe(true);
        expect(decision.plan[1]?.id).toBe("chosen");
      }
      if (decision.probe) {
        h.brain.attemptStarted(id, true);
        outstanding.set(id, (outstanding.get(id) ?? 0) + 1);
        maxOutstanding = Math.max(maxOutstanding, outstanding.get(id) ?? 0);
        // Probes finish 3 s later (slow models), well after further tokens accrue.
        const finishAt = h.clock.now() + 3000;
        pending.push({ at: finishAt, id });
      } else {
        serve(h, decision, 300);
      }
      h.clock.advance(20);
      for (let k = pending.length - 1; k >= 0; k--) {
        const p = pending[k];
        if (p && p.at <= h.clock.now()) {
          h.brain.attemptFinished({ modelId: p.id, route: policy.name, outcome: "ok", ttftMs: 2000, totalMs: 2500, probe: true });
          outstanding.set(p.id, (outstanding.get(p.id) ?? 1) - 1);
          pending.splice(k, 1);
        }
      }
    }
    expect(explores).toBeLessThanOrEqual(20);
    // Each model: a 3 s probe, then 2 s until it is stale again → one probe per ~5 s each over 20 s.
    expect(explores).toBeGreaterThanOrEqual(6);
    expect(maxOutstanding).toBe(1);
  });
  it("probes a browned-out favourite at the route's rate and a long shot eight times less often", () => {
    // "favourite" has no catalog prior (the slow default applies) but served the route within target
    // before it slowed down. "longshot" never looked able to meet the target: its prior's median, 650 ms,
    // is under 800 ms, but the router reads an unmeasured model at coldPenalty (1.5) times it, 975 ms.
    const favourite = model("favourite", { input: 0.01 });
    const longshot = model("longshot", { input: 0.02, prior: { ttftMs: 650, tokensPerSecond: 100 } });
    const h = harness([chosen, favourite, longshot]);
    warm(h, "favourite", 300, 50);
    warm(h, "chosen", 300, 100);
    warm(h, "longshot", 2000, 50);
    const policy = route([chosen, favourite, longshot], { exploration: { ratio: 0.5, staleAfterMs: 1000, newModelRatio: 0 } });
    expect(h.brain.decide(policy, request()).plan[0]?.id).toBe("favourite");
    warm(h, "favourite", 2000, 100);
    const probes = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const decision = h.brain.decide(policy, request());
      const id = decision.plan[0]?.id ?? "none";
      if (decision.reason === "explore") probes.set(id, (probes.get(id) ?? 0) + 1);
      serve(h, decision, id === "chosen" ? 300 : 2000);
      h.clock.advance(100);
    }
    // 40 s: the favourite is stale again a second after each probe, the long shot after eight.
    expect(probes.get("favourite")).toBeGreaterThanOrEqual(30);
    expect(probes.get("longshot")).toBeGreaterThanOrEqual(3);
    expect(probes.get("longshot")).toBeLessThanOrEqual(6);
  });

  it("shares its probes between stale candidates when they come less often than staleAfterMs", () => {
    // "always" is the cheapest, chosen within target once, and slow ever since; "favourite" served the
    // route after it, then slowed down. At this ratio a probe comes every 2 s, so both are always stale:
    // cheapest first alone would give "always" every probe, and the favourite's return would go unseen.
    const always = model("always", { input: 0.01 });
    const favourite = model("favourite", { input: 0.02 });
    const h = harness([chosen, always, favourite]);
    warm(h, "chosen", 300, 100);
    warm(h, "always", 300, 50);
    const policy = route([chosen, always, favourite], { exploration: { ratio: 0.05, staleAfterMs: 1000, newModelRatio: 0 } });
    expect(h.brain.decide(policy, request()).plan[0]?.id).toBe("always");
    warm(h, "always", 2000, 100);
    warm(h, "favourite", 300, 50);
    expect(h.brain.decide(policy, request()).plan[0]?.id).toBe("favourite");
    warm(h, "favourite", 2000, 100);
    const probes: string[] = [];
    for (let i = 0; i < 400; i++) {
      const decision = h.brain.decide(policy, request());
      const id = decision.plan[0]?.id ?? "none";
      if (decision.reason === "explore") probes.push(id);
      serve(h, decision, id === "chosen" ? 300 : 2000);
      h.clock.advance(100);
    }
    expect(probes.length).toBeGreaterThanOrEqual(18);
    // Turn about: the last probe's model comes last.
    for (let k = 1; k < probes.length; k++) expect(probes[k]).not.toBe(probes[k - 1]);
  });

  it("probes the cheapest stale candidate first, each at most once per staleAfterMs", () => {
    const h = harness([chosen, stale1, stale2]);
    warm(h, "chosen", 300, 100);
    warm(h, "stale2", 2000, 20);
    warm(h, "stale1", 2000, 20);
    h.clock.advance(2500);
    const policy = route([chosen, stale1, stale2], { exploration: { ratio: 0.5, staleAfterMs: 2000, newModelRatio: 0 } });
    const explored: string[] = [];
    for (let i = 0; i < 40; i++) {
      const decision = h.brain.decide(policy, request());
      if (decision.reason === "explore") {
        explored.push(decision.plan[0]?.id ?? "none");
        serve(h, decision, 2000);
      } else serve(h, decision, 300);
      h.clock.advance(100);
    }
    // stale1 is the cheaper (and the less stale): first; then stale2, while stale1 is fresh from its probe.
    expect(explored.slice(0, 2)).toEqual(["stale1", "stale2"]);
    expect(explored.length).toBeGreaterThanOrEqual(4);
    // Each probe refreshes its model for staleAfterMs: 40 decisions × 100 ms = 4 s → at most 2 each.
    expect(explored.filter((id) => id === "stale1").length).toBeLessThanOrEqual(2);
  });

  it("goes on with a recovery streak at the pace of first tokens, without waiting for exploration tokens", () => {
    const { cheap, h } = slowCheap();
    const policy = route([chosen, cheap], { exploration: { ratio: 0.02, staleAfterMs: 2000, newModelRatio: 0 } });
    const decide = () => h.brain.decide(policy, request());
    const first = untilProbe(h, decide);
    expect(first.plan[0]?.id).toBe("cheap");
    // The first probe of a streak is paid for (one token per 50 decisions); it comes in fast.
    const probes = [first];
    for (let k = 1; k < 4; k++) {
      const previous = probes[k - 1] as (typeof probes)[number];
      h.brain.attemptStarted("cheap", previous.probe);
      // Until its first token the probe holds the model's slot: no second probe beside it.
      expect(decide().plan[0]?.id).toBe("chosen");
      h.clock.advance(300);
      h.brain.firstToken("cheap", 300, true, 500);
      // Judged at the first token, while the stream goes on: the streak's next probe goes at once.
      const next = decide();
      expect(next.reason).toBe("explore");
      expect(next.plan[0]?.id).toBe("cheap");
      probes.push(next);
    }
    h.brain.attemptStarted("cheap", true);
    h.clock.advance(300);
    h.brain.firstToken("cheap", 300, true, 500);
    // Four probes under the recovery bar: the slow history is forgotten and cheap is chosen on its merits.
    const back = decide();
    expect(back.plan[0]?.id).toBe("cheap");
    expect(back.reason).toBe("within-target");
  });

  it("ends a recovery streak at a probe that its hedge beat after the recovery bar", () => {
    const { cheap, h } = slowCheap();
    const policy = route([chosen, cheap], { exploration: { ratio: 1, staleAfterMs: 100, newModelRatio: 0 } });
    const probe = () => {
      expect(untilProbe(h, () => h.brain.decide(policy, request())).plan[0]?.id).toBe("cheap");
      h.brain.attemptStarted("cheap", true);
    };
    const fast = () => {
      probe();
      h.clock.advance(300);
      h.brain.firstToken("cheap", 300, true, 500);
      h.clock.advance(200);
      h.brain.attemptFinished({
        modelId: "cheap",
        route: "test-route",
        outcome: "ok",
        ttftMs: 300,
        totalMs: 500,
        promptTokens: 500,
        outputTokens: 20,
        probe: true,
      });
    };
    // Cancelled after 1 s, when its hedge delivered: no first token, but slow all the same.
    const beaten = () => {
      probe();
      h.clock.advance(1000);
      h.brain.attemptFinished({ modelId: "cheap", route: "test-route", outcome: "superseded", elapsedMs: 1000, promptTokens: 500, probe: true });
      h.clock.advance(200);
    };
    fast();
    beaten();
    fast();
    fast();
    fast();
    // Four fast probes, but the slow one between them ended the streak: three in a row so far.
    probe();
    h.brain.attemptFinished({ modelId: "cheap", route: "test-route", outcome: "superseded", elapsedMs: 50, promptTokens: 500, probe: true });
    h.clock.advance(200);
    // A probe beaten before the bar says nothing either way: the streak goes on, and its fourth re-admits cheap.
    fast();
    const back = h.brain.decide(policy, request());
    expect(back.plan[0]?.id).toBe("cheap");
    expect(back.reason).toBe("within-target");
  });

  it("frees a probe's slot once: at its first token, not again when its stream ends under the next probe", () => {
    const { cheap, h } = slowCheap();
    const policy = route([chosen, cheap], { exploration: { ratio: 1, staleAfterMs: 100, newModelRatio: 0 } });
    const first = h.brain.decide(policy, request());
    expect(first.plan[0]?.id).toBe("cheap");
    h.brain.attemptStarted("cheap", true);
    h.clock.advance(1500);
    h.brain.firstToken("cheap", 1500, true, 500);
    h.clock.advance(200);
    // The first probe's stream goes on; its slot is free, and the next probe (stale again) takes it.
    const second = h.brain.decide(policy, request());
    expect(second.plan[0]?.id).toBe("cheap");
    h.brain.attemptStarted("cheap", true);
    h.clock.advance(200);
    // The first stream ends while the second probe waits for its first token: the slot stays taken,
    // though cheap is stale again.
    h.brain.attemptFinished({
      modelId: "cheap",
      route: "test-route",
      outcome: "ok",
      ttftMs: 1500,
      totalMs: 2500,
      promptTokens: 500,
      outputTokens: 100,
      probe: true,
    });
    h.clock.advance(200);
    expect(h.brain.decide(policy, request()).plan[0]?.id).toBe("chosen");
    // The second probe's first token frees it: the next stale decision probes cheap again.
    h.brain.firstToken("cheap", 1500, true, 500);
    h.clock.advance(200);
    expect(h.brain.decide(policy, request()).plan[0]?.id).toBe("cheap");
  });

  it("does not let a streak of fast probes re-admit a model whose slow answers are a tail", () => {
    const cheap = model("cheap", { input: 0.01, prior: FAST_PRIOR });
    const h = harness([chosen, cheap]);
    warm(h, "chosen", 300, 100);
    // One answer in five takes 2 s: the median is fast, the p95 misses the target.
    for (let i = 0; i < 50; i++) warm(h, "cheap", i % 5 === 0 ? 2000 : 300, 1);
    h.clock.advance(2500);
    const policy = route([chosen, cheap], { exploration: { ratio: 1, staleAfterMs: 100, newModelRatio: 0 } });
    let probes = 0;
    for (let i = 0; i < 200; i++) {
      const decision = h.brain.decide(policy, request());
      if (decision.plan[0]?.id === "cheap") {
        expect(decision.reason).toBe("explore");
        probes++;
      }
      // Every probe comes in fast, as most of its answers do: the tail is never disproved.
      serve(h, decision, 300);
      h.clock.advance(50);
    }
    expect(probes).toBeGreaterThanOrEqual(8);
  });

  it("sends a probe only on a request no larger than the route's mean prompt", () => {
    const h = harness([chosen, stale1]);
    warm(h, "chosen", 300, 100);
    warm(h, "stale1", 2000, 20);
    h.clock.advance(2500);
    const policy = route([chosen, stale1], { exploration: { ratio: 1, staleAfterMs: 2000, newModelRatio: 0 } });
    for (let i = 0; i < 20; i++) {
      const decision = h.brain.decide(policy, request({ promptTokens: 500 }));
      serve(h, decision, decision.plan[0]?.id === "stale1" ? 2000 : 300);
    }
    h.clock.advance(2500);
    // A long prompt would measure the prompt more than the model, and leave its hedge little time.
    expect(h.brain.decide(policy, request({ promptTokens: 4000 })).reason).not.toBe("explore");
    const small = h.brain.decide(policy, request({ promptTokens: 100 }));
    expect(small.reason).toBe("explore");
    expect(small.plan[0]?.id).toBe("stale1");
  });

  it("does not explore with ratio 0, nor for the cheapest and ordered strategies", () => {
    for (const [strategy, ratio] of [
      ["cheapest-within-target", 0],
      ["cheapest", 0.5],
      ["ordered", 0.5],
    ] as const) {
      const h = harness([chosen, stale1]);
      warm(h, "chosen", 300, 100);
      warm(h, "stale1", 2000, 100);
      h.clock.advance(10_000);
      const policy = route([chosen, stale1], { strategy, exploration: { ratio, staleAfterMs: 2000, newModelRatio: 0 } });
      for (let i = 0; i < 100; i++) expect(h.brain.decide(policy, request()).reason).not.toBe("explore");
    }
  });
});

describe("planList (pinned model, client models list)", () => {
  const a = model("a", { contextTokens: 4000 });
  const b = model("b");
  const c = model("c");

  it("keeps the given order and drops only cooling and too-small models", () => {
    const h = harness([a, b, c], { health: { consecutiveFailures: 1 } });
    warm(h, "b", 3000);
    warm(h, "c", 100);
    h.brain.attemptFinished({ modelId: "c", route: "r", outcome: "error" }); // open circuit: still listed
    expect(h.brain.state("c")).toBe("open");
    const decision = h.brain.planList("request", [a, b, c], "request-list", request({ promptTokens: 100 }));
    expect(ids(decision)).toEqual(["a", "b", "c"]);
    expect(decision.reason).toBe("request-list");
    expect(decision.route).toBe("request");
    expect(decision.probe).toBe(false);
    expect(ids(h.brain.planList("request", [a, b, c], "request-list", request({ promptTokens: 5000 })))).toEqual(["b", "c"]);
    h.brain.attemptFinished({ modelId: "b", route: "r", outcome: "rate_limited", retryAfterMs: 1500 });
    expect(ids(h.brain.planList("request", [c, b, a], "request-list", request({ promptTokens: 100 })))).toEqual(["c", "a"]);
  });

  it("returns an empty plan with retryAfterMs when every listed model is cooling", () => {
    const h = harness([b]);
    h.brain.attemptFinished({ modelId: "b", route: "r", outcome: "rate_limited", retryAfterMs: 1500 });
    const decision = h.brain.planList("pinned", [b], "pinned", request());
    expect(decision.plan).toEqual([]);
    expect(decision.retryAfterMs).toBe(1500);
    expect(decision.reason).toBe("pinned");
  });
});

describe("snapshot", () => {
  it("describes every candidate without changing later decisions", () => {
    const make = () => {
      const x = model("x", { input: 0.1 });
      const y = model("y", { input: 0.101 });
      const z = model("z", { input: 0.01, contextTokens: 400 });
      const h = harness([x, y, z], { seed: 42 });
      warm(h, "x", 300);
      warm(h, "y", 320);
      return { h, policy: route([x, y, z], { exploration: { ratio: 0.3, staleAfterMs: 100, newModelRatio: 0 } }) };
    };
    const plain = make();
    const observed = make();
    const a: string[] = [];
    const b: string[] = [];
    for (let i = 0; i < 200; i++) {
      a.push(`${plain.h.brain.decide(plain.policy, request()).plan[0]?.id}`);
      const rows = observed.h.brain.snapshot(observed.policy, request());
      expect(rows.map((r) => r.id)).toEqual(["x", "y", "z"]);
      b.push(`${observed.h.brain.decide(observed.policy, request()).plan[0]?.id}`);
      plain.h.clock.advance(10);
      observed.h.clock.advance(10);
    }
    expect(b).toEqual(a);
    expect(new Set(a).size).toBe(2); // load spreading really drew random numbers
    const rows = observed.h.brain.snapshot(observed.policy, request());
    const x = rows.find((r) => r.id === "x");
    expect(x?.wouldChoose).toBe(true);
    expect(x?.eligible).toBe(true);
    expect(x?.samples).toBeGreaterThan(40);
    expect(x?.observedTtftP50Ms).toBeGreaterThan(280);
    expect(x?.observedTtftP95Ms).toBeLessThan(330);
    expect(x?.expectedCostUsd).toBeCloseTo((500 * 0.1 + 256 * 0.4) / 1e6, 12);
    const z = rows.find((r) => r.id === "z");
    expect(z).toMatchObject({ eligible: false, exclusion: "context", wouldChoose: false, observedTtftP50Ms: null, state: "ok" });
  });

  it("marks eligible candidates predicted to miss the target as over-target", () => {
    const fast = model("fast", { input: 0.5 });
    const slow = model("slow", { input: 0.1 });
    const h = harness([fast, slow]);
    warm(h, "fast", 300);
    warm(h, "slow", 1500);
    const rows = h.brain.snapshot(route([fast, slow]));
    expect(rows.find((r) => r.id === "slow")).toMatchObject({ eligible: true, exclusion: "over-target", wouldChoose: false });
    expect(rows.find((r) => r.id === "fast")).toMatchObject({ eligible: true, exclusion: null, wouldChoose: true });
  });
});

describe("lifecycle", () => {
  it("sync keeps the state of models still present and drops removed ones", () => {
    const a = model("a");
    const b = model("b");
    const h = harness([a, b]);
    warm(h, "a", 300, 20);
    warm(h, "b", 300, 20);
    const stats = defaultStats({ halfLifeMs: 10_000 });
    h.brain.sync([a], stats, defaultHealth());
    expect(h.brain.sampleCount("a")).toBeGreaterThan(15);
    expect(h.brain.sampleCount("b")).toBe(0);
    // The new half-life applies from now on: 10 s later a's samples weigh half.
    const before = h.brain.sampleCount("a");
    h.clock.advance(10_000);
    expect(h.brain.sampleCount("a")).toBeCloseTo(before / 2, 6);
  });

  it("estimates a typical request and reports health for the metrics gauges", () => {
    const a = model("a", { prior: { ttftMs: 400, tokensPerSecond: 100 } });
    const clock = createFakeClock();
    const brain = createBrain({ clock, rng: createSeededRng(1), stats: defaultStats(), health: defaultHealth() });
    brain.sync([a], defaultStats(), defaultHealth());
    expect(brain.estimateMs("a", "ttft", 95)).toBeCloseTo(600, 6);
    expect(brain.estimateMs("a", "total", 95)).toBeCloseTo(600 + 256 * 15, 6);
    expect(brain.estimateMs("unknown", "ttft", 95)).toBeCloseTo(3000, 6);
    expect(brain.state("unknown")).toBe("ok");
    expect(brain.sampleCount("unknown")).toBe(0);
  });
});
