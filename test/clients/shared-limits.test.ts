// Client limits counted across two gateways on one Debian redis-server: one minute's requests and one
// day's budget for the pair, serving on (fail open) or refusing (fail closed) while Redis is down, and
// counts that a Redis restart lost sent again.
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { completion, startFakeUpstream, type FakeUpstream } from "../helpers/fake-upstream.js";
import { startTestGateway, testConfig, type TestGateway } from "../helpers/gateway.js";
import { IN_CI, REDIS_SERVER, startRedis, type TestRedis } from "../helpers/redis.js";
import { waitFor } from "../observability/processes.js";

const TEAM_KEY = "team-key";

let redis: TestRedis | undefined;
let upstream: FakeUpstream | undefined;
let gateways: TestGateway[] = [];

afterEach(async () => {
  await Promise.all(gateways.map((gateway) => gateway.close()));
  await upstream?.close();
  await redis?.stop();
  gateways = [];
  upstream = undefined;
  redis = undefined;
});

/** Two gateways sharing one redis-server; every answer reports 10 + 5 tokens (0.0015 USD at 100 USD/M). */
async function pair(limits: Record<string, number>, sharedState: Record<string, unknown> = {}): Promise<OpenAI[]> {
  redis = await startRedis();
  upstream = await startFakeUpstream((request) => ({ kind: "json", body: completion(request.model, "hi") }));
  const config = testConfig(upstream.url, [{ id: "acme/one", input: 100, output: 100 }], {
    clients: { team: { keyEnv: "TEAM_KEY", limits } },
    sharedState: { redisUrlEnv: "REDIS_URL", ...sharedState },
  });
  for (let index = 0; index < 2; index++) gateways.push(await startTestGateway(config, { env: { TEAM_KEY, REDIS_URL: redis.url }, clientKey: TEAM_KEY }));
  await waitFor("both gateways connected to Redis", () => (gateways.every((gateway) => gateway.gateway.sharedState?.up) ? true : undefined), 5000, 20);
  return gateways.map((gateway) => gateway.client);
}

const ask = { model: "chat", messages: [{ role: "user" as const, content: "Say hello" }] };

/** Sends one request; its status and remaining requests. The pause lets the replica tell Redis. */
async function send(client: OpenAI): Promise<{ status: number; remaining: string | null | undefined; code?: string | null | undefined }> {
  try {
    const { response } = await client.chat.completions.create(ask).withResponse();
    await sleep(30);
    return { status: response.status, remaining: response.headers.get("x-ratelimit-remaining-requests") };
  } catch (error) {
    if (!(error instanceof OpenAI.APIError)) throw error;
    return { status: error.status ?? 0, remaining: error.headers?.get("x-ratelimit-remaining-requests"), code: error.code };
  }
}

if (!REDIS_SERVER && IN_CI) {
  describe("client limits on Redis", () => {
    it("has redis-server installed", () => {
      expect.fail("redis-server is missing: install Debian's redis-server (.ci/run does)");
    });
  });
}

describe.skipIf(!REDIS_SERVER)("client limits on Redis (two gateways, real redis-server)", () => {
  it("admits requestsPerMinute for the pair, not for each gateway, and says what is left of the pooled minute", async () => {
    const [a, b] = (await pair({ requestsPerMinute: 6 })) as [OpenAI, OpenAI];
    const answers = [];
    for (let index = 0; index < 10; index++) answers.push(await send(index % 2 === 0 ? a : b));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200, 200, 429, 429, 429, 429]);
    expect(answers.slice(0, 6).map((answer) => answer.remaining)).toEqual(["5", "4", "3", "2", "1", "0"]);
    expect(answers[6]?.code).toBe("rate_limit_exceeded");
    expect(upstream!.requests).toHaveLength(6);
  });

  it("spends one daily budget across the pair", async () => {
    const [a, b] = (await pair({ usdPerDay: 0.002 })) as [OpenAI, OpenAI];
    expect((await send(a)).status).toBe(200);
    // 0.0015 of 0.002 spent, on the other gateway: still admitted, and then the budget is spent for both.
    expect((await send(b)).status).toBe(200);
    await sleep(300);
    for (const client of [a, b]) expect(await send(client)).toMatchObject({ status: 429, code: "insufficient_quota" });
  });

  it("serves on local counts while Redis is down, and sends the counts a restart lost once it is back", async () => {
    const [a, b] = (await pair({ requestsPerMinute: 6 })) as [OpenAI, OpenAI];
    for (const client of [a, a, b]) expect((await send(client)).status).toBe(200);
    await redis!.kill();
    await waitFor("both gateways see Redis down", () => (gateways.every((gateway) => !gateway.gateway.sharedState?.up) ? true : undefined), 5000, 20);
    // Fail open: each gateway counts alone (a: 4 of 6, b: 3 of 6), and no request fails.
    for (const client of [a, a, b, b]) expect((await send(client)).status).toBe(200);
    await redis!.restart();
    await waitFor("both gateways reconnected", () => (gateways.every((gateway) => gateway.gateway.sharedState?.up) ? true : undefined), 5000, 20);
    // The restarted Redis is empty: the uses made while it was down arrive (4), and the 3 it forgot are
    // sent again, so the pair knows of 7 and refuses.
    await sleep(800);
    for (const client of [a, b]) expect(await send(client)).toMatchObject({ status: 429, code: "rate_limit_exceeded" });
  });

  it("refuses limited clients while Redis is down with sharedState.limitsFailClosed", async () => {
    const [a] = (await pair({ requestsPerMinute: 100 }, { limitsFailClosed: true })) as [OpenAI, OpenAI];
    expect((await send(a)).status).toBe(200);
    await redis!.kill();
    await waitFor("the gateway sees Redis down", () => (gateways[0]!.gateway.sharedState?.up === false ? true : undefined), 5000, 20);
    expect(await send(a)).toMatchObject({ status: 429, code: "limits_unavailable" });
  });
});
