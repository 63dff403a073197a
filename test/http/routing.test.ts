// The brain's attempt plan and deadlines, end to end through real sockets and the openai SDK.
import { afterEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { chunk, startFakeUpstream, streamOf, type FakeUpstream, type Script } from "../helpers/fake-upstream.js";
import { startTestGateway, testConfig, type TestGateway, type TestModel } from "../helpers/gateway.js";

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  await upstream?.close();
  gateway = undefined;
  upstream = undefined;
});

const ask = { messages: [{ role: "user" as const, content: "Say hello" }] };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function setup(models: TestModel[], script: Script, route: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  upstream = await startFakeUpstream(script);
  gateway = await startTestGateway(
    testConfig(upstream.url, models, {
      // Deadlines and fallback on their own: hedging and new-model probes have tests of their own (hedging.test.ts).
      routes: {
        chat: {
          candidates: models.map((model) => model.id),
          strategy: "cheapest-within-target",
          exploration: { ratio: 0, newModelRatio: 0 },
          hedging: { enabled: false },
          ...route,
        },
      },
      ...extra,
    }),
    { env: { TEST_ADMIN_KEYS: "admin" } },
  );
  return { upstream, gateway, client: gateway.client };
}

async function readAll(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>): Promise<string> {
  let text = "";
  for await (const part of stream) text += part.choices[0]?.delta.content ?? "";
  return text;
}

const CHEAP_FIRST: TestModel[] = [
  { id: "acme/cheap", input: 0.01, output: 0.01 },
  { id: "acme/mid", input: 0.1, output: 0.1 },
  { id: "acme/dear", input: 1, output: 1 },
];

