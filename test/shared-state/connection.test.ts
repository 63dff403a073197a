// The Redis connection against Debian's redis-server: background connect, fail-fast commands while down,
// one log line per transition (never the password), reconnection after a crash, subscriptions renewed.
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { Registry, createMetrics } from "../../src/metrics/metrics.js";
import {
  CommandTimeoutError,
  createSharedStateConnection,
  reconnectDelayMs,
  redactRedisUrl,
  SharedStateUnavailableError,
  type SharedStateConnection,
} from "../../src/shared-state/connection.js";
import { waitFor } from "../observability/processes.js";
import { IN_CI, REDIS_SERVER, startRedis, type TestRedis } from "../helpers/redis.js";

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const logger = pino(
    { level: "info" },
    {
      write(line: string) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  return { logger, lines, raw, messages: () => lines.map((line) => line.msg) };
}

describe("reconnection backoff and URL redaction (no server)", () => {
  it("grows from 50 ms, caps at the maximum, and jitters within [½, 1] of the step", () => {
    expect(reconnectDelayMs(0, 1000, () => 1)).toBe(50);
    expect(reconnectDelayMs(0, 1000, () => 0)).toBe(25);
    expect(reconnectDelayMs(3, 1000, () => 1)).toBe(400);
    expect(reconnectDelayMs(30, 1000, () => 1)).toBe(1000);
    expect(reconnectDelayMs(30, 1000, () => 0)).toBe(500);
  });

  it("keeps host, port and database, drops user and password", () => {
    expect(redactRedisUrl("redis://user:s3cret@10.0.0.5:6380/2")).toBe("redis://10.0.0.5:6380/2");
    expect(redactRedisUrl("rediss://:s3cret@cache.internal:6379")).toBe("rediss://cache.internal:6379");
    expect(redactRedisUrl("not a url :s3cret")).toBe("(unparsable URL)");
  });
});

if (!REDIS_SERVER && IN_CI) {
  describe("shared-state connection", () => {
    it("has redis-server installed", () => {
      expect.fail("redis-server is missing: install Debian's redis-server (.ci/run does)");
    });
  });
}

describe.skipIf(!REDIS_SERVER)("shared-state connection (real redis-server)", () => {
  let redis: TestRedis | undefined;
  let connection: SharedStateConnection | undefined;
  afterEach(async () => {
    await connection?.close();
    await redis?.stop();
    connection = undefined;
    redis = undefined;
  });

  it("fails commands at once while down, logs each transition once, reconnects after a crash and renews subscriptions", async () => {
    redis = await startRedis({ password: "pw-not-in-logs" });
    const { logger, messages, raw } = capturingLogger();
    const registry = new Registry();
    const metrics = createMetrics(registry, {
      modelIds: () => [],
      modelState: () => "ok",
      latencyEstimateSeconds: () => 0,
      configHash: () => "h",
      healthyCandidates: () => [],
    });
    const gauge = async () =>
      (await registry.getSingleMetricAsString("subsecond_shared_state_up")).split("\n").find((line) => line.startsWith("subsecond_shared_state_up "));
    const live = createSharedStateConnection({ url: redis.url, logger, onStatus: (up) => metrics.sharedStateUp(up), commandTimeoutMs: 300 });
    connection = live;
    const received: string[] = [];
    live.subscribe("test:channel", (message) => received.push(message.toString()));
    let ups = 0;
    live.onUp(() => ups++);

    await waitFor("connected", () => (live.up ? true : undefined), 5000, 20);
    expect(await gauge()).toBe("subsecond_shared_state_up 1");
    expect(await live.run((client) => client.set("k", "v"))).toBe("OK");
    await waitFor("the subscription", async () => ((await live.run((client) => client.publish("test:channel", "one"))) === 1 ? true : undefined), 3000, 20);
    await waitFor("message one", () => (received.includes("one") ? true : undefined), 2000, 10);

    await redis.kill();
    await waitFor("down", () => (live.up ? undefined : true), 3000, 10);
    expect(await gauge()).toBe("subsecond_shared_state_up 0");
    const started = performance.now();
    await expect(live.run((client) => client.get("k"))).rejects.toBeInstanceOf(SharedStateUnavailableError);
    expect(performance.now() - started).toBeLessThan(100);
    // Several reconnection attempts fail while it is down: still one line.
    await new Promise((resolve) => setTimeout(resolve, 600));

    await redis.restart();
    await waitFor("up again", () => (live.up ? true : undefined), 5000, 20);
    expect(await gauge()).toBe("subsecond_shared_state_up 1");
    expect(ups).toBe(2);
    await waitFor(
      "the renewed subscription",
      async () => ((await live.run((client) => client.publish("test:channel", "two"))) === 1 ? true : undefined),
      3000,
      20,
    );
    await waitFor("message two", () => (received.includes("two") ? true : undefined), 2000, 10);

    expect(messages()).toEqual([
      "shared state connected",
      "shared state lost (Redis unreachable or not answering): serving on local state, reconnecting",
      "shared state connected",
    ]);
    expect(raw.join("")).not.toContain("pw-not-in-logs");
    expect(raw.join("")).toContain(`redis://127.0.0.1:${redis.port}`);
  }, 20_000);

  it("starts without Redis, serves commands as failures, and connects once Redis appears", async () => {
    redis = await startRedis();
    await redis.stop();
    const { logger, messages } = capturingLogger();
    const live = createSharedStateConnection({ url: redis.url, logger });
    connection = live;
    await waitFor("the first failure logged", () => (messages().length > 0 ? true : undefined), 3000, 10);
    expect(live.up).toBe(false);
    await expect(live.run((client) => client.ping())).rejects.toBeInstanceOf(SharedStateUnavailableError);
    await redis.restart();
    await waitFor("connected", () => (live.up ? true : undefined), 5000, 20);
    expect(await live.run((client) => client.ping())).toBe("PONG");
    expect(messages()).toEqual(["shared state unreachable: serving on local state, retrying in the background", "shared state connected"]);
  }, 15_000);

  it("counts a stalled Redis as down after commandTimeoutMs, and as up once it answers again", async () => {
    redis = await startRedis();
    const { logger, messages } = capturingLogger();
    const live = createSharedStateConnection({ url: redis.url, logger, commandTimeoutMs: 200 });
    connection = live;
    await waitFor("connected", () => (live.up ? true : undefined), 5000, 20);
    const pid = redis.pid!;
    process.kill(pid, "SIGSTOP");
    try {
      const started = performance.now();
      await expect(live.run((client) => client.get("k"))).rejects.toBeInstanceOf(CommandTimeoutError);
      expect(performance.now() - started).toBeLessThan(1000);
      expect(live.up).toBe(false);
      await expect(live.run((client) => client.get("k"))).rejects.toBeInstanceOf(SharedStateUnavailableError);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await waitFor("up again", () => (live.up ? true : undefined), 3000, 20);
    expect(await live.run((client) => client.ping())).toBe("PONG");
    expect(messages()).toEqual([
      "shared state connected",
      "shared state lost (Redis unreachable or not answering): serving on local state, reconnecting",
      "shared state connected",
    ]);
  }, 15_000);
});
