// Traces end to end: the built gateway started with the standard OTEL_* variables, a scripted upstream,
// the official SDK as the caller with a W3C traceparent, and a real OTLP/HTTP receiver that must get the
// server span and one client span per attempt, parented and named as DESIGN.md "Traces" says.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import { stringify } from "yaml";
import { afterEach, describe, expect, it } from "vitest";
import { completion, startFakeUpstream, streamOf, type Behavior, type FakeUpstream, type ReceivedRequest } from "../helpers/fake-upstream.js";
import { PROVIDER_KEY, testConfig } from "../helpers/gateway.js";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../helpers/otlp-receiver.js";
import { useTempDirs } from "../helpers/temp-dir.js";
import { tracingWanted } from "../../src/observability/tracing.js";
import { REPO_ROOT } from "./observability-files.js";
import { startGateway, waitFor, type RunningGateway } from "./processes.js";

const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;
const PROMPT = "the prompt text that must never reach a trace";
const ANSWER = "an answer that must never reach a trace";

const tempDir = useTempDirs();
let upstream: FakeUpstream | undefined;
let receiver: OtlpReceiver | undefined;
let gateway: RunningGateway | undefined;
afterEach(async () => {
  await gateway?.handle.stop();
  await upstream?.close();
  await receiver?.close();
  gateway = undefined;
  upstream = undefined;
  receiver = undefined;
});

/** `node dist/main.js serve` on `raw`, exporting to the receiver; `batchDelayMs` is the span processor's delay. */
async function startTracedGateway(
  raw: Record<string, unknown>,
  otlp: OtlpReceiver,
  batchDelayMs: number,
  extraEnv: Record<string, string> = {},
): Promise<{ url: string; client: OpenAI }> {
  const configPath = join(tempDir("subsecond-otel-"), "gateway.yaml");
  writeFileSync(configPath, stringify({ ...raw, server: { host: "127.0.0.1", port: 0, logLevel: "info" } }));
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ["PORT", "HOST", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"])
    delete env[name];
  Object.assign(env, {
    FAKE_PROVIDER_KEY: PROVIDER_KEY,
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_SERVICE_NAME: "subsecond-under-test",
    OTEL_BSP_SCHEDULE_DELAY: String(batchDelayMs),
    ...extraEnv,
  });
  gateway = await startGateway(REPO_ROOT, configPath, env);
  return { url: gateway.url, client: new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "client-key", maxRetries: 0, timeout: 15_000 }) };
}