describe("deadlines and fallback", () => {
  it("abandons an upstream that never answers at the first-token deadline and serves from the next candidate", async () => {
    const { client, upstream } = await setup(
      CHEAP_FIRST,
      (request) => (request.model === "acme/cheap" ? { kind: "hang" } : { kind: "sse", steps: streamOf(request.model, ["rescued"]) }),
      {
        deadlines: { firstTokenMs: 300, budgetMs: 3000 },
      },
    );
    const started = performance.now();
    const { data, response } = await client.chat.completions.create({ model: "chat", ...ask, stream: true }).withResponse();
    expect(await readAll(data)).toBe("rescued");
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2000);
    expect(response.headers.get("x-subsecond-model")).toBe("acme/mid");
    expect(response.headers.get("x-subsecond-attempts")).toBe("2");
    await upstream.forModel("acme/cheap")[0]?.closed;
    expect(upstream.forModel("acme/cheap")[0]?.closedEarly).toBe(true);
    const metrics = await (await fetch(`${gateway?.url}/metrics`)).text();
    expect(metrics).toContain('subsecond_fallbacks_total{route="chat",from_model="acme/cheap",reason="timeout"} 1');
    expect(metrics).toContain('subsecond_upstream_attempts_total{model="acme/cheap",outcome="timeout"} 1');
  });

  it("keeps the first-token deadline while the attempt waits for a pooled connection", async () => {
    upstream = await startFakeUpstream((request) =>
      request.model === "acme/cheap" ? { kind: "hang" } : { kind: "sse", steps: streamOf(request.model, ["rescued"]) },
    );
    const config = testConfig(upstream.url, CHEAP_FIRST.slice(0, 2), {
      routes: { chat: { candidates: ["acme/cheap", "acme/mid"], strategy: "ordered", deadlines: { firstTokenMs: 300, budgetMs: 3000 } } },
      defaults: { deadlines: { firstTokenMs: 10_000, budgetMs: 20_000 } },
    });
    const providers = config.providers as Record<string, Record<string, unknown>>;
    providers.busy = { ...providers.fake, maxConnections: 1 };
    (config.models as Record<string, unknown>[])[0] = { ...(config.models as Record<string, unknown>[])[0], provider: "busy" };
    gateway = await startTestGateway(config);
    // A pinned request holds the busy provider's only connection.
    const holder = new AbortController();
    const held = gateway.client.chat.completions
      .create({ model: "acme/cheap", ...ask, stream: true }, { signal: holder.signal })
      .catch((error: unknown) => error);
    while (upstream.forModel("acme/cheap").length === 0) await sleep(10);
    const started = performance.now();
    const { data, response } = await gateway.client.chat.completions.create({ model: "chat", ...ask, stream: true }).withResponse();
    expect(await readAll(data)).toBe("rescued");
    expect(performance.now() - started).toBeLessThan(2000);
    expect(response.headers.get("x-subsecond-model")).toBe("acme/mid");
    expect(upstream.forModel("acme/cheap")).toHaveLength(1);
    holder.abort();
    await held;
  });

  it("abandons a non-streaming upstream at the total deadline", async () => {
    const { client, upstream } = await setup(CHEAP_FIRST, (request) => (request.model === "acme/cheap" ? { kind: "json", delayMs: 2000 } : { kind: "json" }), {
      deadlines: { totalMs: 300, budgetMs: 3000 },
    });
    const started = performance.now();
    const { data, response } = await client.chat.completions.create({ model: "chat", ...ask }).withResponse();
    expect(data.choices[0]?.message.content).toBe("hello from acme/mid");
    // The 300 ms total deadline cut it, not the 1600 ms first-token default.
    expect(performance.now() - started).toBeLessThan(1200);
    expect(response.headers.get("x-subsecond-attempts")).toBe("2");
    await upstream.forModel("acme/cheap")[0]?.closed;
    expect(upstream.forModel("acme/cheap")[0]?.closedEarly).toBe(true);
  });

  it("answers 504 with x-should-retry false when the budget is spent on timeouts", async () => {
    const five = [...CHEAP_FIRST, { id: "acme/fourth", input: 2, output: 2 }, { id: "acme/fifth", input: 3, output: 3 }];
    const { client, upstream } = await setup(five, () => ({ kind: "hang" }), { deadlines: { firstTokenMs: 200, budgetMs: 500 }, maxAttempts: 5 });
    const error = await client.chat.completions.create({ model: "chat", ...ask, stream: true }).catch((e: unknown) => e);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
    expect((error as InstanceType<typeof OpenAI.APIError>).headers?.get("x-should-retry")).toBe("false");
    // 200 ms per attempt inside a 500 ms budget: three attempts (four with timer slack), not all five.
    const models = upstream.requests.map((request) => request.model);
    expect(models.length).toBeGreaterThanOrEqual(2);
    expect(models.length).toBeLessThanOrEqual(4);
    expect(new Set(models).size).toBe(models.length);
  });

  it("does not call a model again before its Retry-After", async () => {
    const { client, upstream } = await setup(CHEAP_FIRST, (request, index) =>
      request.model === "acme/cheap" && index === 0 ? { kind: "error", status: 429, headers: { "retry-after": "2" } } : { kind: "json" },
    );
    const first = await client.chat.completions.create({ model: "chat", ...ask }).withResponse();
    expect(first.response.headers.get("x-subsecond-model")).toBe("acme/mid");
    for (let i = 0; i < 5; i++) {
      const { response } = await client.chat.completions.create({ model: "chat", ...ask }).withResponse();
      expect(response.headers.get("x-subsecond-model")).toBe("acme/mid");
    }
    expect(upstream.forModel("acme/cheap")).toHaveLength(1);
    await sleep(2100);
    const { response } = await client.chat.completions.create({ model: "chat", ...ask }).withResponse();
    expect(response.headers.get("x-subsecond-model")).toBe("acme/cheap");
    expect(upstream.forModel("acme/cheap")).toHaveLength(2);
  });

  it("opens the circuit of a failing model, probes it once when half-open, and closes it after recovery", async () => {
    let healthy = false;
    const { client, upstream } = await setup(
      CHEAP_FIRST,
      (request) => (request.model === "acme/cheap" && !healthy ? { kind: "error", status: 500 } : { kind: "json" }),
      {},
      { health: { consecutiveFailures: 3, openMs: 500 } },
    );
    for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: "chat", ...ask });
    const admin = async () =>
      (
        (await (await fetch(`${gateway?.url}/admin/routes`)).json()) as { routes: Array<{ candidates: Array<{ id: string; state: string }> }> }
      ).routes[0]?.candidates.find((row) => row.id === "acme/cheap")?.state;
    expect(await admin()).toBe("open");
    for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: "chat", ...ask });
    expect(upstream.forModel("acme/cheap")).toHaveLength(3);
    healthy = true;
    await sleep(600);
    expect(await admin()).toBe("half-open");
    const { response } = await client.chat.completions.create({ model: "chat", ...ask }).withResponse();
    expect(response.headers.get("x-subsecond-model")).toBe("acme/cheap");
    expect(await admin()).toBe("ok");
    expect(await fetch(`${gateway?.url}/metrics`).then((r) => r.text())).toContain('subsecond_model_state{model="acme/cheap"} 0');
  });
});

