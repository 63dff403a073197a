// Limits that keep one client, provider or payload from costing the gateway more than its share:
// slow readers, the total stream deadline, the gateway-wide budget of buffered answers, the drain's end
// and node:http's parser errors. Real sockets, a scripted upstream, the openai SDK as the caller.
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { completion, startFakeUpstream, type FakeUpstream, type Script } from "../helpers/fake-upstream.js";
import { startTestGateway, testConfig, type TestGateway, type TestModel } from "../helpers/gateway.js";

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await gateway?.close();
  await upstream?.close();
  gateway = undefined;
  upstream = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ask = { messages: [{ role: "user" as const, content: "Say hello" }] };

/** `extra` is given the upstream's URL, for settings of its provider. */
async function setup(script: Script, models: TestModel[], extra: (upstreamUrl: string) => Record<string, unknown> = () => ({})) {
  upstream = await startFakeUpstream(script);
  gateway = await startTestGateway({ ...testConfig(upstream.url, models), ...extra(upstream.url) });
  return { upstream, gateway, client: gateway.client };
}

function postChat(body: object, signal?: AbortSignal): Promise<Response> {
  return fetch(`${gateway?.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function metricsText(): Promise<string> {
  gateway?.gateway.flushBookkeeping();
  return (await fetch(`${gateway?.url}/metrics`)).text();
}

/** Sends raw bytes on a new connection and returns everything the gateway sends back until it closes. */
function rawExchange(text: string): Promise<string> {
  const { port } = new URL(gateway?.url ?? "");
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1", () => socket.write(text));
    sockets.push(socket);
    let received = "";
    socket.on("data", (data: Buffer) => (received += data.toString("latin1")));
    socket.on("error", reject);
    socket.on("close", () => resolve(received));
  });
}

describe("slow readers", () => {
  it("end after server.slowReaderGraceMs and free the provider's connections, so other requests are served at once", async () => {
    const { client, upstream } = await setup(
      (request) => (request.model === "endless" ? { kind: "endless", eventBytes: 256 * 1024 } : { kind: "json", body: completion(request.model, "fine") }),
      [{ id: "acme/endless", upstreamModel: "endless" }, { id: "acme/ok" }],
      (url) => ({
        server: { host: "127.0.0.1", port: 0, logLevel: "silent", slowReaderGraceMs: 300 },
        providers: { fake: { baseUrl: url, apiKeyEnv: "FAKE_PROVIDER_KEY", maxConnections: 2 } },
        // Deadlines far out: the queued requests wait for a connection, not for a timer.
        defaults: { deadlines: { firstTokenMs: 15_000, totalMs: 15_000, budgetMs: 15_000 } },
      }),
    );
    const { port } = new URL(gateway?.url ?? "");
    const body = JSON.stringify({ model: "acme/endless", ...ask, stream: true });
    // Twice as many clients as the provider has connections; none reads a byte of its answer.
    for (let k = 0; k < 4; k++) {
      const socket = connect(Number(port), "127.0.0.1", () => {
        socket.write(
          `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
        );
        socket.pause();
      });
      sockets.push(socket);
    }
    await until(() => upstream.forModel("endless").length === 2, "both connections taken");
    const sent = performance.now();
    const answer = await client.chat.completions.create({ model: "acme/ok", ...ask });
    expect(answer.choices[0]?.message.content).toBe("fine");
    // Behind two in the pool's queue, each let go once its client's socket buffers (tens of MB on
    // loopback) are full and the grace has run: about 2 s here, where it waited for the deadline before.
    expect(performance.now() - sent).toBeLessThan(7500);
    await until(
      () => upstream.forModel("endless").length === 4 && upstream.forModel("endless").every((r) => r.closedEarly),
      "every slow stream closed",
      10_000,
    );
    await sleep(100);
    const metrics = await metricsText();
    expect(metrics).toContain('subsecond_requests_total{route="pinned",model="acme/endless",outcome="slow_reader"} 4\n');
    // The model did its part: nothing is counted against it.
    expect(metrics).not.toMatch(/subsecond_upstream_attempts_total\{model="acme\/endless",outcome="(error|timeout)"\}/);
    expect(gateway?.gateway.brain.state("acme/endless")).toBe("ok");
  });
});

