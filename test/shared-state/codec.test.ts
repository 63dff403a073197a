// The wire format of shared events: every kind survives a round trip; malformed input is dropped, not thrown.
import { describe, expect, it } from "vitest";
import type { SharedEvent } from "../../src/router/shared-events.js";
import { decodeBatch, encodeBatch, WIRE_VERSION } from "../../src/shared-state/codec.js";

const EVENTS: SharedEvent[] = [
  { kind: "first_token", modelId: "qwen/qwen3.5-9b", ttftMs: 412.5 },
  { kind: "late", modelId: "m", metric: "ttft", elapsedMs: 900 },
  { kind: "finished", attempt: { modelId: "m", outcome: "ok", ttftMs: 120.3, totalMs: 880, promptTokens: 512, outputTokens: 64, ttftRecorded: true } },
  { kind: "finished", attempt: { modelId: "m", outcome: "timeout", deadlineMs: 1600, timeoutMetric: "ttft", probe: true } },
  { kind: "finished", attempt: { modelId: "m", outcome: "superseded", elapsedMs: 700 } },
  { kind: "cooling", modelId: "m", coolMs: 3000 },
  { kind: "opened", modelId: "m" },
  { kind: "closed", modelId: "m" },
  { kind: "probe", modelId: "m", leaseMs: 30000 },
  { kind: "forgot", modelId: "m", agoMs: 2500 },
];

describe("shared events on the wire", () => {
  it("round-trips every kind of event", () => {
    const text = encodeBatch({ replica: "r1", sentAtMs: 1_700_000_000_000, events: EVENTS });
    expect(decodeBatch(text)).toEqual({ replica: "r1", sentAtMs: 1_700_000_000_000, events: EVENTS });
  });

  it("is compact: a finished attempt takes well under 100 bytes", () => {
    const one = encodeBatch({ replica: "r1", sentAtMs: 1, events: [EVENTS[2]!] });
    const empty = encodeBatch({ replica: "r1", sentAtMs: 1, events: [] });
    expect(one.length - empty.length).toBeLessThan(60);
  });

  it("drops unreadable batches and events, keeping the readable ones", () => {
    expect(decodeBatch("not json")).toBeUndefined();
    expect(decodeBatch(JSON.stringify([WIRE_VERSION + 1, "r", 1, []]))).toBeUndefined();
    expect(decodeBatch(JSON.stringify({ replica: "r" }))).toBeUndefined();
    const mixed = JSON.stringify([WIRE_VERSION, "r", 1, [[99, "m"], [0, "m", -5], [0, 7, 5], "x", [3, "m", 3000], [2, "m", 42], [1, "m", 9, 100]]]);
    expect(decodeBatch(mixed)).toEqual({ replica: "r", sentAtMs: 1, events: [{ kind: "cooling", modelId: "m", coolMs: 3000 }] });
  });
});