describe("provider 4xx", () => {
  const contextError = {
    kind: "error" as const,
    status: 400,
    body: {
      error: {
        message: "This model's maximum context length is 8192 tokens.",
        type: "invalid_request_error",
        code: "context_length_exceeded",
        param: "messages",
      },
    },
  };

  it("sends context_length_exceeded once to a candidate with a larger window, never to a smaller or equal one", async () => {
    const models: TestModel[] = [
      { id: "acme/small", input: 0.01, output: 0.01, contextTokens: 8192 },
      { id: "acme/same", input: 0.05, output: 0.05, contextTokens: 8192 },
      { id: "acme/large", input: 1, output: 1, contextTokens: 200000 },
    ];
    const { client, upstream } = await setup(models, (request) => (request.model === "acme/large" ? { kind: "json" } : contextError));
    const { data, response } = await client.chat.completions.create({ model: "chat", ...ask }).withResponse();
    expect(data.choices[0]?.message.content).toBe("hello from acme/large");
    expect(upstream.requests.map((request) => request.model)).toEqual(["acme/small", "acme/large"]);
    expect(response.headers.get("x-subsecond-attempts")).toBe("2");
  });

  it("learns the window a context_length_exceeded states: one attempt on a larger candidate, and the next request skips the model", async () => {
    const models: TestModel[] = [
      { id: "acme/stated", input: 0.01, output: 0.01, contextTokens: 128000 },
      { id: "acme/tiny", input: 0.02, output: 0.02, contextTokens: 4096 },
      { id: "acme/mid", input: 0.05, output: 0.05, contextTokens: 32768 },
      { id: "acme/huge", input: 1, output: 1, contextTokens: 200000 },
    ];
    const { client, upstream, gateway } = await setup(
      models,
      (request) => (request.model === "acme/stated" ? contextError : { kind: "json" }),
      {},
      { auth: { adminKeysEnv: "TEST_ADMIN_KEYS" } },
    );
    const answer = await client.chat.completions.create({ model: "chat", ...ask });
    expect(answer.choices[0]?.message.content).toBe("hello from acme/mid");
    expect(upstream.requests.map((request) => request.model)).toEqual(["acme/stated", "acme/mid"]);

    const admin = (await (await fetch(`${gateway.url}/admin/routes`, { headers: { authorization: "Bearer admin" } })).json()) as {
      routes: { candidates: { id: string; contextTokens: number; learnedContextTokens: number | null }[] }[];
    };
    const stated = admin.routes[0]?.candidates.find((candidate) => candidate.id === "acme/stated");
    expect(stated).toMatchObject({ contextTokens: 8192, learnedContextTokens: 8192 });

    // 9000 tokens of answer fit 128k, not the learnt 8192: the brain's filter leaves the model out.
    await client.chat.completions.create({ model: "chat", ...ask, max_tokens: 9000 });
    expect(upstream.requests.slice(2).map((request) => request.model)).toEqual(["acme/mid"]);
  });

  it("returns context_length_exceeded to the client when no larger candidate exists", async () => {
    const models: TestModel[] = [
      { id: "acme/small", contextTokens: 8192 },
      { id: "acme/same", contextTokens: 8192, input: 1 },
    ];
    const { client, upstream } = await setup(models, () => contextError);
    const error = await client.chat.completions.create({ model: "chat", ...ask }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("context_length_exceeded");
    expect(upstream.requests).toHaveLength(1);
  });

  it("answers 400 without calling upstream when no candidate's window fits the request or supports its needs", async () => {
    const models: TestModel[] = [
      { id: "acme/small", contextTokens: 1000, capabilities: ["json"] },
      { id: "acme/tiny", contextTokens: 500, input: 1, capabilities: ["json"] },
    ];
    const { client, upstream } = await setup(models, () => ({ kind: "json" }));
    const tooLong = await client.chat.completions
      .create({ model: "chat", messages: [{ role: "user", content: "word ".repeat(2000) }] })
      .catch((e: unknown) => e);
    expect(tooLong).toBeInstanceOf(OpenAI.BadRequestError);
    expect((tooLong as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("context_length_exceeded");
    const tools = await client.chat.completions
      .create({ model: "chat", ...ask, tools: [{ type: "function", function: { name: "f" } }] })
      .catch((e: unknown) => e);
    expect((tools as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("unsupported_capability");
    expect(upstream.requests).toHaveLength(0);
  });

  it("returns content_policy_violation after exactly one upstream attempt", async () => {
    const { client, upstream } = await setup(CHEAP_FIRST, () => ({
      kind: "error",
      status: 400,
      body: { error: { message: "flagged", type: "invalid_request_error", code: "content_policy_violation" } },
    }));
    const error = await client.chat.completions.create({ model: "chat", ...ask, stream: true }).catch((e: unknown) => e);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("content_policy_violation");
    expect(upstream.requests).toHaveLength(1);
  });
});

describe("broken streams", () => {
  const post = (body: Record<string, unknown>) =>
    fetch(`${gateway?.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

  it("ends a stalled stream with an error event and no [DONE], and stays healthy", async () => {
    const { upstream } = await setup(
      CHEAP_FIRST,
      (request, index) =>
        index === 0
          ? { kind: "sse", steps: [chunk(request.model, { content: "begun" })], end: "hang" }
          : { kind: "sse", steps: streamOf(request.model, ["fine"]) },
      { deadlines: { idleMs: 300 } },
    );
    const started = performance.now();
    const body = await (await post({ model: "chat", ...ask, stream: true })).text();
    expect(performance.now() - started).toBeLessThan(2000);
    expect(body).toContain('"content":"begun"');
    expect(body).toMatch(/data: \{"error":\{"message":"The upstream stream stalled/);
    expect(body).not.toContain("[DONE]");
    await upstream.requests[0]?.closed;
    expect(upstream.requests[0]?.closedEarly).toBe(true);
    expect(await readAll(await gateway!.client.chat.completions.create({ model: "chat", ...ask, stream: true }))).toBe("fine");
    expect((await fetch(`${gateway?.url}/healthz`)).status).toBe(200);
  });

  it("ends a stream with a malformed chunk after content with an error event and no [DONE]", async () => {
    await setup(CHEAP_FIRST, (request) => ({
      kind: "sse",
      steps: [chunk(request.model, { content: "begun" }), { raw: 'data: {"choices": [\n\n' }, chunk(request.model, { content: "more" })],
    }));
    const body = await (await post({ model: "chat", ...ask, stream: true })).text();
    expect(body).toContain('"content":"begun"');
    expect(body).not.toContain('"content":"more"');
    expect(body).toMatch(/data: \{"error":\{"message":"The upstream stream failed: upstream sent a malformed stream chunk/);
    expect(body).not.toContain("[DONE]");
  });

  it("falls back when a 200 stream carries finish_reason error before any content", async () => {
    const { client } = await setup(CHEAP_FIRST, (request) =>
      request.model === "acme/cheap"
        ? { kind: "sse", steps: [chunk(request.model, { content: "" }, "error")] }
        : { kind: "sse", steps: streamOf(request.model, ["rescued"]) },
    );
    expect(await readAll(await client.chat.completions.create({ model: "chat", ...ask, stream: true }))).toBe("rescued");
  });
});

describe("request-level model lists", () => {
  it("tries a `models` list in order, strips it before forwarding, and labels the route `request`", async () => {
    const { client, upstream } = await setup(CHEAP_FIRST, (request) => (request.model === "acme/dear" ? { kind: "error", status: 502 } : { kind: "json" }));
    const { data, response } = await client.chat.completions
      .create({ model: "acme/dear", models: ["acme/dear", "acme/mid"], ...ask } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(data.choices[0]?.message.content).toBe("hello from acme/mid");
    expect(response.headers.get("x-subsecond-route")).toBe("request");
    expect(upstream.requests.map((request) => request.model)).toEqual(["acme/dear", "acme/mid"]);
    expect(upstream.requests.every((request) => !("models" in request.body))).toBe(true);
  });

  it("puts a route's choice before the list when `model` is a route", async () => {
    const { client, upstream } = await setup(CHEAP_FIRST, () => ({ kind: "json" }));
    await client.chat.completions.create({ model: "chat", models: ["acme/dear"], ...ask } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    expect(upstream.requests.map((request) => request.model)).toEqual(["acme/cheap"]);
  });

  it("rejects a list whose first entry is not `model`, and unknown ids in it", async () => {
    const { client } = await setup(CHEAP_FIRST, () => ({ kind: "json" }));
    const mismatch = await client.chat.completions
      .create({ model: "acme/mid", models: ["acme/dear"], ...ask } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming)
      .catch((e: unknown) => e);
    expect((mismatch as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("model");
    const unknown = await client.chat.completions
      .create({ model: "acme/mid", models: ["acme/mid", "ghost/x"], ...ask } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming)
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect((unknown as InstanceType<typeof OpenAI.NotFoundError>).param).toBe("models[1]");
  });
});

describe("explainability", () => {
  it("shows per-candidate price, samples, prediction, state and the would-be choice in /admin/routes", async () => {
    const { client } = await setup(CHEAP_FIRST, () => ({ kind: "json" }));
    await client.chat.completions.create({ model: "chat", ...ask });
    const snapshot = (await (await fetch(`${gateway?.url}/admin/routes`)).json()) as {
      configHash: string;
      routes: Array<{ name: string; candidates: Array<Record<string, unknown>> }>;
    };
    expect(snapshot.configHash).toMatch(/^[0-9a-f]{12}$/);
    const [route] = snapshot.routes;
    expect(route?.name).toBe("chat");
    expect(route?.candidates.map((row) => row.id)).toEqual(["acme/cheap", "acme/mid", "acme/dear"]);
    expect(route?.candidates[0]).toMatchObject({ pricePerMTok: { input: 0.01, output: 0.01 }, state: "ok", eligible: true, wouldChoose: true });
    expect(route?.candidates[0]?.samples).toBeGreaterThan(0);
    expect(typeof route?.candidates[0]?.predictedMs).toBe("number");
    expect(route?.candidates[1]?.wouldChoose).toBe(false);
  });
});
