import { afterEach, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI, { InternalServerError, NotFoundError, RateLimitError } from "openai";
import { parseSimProfiles, parseSimProfilesText, type SimProfiles, type SimProfilesInput } from "../../src/sim/profiles.js";
import { startSimulator, type Simulator, type SimulatorOptions } from "../../src/sim/simulator.js";

const shipped = parseSimProfilesText(readFileSync(new URL("../../config/sim-profiles.yaml", import.meta.url), "utf8"));
const running: Simulator[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((sim) => sim.close()));
});

async function start(options: Partial<SimulatorOptions> = {}): Promise<Simulator> {
  const sim = await startSimulator({ profiles: shipped, storyDurationMs: 600000, faults: false, latencyScale: 0.1, seed: 1, ...options });
  running.push(sim);
  return sim;
}

const clientOf = (sim: Simulator): OpenAI => new OpenAI({ baseURL: sim.url, apiKey: "x", maxRetries: 0 });

/** One model answering 40 tokens, 2 per chunk, 10 ms apart after a 30 ms first token; `faults` scripted. */
function oneModel(faults: SimProfilesInput["faults"] = {}): SimProfiles {
  return parseSimProfiles({
    story: { tokensPerChunk: 2 },
    faults,
    models: [
      {
        id: "sim/model",
        ttft: { medianMs: 30, sigma: 0 },
        prefillTokensPerSecond: 1e9,
        tokensPerSecond: { mean: 200, jitter: 0 },
        outputTokens: { median: 40, sigma: 0 },
      },
    ],
  });
}

const ask = (model: string, extra: Record<string, unknown> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ model, messages: [{ role: "user", content: "Say something." }], ...extra }),
});

/** Reads an SSE body until it ends or breaks; returns the `data:` payloads and whether the body broke. */
async function readSse(response: Response): Promise<{ data: string[]; broken: boolean }> {
  const reader = response.body?.getReader();
  if (reader === undefined) throw new Error("no body");
  const decoder = new TextDecoder();
  let text = "";
  let broken = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    broken = true;
  }
  const data = text
    .split("\n\n")
    .filter((event) => event.startsWith("data: "))
    .map((event) => event.slice("data: ".length));
  return { data, broken };
}

type Chunk = {
  choices: { delta: { content?: string; role?: string }; finish_reason: string | null }[];
  usage?: { completion_tokens: number; prompt_tokens: number; total_tokens: number };
};

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

/** Streams one answer through the SDK; returns the time to the first content chunk, in ms. */
async function ttftMs(client: OpenAI, model: string): Promise<number> {
  const started = performance.now();
  const stream = await client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], stream: true, max_tokens: 3 });
  let first = Number.NaN;
  for await (const chunk of stream) {
    if (Number.isNaN(first) && (chunk.choices[0]?.delta.content ?? "") !== "") first = performance.now() - started;
  }
  return first;
}

