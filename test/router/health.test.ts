import { describe, expect, it } from "vitest";
import { createModelHealth, type HealthChange } from "../../src/router/health.js";
import { createSeededRng } from "../../src/router/rng.js";
import { defaultHealth } from "./settings.js";

const HALF_LIFE_MS = 30_000;

describe("circuit breaker", () => {
  it("opens after consecutiveFailures errors in a row, not before", () => {
    const health = createModelHealth(defaultHealth({ consecutiveFailures: 5 }), HALF_LIFE_MS);
    for (let i = 0; i < 4; i++) health.recordFailure(i, false);
    expect(health.state(10)).toBe("ok");
    health.recordFailure(10, false);
    expect(health.state(11)).toBe("open");
    expect(health.exclusion(11)).toBe("open");
  });

  it("a success in between resets the streak", () => {
    const health = createModelHealth(defaultHealth({ consecutiveFailures: 3, errorRateMinSamples: 1000 }), HALF_LIFE_MS);
    for (let i = 0; i < 10; i++) {
      health.recordFailure(i * 10, false);
      health.recordFailure(i * 10 + 1, false);
      health.recordSuccess(i * 10 + 2, false);
    }
    expect(health.state(200)).toBe("ok");
  });

  it("opens on the decayed error rate once enough samples exist", () => {
    const health = createModelHealth(defaultHealth({ consecutiveFailures: 100, errorRate: 0.5, errorRateMinSamples: 10 }), HALF_LIFE_MS);
    // Error, error, ok: 2/3 errors, never 3 in a row (all in one instant, so no decay muddies the count).
    for (let i = 0; i < 3; i++) {
      health.recordFailure(0, false);
      health.recordFailure(0, false);
      health.recordSuccess(0, false);
    }
    expect(health.state(0)).toBe("ok"); // 9 samples: below errorRateMinSamples
    health.recordFailure(0, false);
    expect(health.state(0)).toBe("open");
  });

  it("half-open after openMs admits one probe; success closes, failure reopens", () => {
    const health = createModelHealth(defaultHealth({ consecutiveFailures: 1, openMs: 10_000 }), HALF_LIFE_MS);
    health.recordFailure(0, false);
    expect(health.state(9_999)).toBe("open");
    expect(health.state(10_000)).toBe("half-open");
    expect(health.exclusion(10_000)).toBeNull();
    health.reserveProbe(10_000 + 1600);
    expect(health.exclusion(10_001)).toBe("open");
    health.probeStarted();
    expect(health.exclusion(20_000)).toBe("open"); // the probe is still out, long after the reservation
    health.probeFinished();
    health.recordFailure(20_000, true);
    expect(health.state(20_001)).toBe("open");
    expect(health.state(30_000)).toBe("half-open");
    health.probeStarted();
    health.probeFinished();
    health.recordSuccess(30_500, true);
    expect(health.state(30_501)).toBe("ok");
    expect(health.openedAtMs).toBeNaN();
  });

  it("a probe that times out reopens; ordinary timeouts never open the circuit", () => {
    const health = createModelHealth(defaultHealth({ consecutiveFailures: 1, openMs: 1000 }), HALF_LIFE_MS);
    for (let i = 0; i < 50; i++) health.recordTimeout(i, false);
    expect(health.state(100)).toBe("ok");
    health.recordFailure(100, false);
    health.recordTimeout(1200, true);
    expect(health.state(1201)).toBe("open");
  });

  it("a straggling success while the open timer runs does not close it", () => {
    const health = createModelHealth(defaultHealth({ consecutiveFailures: 1, openMs: 1000 }), HALF_LIFE_MS);
    health.recordFailure(0, false);
    health.recordSuccess(10, false);
    expect(health.state(11)).toBe("open");
  });
});

describe("health changes", () => {
  it("are announced as they happen: trip, failed probe, close, and a cooldown's start but not its extensions", () => {
    const changes: HealthChange[] = [];
    const health = createModelHealth(defaultHealth({ consecutiveFailures: 2, openMs: 1000 }), HALF_LIFE_MS, (change) => changes.push(change));
    health.recordFailure(0, false);
    health.recordSuccess(1, false);
    health.recordFailure(2, false);
    expect(changes).toEqual([]);
    health.recordFailure(3, false);
    health.recordFailure(4, false); // already open: not announced again
    health.recordTimeout(1500, true);
    health.recordSuccess(3000, true);
    health.recordRateLimited(4000, 2000, createSeededRng(1));
    health.recordRateLimited(4500, 2000, createSeededRng(1));
    health.recordRateLimited(7000, undefined, createSeededRng(1));
    expect(changes).toEqual([
      { change: "opened", reason: "2 failures in a row", forMs: 1000 },
      { change: "opened", reason: "the probe timed out", forMs: 1000 },
      { change: "closed", reason: "a probe succeeded" },
      { change: "cooling", reason: "429 with Retry-After", forMs: 2000 },
      { change: "cooling", reason: "429", forMs: expect.any(Number) },
    ]);
  });
});

describe("rate-limit cooldown", () => {
  it("honours Retry-After exactly", () => {
    const health = createModelHealth(defaultHealth(), HALF_LIFE_MS);
    health.recordRateLimited(0, 2000, createSeededRng(1));
    expect(health.state(1999)).toBe("cooling");
    expect(health.cooldownRemainingMs(1500)).toBe(500);
    expect(health.state(2000)).toBe("ok");
  });

  it("backs off exponentially with jitter when Retry-After is absent, capped at cooldownMaxMs", () => {
    const config = defaultHealth({ cooldownBaseMs: 1000, cooldownMaxMs: 8000 });
    const health = createModelHealth(config, HALF_LIFE_MS);
    const rng = createSeededRng(3);
    const cooldowns: number[] = [];
    let t = 0;
    for (let i = 0; i < 8; i++) {
      health.recordRateLimited(t, undefined, rng);
      const ms = health.cooldownRemainingMs(t);
      cooldowns.push(ms);
      t += ms;
    }
    // n-th 429 in a row: within [½, 1] of min(max, base·2^(n−1)).
    cooldowns.forEach((ms, i) => {
      const ceiling = Math.min(8000, 1000 * 2 ** i);
      expect(ms).toBeGreaterThanOrEqual(ceiling / 2);
      expect(ms).toBeLessThanOrEqual(ceiling);
    });
    expect(Math.max(...cooldowns)).toBeLessThanOrEqual(8000);
    // Jitter: two seeds give different waits for the same streak.
    const other = createModelHealth(config, HALF_LIFE_MS);
    other.recordRateLimited(0, undefined, createSeededRng(4));
    expect(other.cooldownRemainingMs(0)).not.toBe(cooldowns[0]);
    // A success ends the streak: the next 429 starts from the base again.
    health.recordSuccess(t, false);
    health.recordRateLimited(t, undefined, rng);
    expect(health.cooldownRemainingMs(t)).toBeLessThanOrEqual(1000);
  });
});
