// The real thing: three built gateways (node dist/main.js serve) behind Debian's haproxy (round robin)
// and one Debian redis-server, a scripted upstream, the official SDK sending traffic through haproxy.
// A 429 with Retry-After: 3 seen by one replica keeps every replica off that model for 3 s; killing
// redis-server mid-traffic fails no request, and a restarted one restores sharing within 5 s.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findSystemBinary, startHaproxy, startRedis, startReplicas, type ClusterRedis, type Replica } from "../../bench/replicas/cluster.mjs";
import { completion, startFakeUpstream, type FakeUpstream } from "../helpers/fake-upstream.js";
import { PROVIDER_KEY, testConfig } from "../helpers/gateway.js";
import { IN_CI } from "../helpers/redis.js";
import { waitFor } from "../observability/processes.js";

const ROOT = resolve(import.meta.dirname, "../..");
const MISSING = ["redis-server", "haproxy"].filter((name) => findSystemBinary(name) === undefined);
/** Requests to the limited model are allowed this long after its 429, while the news travels (≤ 250 ms). */
const PROPAGATION_MS = 250;

if (MISSING.length > 0 && IN_CI) {
  describe("three replicas behind haproxy", () => {
    it("has redis-server and haproxy installed", () => {
      expect.fail(`missing: ${MISSING.join(", ")} (install the Debian packages; .ci/run does)`);
    });
  });
}

describe.skipIf(MISSING.length > 0)("three replicas behind haproxy, sharing state through redis-server", () => {
  let dir: string;
  let upstream: FakeUpstream;
  let redis: ClusterRedis;
  let replicas: Replica[] = [];
  let proxy: { url: string; stop(): Promise<void> } | undefined;
  let client: OpenAI;
  /** The next request for "cheap" gets a 429 with Retry-After: 3; then it answers again. */
  let armed = false;
  let limitedAt: number | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "subsecond-replicas-"));
    upstream = await startFakeUpstream((request, index) => {
      if (request.model === "cheap" && armed) {
        armed = false;
        limitedAt = request.receivedAt;
        return {
          kind: "error",
          status: 429,
          headers: { "retry-after": "3" },
          body: { error: { message: "slow down", type: "rate_limit_exceeded", code: null } },
        };
      }
      return { kind: "json", delayMs: 10, body: completion(request.model, `answer ${index}`) };
    });
    redis = await startRedis({ maxSeconds: 120 });
    const config = {
      ...testConfig(upstream.url, [
        { id: "cheap", input: 0.1, output: 0.1 },
        { id: "dear", input: 5, output: 5 },
      ]),
      server: { logLevel: "warn", drainTimeoutMs: 1000 },
      sharedState: { redisUrlEnv: "SUBSECOND_REDIS_URL" },
    };
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", FAKE_PROVIDER_KEY: PROVIDER_KEY, SUBSECOND_REDIS_URL: redis.url };
    replicas = await startReplicas({ root: ROOT, dir, config, env, count: 3, maxSeconds: 120 });
    proxy = await startHaproxy({ dir, backends: replicas.map((replica) => replica.port), maxSeconds: 120 });
    client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "any", maxRetries: 0, timeout: 10_000 });
    await allSharing(5000);
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await Promise.all(replicas.map((replica) => replica.stop(2000)));
    await redis?.stop();
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function sharingUp(replica: Replica): Promise<boolean> {
    const text = await (await fetch(`${replica.url}/metrics`)).text();
    return text.includes("\nsubsecond_shared_state_up 1");
  }

  /** Resolves with the ms until every replica reports its shared state up. */
  async function allSharing(timeoutMs: number): Promise<number> {
    const started = performance.now();
    await waitFor(
      "every replica's shared state up",
      async () => ((await Promise.all(replicas.map(sharingUp))).every(Boolean) ? true : undefined),
      timeoutMs,
      50,
    );
    return performance.now() - started;
  }

  /** Three clients sending requests through haproxy until `stop` resolves; returns the failures. */
  async function traffic(stop: Promise<void>): Promise<{ ok: number; failures: string[] }> {
    let running = true;
    void stop.then(() => (running = false));
    let ok = 0;
    const failures: string[] = [];
    const loop = async (): Promise<void> => {
      while (running) {
        try {
          const answer = await client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "hi" }] });
          if (answer.choices[0]?.message.content?.startsWith("answer")) ok++;
          else failures.push(`unexpected answer ${JSON.stringify(answer)}`);
        } catch (error) {
          failures.push(String(error));
        }
        await new Promise((resolveSleep) => setTimeout(resolveSleep, 15));
      }
    };
    await Promise.all([loop(), loop(), loop()]);
    return { ok, failures };
  }

  /** Arms one 429 and resolves with its arrival time at the upstream. */
  async function rateLimitOnce(): Promise<number> {
    limitedAt = undefined;
    armed = true;
    return waitFor("the scripted 429", () => limitedAt, 5000, 5);
  }

  /** Requests for "cheap" the upstream received between `fromMs` and `toMs` (performance.now()). */
  const cheapBetween = (fromMs: number, toMs: number) =>
    upstream.forModel("cheap").filter((request) => request.receivedAt > fromMs && request.receivedAt < toMs).length;

  it("after one replica sees a 429 with Retry-After: 3, no replica sends that model a request for 3 s", async () => {
    const sleep = (ms: number) => new Promise<void>((resolveSleep) => setTimeout(resolveSleep, ms));
    const done = sleep(4500 + 600);
    const running = traffic(done);
    await sleep(600);
    const t0 = await rateLimitOnce();
    const result = await running;
    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(30);
    expect(cheapBetween(t0 + PROPAGATION_MS, t0 + 2950)).toBe(0);
    // The cooldown ends: the model serves again after its 3 s (so it was the cooldown that held it off).
    expect(cheapBetween(t0 + 3000, Number.POSITIVE_INFINITY)).toBeGreaterThan(0);
  }, 30_000);

  it("killing redis-server mid-traffic fails no request; a restarted one restores sharing within 5 s", async () => {
    const sleep = (ms: number) => new Promise<void>((resolveSleep) => setTimeout(resolveSleep, ms));
    let stop!: () => void;
    const running = traffic(new Promise<void>((resolveStop) => (stop = resolveStop)));
    try {
      await sleep(500);
      await redis.kill();
      await sleep(1500);
      await redis.restart();
      const restoredMs = await allSharing(5000);
      expect(restoredMs).toBeLessThan(5000);
      // Sharing works again: the next 429 holds every replica off the model.
      const t0 = await rateLimitOnce();
      await sleep(3200);
      expect(cheapBetween(t0 + PROPAGATION_MS, t0 + 2950)).toBe(0);
    } finally {
      stop();
    }
    const result = await running;
    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(30);
  }, 40_000);
});
