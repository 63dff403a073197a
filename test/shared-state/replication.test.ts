// Two gateways and Debian's redis-server: a 429 seen by one reaches the other within 250 ms, batches of
// observations merge into the other's statistics, a new replica starts warm, and without Redis the
// gateway serves on its own.
import { afterEach, describe, expect, it } from "vitest";
import { completion, scriptByModel, startFakeUpstream, type FakeUpstream, type Script } from "../helpers/fake-upstream.js";
import { startTestGateway, testConfig, type TestGateway } from "../helpers/gateway.js";
import { IN_CI, REDIS_SERVER, startRedis, type TestRedis } from "../helpers/redis.js";
import { waitFor } from "../observability/processes.js";

const MODELS = [
  { id: "cheap", input: 0.1, output: 0.1 },
  { id: "dear", input: 5, output: 5 },
];

function sharedConfig(upstreamUrl: string, prefix: string): Record<string, unknown> {
  return testConfig(upstreamUrl, MODELS, { sharedState: { redisUrlEnv: "TEST_REDIS_URL", keyPrefix: prefix, batchMs: 20 } });
}

async function metric(gateway: TestGateway, line: string): Promise<number | undefined> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  const found = text.split("\n").find((candidate) => candidate.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

if (!REDIS_SERVER && IN_CI) {
  describe("shared state between gateways", () => {
    it("has redis-server installed", () => {
      expect.fail("redis-server is missing: install Debian's redis-server (.ci/run does)");
    });
  });
}

describe.skipIf(!REDIS_SERVER)("shared state between gateways (real redis-server)", () => {
  let redis: TestRedis | undefined;
  let upstream: FakeUpstream | undefined;
  const gateways: TestGateway[] = [];
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gateway) => gateway.close()));
    await upstream?.close();
    await redis?.stop();
    upstream = undefined;
    redis = undefined;
  });

  const startTwo = async (script: Script, prefix: string): Promise<[TestGateway, TestGateway]> => {
    redis = await startRedis();
    upstream = await startFakeUpstream(script);
    const env = { TEST_REDIS_URL: redis.url };
    for (let i = 0; i < 2; i++) gateways.push(await startTestGateway(sharedConfig(upstream.url, prefix), { env }));
    for (const gateway of gateways) await waitFor("shared state up", () => (gateway.gateway.sharedState?.up ? true : undefined), 5000, 10);
    return [gateways[0]!, gateways[1]!];
  };

  it("a 429 with Retry-After seen by one gateway keeps the other off that model within 250 ms", async () => {
    let limited = false;
    const [a, b] = await startTwo((request, index) => {
      if (request.model === "cheap" && !limited) {
        limited = true;
        return {
          kind: "error",
          status: 429,
          headers: { "retry-after": "3" },
          body: { error: { message: "slow down", type: "rate_limit_exceeded", code: null } },
        };
      }
      return { kind: "json", body: completion(request.model, `answer ${index}`) };
    }, "t429:");
    const first = await a.client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "hi" }] }).withResponse();
    expect(first.response.headers.get("x-subsecond-model")).toBe("dear");
    const seenAt = performance.now();
    await waitFor("the cooldown on the other gateway", () => (b.gateway.brain.state("cheap") === "cooling" ? true : undefined), 1000, 5);
    expect(performance.now() - seenAt).toBeLessThan(250);
    const { response } = await b.client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "hi" }] }).withResponse();
    expect(response.headers.get("x-subsecond-model")).toBe("dear");
    expect(upstream!.forModel("cheap")).toHaveLength(1);
  });

  it("merges the other gateway's observations, and a gateway started later begins from the pool (warm start)", async () => {
    const [a, b] = await startTwo(scriptByModel({ cheap: { kind: "ok", ttftMs: 5 }, dear: { kind: "ok", ttftMs: 5 } }), "tobs:");
    for (let i = 0; i < 10; i++) await a.client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: `q${i}` }] });
    await waitFor("b's samples of cheap", () => (b.gateway.brain.sampleCount("cheap") >= 9.5 ? true : undefined), 2000, 10);
    expect(await metric(b, 'subsecond_shared_state_events_total{direction="received"}')).toBeGreaterThanOrEqual(10);
    expect(await metric(a, 'subsecond_shared_state_events_total{direction="sent"}')).toBeGreaterThanOrEqual(10);
    // Its own attempts are not merged twice: a has exactly its 10 samples.
    expect(a.gateway.brain.sampleCount("cheap")).toBeLessThan(10.5);

    const late = await startTestGateway(sharedConfig(upstream!.url, "tobs:"), { env: { TEST_REDIS_URL: redis!.url } });
    gateways.push(late);
    await waitFor("the warm start", () => (late.gateway.brain.sampleCount("cheap") >= 9 ? true : undefined), 3000, 10);
    expect(await metric(late, "subsecond_shared_state_up")).toBe(1);
  });

  it("without Redis the gateway serves every request on local state and reports the connection down", async () => {
    redis = await startRedis();
    await redis.stop();
    upstream = await startFakeUpstream(scriptByModel({ cheap: { kind: "ok", ttftMs: 5 }, dear: { kind: "ok", ttftMs: 5 } }));
    const alone = await startTestGateway(sharedConfig(upstream.url, "tdown:"), { env: { TEST_REDIS_URL: redis.url } });
    gateways.push(alone);
    for (let i = 0; i < 5; i++) {
      const answer = await alone.client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "hi" }] });
      expect(answer.choices[0]?.message.content).toContain("w0");
    }
    expect(await metric(alone, "subsecond_shared_state_up")).toBe(0);
    expect(alone.gateway.brain.sampleCount("cheap")).toBeGreaterThan(4.5);
  });
});

describe("sharedState config", () => {
  it("refuses to start when the env var it names is unset, naming the field", async () => {
    const upstreamless = sharedConfig("http://127.0.0.1:9", "x:");
    await expect(startTestGateway(upstreamless)).rejects.toThrow(/sharedState\.redisUrlEnv: environment variable TEST_REDIS_URL is not set/);
  });

  it("refuses an inline URL (it may carry a password)", async () => {
    const inline = testConfig("http://127.0.0.1:9", MODELS, { sharedState: { redisUrlEnv: "X", redisUrl: "redis://:pw@h:6379" } });
    await expect(startTestGateway(inline)).rejects.toThrow(/sharedState\.redisUrl/);
  });
});
