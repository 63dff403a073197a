// Named clients: their keys, the routes they may call, and their limits and budgets, through the SDK.
import { afterEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { completion, startFakeUpstream, streamOf, type FakeUpstream } from "../helpers/fake-upstream.js";
import { startTestGateway, testConfig, type TestGateway, type TestModel } from "../helpers/gateway.js";

const KEYS = { DEFAULT_KEYS: "default-key", TEAM_A_KEY: "team-a-1, team-a-2", TEAM_B_KEY: "team-b-key" };

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  await upstream?.close();
  gateway = undefined;
  upstream = undefined;
});

/** Two routes over two models; the upstream reports 10 prompt and 5 completion tokens per answer. */
async function setup(clients: Record<string, unknown>, models: TestModel[] = [{ id: "acme/one" }, { id: "acme/two" }]) {
  upstream = await startFakeUpstream((request) =>
    request.body.stream === true
      ? { kind: "sse", steps: streamOf(request.model, ["a", "b", "c", "d", "e"]) }
      : { kind: "json", body: completion(request.model, "hi") },
  );
  const config = testConfig(upstream.url, models, {
    auth: { apiKeysEnv: "DEFAULT_KEYS" },
    routes: { chat: { candidates: ["acme/one"] }, other: { candidates: ["acme/two"] } },
    clients,
  });
  gateway = await startTestGateway(config, { env: KEYS, clientKey: "default-key" });
  return gateway;
}

const as = (key: string): OpenAI => new OpenAI({ baseURL: `${gateway!.url}/v1`, apiKey: key, maxRetries: 0, timeout: 15_000 });
const ask = (model: string, extra: { max_tokens?: number; models?: string[] } = {}) => ({
  model,
  messages: [{ role: "user" as const, content: "Say hello" }],
  ...extra,
});

async function caught(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as InstanceType<typeof OpenAI.APIError>;
}

async function metricsText(): Promise<string> {
  return (await fetch(`${gateway!.url}/metrics`)).text();
}

