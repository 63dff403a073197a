// A client's limit held by three built gateways behind Debian's haproxy (round robin) sharing one Debian
// redis-server: a client limited to 60 requests per minute gets 60 ± 3 successes in any minute, whichever
// replica each request reaches, and the rest are typed 429s in the openai SDK.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findSystemBinary, startHaproxy, startRedis, startReplicas, type ClusterRedis, type Replica } from "../../bench/replicas/cluster.mjs";
import { completion, startFakeUpstream, type FakeUpstream } from "../helpers/fake-upstream.js";
import { PROVIDER_KEY, testConfig } from "../helpers/gateway.js";
import { IN_CI } from "../helpers/redis.js";
import { waitFor } from "../observability/processes.js";

const ROOT = resolve(import.meta.dirname, "../..");
const MISSING = ["redis-server", "haproxy"].filter((name) => findSystemBinary(name) === undefined);
const TEAM_KEY = "replicas-team-key";
/** Traffic runs past the first minute, so the window is seen to slide (uses leave it 60–61 s later). */
const TRAFFIC_MS = 66_000;

if (MISSING.length > 0 && IN_CI) {
  describe("a client's limit across three replicas", () => {
    it("has redis-server and haproxy installed", () => {
      expect.fail(`missing: ${MISSING.join(", ")} (install the Debian packages; .ci/run does)`);
    });
  });
}

describe.skipIf(MISSING.length > 0)("a client's limit across three replicas behind haproxy", () => {
  let dir: string;
  let upstream: FakeUpstream;
  let redis: ClusterRedis;
  let replicas: Replica[] = [];
  let proxy: { url: string; stop(): Promise<void> } | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "subsecond-replicas-clients-"));
    upstream = await startFakeUpstream((request) => ({ kind: "json", delayMs: 5, body: completion(request.model, "hi") }));
    redis = await startRedis({ maxSeconds: 150 });
    const config = {
      ...testConfig(upstream.url, [{ id: "acme/one" }]),
      server: { logLevel: "warn", drainTimeoutMs: 1000 },
      sharedState: { redisUrlEnv: "SUBSECOND_REDIS_URL" },
      clients: { team: { keyEnv: "TEAM_KEY", limits: { requestsPerMinute: 60 } } },
    };
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", FAKE_PROVIDER_KEY: PROVIDER_KEY, SUBSECOND_REDIS_URL: redis.url, TEAM_KEY };
    replicas = await startReplicas({ root: ROOT, dir, config, env, count: 3, maxSeconds: 150 });
    proxy = await startHaproxy({ dir, backends: replicas.map((replica) => replica.port), maxSeconds: 150 });
    await waitFor(
      "every replica's shared state up",
      async () => {
        const texts = await Promise.all(replicas.map(async (replica) => (await fetch(`${replica.url}/metrics`)).text()));
        return texts.every((text) => text.includes("\nsubsecond_shared_state_up 1")) ? true : undefined;
      },
      5000,
      50,
    );
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await Promise.all(replicas.map((replica) => replica.stop(2000)));
    await redis?.stop();
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a client limited to 60 requests per minute gets 60 ± 3 successes per minute across the 3 replicas", async () => {
    const client = new OpenAI({ baseURL: `${proxy!.url}/v1`, apiKey: TEAM_KEY, maxRetries: 0, timeout: 10_000 });
    const started = performance.now();
    const successes: number[] = [];
    const refusals = new Map<string, number>();
    const failures: string[] = [];
    // Three callers, about 7 requests a second together: the minute's 60 go in the first ~9 s.
    const caller = async (): Promise<void> => {
      while (performance.now() - started < TRAFFIC_MS) {
        try {
          await client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "hi" }] });
          successes.push(performance.now());
        } catch (error) {
          if (error instanceof OpenAI.RateLimitError) refusals.set(String(error.code), (refusals.get(String(error.code)) ?? 0) + 1);
          else failures.push(String(error));
        }
        await sleep(400);
      }
    };
    await Promise.all([caller(), caller(), caller()]);
    expect(failures).toEqual([]);
    expect([...refusals.keys()]).toEqual(["rate_limit_exceeded"]);
    // Most successes within any 60 s span: the first minute's, give or take what replicas admitted while
    // the news of another's use was on its way.
    const perMinute = Math.max(...successes.map((at) => successes.filter((other) => other >= at && other < at + 60_000).length));
    expect(perMinute).toBeGreaterThanOrEqual(57);
    expect(perMinute).toBeLessThanOrEqual(63);
    // The window slides: the first uses leave it after a minute, and the client is served again.
    expect(successes.filter((at) => at - started > 60_000).length).toBeGreaterThan(0);
    // Every replica served some of them: the count was pooled, not one replica's.
    for (const replica of replicas) {
      const text = await (await fetch(`${replica.url}/metrics`)).text();
      expect(text).toMatch(/^subsecond_client_requests_total\{client="team",outcome="ok"\} [1-9]/m);
    }
  }, 120_000);
});
