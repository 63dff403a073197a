import { afterEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { chunk, completion, startFakeUpstream, streamOf, usageChunk, type FakeUpstream, type Script } from "../helpers/fake-upstream.js";
import { PROVIDER_KEY, startTestGateway, testConfig, type TestGateway } from "../helpers/gateway.js";

const MODELS = [{ id: "acme/first", upstreamModel: "first-upstream" }, { id: "acme/second" }, { id: "acme/third" }];

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  await upstream?.close();
  gateway = undefined;
  upstream = undefined;
});

async function setup(script: Script, extra: Record<string, unknown> = {}, env: Record<string, string> = {}) {
  upstream = await startFakeUpstream(script);
  gateway = await startTestGateway(testConfig(upstream.url, MODELS, extra), { env });
  return { upstream, gateway, client: gateway.client };
}

const ask = { messages: [{ role: "user" as const, content: "Say hello" }] };

/** A raw chat POST, for what the SDK hides (bytes on the wire, bodies it would not send). */
function postChat(body: object | string, signal?: AbortSignal): Promise<Response> {
  return fetch(`${gateway?.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

describe("non-streaming", () => {
  it("answers through the route, rewriting only the model and adding the provider key", async () => {
    const { client, upstream } = await setup(() => ({ kind: "json" }));
    const { data, response } = await client.chat.completions
      .create(
        { model: "chat", ...ask, temperature: 0.3, logprobs: true, user: "u1" },
        { headers: { "x-request-id": "req-123", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" } },
      )
      .withResponse();
    expect(data.choices[0]?.message.content).toBe("hello from first-upstream");
    expect(response.headers.get("x-subsecond-model")).toBe("acme/first");
    expect(response.headers.get("x-subsecond-route")).toBe("chat");
    expect(response.headers.get("x-subsecond-attempts")).toBe("1");
    expect(response.headers.get("x-subsecond-reason")).toBe("within-target");
    expect(response.headers.get("x-request-id")).toBe("req-123");
    const [received] = upstream.requests;
    expect(received?.body).toEqual({ model: "first-upstream", ...ask, temperature: 0.3, logprobs: true, user: "u1" });
    expect(received?.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
    expect(received?.headers["x-provider-extra"]).toBe("yes");
    expect(received?.headers["x-request-id"]).toBe("req-123");
    expect(received?.headers.traceparent).toBe("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  });

  it("serves a concrete catalog id alone, with reason pinned", async () => {
    const { client, upstream } = await setup(() => ({ kind: "json" }));
    const { response } = await client.chat.completions.create({ model: "acme/third", ...ask }).withResponse();
    expect(response.headers.get("x-subsecond-reason")).toBe("pinned");
    expect(response.headers.get("x-subsecond-route")).toBe("pinned");
    expect(upstream.requests.map((r) => r.model)).toEqual(["acme/third"]);
  });

  it("passes tools through and returns tool calls", async () => {
    const toolAnswer = {
      ...completion("first-upstream", ""),
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
          },
          finish_reason: "tool_calls",
        },
      ],
    };
    const { client, upstream } = await setup(() => ({ kind: "json", body: toolAnswer }));
    const tools = [{ type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
    const result = await client.chat.completions.create({ model: "chat", ...ask, tools, tool_choice: "auto" });
    expect(result.choices[0]?.message.tool_calls?.[0]).toMatchObject({ function: { name: "get_weather", arguments: '{"city":"Paris"}' } });
    expect(upstream.requests[0]?.body.tools).toEqual(tools);
    expect(upstream.requests[0]?.body.tool_choice).toBe("auto");
  });

  it("falls back to the second candidate when the first answers 500", async () => {
    const { client, upstream } = await setup((request) => (request.model === "first-upstream" ? { kind: "error", status: 500 } : { kind: "json" }));
    const { data, response } = await client.chat.completions.create({ model: "chat", ...ask }).withResponse();
    expect(data.choices[0]?.message.content).toBe("hello from acme/second");
    expect(response.headers.get("x-subsecond-attempts")).toBe("2");
    expect(response.headers.get("x-subsecond-reason")).toBe("fallback");
    expect(upstream.requests.map((r) => r.model)).toEqual(["first-upstream", "acme/second"]);
  });

  it("falls back on connection resets and 429s", async () => {
    const { client, upstream } = await setup((request) =>
      request.model === "first-upstream"
        ? { kind: "reset" }
        : request.model === "acme/second"
          ? { kind: "error", status: 429, headers: { "retry-after": "5" } }
          : { kind: "json" },
    );
    const result = await client.chat.completions.create({ model: "chat", ...ask });
    expect(result.choices[0]?.message.content).toBe("hello from acme/third");
    expect(upstream.requests.map((r) => r.model)).toEqual(["first-upstream", "acme/second", "acme/third"]);
  });

  it("returns a provider 4xx to the client after one attempt, with its status, message and code", async () => {
    const { client, upstream } = await setup(() => ({
      kind: "error",
      status: 400,
      body: {
        error: { message: "Your request was flagged by our content policy.", type: "invalid_request_error", code: "content_policy_violation", param: null },
      },
    }));
    const error = await client.chat.completions.create({ model: "chat", ...ask }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("content_policy_violation");
    expect((error as Error).message).toContain("flagged by our content policy");
    expect(upstream.requests).toHaveLength(1);
  });

  it("puts a non-OpenAI provider error body into OpenAI's shape", async () => {
    const { upstream } = await setup(() => ({ kind: "error", status: 422, body: "unprocessable: bad temperature" }));
    const response = await postChat({ model: "chat", ...ask });
    expect(response.status).toBe(422);
    expect(await response.json()).toEqual({ error: { message: "unprocessable: bad temperature", type: "invalid_request_error", param: null, code: null } });
    expect(upstream.requests).toHaveLength(1);
  });

  it("answers 502 with x-should-retry false when every candidate fails", async () => {
    const { client } = await setup(() => ({ kind: "error", status: 503 }));
    const error = await client.chat.completions.create({ model: "chat", ...ask }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((error as InstanceType<typeof OpenAI.APIError>).headers?.get("x-should-retry")).toBe("false");
  });

  it("answers 429 with the shortest Retry-After when every candidate is rate limited", async () => {
    const { client } = await setup((request) => ({ kind: "error", status: 429, headers: { "retry-after": request.model === "acme/second" ? "3" : "7" } }));
    const error = await client.chat.completions.create({ model: "chat", ...ask }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.APIError>).headers?.get("retry-after")).toBe("3");
  });
});

describe("streaming", () => {
  it("sends the client's bytes upstream, with only the model, `models` and stream usage rewritten, on every attempt", async () => {
    const { upstream } = await setup((request) =>
      request.model === "first-upstream" ? { kind: "error", status: 500 } : { kind: "sse", steps: streamOf(request.model, ["ok"]) },
    );
    // Spacing, key order, escapes and numbers that JSON.parse would round (the seed) or respell all survive.
    const messages = '[ {"role": "user",\n  "content": "quote \\" and \\\\ and \\u00e9, \\"model\\": \\"x\\""} ]';
    const body = `{\n  "models" : ["acme/first", "acme/second"],\n  "model": "acme/first",\n  "stream": true,\n  "messages": ${messages},\n  "temperature": 1.50, "seed": 12345678901234567891\n}`;
    const response = await postChat(body);
    expect(response.status).toBe(200);
    await response.text();
    expect(upstream.requests.map((r) => r.raw)).toEqual([
      `{\n  "model": "first-upstream","stream_options":{"include_usage":true},\n  "stream": true,\n  "messages": ${messages},\n  "temperature": 1.50, "seed": 12345678901234567891\n}`,
      `{\n  "model": "acme/second","stream_options":{"include_usage":true},\n  "stream": true,\n  "messages": ${messages},\n  "temperature": 1.50, "seed": 12345678901234567891\n}`,
    ]);
    expect(upstream.requests[1]?.body.messages).toEqual([{ role: "user", content: 'quote " and \\ and é, "model": "x"' }]);
  });

  it("forwards chunks incrementally, as the upstream sent them", async () => {
    const { client, upstream } = await setup((request) => ({ kind: "sse", steps: streamOf(request.model, ["one ", "two ", "three ", "four"], 150) }));
    const stream = await client.chat.completions.create({ model: "chat", ...ask, stream: true });
    const arrivals: number[] = [];
    let text = "";
    for await (const part of stream) {
      const content = part.choices[0]?.delta.content;
      if (content) {
        arrivals.push(performance.now());
        text += content;
      }
    }
    expect(text).toBe("one two three four");
    expect(arrivals).toHaveLength(4);
    // Paced 150 ms apart upstream: the first chunk reached us long before the last one was sent.
    expect((arrivals[3] as number) - (arrivals[0] as number)).toBeGreaterThan(300);
    expect((upstream.requests[0]?.body.stream_options as { include_usage?: boolean }).include_usage).toBe(true);
  });

  it("reuses upstream connections across streamed and JSON requests", async () => {
    const { client, upstream } = await setup((request) =>
      request.body.stream ? { kind: "sse", steps: streamOf(request.model, ["a", "b"]) } : { kind: "json" },
    );
    for (let i = 0; i < 3; i++) {
      for await (const _part of await client.chat.completions.create({ model: "chat", ...ask, stream: true })) void _part;
      await client.chat.completions.create({ model: "chat", ...ask });
    }
    expect(upstream.requests).toHaveLength(6);
    // The client's stream ends at [DONE]; the next request may start while the body's last bytes are still
    // in flight, so a second pooled connection is fine. A connection per stream (4 here) is not.
    expect(upstream.connections()).toBeLessThanOrEqual(2);
  });

  it("meters usage but shows the usage chunk only when the client asked", async () => {
    const { client } = await setup((request) => ({ kind: "sse", steps: streamOf(request.model, ["a", "b"]) }));
    const without = [];
    for await (const part of await client.chat.completions.create({ model: "chat", ...ask, stream: true })) without.push(part);
    expect(without.some((part) => part.usage)).toBe(false);
    const withUsage = [];
    for await (const part of await client.chat.completions.create({ model: "chat", ...ask, stream: true, stream_options: { include_usage: true } }))
      withUsage.push(part);
    expect(withUsage.at(-1)?.usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 2 });
    const metrics = await (await fetch(`${gateway?.url}/metrics`)).text();
    expect(metrics).toMatch(/subsecond_tokens_total\{model="acme\/first",kind="completion"\} 4/);
  });

  it("records time to first token when one upstream read carries the whole stream", async () => {
    const events = [chunk("m", { role: "assistant", content: "" }), chunk("m", { content: "all at once" }), chunk("m", {}, "stop")];
    const raw = `${events.map((event) => `data: ${JSON.stringify(event)}\n\n`).join("")}data: [DONE]\n\n`;
    const { client } = await setup(() => ({ kind: "sse", steps: [{ raw }], end: "close" }));
    let text = "";
    for await (const part of await client.chat.completions.create({ model: "chat", ...ask, stream: true })) text += part.choices[0]?.delta.content ?? "";
    expect(text).toBe("all at once");
    const metrics = await (await fetch(`${gateway?.url}/metrics`)).text();
    expect(metrics).toMatch(/subsecond_time_to_first_token_seconds_count\{route="chat",model="acme\/first"\} 1\n/);
  });

  it("passes streamed tool calls through", async () => {
    const steps = [
      chunk("m", { role: "assistant", content: null, tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "lookup", arguments: "" } }] }),
      chunk("m", { tool_calls: [{ index: 0, function: { arguments: '{"q":1}' } }] }),
      chunk("m", {}, "tool_calls"),
      usageChunk("m"),
    ];
    const { client } = await setup(() => ({ kind: "sse", steps }));
    const stream = await client.chat.completions.create({ model: "chat", ...ask, stream: true, tools: [{ type: "function", function: { name: "lookup" } }] });
    let args = "";
    let finish: string | null | undefined;
    for await (const part of stream) {
      args += part.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? "";
      finish = part.choices[0]?.finish_reason ?? finish;
    }
    expect(args).toBe('{"q":1}');
    expect(finish).toBe("tool_calls");
  });

  it("falls back invisibly when a stream fails before its first content", async () => {
    const { client, upstream } = await setup((request) =>
      request.model === "first-upstream"
        ? { kind: "sse", steps: [chunk("x", { role: "assistant", content: "" }), { error: { message: "overloaded", code: 502 } }], end: "close" }
        : { kind: "sse", steps: streamOf(request.model, ["fine"]) },
    );
    const { data: stream, response } = await client.chat.completions.create({ model: "chat", ...ask, stream: true }).withResponse();
    let text = "";
    for await (const part of stream) text += part.choices[0]?.delta.content ?? "";
    expect(text).toBe("fine");
    expect(response.headers.get("x-subsecond-model")).toBe("acme/second");
    expect(upstream.requests).toHaveLength(2);
  });

  it("ends a stream cut after content with an error event and no [DONE]", async () => {
    const { upstream } = await setup((request) => ({
      kind: "sse",
      steps: [chunk(request.model, { role: "assistant", content: "" }), chunk(request.model, { content: "partial" })],
      end: "cut",
    }));
    const response = await postChat({ model: "chat", ...ask, stream: true });
    const body = await response.text();
    expect(response.status).toBe(200);
    expect(body).toContain('"content":"partial"');
    expect(body).toMatch(/data: \{"error":\{"message":"The upstream stream (was cut|failed)/);
    expect(body).not.toContain("[DONE]");
    expect(upstream.requests).toHaveLength(1);
  });

  it("makes the openai SDK raise on a stream that was cut", async () => {
    const { client } = await setup((request) => ({ kind: "sse", steps: [chunk(request.model, { content: "partial" })], end: "close" }));
    const stream = await client.chat.completions.create({ model: "chat", ...ask, stream: true });
    const consume = async () => {
      for await (const _part of stream) void _part;
    };
    await expect(consume()).rejects.toBeInstanceOf(OpenAI.APIError);
  });

  it("completes a stream that ends after a finish_reason without [DONE]", async () => {
    await setup((request) => ({ kind: "sse", steps: streamOf(request.model, ["done"], 0, false), end: "close" }));
    const response = await postChat({ model: "chat", ...ask, stream: true });
    const body = await response.text();
    expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(body).not.toContain('"error"');
  });

  it("cancels the upstream request when the client aborts mid-stream", async () => {
    const { client, upstream } = await setup((request) => ({
      kind: "sse",
      steps: streamOf(
        request.model,
        Array.from({ length: 50 }, (_, i) => `w${i} `),
        100,
      ),
    }));
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ model: "chat", ...ask, stream: true }, { signal: controller.signal });
    let received = 0;
    for await (const part of stream) {
      if (part.choices[0]?.delta.content) received++;
      if (received === 2) controller.abort();
    }
    expect(received).toBe(2);
    await upstream.requests[0]?.closed;
    expect(upstream.requests[0]?.closedEarly).toBe(true);
  });

  it("cancels the upstream request when the client leaves before the first token", async () => {
    const { upstream } = await setup(() => ({ kind: "hang" }));
    const controller = new AbortController();
    const pending = postChat({ model: "acme/first", ...ask, stream: true }, controller.signal).catch((e: unknown) => e);
    while (upstream.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const abortedAt = performance.now();
    controller.abort();
    await pending;
    await upstream.requests[0]?.closed;
    expect(upstream.requests[0]?.closedEarly).toBe(true);
    // Well before the first-token deadline (1600 ms), which would also close it.
    expect(performance.now() - abortedAt).toBeLessThan(800);
  });
});

describe("bad input", () => {
  it("rejects invalid JSON with 400 in OpenAI's shape", async () => {
    await setup(() => ({ kind: "json" }));
    const response = await postChat("{not json");
    expect(response.status).toBe(400);
    expect(response.headers.get("x-request-id")).toBeTruthy();
    expect(await response.json()).toMatchObject({ error: { type: "invalid_request_error", code: "invalid_json" } });
  });

  it("names the invalid field", async () => {
    const { client } = await setup(() => ({ kind: "json" }));
    const error = await client.chat.completions.create({ model: "chat", messages: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("messages");
    const typed = await client.chat.completions.create({ model: "chat", ...ask, max_tokens: -3 }).catch((e: unknown) => e);
    expect((typed as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("max_tokens");
  });

  it("answers 404 for unknown models and paths", async () => {
    const { client } = await setup(() => ({ kind: "json" }));
    const error = await client.chat.completions.create({ model: "no/such-model", ...ask }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found");
    const embeddings = await client.embeddings.create({ model: "x", input: "hi" }).catch((e: unknown) => e);
    expect(embeddings).toBeInstanceOf(OpenAI.NotFoundError);
    const metrics = await (await fetch(`${gateway?.url}/metrics`)).text();
    expect(metrics).not.toContain("no/such-model");
  });

  it("serves chat completions with a query string, and only on POST to the exact path", async () => {
    const { upstream } = await setup(() => ({ kind: "json" }));
    const azureStyle = new OpenAI({ baseURL: `${gateway?.url}/v1`, apiKey: "unused", maxRetries: 0, defaultQuery: { "api-version": "2024-10-21" } });
    const { data, response } = await azureStyle.chat.completions.create({ model: "chat", ...ask }).withResponse();
    expect(response.url).toContain("?api-version=2024-10-21");
    expect(data.choices[0]?.message.content).toBe("hello from first-upstream");
    for (const [method, path] of [
      ["GET", "/v1/chat/completions"],
      ["POST", "/v1/chat/completions/"],
      ["POST", "/v1/chat/completionsx"],
    ] as const) {
      const other = await fetch(`${gateway?.url}${path}`, { method, ...(method === "POST" ? { body: JSON.stringify({ model: "chat", ...ask }) } : {}) });
      expect(other.status, `${method} ${path}`).toBe(404);
      expect(await other.json()).toMatchObject({ error: { code: "unknown_url" } });
    }
    expect(upstream.requests).toHaveLength(1);
  });

  it("answers 413 over the body limit", async () => {
    await setup(() => ({ kind: "json" }), { server: { host: "127.0.0.1", port: 0, logLevel: "silent", bodyLimitBytes: 1024 } });
    const response = await postChat({ model: "chat", messages: [{ role: "user", content: "x".repeat(5000) }] });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: "request_too_large" } });
  });

  it("requires a gateway key when keys are configured, and never forwards it", async () => {
    const { upstream } = await setup(() => ({ kind: "json" }), { auth: { apiKeysEnv: "TEST_GATEWAY_KEYS" } }, { TEST_GATEWAY_KEYS: "good-key,other-key" });
    const wrong = new OpenAI({ baseURL: `${gateway?.url}/v1`, apiKey: "wrong-key", maxRetries: 0 });
    await expect(wrong.chat.completions.create({ model: "chat", ...ask })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const right = new OpenAI({ baseURL: `${gateway?.url}/v1`, apiKey: "other-key", maxRetries: 0 });
    await right.chat.completions.create({ model: "chat", ...ask });
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]?.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
  });
});

describe("limits and protections", () => {
  const limited = (settings: Record<string, unknown>) => ({ server: { host: "127.0.0.1", port: 0, logLevel: "silent", ...settings } });
  /** One content event of `bytes` characters of content, as a raw SSE step. */
  const hugeEvent = (model: string, bytes: number) => ({ raw: `data: ${JSON.stringify(chunk(model, { content: "x".repeat(bytes) }))}\n\n` });

  it("falls back when an upstream event over server.eventLimitBytes comes before any content", async () => {
    const { client, upstream } = await setup(
      (request) =>
        request.model === "first-upstream"
          ? { kind: "sse", steps: [chunk(request.model, { role: "assistant", content: "" }), hugeEvent(request.model, 200_000)] }
          : { kind: "sse", steps: streamOf(request.model, ["fine"]) },
      limited({ eventLimitBytes: 64 * 1024 }),
    );
    const { data: stream, response } = await client.chat.completions.create({ model: "chat", ...ask, stream: true }).withResponse();
    let text = "";
    for await (const part of stream) text += part.choices[0]?.delta.content ?? "";
    expect(text).toBe("fine");
    expect(response.headers.get("x-subsecond-model")).toBe("acme/second");
    expect(upstream.requests.map((r) => r.model)).toEqual(["first-upstream", "acme/second"]);
  });

  it("ends a stream with an error event and no [DONE] when an event over the limit follows content", async () => {
    const { upstream } = await setup(
      (request) => ({
        kind: "sse",
        steps: [chunk(request.model, { content: "partial" }), hugeEvent(request.model, 200_000), chunk(request.model, {}, "stop")],
      }),
      limited({ eventLimitBytes: 64 * 1024 }),
    );
    const response = await postChat({ model: "chat", ...ask, stream: true });
    const body = await response.text();
    expect(body).toContain('"content":"partial"');
    expect(body).toContain('data: {"error":{"message":"The upstream stream failed: upstream sent a stream event larger than 65536 bytes"');
    expect(body).not.toContain("xxxx");
    expect(body).not.toContain("[DONE]");
    expect(upstream.requests).toHaveLength(1);
  });

  /** `depth` arrays, one inside the other, as JSON text. */
  const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

  it("answers 400 to tools or tool_calls nested deeper than server.jsonDepthLimit, before any upstream call", async () => {
    const { client, upstream } = await setup(() => ({ kind: "json" }));
    // 10,000 levels overflowed the token estimator's JSON.stringify: a 500 the SDK retried.
    const deepTools = await postChat(`{"model":"chat","messages":[{"role":"user","content":"hi"}],"tools":${nested(10_000)}}`);
    expect(deepTools.status).toBe(400);
    expect(await deepTools.json()).toMatchObject({ error: { type: "invalid_request_error", code: "json_too_deep", param: "tools" } });
    const deepCalls = await postChat(`{"model":"chat","messages":[{"role":"assistant","tool_calls":${nested(10_000)}},{"role":"user","content":"hi"}]}`);
    expect(deepCalls.status).toBe(400);
    expect(await deepCalls.json()).toMatchObject({ error: { code: "json_too_deep", param: "messages" } });
    // The SDK raises its typed error (it cannot itself serialise 10,000 levels).
    const fromSdk = await client.chat.completions.create({ model: "chat", ...ask, tools: JSON.parse(nested(500)) as never }).catch((e: unknown) => e);
    expect(fromSdk).toBeInstanceOf(OpenAI.BadRequestError);
    expect(fromSdk).toMatchObject({ code: "json_too_deep", param: "tools" });
    expect(upstream.requests).toHaveLength(0);
  });

  it("refuses a 4 MB nested body at once, while other clients are served", async () => {
    await setup(() => ({ kind: "json" }));
    const depth = 2_000_000;
    const body = `{"model":"chat",${JSON.stringify(ask).slice(1, -1)},"metadata":${nested(depth)}}`;
    let answered = false;
    const slowestProbeMs = (async () => {
      let slowest = 0;
      while (!answered) {
        const sent = performance.now();
        await fetch(`${gateway?.url}/healthz`);
        slowest = Math.max(slowest, performance.now() - sent);
      }
      return slowest;
    })();
    const response = await postChat(body);
    answered = true;
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: "json_too_deep", param: "metadata" } });
    // Parsing this body stalled the event loop for about a second.
    expect(await slowestProbeMs).toBeLessThan(500);
  });
});

describe("unexpected errors", () => {
  it("answer 500 with x-should-retry false, counted as a gateway error rather than an upstream one", async () => {
    upstream = await startFakeUpstream(() => ({ kind: "json" }));
    const estimateTokens = () => {
      throw new Error("estimator bug: secret detail");
    };
    gateway = await startTestGateway(testConfig(upstream.url, MODELS), { estimateTokens });
    // The SDK's default: two retries of a 5xx, unless the answer says they cannot help.
    const retrying = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "client-key" });
    const error = await retrying.chat.completions.create({ model: "chat", ...ask }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(error).toMatchObject({ status: 500, code: "internal_error", type: "server_error" });
    expect((error as InstanceType<typeof OpenAI.APIError>).headers?.get("x-should-retry")).toBe("false");
    expect((error as Error).message).not.toContain("secret detail");
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toContain('subsecond_requests_total{route="none",model="none",outcome="gateway_error"} 1\n');
    expect(metrics).not.toContain('outcome="upstream_error"');
    expect(upstream.requests).toHaveLength(0);
  });
});

describe("other endpoints", () => {
  it("lists routes then catalog models", async () => {
    const { client } = await setup(() => ({ kind: "json" }));
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(["chat", "auto", "acme/first", "acme/second", "acme/third"]);
  });

  it("serves probes and metrics", async () => {
    await setup(() => ({ kind: "json" }));
    expect((await fetch(`${gateway?.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${gateway?.url}/readyz`)).status).toBe(200);
    const metrics = await fetch(`${gateway?.url}/metrics`);
    expect(metrics.headers.get("content-type")).toContain("text/plain");
    expect(await metrics.text()).toContain("subsecond_model_state");
  });
});
