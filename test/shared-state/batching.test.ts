// Batching and merging of shared events, without a server: two replications over an in-memory stand-in
// for the Redis connection (a channel and a list), two brains on fake clocks.
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { SharedEvent } from "../../src/router/shared-events.js";
import { decodeBatch, encodeBatch } from "../../src/shared-state/codec.js";
import type { RedisClient, SharedStateConnection } from "../../src/shared-state/connection.js";
import { SharedStateUnavailableError } from "../../src/shared-state/connection.js";
import { createReplication, type Replication, type SharedEventsDirection } from "../../src/shared-state/replication.js";
import { harness, model } from "../router/helpers.js";
import { waitFor } from "../observability/processes.js";

/** One in-memory "Redis" shared by several connections: pub/sub fan-out and lists. */
function memoryRedis() {
  const subscribers = new Map<string, Array<(message: Buffer) => void>>();
  const lists = new Map<string, string[]>();
  const published: string[] = [];
  const client = {
    publish: async (channel: string, payload: string) => {
      published.push(payload);
      for (const listener of subscribers.get(channel) ?? []) listener(Buffer.from(payload));
      return subscribers.get(channel)?.length ?? 0;
    },
    lPush: async (key: string, payload: string) => {
      const list = lists.get(key) ?? [];
      list.unshift(payload);
      lists.set(key, list);
      return list.length;
    },
    lTrim: async (key: string, start: number, stop: number) => {
      lists.set(key, (lists.get(key) ?? []).slice(start, stop + 1));
      return "OK";
    },
    pExpire: async () => 1,
    lRange: async (key: string, start: number, stop: number) => (lists.get(key) ?? []).slice(start, stop + 1),
  } as unknown as RedisClient;
  const connect = (): SharedStateConnection & { setUp(up: boolean): void } => {
    let up = false;
    const upListeners: Array<() => void> = [];
    return {
      get up() {
        return up;
      },
      setUp(next: boolean) {
        up = next;
        if (up) for (const listener of upListeners) listener();
      },
      run: (command) => (up ? command(client) : Promise.reject(new SharedStateUnavailableError())),
      subscribe: (channel, listener) => subscribers.set(channel, [...(subscribers.get(channel) ?? []), listener]),
      onUp: (listener) => upListeners.push(listener),
      close: async () => undefined,
    };
  };
  return { connect, published, lists };
}

const cheap = model("cheap");
const silent = pino({ level: "silent" });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("replication of brain events (in-memory connection)", () => {
  const replications: Replication[] = [];
  afterEach(async () => {
    await Promise.all(replications.splice(0).map((replication) => replication.close()));
  });

  function replica(redis: ReturnType<typeof memoryRedis>, counts?: Map<SharedEventsDirection, number>) {
    const node = harness([cheap]);
    const connection = redis.connect();
    const replication = createReplication({
      connection,
      brain: node.brain,
      logger: silent,
      keyPrefix: "t:",
      batchMs: 40,
      warmStartMaxAgeMs: 90_000,
      count: (direction, events) => counts?.set(direction, (counts.get(direction) ?? 0) + events),
    });
    replications.push(replication);
    return { ...node, connection, replication };
  }

  const finishOk = (brain: ReturnType<typeof harness>["brain"], ttftMs: number) => {
    brain.attemptStarted("cheap", false);
    brain.attemptFinished({ modelId: "cheap", route: "r", outcome: "ok", ttftMs, totalMs: ttftMs + 100, outputTokens: 10 });
  };

  it("sends observations in one batch per batchMs, health at once, and merges the other replica's but not its own", async () => {
    const redis = memoryRedis();
    const counts = new Map<SharedEventsDirection, number>();
    const a = replica(redis, counts);
    const b = replica(redis);
    a.connection.setUp(true);
    b.connection.setUp(true);
    await sleep(5);
    for (let i = 0; i < 5; i++) finishOk(a.brain, 100);
    expect(redis.published).toHaveLength(0);
    await waitFor("the batch", () => (redis.published.length > 0 ? true : undefined), 2000, 5);
    expect(redis.published).toHaveLength(1);
    expect(decodeBatch(redis.published[0]!)?.events).toHaveLength(5);
    expect(b.brain.sampleCount("cheap")).toBeCloseTo(5, 5);
    expect(a.brain.sampleCount("cheap")).toBeCloseTo(5, 5);
    expect(counts.get("sent")).toBe(5);

    a.brain.attemptStarted("cheap", false);
    a.brain.attemptFinished({ modelId: "cheap", route: "r", outcome: "rate_limited", retryAfterMs: 3000 });
    await waitFor("the cooldown", () => (b.brain.state("cheap") === "cooling" ? true : undefined), 2000, 1);
    // Sent at once, not after batchMs: alone in its batch (with the attempt it ended).
    expect(redis.published).toHaveLength(2);
  });

  it("drops (and counts) events while the connection is down; sharing resumes when it is up", async () => {
    const redis = memoryRedis();
    const counts = new Map<SharedEventsDirection, number>();
    const a = replica(redis, counts);
    const b = replica(redis);
    b.connection.setUp(true);
    finishOk(a.brain, 100);
    await waitFor("the drop", () => counts.get("dropped"), 2000, 5);
    expect(counts.get("dropped")).toBe(1);
    expect(b.brain.sampleCount("cheap")).toBe(0);
    a.connection.setUp(true);
    finishOk(a.brain, 100);
    await waitFor("the merge", () => (b.brain.sampleCount("cheap") > 0 ? true : undefined), 2000, 5);
    expect(b.brain.sampleCount("cheap")).toBeCloseTo(1, 5);
  });

  it("warm start: a new replica replays the pool at each batch's age, skipping its own and batches too old", async () => {
    const redis = memoryRedis();
    const event: SharedEvent = { kind: "finished", attempt: { modelId: "cheap", outcome: "ok", ttftMs: 100, totalMs: 200, outputTokens: 5 } };
    const nowMs = Date.now();
    const list = [
      encodeBatch({ replica: "other", sentAtMs: nowMs - 30_000, events: [event, event] }),
      encodeBatch({ replica: "other", sentAtMs: nowMs - 500_000, events: [event, event, event] }),
    ];
    redis.lists.set("t:events:recent", list);
    const fresh = replica(redis);
    fresh.connection.setUp(true);
    await sleep(5);
    // Two samples one half-life (30 s) old weigh one; the batch older than warmStartMaxAgeMs is left out.
    expect(fresh.brain.sampleCount("cheap")).toBeCloseTo(1, 1);
  });
});
