// The recent-events ring: ids, polling with `since`, and what is kept when it wraps.
import { describe, expect, it } from "vitest";
import { addHealthEvent, createEventLog } from "../../src/events/event-log.js";

describe("event log", () => {
  it("numbers events from 1, returns those after `since` oldest first, and keeps the last `capacity`", () => {
    let nowMs = Date.UTC(2026, 0, 2, 3, 4, 5);
    const log = createEventLog(3, () => nowMs);
    expect(log.since(0)).toEqual({ events: [], latestId: 0, oldestId: 0 });
    for (const model of ["a", "b", "c", "d", "e"]) {
      log.add("fallback", { route: "chat", models: [model], detail: `${model} failed` });
      nowMs += 1000;
    }
    const all = log.since(0);
    expect(all.latestId).toBe(5);
    expect(all.oldestId).toBe(3);
    expect(all.events.map((event) => [event.id, event.models[0], event.time])).toEqual([
      [3, "c", "2026-01-02T03:04:07.000Z"],
      [4, "d", "2026-01-02T03:04:08.000Z"],
      [5, "e", "2026-01-02T03:04:09.000Z"],
    ]);
    expect(log.since(4).events.map((event) => event.id)).toEqual([5]);
    expect(log.since(5).events).toEqual([]);
    expect(log.since(99)).toEqual({ events: [], latestId: 5, oldestId: 3 });
    expect(() => createEventLog(0)).toThrow(RangeError);
  });

  it("writes health changes as circuit and cooldown events of a model", () => {
    const log = createEventLog();
    addHealthEvent(log, "m", { change: "opened", reason: "5 failures in a row", forMs: 30_000 });
    addHealthEvent(log, "m", { change: "cooling", reason: "429", forMs: 1_250 });
    addHealthEvent(log, "m", { change: "closed", reason: "a probe succeeded" });
    expect(log.since(0).events.map(({ kind, route, models, detail }) => ({ kind, route, models, detail }))).toEqual([
      { kind: "circuit.opened", route: null, models: ["m"], detail: "5 failures in a row: circuit open for 30 s" },
      { kind: "cooldown", route: null, models: ["m"], detail: "429: cooling for 1.3 s" },
      { kind: "circuit.closed", route: null, models: ["m"], detail: "a probe succeeded: circuit closed" },
    ]);
  });
});