describe("answers", () => {
  it("returns a chat.completion whose usage matches the prompt and the words generated", async () => {
    const sim = await start();
    const { data, response } = await clientOf(sim)
      .chat.completions.create({ model: "google/gemini-2.5-flash-lite", messages: [{ role: "user", content: "x".repeat(400) }] })
      .withResponse();
    expect(response.headers.get("x-sim-model")).toBe("google/gemini-2.5-flash-lite");
    expect(data.object).toBe("chat.completion");
    expect(data.model).toBe("google/gemini-2.5-flash-lite");
    const content = data.choices[0]?.message.content ?? "";
    const words = content.split(" ").length;
    expect(words).toBeGreaterThan(5);
    expect(data.choices[0]?.finish_reason).toBe("stop");
    expect(data.usage).toMatchObject({ prompt_tokens: 100, completion_tokens: words, total_tokens: 100 + words });
  });

  it("respects max_tokens with finish_reason length", async () => {
    const sim = await start();
    const data = await clientOf(sim).chat.completions.create({ model: "openai/gpt-4.1-nano", messages: [{ role: "user", content: "hi" }], max_tokens: 4 });
    expect(data.choices[0]?.finish_reason).toBe("length");
    expect(data.usage?.completion_tokens).toBe(4);
    expect(data.choices[0]?.message.content?.split(" ")).toHaveLength(4);
  });

  it("streams incrementally: role delta first, content paced over time, finish_reason, no usage unless asked", async () => {
    const sim = await start({ profiles: oneModel(), latencyScale: 1 });
    const started = performance.now();
    const stream = await clientOf(sim).chat.completions.create({ model: "sim/model", messages: [{ role: "user", content: "hi" }], stream: true });
    const seen: { atMs: number; chunk: OpenAI.ChatCompletionChunk }[] = [];
    for await (const chunk of stream) seen.push({ atMs: performance.now() - started, chunk });
    expect(seen[0]?.chunk.choices[0]?.delta).toEqual({ role: "assistant", content: "" });
    const content = seen.filter((s) => (s.chunk.choices[0]?.delta.content ?? "") !== "");
    expect(content).toHaveLength(20);
    const firstMs = content[0]?.atMs ?? 0;
    const lastMs = content.at(-1)?.atMs ?? 0;
    // 19 gaps of 10 ms after the first token: arrival spreads over ~190 ms rather than landing at once
    expect(lastMs - firstMs).toBeGreaterThan(120);
    // The first content follows the role chunk at once; it is not held back with the rest.
    expect(firstMs - (seen[0]?.atMs ?? 0)).toBeLessThan(lastMs - firstMs);
    expect(seen.at(-1)?.chunk.choices[0]?.finish_reason).toBe("stop");
    expect(seen.every((s) => s.chunk.choices.length === 1 && s.chunk.usage == null)).toBe(true);
    expect(
      content
        .map((s) => s.chunk.choices[0]?.delta.content)
        .join("")
        .split(" "),
    ).toHaveLength(40);
  });

  it("ends the raw SSE stream with a usage-only chunk when asked, then [DONE]", async () => {
    const sim = await start();
    const response = await fetch(
      `${sim.url}/chat/completions`,
      ask("qwen/qwen3.5-9b", { stream: true, stream_options: { include_usage: true }, max_completion_tokens: 5 }),
    );
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const { data, broken } = await readSse(response);
    expect(broken).toBe(false);
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as Chunk);
    const usage = chunks.at(-1);
    expect(usage?.choices).toEqual([]);
    expect(usage?.usage).toEqual({ prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 });
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("length");
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text.split(" ")).toHaveLength(5);
  });

  it("lists the profiled models", async () => {
    const sim = await start();
    const ids: string[] = [];
    for await (const model of clientOf(sim).models.list()) ids.push(model.id);
    expect(ids).toEqual(shipped.models.map((m) => m.id));
  });

  it("gives the same answers for the same seed", async () => {
    const lengths = async (seed: number) => {
      const client = clientOf(await start({ seed, latencyScale: 0.01 }));
      const out: number[] = [];
      for (let i = 0; i < 4; i++) {
        const data = await client.chat.completions.create({ model: "google/gemini-2.5-flash-lite", messages: [{ role: "user", content: "hi" }] });
        out.push(data.usage?.completion_tokens ?? 0);
      }
      return out;
    };
    expect(await lengths(5)).toEqual(await lengths(5));
    expect(await lengths(5)).not.toEqual(await lengths(6));
  });
});