describe("the total stream deadline", () => {
  it("ends a stream that never finishes at the route's deadlines.streamTotalMs, with an error event", async () => {
    const { upstream } = await setup(
      () => ({ kind: "endless", gapMs: 20 }),
      [{ id: "acme/endless" }],
      () => ({ routes: { chat: { candidates: ["acme/endless"], strategy: "ordered", deadlines: { streamTotalMs: 600 } } } }),
    );
    const sent = performance.now();
    const response = await postChat({ model: "chat", ...ask, stream: true }, AbortSignal.timeout(5000));
    const body = await response.text();
    expect(performance.now() - sent).toBeLessThan(3000);
    expect(body).toContain('"content":"xxxxxxxxxxxxxxxx"');
    expect(
      body
        .trimEnd()
        .endsWith('data: {"error":{"message":"The stream ran past its total deadline of 600 ms.","type":"server_error","param":null,"code":"stream_timeout"}}'),
    ).toBe(true);
    expect(body).not.toContain("[DONE]");
    await until(() => upstream.requests[0]?.closedEarly === true, "the upstream stream closed");
  });
});

describe("buffered answers", () => {
  const MODELS = [
    { id: "acme/big", upstreamModel: "big" },
    { id: "acme/small", upstreamModel: "small" },
    { id: "acme/holder", upstreamModel: "holder" },
  ];
  /** `holder` sends 900 kB of an answer and then nothing; `big` answers 300 kB, `small` a few bytes. */
  const script: Script = (request) =>
    request.model === "holder"
      ? { kind: "partial", bytes: 900_000 }
      : { kind: "json", body: completion(request.model, request.model === "big" ? "b".repeat(300_000) : "small answer") };
  const routes = { chat: { candidates: ["acme/big", "acme/small"], strategy: "ordered" } };

  it("beyond server.bufferedAnswersLimitBytes, an attempt fails without blame and the next candidate serves", async () => {
    const { client, upstream } = await setup(script, MODELS, () => ({
      server: { host: "127.0.0.1", port: 0, logLevel: "silent", bufferedAnswersLimitBytes: 1_000_000 },
      routes,
    }));
    const holding = new AbortController();
    const held = postChat({ model: "acme/holder", ...ask }, holding.signal).catch((e: unknown) => e);
    await until(() => upstream.forModel("holder").length === 1, "the holder's request");
    await sleep(300);

    const { data, response } = await client.chat.completions.create({ model: "chat", ...ask }).withResponse();
    expect(data.choices[0]?.message.content).toBe("small answer");
    expect(response.headers.get("x-subsecond-model")).toBe("acme/small");
    const alone = await postChat({ model: "acme/big", ...ask });
    expect(alone.status).toBe(503);
    expect(await alone.json()).toMatchObject({ error: { code: "gateway_overloaded" } });

    // The held answer's bytes go back to the budget when its request ends.
    holding.abort();
    await held;
    await until(() => upstream.forModel("holder")[0]?.closedEarly === true, "the holder's upstream closed");
    const after = await client.chat.completions.create({ model: "acme/big", ...ask });
    expect(after.choices[0]?.message.content).toHaveLength(300_000);

    const metrics = await metricsText();
    expect(metrics).toContain('subsecond_fallbacks_total{route="chat",from_model="acme/big",reason="buffer_full"} 1\n');
    expect(metrics).toContain('subsecond_requests_total{route="pinned",model="none",outcome="unavailable"} 1\n');
    expect(metrics).not.toMatch(/subsecond_upstream_attempts_total\{model="acme\/big",outcome="error"\}/);
    expect(gateway?.gateway.brain.state("acme/big")).toBe("ok");
  });

  it("an answer over server.answerLimitBytes fails its attempt, and the next candidate serves", async () => {
    const { client } = await setup(script, MODELS, () => ({ server: { host: "127.0.0.1", port: 0, logLevel: "silent", answerLimitBytes: 100_000 }, routes }));
    const { data, response } = await client.chat.completions.create({ model: "chat", ...ask }).withResponse();
    expect(data.choices[0]?.message.content).toBe("small answer");
    expect(response.headers.get("x-subsecond-model")).toBe("acme/small");
    expect(await metricsText()).toContain('subsecond_fallbacks_total{route="chat",from_model="acme/big",reason="error"} 1\n');
  });
});

