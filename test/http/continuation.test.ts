// Streams cut after content, finished by another model from exactly the text already sent: through real
// sockets, the scripted upstream and the openai SDK.
import { afterEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { chunk, startFakeUpstream, usageChunk, type Behavior, type FakeUpstream, type ReceivedRequest, type SseStep } from "../helpers/fake-upstream.js";
import { startTestGateway, testConfig, type TestGateway, type TestModel } from "../helpers/gateway.js";
import { parseSimProfiles } from "../../src/sim/profiles.js";
import { fillerText } from "../../src/sim/plan.js";
import { startSimulator, type Simulator } from "../../src/sim/simulator.js";

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  await upstream?.close();
  gateway = undefined;
  upstream = undefined;
});

const ANSWER = "The quick brown fox jumps over the lazy dog, and then it runs home.";
const WORDS = ANSWER.split(/(?<= )/);
const ask = { messages: [{ role: "user" as const, content: "Tell me about the fox" }] };
const MODELS: TestModel[] = [
  { id: "acme/first" },
  { id: "acme/second", capabilities: ["tools", "json", "prefill"] },
  { id: "acme/third", capabilities: ["tools", "json", "prefill"] },
];

/** A chunk of stream `id`: each upstream names its stream differently, as real providers do. */
const part = (id: string, delta: Record<string, unknown>, finishReason: string | null = null): Record<string, unknown> => ({
  ...chunk(id, delta, finishReason),
  id,
});

/** The first `count` words, after a role delta. */
function opening(count: number): SseStep[] {
  return [part("chatcmpl-first", { role: "assistant", content: "" }), ...WORDS.slice(0, count).map((word) => part("chatcmpl-first", { content: word }))];
}

/** The text a continuation request prefills: its trailing assistant message. */
function prefillOf(request: ReceivedRequest): string | undefined {
  const messages = request.body.messages as { role: string; content: string }[];
  const last = messages[messages.length - 1];
  return last?.role === "assistant" ? last.content : undefined;
}

/** A model that continues `ANSWER` from whatever prefix it is given, with its own stream id and usage. */
function continues(request: ReceivedRequest): Behavior {
  const prefix = prefillOf(request) ?? "";
  const rest = ANSWER.slice(prefix.length).split(/(?<= )/);
  const id = `chatcmpl-${request.model.split("/")[1]}`;
  return {
    kind: "sse",
    steps: [
      part(id, { role: "assistant", content: "" }),
      ...rest.map((word) => part(id, { content: word })),
      part(id, {}, "stop"),
      { ...usageChunk(request.model, 30, rest.length), id },
    ],
  };
}

const REFUSAL: Behavior = {
  kind: "error",
  status: 400,
  body: {
    error: {
      message: "This model does not support assistant message prefill. The conversation must end with a user message.",
      type: "invalid_request_error",
      param: null,
      code: null,
    },
  },
};

async function setup(script: (request: ReceivedRequest, index: number) => Behavior, route: Record<string, unknown> = {}) {
  upstream = await startFakeUpstream(script);
  gateway = await startTestGateway(
    testConfig(upstream.url, MODELS, { routes: { chat: { candidates: MODELS.map((model) => model.id), strategy: "ordered", ...route } } }),
  );
  return { upstream, client: gateway.client };
}

type Chunk = OpenAI.Chat.Completions.ChatCompletionChunk;

/** Reads a stream to its end: its chunks, or the error the SDK raised (with the chunks before it). */
async function readStream(client: OpenAI, extra: Record<string, unknown> = {}): Promise<{ parts: Chunk[]; text: string; error: unknown }> {
  const stream = await client.chat.completions.create({ model: "chat", ...ask, stream: true, ...extra });
  const parts: Chunk[] = [];
  let error: unknown;
  try {
    for await (const received of stream as AsyncIterable<Chunk>) parts.push(received);
  } catch (caught) {
    error = caught;
  }
  return { parts, text: parts.map((received) => received.choices[0]?.delta.content ?? "").join(""), error };
}

async function metricsText(): Promise<string> {
  return (await fetch(`${gateway?.url}/metrics`)).text();
}