describe("latency profiles", () => {
  // Client-side timings include event-loop and connection overhead, which grows on a busy machine; it adds
  // to both sides, so the assertions compare differences and generous ratios rather than absolute values.
  it("gives a fast model a much earlier first token than a slow one", async () => {
    const client = clientOf(await start({ latencyScale: 0.3 }));
    await client.models.list(); // warm the connection pool: the first request of a process pays for set-up
    const runs = (model: string) => Promise.all(Array.from({ length: 7 }, () => ttftMs(client, model)));
    const [fast, slow] = await Promise.all([runs("google/gemini-2.5-flash-lite"), runs("stepfun/step-3.7-flash")]);
    // profiled medians 300 ms and 1500 ms, scaled by 0.3: ~90 ms against ~450 ms
    const why = `fast ${fast.map(Math.round).join()} slow ${slow.map(Math.round).join()}`;
    expect(median(slow) - median(fast), why).toBeGreaterThan(200);
    expect(median(slow), why).toBeGreaterThan(2 * median(fast));
  });

  it("slows qwen3.5-flash down during its brownout, in a two-second story", async () => {
    const storyDurationMs = 2000;
    const sim = await start({ storyDurationMs, latencyScale: 0.3 });
    const client = clientOf(sim);
    await client.models.list();
    const flash = "qwen/qwen3.5-flash-02-23";
    const runs = () => Promise.all(Array.from({ length: 3 }, () => ttftMs(client, flash)));
    const healthy = await runs();
    await sleep(Math.max(0, (0.33 - sim.storyFraction()) * storyDurationMs));
    expect(sim.phaseAt(flash)?.ttftMultiplier).toBe(5);
    const sentAt = sim.storyFraction();
    const [degraded, { response }] = await Promise.all([
      runs(),
      client.chat.completions.create({ model: flash, messages: [{ role: "user", content: "hi" }], max_tokens: 1 }).withResponse(),
    ]);
    expect(sentAt).toBeLessThan(0.55); // every request of this batch arrived inside the brownout
    expect(response.headers.get("x-sim-episodes")).toBe("qwen-flash-brownout");
    // profiled median 280 ms, scaled by 0.3: ~85 ms healthy, ~420 ms in the brownout
    const why = `healthy ${healthy.map(Math.round).join()} degraded ${degraded.map(Math.round).join()}`;
    expect(median(degraded) - median(healthy), why).toBeGreaterThan(200);
    expect(median(degraded), why).toBeGreaterThan(2 * median(healthy));
  });
});