describe("drain", () => {
  /** Starts the drain without waiting for it; the test closes the gateway itself. */
  function startDrain(): Promise<void> {
    const closing = gateway?.close() ?? Promise.resolve();
    gateway = undefined;
    return closing;
  }

  it("answers /readyz with 503 while draining, and still serves what arrives", async () => {
    const { upstream } = await setup(
      (request) => (request.model === "endless" ? { kind: "endless", gapMs: 20 } : { kind: "json" }),
      [{ id: "acme/endless", upstreamModel: "endless" }, { id: "acme/ok" }],
    );
    const url = gateway?.url ?? "";
    const streaming = postChat({ model: "acme/endless", ...ask, stream: true });
    const reader = (await streaming).body?.getReader();
    await reader?.read();
    const closing = startDrain();
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: "not ready", reason: "draining" });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    await reader?.cancel();
    await closing;
    expect(upstream.forModel("endless")).toHaveLength(1);
  });

  it("ends the streams still running at server.drainTimeoutMs with an error event, and answers waiting requests 503", async () => {
    await setup(
      (request) => (request.model === "endless" ? { kind: "endless", gapMs: 20 } : { kind: "hang" }),
      [
        { id: "acme/endless", upstreamModel: "endless" },
        { id: "acme/hang", upstreamModel: "hang" },
      ],
      () => ({ server: { host: "127.0.0.1", port: 0, logLevel: "silent", drainTimeoutMs: 400 } }),
    );
    const stream = await postChat({ model: "acme/endless", ...ask, stream: true });
    const waiting = postChat({ model: "acme/hang", ...ask });
    await until(() => (upstream?.requests.length ?? 0) === 2, "both requests upstream");
    const closing = startDrain();
    const body = await stream.text();
    expect(body).toContain('"content":"xxxxxxxxxxxxxxxx"');
    expect(
      body
        .trimEnd()
        .endsWith(
          'data: {"error":{"message":"The gateway is shutting down; retry on another instance.","type":"server_error","param":null,"code":"gateway_shutting_down"}}',
        ),
    ).toBe(true);
    const refused = await waiting;
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { code: "gateway_shutting_down" } });
    await closing;
  });
});

describe("errors of node:http's parser", () => {
  it("answer in OpenAI's shape: 431 for headers too large, 400 for a request that is not HTTP", async () => {
    await setup(() => ({ kind: "json" }), [{ id: "acme/ok" }]);
    const large = await rawExchange(`GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-large: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(large.startsWith("HTTP/1.1 431 ")).toBe(true);
    expect(JSON.parse(large.slice(large.indexOf("\r\n\r\n") + 4))).toEqual({
      error: { message: "The request's headers are too large.", type: "invalid_request_error", param: null, code: "headers_too_large" },
    });
    const garbage = await rawExchange("HELLO THERE\r\n\r\n");
    expect(garbage.startsWith("HTTP/1.1 400 ")).toBe(true);
    expect(JSON.parse(garbage.slice(garbage.indexOf("\r\n\r\n") + 4))).toMatchObject({ error: { type: "invalid_request_error", code: "bad_http_request" } });
    // The gateway goes on serving.
    expect((await fetch(`${gateway?.url}/healthz`)).status).toBe(200);
  });
});
