import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors.js";
import {
  emptyPlanError,
  failedRequestOutcome,
  failureFromStatus,
  finalError,
  parseRetryAfter,
  transportFailure,
  upstreamFailure,
  type AttemptFailure,
} from "../../src/proxy/failures.js";
import type { Decision, RequestProfile } from "../../src/router/types.js";

const NOW = Date.parse("2026-12-06T00:00:00Z");

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP-dates, and ignores what is neither", () => {
    expect(parseRetryAfter("3", NOW)).toBe(3000);
    expect(parseRetryAfter("0.5", NOW)).toBe(500);
    expect(parseRetryAfter(["7", "9"], NOW)).toBe(7000);
    expect(parseRetryAfter("Sun, 06 Dec 2026 00:00:10 GMT", NOW)).toBe(10_000);
    expect(parseRetryAfter("Sat, 05 Dec 2026 23:00:00 GMT", NOW)).toBe(0);
    expect(parseRetryAfter("-4", NOW)).toBe(0);
    expect(parseRetryAfter("soon", NOW)).toBeUndefined();
    expect(parseRetryAfter(" ", NOW)).toBeUndefined();
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
  });
});

describe("failureFromStatus", () => {
  it("falls back on 429 and keeps the provider's Retry-After", () => {
    const failure = failureFromStatus(429, '{"error":{"message":"slow down","code":"rate_limit"}}', "2", NOW);
    expect(failure).toMatchObject({ outcome: "rate_limited", fallback: "rate_limited", retryAfterMs: 2000 });
    expect(failure.error.status).toBe(429);
  });

  it("turns 5xx and 408 into a 502 upstream error that falls back", () => {
    for (const status of [500, 503, 408]) {
      const failure = failureFromStatus(status, '{"error":{"message":"boom"}}', undefined, NOW);
      expect(failure).toMatchObject({ outcome: "error", fallback: "error" });
      expect(failure.error.status).toBe(502);
      expect(failure.error.message).toBe(`upstream error ${status}: boom`);
    }
  });

  it("blames the gateway's credentials, not the client, for a provider's 401 or 403", () => {
    const failure = failureFromStatus(401, "nope", undefined, NOW);
    expect(failure).toMatchObject({ outcome: "error", fallback: "error" });
    expect(failure.error.code).toBe("upstream_auth");
  });

  it("sends a context-length 400 only to larger windows, by code or by message", () => {
    expect(failureFromStatus(400, '{"error":{"message":"x","code":"context_length_exceeded"}}', undefined, NOW).fallback).toBe("context_length");
    expect(failureFromStatus(400, '{"error":{"message":"This model\'s maximum context length is 8192 tokens"}}', undefined, NOW).fallback).toBe(
      "context_length",
    );
  });

  it("returns other 4xx to the client with the provider's status, message and code", () => {
    const failure = failureFromStatus(400, '{"error":{"message":"flagged","type":"invalid_request_error","code":"content_policy_violation"}}', undefined, NOW);
    expect(failure).toMatchObject({ outcome: "client_error", fallback: undefined });
    expect(failure.error.body()).toEqual({ error: { message: "flagged", type: "invalid_request_error", param: null, code: "content_policy_violation" } });
  });
});

describe("transportFailure", () => {
  it("makes a timeout a 504 and a connection error a 502 naming its code", () => {
    expect(transportFailure(new Error("first-token deadline of 800 ms exceeded"), "timeout")).toMatchObject({ outcome: "timeout", fallback: "timeout" });
    const refused = transportFailure(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), "error");
    expect(refused.error.status).toBe(502);
    expect(refused.error.message).toBe("upstream connection failed (ECONNREFUSED)");
  });

  it("makes the gateway's own lack of file descriptors or ports a 503 of its own, without a fallback", () => {
    for (const code of ["EMFILE", "ENFILE", "EADDRNOTAVAIL"]) {
      const failure = transportFailure(Object.assign(new Error(`connect ${code}`), { code }), "error");
      expect(failure).toMatchObject({ outcome: "gateway_error", fallback: undefined });
      expect(failure.error.status).toBe(503);
      expect(failure.error.code).toBe("gateway_overloaded");
    }
  });
});

describe("finalError", () => {
  const timeout = transportFailure(new Error("t"), "timeout");
  const error = upstreamFailure("broken");
  const limited = (retryAfterMs: number | undefined): AttemptFailure => ({ ...failureFromStatus(429, "", undefined, NOW), retryAfterMs });

  it("answers 503 when nothing was tried", () => {
    const final = finalError([], false);
    expect(final.status).toBe(503);
    expect(final.responseHeaders()["x-should-retry"]).toBe("false");
  });

  it("answers 429 with the shortest Retry-After, rounded up to whole seconds", () => {
    const final = finalError([limited(4200), limited(1500), limited(undefined)], false);
    expect(final.status).toBe(429);
    expect(final.responseHeaders()["retry-after"]).toBe("2");
  });

  it("answers 504 when every attempt timed out, or the budget ran out on a timeout", () => {
    expect(finalError([timeout, timeout], false).status).toBe(504);
    expect(finalError([error, timeout], true).status).toBe(504);
    expect(finalError([error, timeout], false).status).toBe(502);
  });

  it("returns the context-length error when it was the last word, else 502", () => {
    const context = failureFromStatus(400, '{"error":{"message":"m","code":"context_length_exceeded"}}', undefined, NOW);
    expect(finalError([error, context], false)).toBe(context.error);
    expect(finalError([context, error], false).status).toBe(502);
  });

  it("labels the request's outcome from the final status", () => {
    expect(failedRequestOutcome(finalError([], false), [])).toBe("unavailable");
    expect(failedRequestOutcome(finalError([timeout], false), [timeout])).toBe("timeout");
    expect(failedRequestOutcome(finalError([limited(1000)], false), [limited(1000)])).toBe("unavailable");
    expect(failedRequestOutcome(finalError([error], false), [error])).toBe("upstream_error");
    expect(failedRequestOutcome(new GatewayError(400, "x"), [error])).toBe("client_error");
  });
});

describe("emptyPlanError", () => {
  const profile: RequestProfile = { promptTokens: 900, maxOutputTokens: undefined, needs: new Set(["vision"]), stream: false };
  const empty = (extra: Partial<Decision>): Decision => ({
    route: "chat",
    plan: [],
    reason: "best-effort",
    atRisk: true,
    predictedMs: Number.NaN,
    expectedOutputTokens: 100,
    retryAfterMs: undefined,
    probe: false,
    hedgeAfterMs: undefined,
    ...extra,
  });

  it("says why no candidate fits: context window (400), capability (400), cooling (429)", () => {
    expect(emptyPlanError(empty({ excludedBy: "context" }), profile)).toMatchObject({ status: 400, code: "context_length_exceeded", param: "messages" });
    expect(emptyPlanError(empty({ excludedBy: "capability" }), profile)?.message).toContain("vision");
    const cooling = emptyPlanError(empty({ excludedBy: "cooling", retryAfterMs: 2500 }), profile);
    expect(cooling?.status).toBe(429);
    expect(cooling?.responseHeaders()["retry-after"]).toBe("3");
    expect(emptyPlanError(empty({ excludedBy: "open" }), profile)).toBeUndefined();
  });
});