describe("faults", () => {
  it("answers 429 with Retry-After and OpenAI's error shape, unless faults are off", async () => {
    const profiles = oneModel({ rateLimit: { probability: 1, retryAfterSeconds: 7 } });
    const client = clientOf(await start({ profiles, faults: true }));
    const error = await client.chat.completions.create({ model: "sim/model", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    const rateLimited = error as RateLimitError;
    expect(rateLimited.headers.get("retry-after")).toBe("7");
    expect(rateLimited.headers.get("x-sim-fault")).toBe("rate-limit");
    expect(rateLimited.code).toBe("rate_limit_exceeded");
    const calm = clientOf(await start({ profiles, faults: false }));
    const data = await calm.chat.completions.create({ model: "sim/model", messages: [{ role: "user", content: "hi" }] });
    expect(data.usage?.completion_tokens).toBe(40);
  });

  it("fails with a 5xx before the first byte of a stream", async () => {
    const client = clientOf(await start({ profiles: oneModel({ serverError: { probability: 1, statuses: [503] } }), faults: true }));
    const error = await client.chat.completions
      .create({ model: "sim/model", messages: [{ role: "user", content: "hi" }], stream: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect((error as InternalServerError).status).toBe(503);
  });

  it("cuts a stream: fewer chunks, no finish_reason, no [DONE]", async () => {
    const clean = await start({ profiles: oneModel({ cut: { probability: 1 } }), faults: false, latencyScale: 0.2 });
    const cut = await start({ profiles: oneModel({ cut: { probability: 1 } }), faults: true, latencyScale: 0.2 });
    const whole = await readSse(await fetch(`${clean.url}/chat/completions`, ask("sim/model", { stream: true })));
    const response = await fetch(`${cut.url}/chat/completions`, ask("sim/model", { stream: true }));
    expect(response.status).toBe(200);
    const partial = await readSse(response);
    expect(whole.data.at(-1)).toBe("[DONE]");
    expect(partial.broken).toBe(true);
    expect(partial.data).not.toContain("[DONE]");
    const chunks = partial.data.map((d) => JSON.parse(d) as Chunk);
    expect(chunks.some((c) => (c.choices[0]?.delta.content ?? "") !== "")).toBe(true);
    expect(chunks.every((c) => c.choices[0]?.finish_reason === null)).toBe(true);
    expect(partial.data.length).toBeLessThan(whole.data.length - 2);
  });

  it("hangs without headers until the client gives up", async () => {
    const sim = await start({ profiles: oneModel({ hang: { probability: 1, modes: ["no-headers"] } }), faults: true });
    const started = performance.now();
    const error = await fetch(`${sim.url}/chat/completions`, { ...ask("sim/model"), signal: AbortSignal.timeout(300) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe("TimeoutError");
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it("hangs after headers and the role delta, and close() releases it at once", async () => {
    const sim = await startSimulator({
      profiles: oneModel({ hang: { probability: 1, modes: ["no-first-token"] } }),
      storyDurationMs: 60000,
      faults: true,
      latencyScale: 0.1,
    });
    const response = await fetch(`${sim.url}/chat/completions`, ask("sim/model", { stream: true }));
    expect(response.status).toBe(200);
    expect(response.headers.get("x-sim-fault")).toBe("hang");
    const reader = response.body?.getReader();
    if (reader === undefined) throw new Error("no body");
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('"role":"assistant"');
    const pending = reader.read();
    const idle = await Promise.race([pending.then(() => "data"), sleep(300).then(() => "silence")]);
    expect(idle).toBe("silence");
    const closeStarted = performance.now();
    await sim.close();
    expect(performance.now() - closeStarted).toBeLessThan(200);
    await expect(pending).rejects.toThrow();
  });
});

describe("cleanup", () => {
  it("stops a stream's timers when the client disconnects", async () => {
    const sim = await start({ profiles: oneModel(), latencyScale: 10 }); // 300 ms to first token, then 100 ms per chunk
    const controller = new AbortController();
    const response = await fetch(`${sim.url}/chat/completions`, { ...ask("sim/model", { stream: true }), signal: controller.signal });
    const reader = response.body?.getReader();
    if (reader === undefined) throw new Error("no body");
    await reader.read(); // the role delta
    expect(sim.openRequests()).toBe(1);
    controller.abort();
    const deadline = performance.now() + 500;
    while (sim.openRequests() > 0 && performance.now() < deadline) await sleep(10);
    expect(sim.openRequests()).toBe(0);
  });
});

describe("prefill", () => {
  const profiles = (prefill: boolean): SimProfiles => {
    const base = oneModel();
    return { ...base, models: base.models.map((model) => ({ ...model, prefill })) };
  };
  const messages = (prefix: string) => [
    { role: "user" as const, content: "Say something." },
    { role: "assistant" as const, content: prefix },
  ];

  it("continues a trailing assistant message from its words, for a model marked prefill", async () => {
    const client = clientOf(await start({ profiles: profiles(true) }));
    const whole = await client.chat.completions.create({ model: "sim/model", messages: [{ role: "user", content: "Say something." }], max_tokens: 12 });
    const text = whole.choices[0]?.message.content ?? "";
    const prefix = text.split(" ").slice(0, 5).join(" ");
    const stream = await client.chat.completions.create({ model: "sim/model", messages: messages(prefix), max_tokens: 7, stream: true });
    let rest = "";
    for await (const part of stream) rest += part.choices[0]?.delta.content ?? "";
    expect(prefix + rest).toBe(text);
  });

  it("refuses a trailing assistant message with a 400 about prefill, for a model not marked", async () => {
    const client = clientOf(await start({ profiles: profiles(false) }));
    const error = await client.chat.completions.create({ model: "sim/model", messages: messages("Simulated answer") }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as Error).message).toMatch(/does not support assistant message prefill/);
  });
});

describe("request errors", () => {
  it("answers an unknown model with NotFoundError", async () => {
    const client = clientOf(await start());
    const error = await client.chat.completions.create({ model: "ghost/model", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).code).toBe("model_not_found");
    expect((error as NotFoundError).headers.get("x-sim-model")).toBe("ghost/model");
  });

  it("answers invalid JSON and unknown paths in OpenAI's error shape", async () => {
    const sim = await start();
    const bad = await fetch(`${sim.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("x-sim-model")).toBe("-");
    expect(await bad.json()).toEqual({ error: { message: expect.any(String), type: "invalid_request_error", param: null, code: "invalid_json" } });
    const badMax = await fetch(`${sim.url}/chat/completions`, ask("qwen/qwen3.5-9b", { max_tokens: 0 }));
    expect(badMax.status).toBe(400);
    expect(await badMax.json()).toMatchObject({ error: { param: "max_tokens" } });
    const other = await fetch(`${sim.url}/embeddings`, { method: "POST", body: "{}" });
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ error: { type: "invalid_request_error", code: "unknown_url" } });
  });
});