/** A W3C traceparent for a sampled remote parent: its trace id and span id. */
function remoteParent(): { traceId: string; spanId: string; header: string } {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

/** Waits until the receiver holds `count` spans of `traceId`. */
async function spansOf(otlp: OtlpReceiver, traceId: string, count: number, timeoutMs = 10_000): Promise<ReceivedSpan[]> {
  return waitFor(
    `${count} spans of trace ${traceId}`,
    () => {
      const found = otlp.spans.filter((span) => span.traceId === traceId);
      return found.length >= count ? found : undefined;
    },
    timeoutMs,
    50,
  );
}

function clientSpan(spans: readonly ReceivedSpan[], upstreamModel: string): ReceivedSpan {
  const span = spans.find((candidate) => candidate.kind === CLIENT && candidate.name === `chat ${upstreamModel}`);
  if (span === undefined) throw new Error(`no client span "chat ${upstreamModel}" among ${spans.map((s) => s.name).join(", ")}`);
  return span;
}

describe("OpenTelemetry traces", () => {
  it("exports a server span under the caller's traceparent and a client span per attempt of a fallback", async () => {
    receiver = await startOtlpReceiver();
    upstream = await startFakeUpstream((request) =>
      request.model === "broken-model"
        ? { kind: "error", status: 500, body: { error: { message: "exploded", type: "server_error", code: null } } }
        : { kind: "json", body: { ...completion("good-model-2026-01", ANSWER, { prompt_tokens: 11, completion_tokens: 7 }) } },
    );
    const raw = testConfig(upstream.url, [
      { id: "acme/broken", upstreamModel: "broken-model" },
      { id: "acme/good", upstreamModel: "good-model" },
    ]);
    const { client } = await startTracedGateway(raw, receiver, 100);
    const parent = remoteParent();

    const { data, response } = await client.chat.completions
      .create({ model: "chat", messages: [{ role: "user", content: PROMPT }] }, { headers: { traceparent: parent.header } })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(ANSWER);
    expect(response.headers.get("x-subsecond-attempts")).toBe("2");

    const spans = await spansOf(receiver, parent.traceId, 3);
    expect(spans).toHaveLength(3);
    const server = spans.find((span) => span.kind === SERVER);
    expect(server).toMatchObject({
      name: "chat chat",
      parentSpanId: parent.spanId,
      attributes: expect.objectContaining({
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "chat",
        "gen_ai.response.model": "good-model-2026-01",
        "subsecond.route": "chat",
        "subsecond.model": "acme/good",
        "subsecond.reason": "fallback",
        "subsecond.attempts": 2,
        "subsecond.hedge": false,
        "http.response.status_code": 200,
      }),
    });
    expect(server?.resource["service.name"]).toBe("subsecond-under-test");

    const broken = clientSpan(spans, "broken-model");
    const good = clientSpan(spans, "good-model");
    for (const span of [broken, good]) expect(span.parentSpanId).toBe(server?.spanId);
    expect(broken.attributes).toMatchObject({
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "fake",
      "gen_ai.request.model": "broken-model",
      "error.type": "error",
      "subsecond.attempt": 1,
      "subsecond.hedge": false,
      "subsecond.continuation": false,
    });
    expect(broken.attributes["subsecond.reason"]).not.toBe("fallback");
    expect(broken.attributes["subsecond.predicted_ms"]).toBeGreaterThan(0);
    expect(broken.statusCode).toBe(ERROR);
    expect(good.attributes).toMatchObject({
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "fake",
      "gen_ai.request.model": "good-model",
      "gen_ai.response.model": "good-model-2026-01",
      "gen_ai.usage.input_tokens": 11,
      "gen_ai.usage.output_tokens": 7,
      "gen_ai.response.finish_reasons": ["stop"],
      "subsecond.attempt": 2,
      "subsecond.reason": "fallback",
      "subsecond.hedge": false,
    });
    expect(good.attributes["error.type"]).toBeUndefined();
    expect(good.statusCode).not.toBe(ERROR);

    // Each attempt carries its own span as the provider's parent.
    const [sentGood] = upstream.forModel("good-model");
    expect(sentGood?.headers.traceparent).toBe(`00-${parent.traceId}-${good.spanId}-01`);
    const [sentBroken] = upstream.forModel("broken-model");
    expect(sentBroken?.headers.traceparent).toBe(`00-${parent.traceId}-${broken.spanId}-01`);
    // Never message content.
    const exported = receiver.bodies.join("\n");
    expect(exported).not.toContain(PROMPT);
    expect(exported).not.toContain(ANSWER);

    // A request refused before routing still has its server span, unnamed by a route.
    const refused = remoteParent();
    const error = await client.chat.completions
      .create({ model: "no-such-model", messages: [{ role: "user", content: PROMPT }] }, { headers: { traceparent: refused.header } })
      .catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    const [span] = await spansOf(receiver, refused.traceId, 1);
    expect(span).toMatchObject({
      name: "chat",
      kind: SERVER,
      parentSpanId: refused.spanId,
      attributes: expect.objectContaining({ "http.response.status_code": 404, "error.type": "client_error", "subsecond.attempts": 0 }),
    });
  });

  it("shows a hedge as its own client span beside the superseded first attempt", async () => {
    const CHEAP = "acme/cheap";
    const FAST = "acme/fast";
    receiver = await startOtlpReceiver();
    const answer = (request: ReceivedRequest, delayMs: number): Behavior => ({
      kind: "sse",
      headerDelayMs: delayMs,
      steps: streamOf(request.model, ["hedged ", "answer"]),
    });
    upstream = await startFakeUpstream((request) => answer(request, request.model === CHEAP ? 1400 : 20));
    const raw = testConfig(
      upstream.url,
      [
        { id: CHEAP, input: 0.05, output: 0.1, prior: { ttftMs: 100, tokensPerSecond: 2000 } },
        { id: FAST, input: 1, output: 2, prior: { ttftMs: 100, tokensPerSecond: 200 } },
      ],
      {
        routes: { chat: { candidates: [CHEAP, FAST], strategy: "cheapest-within-target", hedging: { marginMs: 150 } } },
        defaults: { exploration: { ratio: 0, newModelRatio: 0 } },
      },
    );
    const { client } = await startTracedGateway(raw, receiver, 100);
    // Measured fast, so the router can time a hedge from it.
    for (let i = 0; i < 6; i++) {
      const warm = await client.chat.completions.create({ model: FAST, stream: true, messages: [{ role: "user", content: "warm" }] });
      for await (const part of warm) void part;
    }
    const parent = remoteParent();

    const { data: stream, response } = await client.chat.completions
      .create({ model: "chat", stream: true, messages: [{ role: "user", content: PROMPT }] }, { headers: { traceparent: parent.header } })
      .withResponse();
    let text = "";
    for await (const part of stream) text += part.choices[0]?.delta.content ?? "";
    expect(text).toBe("hedged answer");
    expect(response.headers.get("x-subsecond-hedged")).toBe("1");

    const spans = await spansOf(receiver, parent.traceId, 3);
    const server = spans.find((span) => span.kind === SERVER);
    expect(server?.parentSpanId).toBe(parent.spanId);
    expect(server?.attributes).toMatchObject({ "subsecond.hedge": true, "subsecond.attempts": 2, "subsecond.model": FAST });
    const first = clientSpan(spans, CHEAP);
    const hedge = clientSpan(spans, FAST);
    for (const span of [first, hedge]) expect(span.parentSpanId).toBe(server?.spanId);
    expect(first.attributes).toMatchObject({ "subsecond.attempt": 1, "subsecond.hedge": false, "subsecond.outcome": "superseded" });
    expect(first.attributes["error.type"]).toBeUndefined();
    expect(hedge.attributes).toMatchObject({
      "subsecond.attempt": 2,
      "subsecond.hedge": true,
      "subsecond.reason": "hedge",
      "subsecond.outcome": "ok",
      "gen_ai.response.model": FAST,
      "gen_ai.response.finish_reasons": ["stop"],
      "gen_ai.usage.output_tokens": 2,
    });
  });

  it("samples as OTEL_TRACES_SAMPLER says, and passes an unsampled trace on to the provider as unsampled", async () => {
    receiver = await startOtlpReceiver();
    upstream = await startFakeUpstream((request) => ({ kind: "json", body: completion(request.model, "ok") }));
    const raw = testConfig(upstream.url, [{ id: "acme/only", upstreamModel: "only-model" }]);
    // The default sampler, parentbased_always_on, follows the caller's decision.
    const { client } = await startTracedGateway(raw, receiver, 50);
    const unsampled = remoteParent();
    const sampled = remoteParent();
    await client.chat.completions.create(
      { model: "chat", messages: [{ role: "user", content: "hi" }] },
      { headers: { traceparent: unsampled.header.replace(/-01$/, "-00") } },
    );
    await client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "hi" }] }, { headers: { traceparent: sampled.header } });
    // Spans are exported in order: once the sampled request's are in, the unsampled one's would be too.
    await spansOf(receiver, sampled.traceId, 2);
    expect(receiver.spans.filter((span) => span.traceId === unsampled.traceId)).toHaveLength(0);
    const [first, second] = upstream.forModel("only-model");
    expect(first?.headers.traceparent).toMatch(new RegExp(`^00-${unsampled.traceId}-[0-9a-f]{16}-00$`));
    expect(first?.headers.traceparent).not.toContain(unsampled.spanId);
    expect(second?.headers.traceparent).toMatch(new RegExp(`^00-${sampled.traceId}-[0-9a-f]{16}-01$`));
    await gateway?.handle.stop();

    // always_off: nothing is exported, and a trace the gateway starts itself goes upstream unsampled.
    const off = await startTracedGateway(raw, receiver, 50, { OTEL_TRACES_SAMPLER: "always_off" });
    const before = receiver.spans.length;
    await off.client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "hi" }] });
    await gateway?.handle.stop();
    expect(receiver.spans).toHaveLength(before);
    expect(upstream.forModel("only-model")[2]?.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it("exports the spans still batched when the gateway drains on SIGTERM", async () => {
    receiver = await startOtlpReceiver();
    upstream = await startFakeUpstream((request) => ({ kind: "json", body: completion(request.model, "ok") }));
    // A batch delay far past the test: only the shutdown flush can send these spans.
    const { client } = await startTracedGateway(testConfig(upstream.url, [{ id: "acme/only", upstreamModel: "only-model" }]), receiver, 600_000);
    const parent = remoteParent();
    await client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "hi" }] }, { headers: { traceparent: parent.header } });
    await sleep(300);
    expect(receiver.spans.filter((span) => span.traceId === parent.traceId)).toHaveLength(0);

    await gateway?.handle.stop();
    expect(gateway?.handle.exit()).toBe("exit code 0");
    const names = receiver.spans.filter((span) => span.traceId === parent.traceId).map((span) => span.name);
    expect(names.sort()).toEqual(["chat chat", "chat only-model"]);
  });
});

describe("an unreachable trace collector", () => {
  it("neither fails a request nor the drain: the gateway exits 0 and says the spans were not exported", async () => {
    const closed = await startOtlpReceiver();
    await closed.close();
    upstream = await startFakeUpstream((request) => ({ kind: "json", body: completion(request.model, "ok") }));
    const { client } = await startTracedGateway(testConfig(upstream.url, [{ id: "acme/only" }]), closed, 600_000, { OTEL_EXPORTER_OTLP_TIMEOUT: "500" });
    const answer = await client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "hi" }] });
    expect(answer.choices[0]?.message.content).toBe("ok");

    await gateway?.handle.stop(10_000);
    expect(gateway?.handle.exit()).toBe("exit code 0");
    expect(gateway?.handle.tail(5)).toContain("spans still batched could not be exported");
  });
});

describe("tracingWanted", () => {
  it("is on with an OTLP endpoint, unless the SDK is disabled or the traces exporter is none", () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_SERVICE_NAME: "gw", OTEL_TRACES_SAMPLER: "always_on" })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:4318/v1/traces" })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SDK_DISABLED: "TRUE" })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_TRACES_EXPORTER: "none" })).toBe(false);
  });
});
