// The client limiter on a hand-driven wall clock: the sliding minute, the UTC day, and the others' share.
import { describe, expect, it } from "vitest";
import type { Client } from "../../src/clients/directory.js";
import { ClientLimiter, formatReset, type Admission, type Refusal } from "../../src/clients/limiter.js";

const client = (limits: Client["limits"]): Client => ({ name: "team", routes: undefined, limits });
const refused = (verdict: Admission | Refusal): Refusal | undefined => ("error" in verdict ? verdict : undefined);

describe("ClientLimiter", () => {
  it("never admits more than the limit within any 60 s, and frees each slot 60 to 61 s after its use", () => {
    let now = Date.UTC(2026, 0, 1, 12, 0, 0, 500);
    const limiter = new ClientLimiter({ wallClock: () => now });
    const team = client({ requestsPerMinute: 3 });
    for (let index = 0; index < 3; index++) expect(refused(limiter.admit(team, 0))).toBeUndefined();
    const full = refused(limiter.admit(team, 0));
    expect(full?.limit).toBe("requests");
    expect(full?.error.headers["retry-after"]).toBe("61");
    now += 60_000;
    expect(refused(limiter.admit(team, 0))?.limit).toBe("requests");
    now += 500;
    expect(refused(limiter.admit(team, 0))).toBeUndefined();
  });

  it("renews the budget at 00:00 UTC", () => {
    let now = Date.UTC(2026, 0, 1, 23, 59, 50);
    const limiter = new ClientLimiter({ wallClock: () => now });
    const team = client({ usdPerDay: 1 });
    const admitted = limiter.admit(team, 0) as Admission;
    admitted.meter(100, 1.5);
    const spent = refused(limiter.admit(team, 0));
    expect(spent?.limit).toBe("budget");
    expect(spent?.error.headers["retry-after"]).toBe("10");
    now += 10_000;
    expect(refused(limiter.admit(team, 0))).toBeUndefined();
    expect(limiter.spentToday("team")).toBe(0);
  });

  it("adds what other replicas used while the shared store is up, and counts alone while it is down", () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    let status: "up" | "down" = "up";
    const limiter = new ClientLimiter({ wallClock: () => now, shared: () => status, onUse: () => undefined });
    const team = client({ requestsPerMinute: 3 });
    limiter.counts("team").others.requests.set(Math.floor(now / 1000), 3);
    expect(refused(limiter.admit(team, 0))?.limit).toBe("requests");
    status = "down";
    expect(refused(limiter.admit(team, 0))).toBeUndefined();
    const failClosed = new ClientLimiter({ wallClock: () => now, shared: () => "down", failClosed: () => true });
    expect(refused(failClosed.admit(team, 0))?.error).toMatchObject({ status: 429, code: "limits_unavailable" });
  });

  it("writes reset durations as OpenAI does", () => {
    expect([0, 17, 999, 1000, 1500, 60_000, 61_000, 90_500].map(formatReset)).toEqual(["0s", "17ms", "999ms", "1s", "1.5s", "1m0s", "1m1s", "1m30.5s"]);
  });
});