describe("continuation of a stream cut after content", () => {
  it("completes a stream cut after some words from exactly the text sent: no gap, no repetition, one role delta, one stream id", async () => {
    const { client, upstream } = await setup((request) =>
      request.model === "acme/first" ? { kind: "sse", steps: opening(5), end: "cut" } : continues(request),
    );
    const { parts, text, error } = await readStream(client);
    expect(error).toBeUndefined();
    expect(text).toBe(ANSWER);
    expect(new Set(parts.map((received) => received.id))).toEqual(new Set(["chatcmpl-first"]));
    expect(parts.filter((received) => received.choices[0]?.delta.role !== undefined)).toHaveLength(1);
    expect(parts.at(-1)?.choices[0]?.finish_reason).toBe("stop");

    expect(upstream.requests.map((request) => request.model)).toEqual(["acme/first", "acme/second"]);
    const continuation = upstream.requests[1] as ReceivedRequest;
    expect(continuation.body.messages).toEqual([...ask.messages, { role: "assistant", content: WORDS.slice(0, 5).join("") }]);
    expect(await metricsText()).toContain('subsecond_continuations_total{route="chat",outcome="completed"} 1');
    const { events } = (await (await fetch(`${gateway?.url}/admin/events`)).json()) as { events: { kind: string; models: string[] }[] };
    expect(events.filter((event) => event.kind === "continuation").map((event) => event.models)).toEqual([["acme/first", "acme/second"]]);
  });

  it("completes a stream that stalled past idleMs", async () => {
    const { client, upstream } = await setup(
      (request) =>
        request.model === "acme/first"
          ? { kind: "sse", steps: [...opening(3), { pauseMs: 3000 }, part("chatcmpl-first", { content: "late" })], end: "hang" }
          : continues(request),
      { deadlines: { idleMs: 300 } },
    );
    const { text, error } = await readStream(client);
    expect(error).toBeUndefined();
    expect(text).toBe(ANSWER);
    expect(prefillOf(upstream.requests[1] as ReceivedRequest)).toBe(WORDS.slice(0, 3).join(""));
  });

  it("completes a stream broken by a malformed chunk, which never reaches the client", async () => {
    const { client } = await setup((request) =>
      request.model === "acme/first"
        ? { kind: "sse", steps: [...opening(4), { raw: "data: {not json\n\n" }, part("chatcmpl-first", { content: "never" })] }
        : continues(request),
    );
    const { text, error } = await readStream(client);
    expect(error).toBeUndefined();
    expect(text).toBe(ANSWER);
    const response = await fetch(`${gateway?.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "chat", ...ask, stream: true }),
    });
    const body = await response.text();
    expect(body).not.toContain("not json");
    expect(body).not.toContain("never");
    expect(body).not.toContain('"error"');
    expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
  });

  it("sums the usage of both attempts when the client asked for it", async () => {
    const { client } = await setup((request) =>
      request.model === "acme/first"
        ? {
            kind: "sse",
            steps: [...opening(4), { error: { message: "overloaded" }, usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 } }],
          }
        : continues(request),
    );
    const { parts, text, error } = await readStream(client, { stream_options: { include_usage: true } });
    expect(error).toBeUndefined();
    expect(text).toBe(ANSWER);
    const rest = WORDS.length - 4;
    const usage = parts.at(-1)?.usage;
    expect(usage).toEqual({ prompt_tokens: 12 + 30, completion_tokens: 4 + rest, total_tokens: 12 + 30 + 4 + rest });
    expect(parts.filter((received) => received.usage)).toHaveLength(1);
    expect(parts.at(-1)?.id).toBe("chatcmpl-first");
  });

  it("ends with the original error when the target refuses prefill, and no longer asks that model to continue", async () => {
    const { client, upstream } = await setup((request) => {
      if (request.model === "acme/first") return { kind: "sse", steps: opening(3), end: "cut" };
      return request.model === "acme/second" ? REFUSAL : continues(request);
    });
    const refused = await readStream(client);
    expect(refused.text).toBe(WORDS.slice(0, 3).join(""));
    expect(refused.error).toBeInstanceOf(OpenAI.APIError);
    expect((refused.error as Error).message).toMatch(/The upstream stream (was cut|failed)/);
    expect((refused.error as Error).message).not.toMatch(/prefill/);
    expect(upstream.requests.map((request) => request.model)).toEqual(["acme/first", "acme/second"]);

    const next = await readStream(client);
    expect(next.error).toBeUndefined();
    expect(next.text).toBe(ANSWER);
    expect(upstream.requests.map((request) => request.model).slice(2)).toEqual(["acme/first", "acme/third"]);
    const metrics = await metricsText();
    expect(metrics).toContain('subsecond_continuations_total{route="chat",outcome="refused"} 1');
    expect(metrics).toContain('subsecond_continuations_total{route="chat",outcome="completed"} 1');
  });

  it("ends with the original error when the continuation fails too", async () => {
    const { client, upstream } = await setup((request) => {
      if (request.model === "acme/first") return { kind: "sse", steps: opening(3), end: "cut" };
      return { kind: "error", status: 500, body: { error: { message: "continuation exploded", type: "server_error" } } };
    });
    const { text, error } = await readStream(client);
    expect(text).toBe(WORDS.slice(0, 3).join(""));
    expect((error as Error).message).toMatch(/The upstream stream (was cut|failed)/);
    expect((error as Error).message).not.toMatch(/exploded/);
    // continuation.max is 1: the third model, which could continue too, is not asked.
    expect(upstream.requests.map((request) => request.model)).toEqual(["acme/first", "acme/second"]);
    expect(await metricsText()).toContain('subsecond_continuations_total{route="chat",outcome="failed"} 1');
  });

  for (const [when, route] of [
    ["no candidate supports prefill", { candidates: ["acme/first"] }],
    ["continuation is off", { continuation: { enabled: false } }],
  ] as const) {
    it(`ends with the original error when ${when}`, async () => {
      const { client, upstream } = await setup(
        (request) => (request.model === "acme/first" ? { kind: "sse", steps: opening(3), end: "cut" } : continues(request)),
        route,
      );
      const { text, error } = await readStream(client);
      expect(text).toBe(WORDS.slice(0, 3).join(""));
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect(upstream.requests).toHaveLength(1);
    });
  }

  it("does not continue a stream that sent tool-call deltas", async () => {
    const toolCall = { index: 0, id: "call_1", type: "function", function: { name: "lookup", arguments: '{"q":' } };
    const { client, upstream } = await setup((request) =>
      request.model === "acme/first"
        ? {
            kind: "sse",
            steps: [part("chatcmpl-first", { role: "assistant", content: "Let me look. " }), part("chatcmpl-first", { tool_calls: [toolCall] })],
            end: "cut",
          }
        : continues(request),
    );
    const { error } = await readStream(client);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(upstream.requests).toHaveLength(1);
    expect(await metricsText()).toContain('subsecond_continuations_total{route="chat",outcome="ineligible"} 1');
  });
});

describe("continuation with the simulator", () => {
  let simulator: Simulator | undefined;
  afterEach(async () => {
    await simulator?.close();
    simulator = undefined;
  });

  it("finishes a stream the simulator cuts on the model it continues for, word for word", async () => {
    const model = (id: string, prefill: boolean, cut: number) => ({
      id,
      ttft: { medianMs: 20, sigma: 0 },
      prefillTokensPerSecond: 1e9,
      tokensPerSecond: { mean: 2000, jitter: 0 },
      outputTokens: { median: 30, sigma: 0 },
      prefill,
      faults: { cut: { probability: cut } },
    });
    simulator = await startSimulator({
      profiles: parseSimProfiles({ story: { tokensPerChunk: 2 }, models: [model("sim/cutter", false, 1), model("sim/finisher", true, 0)] }),
      storyDurationMs: 600_000,
    });
    gateway = await startTestGateway(
      testConfig(simulator.url, [{ id: "sim/cutter" }, { id: "sim/finisher", capabilities: ["tools", "json", "prefill"] }], {
        routes: { chat: { candidates: ["sim/cutter", "sim/finisher"], strategy: "ordered" } },
      }),
    );
    const { data: stream, response } = await gateway.client.chat.completions.create({ model: "chat", ...ask, stream: true }).withResponse();
    let text = "";
    for await (const received of stream) text += received.choices[0]?.delta.content ?? "";
    expect(response.headers.get("x-subsecond-model")).toBe("sim/cutter");
    const words = text.split(" ").length;
    // The cut answer's words, then the finisher's 30 from where they stopped: one unbroken filler text.
    expect(words).toBeGreaterThan(30);
    expect(text).toBe(fillerText(0, words));
  });
});
