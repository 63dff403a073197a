// Two brains as two replicas: what one learns and decides reaches the other through shared events (sent
// through the wire codec, as Redis carries them), on fake clocks.
import { describe, expect, it } from "vitest";
import type { SharedEvent } from "../../src/router/shared-events.js";
import { decodeBatch, encodeBatch } from "../../src/shared-state/codec.js";
import { harness, ids, model, request, route, warm, type Harness } from "./helpers.js";

const cheap = model("cheap", { input: 0.1, output: 0.1, prior: { ttftMs: 200, tokensPerSecond: 100 } });
const dear = model("dear", { input: 5, output: 5, prior: { ttftMs: 200, tokensPerSecond: 100 } });

/** Replicas share both ways through the codec; returns what `b` reported (what it learnt locally). */
function link(a: Harness, b: Harness): SharedEvent[] {
  const fromB: SharedEvent[] = [];
  const carry = (to: Harness) => (event: SharedEvent) => {
    const batch = decodeBatch(encodeBatch({ replica: "r", sentAtMs: 0, events: [event] }));
    for (const shared of batch?.events ?? []) to.brain.applyShared(shared);
  };
  a.brain.share(carry(b));
  const toA = carry(a);
  b.brain.share((event) => {
    fromB.push(event);
    toA(event);
  });
  return fromB;
}

describe("shared health between replicas", () => {
  it("a 429 with Retry-After seen by one replica cools the model on the other for exactly that long", () => {
    const a = harness([cheap, dear]);
    const b = harness([cheap, dear]);
    link(a, b);
    const ordered = route([cheap, dear], { strategy: "ordered" });
    expect(ids(b.brain.decide(ordered, request()))[0]).toBe("cheap");
    a.brain.attemptStarted("cheap", false);
    a.brain.attemptFinished({ modelId: "cheap", route: "test-route", outcome: "rate_limited", retryAfterMs: 3000 });
    expect(b.brain.state("cheap")).toBe("cooling");
    expect(ids(b.brain.decide(ordered, request()))).toEqual(["dear"]);
    b.clock.advance(2999);
    expect(ids(b.brain.decide(ordered, request()))).toEqual(["dear"]);
    b.clock.advance(2);
    expect(ids(b.brain.decide(ordered, request()))[0]).toBe("cheap");
  });

  it("an opened circuit holds for the other replica, which leaves the half-open probe to the first; its success closes both", () => {
    const health = { consecutiveFailures: 3, openMs: 10_000 };
    const a = harness([cheap, dear], { health });
    const b = harness([cheap, dear], { health });
    link(a, b);
    for (let i = 0; i < 3; i++) {
      a.brain.attemptStarted("cheap", false);
      a.brain.attemptFinished({ modelId: "cheap", route: "test-route", outcome: "error" });
    }
    expect(a.brain.state("cheap")).toBe("open");
    expect(b.brain.state("cheap")).toBe("open");
    a.clock.advance(10_000);
    b.clock.advance(10_000);
    const ordered = route([cheap, dear], { strategy: "ordered" });
    const probe = a.brain.decide(ordered, request());
    expect(probe.probe).toBe(true);
    expect(ids(probe)[0]).toBe("cheap");
    // B would probe the half-open model too, but A's lease says a probe is out.
    const other = b.brain.decide(ordered, request());
    expect(other.probe).toBe(false);
    expect(ids(other)).toEqual(["dear"]);
    a.brain.attemptStarted("cheap", true);
    a.brain.attemptFinished({ modelId: "cheap", route: "test-route", outcome: "ok", ttftMs: 150, totalMs: 400, outputTokens: 20, probe: true });
    expect(b.brain.state("cheap")).toBe("ok");
    expect(ids(b.brain.decide(ordered, request()))[0]).toBe("cheap");
  });
});

describe("shared observations", () => {
  it("merges another replica's latency into its own statistics, and reports nothing back (no echo)", () => {
    const a = harness([cheap, dear]);
    const b = harness([cheap, dear]);
    warm(b, "cheap", 200, 20);
    const echoed = link(a, b);
    const before = b.brain.estimateMs("cheap", "ttft", 95);
    warm(a, "cheap", 3000, 60);
    expect(b.brain.estimateMs("cheap", "ttft", 95)).toBeGreaterThan(2 * before);
    expect(b.brain.sampleCount("cheap")).toBeGreaterThan(60);
    expect(echoed).toEqual([]);
  });

  it("replays old events at their age: a sample one half-life old weighs half", () => {
    const b = harness([cheap], { stats: { halfLifeMs: 30_000 } });
    for (let i = 0; i < 10; i++) {
      b.brain.applyShared({ kind: "finished", attempt: { modelId: "cheap", outcome: "ok", ttftMs: 100, totalMs: 300, outputTokens: 10 } }, 30_000);
    }
    expect(b.brain.sampleCount("cheap")).toBeCloseTo(5, 5);
    b.brain.applyShared({ kind: "cooling", modelId: "cheap", coolMs: 3000 }, 2000);
    expect(b.brain.state("cheap")).toBe("cooling");
    b.clock.advance(1001);
    expect(b.brain.state("cheap")).toBe("ok");
  });

  it("ignores events about models it does not serve", () => {
    const b = harness([cheap]);
    b.brain.applyShared({ kind: "cooling", modelId: "unknown", coolMs: 3000 });
    b.brain.applyShared({ kind: "finished", attempt: { modelId: "unknown", outcome: "ok", ttftMs: 100 } });
    expect(b.brain.state("unknown")).toBe("ok");
    expect(b.brain.sampleCount("unknown")).toBe(0);
  });
});