function metric(text: string, series: string): number {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("client keys and routes", () => {
  it("knows each client by any of its keys, keeps auth.apiKeysEnv working as `default`, and refuses other keys", async () => {
    await setup({ "team-a": { keyEnv: "TEAM_A_KEY" } });
    for (const key of ["default-key", "team-a-1", "team-a-2"]) {
      const { response } = await as(key).chat.completions.create(ask("chat")).withResponse();
      expect(response.status).toBe(200);
    }
    const error = await caught(as("nobody").chat.completions.create(ask("chat")));
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    const text = await metricsText();
    expect(metric(text, 'subsecond_client_requests_total{client="team-a",outcome="ok"}')).toBe(2);
    expect(metric(text, 'subsecond_client_requests_total{client="default",outcome="ok"}')).toBe(1);
  });

  it("lets a client call only its routes: another route, a pinned model or a models list answer 404 as OpenAI does", async () => {
    await setup({ "team-a": { keyEnv: "TEAM_A_KEY", routes: ["chat"] }, "team-b": { keyEnv: "TEAM_B_KEY", routes: ["other", "pinned"] } });
    const teamA = as("team-a-1");
    expect((await teamA.chat.completions.create(ask("chat"))).choices[0]?.message.content).toBe("hi");
    expect((await teamA.chat.completions.create(ask("auto"))).choices[0]?.message.content).toBe("hi");
    for (const request of [ask("other"), ask("acme/one"), ask("chat", { models: ["acme/two"] })]) {
      const error = await caught(teamA.chat.completions.create(request));
      expect(error).toBeInstanceOf(OpenAI.NotFoundError);
      expect(error.code).toBe("model_not_found");
      expect(error.message).toMatch(/does not exist or you do not have access to it/);
    }
    const teamB = as("team-b-key");
    await expect(teamB.chat.completions.create(ask("acme/one"))).resolves.toBeDefined();
    expect(await caught(teamB.chat.completions.create(ask("auto")))).toBeInstanceOf(OpenAI.NotFoundError);
    // Only the allowed requests reached the upstream.
    expect(upstream!.requests.map((request) => request.model)).toEqual(["acme/one", "acme/one", "acme/one"]);
  });
});

describe("limits", () => {
  it("admits requestsPerMinute per client, then answers 429 rate_limit_exceeded with Retry-After and OpenAI's headers", async () => {
    await setup({ "team-a": { keyEnv: "TEAM_A_KEY", limits: { requestsPerMinute: 3 } } });
    const teamA = as("team-a-1");
    const remaining: (string | null)[] = [];
    for (let index = 0; index < 2; index++) {
      const { response } = await teamA.chat.completions.create(ask("chat")).withResponse();
      expect(response.headers.get("x-ratelimit-limit-requests")).toBe("3");
      remaining.push(response.headers.get("x-ratelimit-remaining-requests"));
      expect(response.headers.get("x-ratelimit-reset-requests")).toMatch(/^(\d+(\.\d+)?s|1m\d+(\.\d+)?s)$/);
      expect(response.headers.get("x-ratelimit-limit-tokens")).toBeNull();
    }
    // A stream carries them too.
    const { response: streamed, data: chunks } = await teamA.chat.completions.create({ ...ask("chat"), stream: true }).withResponse();
    for await (const _chunk of chunks) {
      // drain
    }
    remaining.push(streamed.headers.get("x-ratelimit-remaining-requests"));
    expect(remaining).toEqual(["2", "1", "0"]);

    const error = await caught(teamA.chat.completions.create(ask("chat")));
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.code).toBe("rate_limit_exceeded");
    expect(error.type).toBe("rate_limit_error");
    const retryAfter = Number(error.headers?.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(59);
    expect(retryAfter).toBeLessThanOrEqual(61);
    expect(error.headers?.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(error.headers?.get("x-request-id")).toBeTruthy();
    // Other clients have their own allowance; the refused request never reached the upstream.
    await expect(as("default-key").chat.completions.create(ask("chat"))).resolves.toBeDefined();
    expect(upstream!.requests).toHaveLength(4);
    const text = await metricsText();
    expect(metric(text, 'subsecond_client_limited_total{client="team-a",limit="requests"}')).toBe(1);
    expect(metric(text, 'subsecond_client_requests_total{client="team-a",outcome="limited"}')).toBe(1);
    expect(metric(text, 'subsecond_client_requests_total{client="team-a",outcome="ok"}')).toBe(3);
  });

  it("counts tokensPerMinute from an estimate (prompt + max_tokens) when admitting, settled with the usage reported", async () => {
    await setup({ "team-a": { keyEnv: "TEAM_A_KEY", limits: { tokensPerMinute: 100 } } });
    const teamA = as("team-a-1");
    // Each request is estimated at about 10 prompt tokens + 60; each answer reports 10 + 5 = 15 used.
    // Without settling, the second request would not fit (70 + 70 > 100); settled, three do (15 + 15 + 70).
    const remaining: number[] = [];
    for (let index = 0; index < 3; index++) {
      const { response } = await teamA.chat.completions.create(ask("chat", { max_tokens: 60 })).withResponse();
      remaining.push(Number(response.headers.get("x-ratelimit-remaining-tokens")));
      expect(response.headers.get("x-ratelimit-limit-tokens")).toBe("100");
      gateway!.gateway.flushBookkeeping();
    }
    expect(remaining[0]).toBeGreaterThan(20);
    expect(remaining[0]! - remaining[1]!).toBe(15);
    const error = await caught(teamA.chat.completions.create(ask("chat", { max_tokens: 60 })));
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.code).toBe("rate_limit_exceeded");
    expect(error.message).toMatch(/tokens per minute/);
    expect(Number(error.headers?.get("retry-after"))).toBeGreaterThan(0);
    expect(metric(await metricsText(), 'subsecond_client_limited_total{client="team-a",limit="tokens"}')).toBe(1);
  });

  it("gives back the estimate of a request refused after admission (an unknown model's 404)", async () => {
    await setup({ "team-a": { keyEnv: "TEAM_A_KEY", limits: { tokensPerMinute: 100 } } });
    const teamA = as("team-a-1");
    // Estimated at about 70 tokens when admitted; kept, it would leave no room for the next 70.
    const refused = await caught(teamA.chat.completions.create(ask("acme/no-such-model", { max_tokens: 60 })));
    expect(refused.status).toBe(404);
    gateway!.gateway.flushBookkeeping();
    const answer = await teamA.chat.completions.create(ask("chat", { max_tokens: 60 }));
    expect(answer.choices[0]?.message.content).toBe("hi");
  });
});

describe("budgets", () => {
  it("meters spend from usage × catalog prices and answers 429 insufficient_quota once the day's budget is spent", async () => {
    // 10 prompt + 5 completion tokens at 100 USD per million each: 0.0015 USD per answer.
    await setup({ "team-a": { keyEnv: "TEAM_A_KEY", limits: { usdPerDay: 0.002 } } }, [
      { id: "acme/one", input: 100, output: 100 },
      { id: "acme/two", input: 100, output: 100 },
    ]);
    const teamA = as("team-a-1");
    await teamA.chat.completions.create(ask("chat"));
    gateway!.gateway.flushBookkeeping();
    // 0.0015 spent of 0.002: still admitted; the answer takes the spend over the budget.
    await teamA.chat.completions.create(ask("chat"));
    gateway!.gateway.flushBookkeeping();
    const error = await caught(teamA.chat.completions.create(ask("chat")));
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.code).toBe("insufficient_quota");
    expect(error.type).toBe("insufficient_quota");
    expect(error.headers?.get("x-should-retry")).toBe("false");
    const secondsToMidnight = Math.ceil((86_400_000 - (Date.now() % 86_400_000)) / 1000);
    expect(Math.abs(Number(error.headers?.get("retry-after")) - secondsToMidnight)).toBeLessThanOrEqual(2);
    // The default client has no budget.
    await expect(as("default-key").chat.completions.create(ask("chat"))).resolves.toBeDefined();
    const text = await metricsText();
    expect(metric(text, 'subsecond_client_cost_usd_total{client="team-a"}')).toBeCloseTo(0.003, 9);
    expect(metric(text, 'subsecond_client_limited_total{client="team-a",limit="budget"}')).toBe(1);
    expect(metric(text, 'subsecond_client_budget_usd{client="team-a"}')).toBe(0.002);
    expect(metric(text, 'subsecond_client_spent_today_usd{client="team-a"}')).toBeCloseTo(0.003, 9);
    expect(upstream!.requests).toHaveLength(3);
  });
});
