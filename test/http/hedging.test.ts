// Hedged attempts end to end: a scripted upstream on 127.0.0.1, the gateway on port 0, the openai SDK.
import { afterEach, describe, expect, it } from "vitest";
import { chunk, completion, startFakeUpstream, streamOf, type Behavior, type FakeUpstream, type ReceivedRequest } from "../helpers/fake-upstream.js";
import { startTestGateway, testConfig, type TestGateway } from "../helpers/gateway.js";

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;
afterEach(async () => {
  await gateway?.close();
  await upstream?.close();
  gateway = undefined;
  upstream = undefined;
});

const MARGIN_MS = 150;
const CHEAP = "acme/cheap";
const FAST = "acme/fast";
const SPARE = "acme/spare";

/** A route whose cheapest model is hedged to a measured fast one. */
function hedgedConfig(url: string, hedging: Record<string, unknown> = {}, target?: Record<string, unknown>): Record<string, unknown> {
  return testConfig(
    url,
    [
      { id: CHEAP, input: 0.05, output: 0.1, prior: { ttftMs: 100, tokensPerSecond: 2000 } },
      { id: FAST, input: 1, output: 2, prior: { ttftMs: 100, tokensPerSecond: 200 } },
      { id: SPARE, input: 2, output: 4, prior: { ttftMs: 100, tokensPerSecond: 200 } },
    ],
    {
      routes: {
        chat: {
          candidates: [CHEAP, FAST, SPARE],
          strategy: "cheapest-within-target",
          hedging: { marginMs: MARGIN_MS, ...hedging },
          ...(target ? { target } : {}),
        },
      },
      defaults: { exploration: { ratio: 0, newModelRatio: 0 } },
    },
  );
}

/** Streams `words` after `delayMs`, or answers JSON after it. */
function answer(request: ReceivedRequest, words: string[], delayMs: number): Behavior {
  if (request.body.stream !== true) return { kind: "json", body: completion(request.model, words.join("")), delayMs };
  return { kind: "sse", headerDelayMs: delayMs, steps: streamOf(request.model, words) };
}

/** Warms FAST with pinned requests, so the router has measured it (and can time a hedge from it). */
async function measureFast(test: TestGateway): Promise<number> {
  for (let i = 0; i < 6; i++) {
    const stream = await test.client.chat.completions.create({ model: FAST, stream: true, messages: [{ role: "user", content: "warm" }] });
    for await (const part of stream) void part;
  }
  const routes = (await (await fetch(`${test.url}/admin/routes`)).json()) as { routes: { candidates: { id: string; predictedMs: number }[] }[] };
  const fast = routes.routes[0]?.candidates.find((candidate) => candidate.id === FAST);
  return 800 - (fast?.predictedMs ?? Number.NaN) - MARGIN_MS;
}

async function metrics(test: TestGateway): Promise<string> {
  return (await fetch(`${test.url}/metrics`)).text();
}

function metric(text: string, pattern: RegExp): number {
  const line = text.split("\n").find((candidate) => pattern.test(candidate));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("hedged attempts", () => {
  it("hedges a slow stream at the computed delay, sends only the winner's bytes, and aborts the loser upstream", async () => {
    upstream = await startFakeUpstream((request) =>
      request.model === CHEAP ? answer(request, ["slow ", "answer"], 1400) : answer(request, ["fast ", "answer"], 20),
    );
    gateway = await startTestGateway(hedgedConfig(upstream.url));
    const delayMs = await measureFast(gateway);
    expect(delayMs).toBeGreaterThan(500);

    const { data: stream, response } = await gateway.client.chat.completions
      .create({ model: "chat", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    let text = "";
    for await (const part of stream) text += part.choices[0]?.delta.content ?? "";

    expect(text).toBe("fast answer");
    expect(response.headers.get("x-subsecond-hedged")).toBe("1");
    expect(response.headers.get("x-subsecond-model")).toBe(FAST);
    expect(response.headers.get("x-subsecond-attempts")).toBe("2");
    expect(response.headers.get("x-subsecond-reason")).toBe("within-target");
    const [primary] = upstream.forModel(CHEAP);
    const hedge = upstream.forModel(FAST).at(-1);
    const firedAfterMs = (hedge?.receivedAt ?? 0) - (primary?.receivedAt ?? 0);
    expect(firedAfterMs).toBeGreaterThanOrEqual(delayMs - 25);
    expect(firedAfterMs).toBeLessThan(delayMs + 150);
    // The loser is cancelled at once: its upstream connection closes before it could answer.
    await primary?.closed;
    expect(primary?.closedEarly).toBe(true);

    const text2 = await metrics(gateway);
    expect(metric(text2, /^subsecond_hedges_total\{route="chat",outcome="won"\}/)).toBe(1);
    expect(metric(text2, /^subsecond_upstream_attempts_total\{model="acme\/cheap",outcome="superseded"\}/)).toBe(1);
    // Hedging is never free on paper: the loser's prompt is metered.
    expect(metric(text2, /^subsecond_cost_usd_total\{route="chat",model="acme\/cheap"\}/)).toBeGreaterThan(0);
  });

  it("does not hedge a non-streamed answer on a first-token route, whose target only streams can be held to", async () => {
    upstream = await startFakeUpstream((request) => (request.model === CHEAP ? answer(request, ["slow"], 1000) : answer(request, ["fast"], 20)));
    gateway = await startTestGateway(hedgedConfig(upstream.url));
    await measureFast(gateway);
    const { data, response } = await gateway.client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "hi" }] }).withResponse();
    expect(data.choices[0]?.message.content).toBe("slow");
    expect(response.headers.get("x-subsecond-hedged")).toBeNull();
  });

  it("sends no hedge when the first attempt delivers before the delay", async () => {
    upstream = await startFakeUpstream((request) => answer(request, ["prompt ", "answer"], request.model === CHEAP ? 200 : 20));
    gateway = await startTestGateway(hedgedConfig(upstream.url));
    await measureFast(gateway);
    const fastBefore = upstream.forModel(FAST).length;
    const { data: stream, response } = await gateway.client.chat.completions
      .create({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    for await (const part of stream) void part;
    expect(response.headers.get("x-subsecond-model")).toBe(CHEAP);
    expect(response.headers.get("x-subsecond-hedged")).toBeNull();
    expect(upstream.forModel(FAST).length).toBe(fastBefore);
  });

  it("hedges a slow non-streamed answer on a route whose target bounds the whole answer, and answers with the hedge's body", async () => {
    upstream = await startFakeUpstream((request) => (request.model === CHEAP ? answer(request, ["slow"], 1400) : answer(request, ["fast ", "answer"], 20)));
    gateway = await startTestGateway(hedgedConfig(upstream.url, {}, { metric: "total", percentile: 95, ms: 800 }));
    await measureFast(gateway);
    const { data, response } = await gateway.client.chat.completions
      .create({ model: "chat", max_tokens: 5, messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe("fast answer");
    expect(response.headers.get("x-subsecond-hedged")).toBe("1");
    expect(response.headers.get("x-subsecond-model")).toBe(FAST);
    const [primary] = upstream.forModel(CHEAP);
    await primary?.closed;
    expect(primary?.closedEarly).toBe(true);
  });

  it("keeps the first attempt when it wins the race, and counts the hedge as lost", async () => {
    // The hedge target is slow this time: the first attempt delivers first after all.
    let fastDelayMs = 20;
    upstream = await startFakeUpstream((request) => answer(request, ["done"], request.model === CHEAP ? 800 : fastDelayMs));
    gateway = await startTestGateway(hedgedConfig(upstream.url));
    await measureFast(gateway);
    fastDelayMs = 1000;
    const { data: stream, response } = await gateway.client.chat.completions
      .create({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    for await (const part of stream) void part;
    expect(response.headers.get("x-subsecond-model")).toBe(CHEAP);
    expect(response.headers.get("x-subsecond-hedged")).toBe("1");
    const hedge = upstream.forModel(FAST).at(-1);
    await hedge?.closed;
    expect(hedge?.closedEarly).toBe(true);
    expect(metric(await metrics(gateway), /^subsecond_hedges_total\{route="chat",outcome="lost"\}/)).toBe(1);
  });

  it("falls back as before when both the first attempt and its hedge fail", async () => {
    upstream = await startFakeUpstream((request, index) => {
      if (request.model === CHEAP) return { kind: "error", status: 503, delayMs: 900 };
      if (request.model === FAST && index >= 6) return { kind: "error", status: 500 };
      return answer(request, ["spare ", "answer"], 20);
    });
    gateway = await startTestGateway(hedgedConfig(upstream.url));
    await measureFast(gateway);
    const { data: stream, response } = await gateway.client.chat.completions
      .create({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    let text = "";
    for await (const part of stream) text += part.choices[0]?.delta.content ?? "";
    expect(text).toBe("spare answer");
    expect(response.headers.get("x-subsecond-model")).toBe(SPARE);
    expect(response.headers.get("x-subsecond-attempts")).toBe("3");
    expect(response.headers.get("x-subsecond-reason")).toBe("fallback");
    const text2 = await metrics(gateway);
    expect(metric(text2, /^subsecond_hedges_total\{route="chat",outcome="failed"\}/)).toBe(1);
    expect(metric(text2, /^subsecond_fallbacks_total\{route="chat",from_model="acme\/cheap",reason="error"\}/)).toBe(1);
  });

  it("counts a fallback as an extra attempt: the hedge budget it spent is not there for the next hedge", async () => {
    // The first routed request (index 6, after six warm-ups) fails on the cheap model and falls back;
    // the next one is slow on it, past the hedge delay.
    upstream = await startFakeUpstream((request, index) =>
      request.model === CHEAP && index === 6 ? { kind: "error", status: 500 } : answer(request, ["ok"], request.model === CHEAP ? 900 : 20),
    );
    gateway = await startTestGateway(hedgedConfig(upstream.url, { maxRatio: 0.05 }));
    await measureFast(gateway);
    const ask = async () => {
      const { data: stream, response } = await gateway!.client.chat.completions
        .create({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] })
        .withResponse();
      for await (const part of stream) void part;
      return response.headers;
    };
    const fellBack = await ask();
    expect(fellBack.get("x-subsecond-attempts")).toBe("2");
    const slow = await ask();
    expect(slow.get("x-subsecond-model")).toBe(CHEAP);
    expect(slow.get("x-subsecond-hedged")).toBeNull();
    const text = await metrics(gateway);
    // Two tokens to start with, one kept for probes: the fallback spent the other, so the hedge was due
    // but over budget. Were fallbacks free, it would have been sent.
    expect(metric(text, /^subsecond_hedges_total\{route="chat",outcome="over_budget"\}/)).toBe(1);
    expect(metric(text, /^subsecond_hedges_total\{route="chat",outcome="(won|lost)"\}/)).toBe(0);
  });

  it("caps hedges by the route's budget under a sustained brownout", async () => {
    upstream = await startFakeUpstream((request) => answer(request, ["ok"], request.model === CHEAP ? 900 : 20));
    gateway = await startTestGateway(hedgedConfig(upstream.url, { maxRatio: 0.05 }));
    await measureFast(gateway);
    const client = gateway.client;
    const requests = 40;
    // A steady brownout of the cheap model, ten requests at a time; the brain keeps choosing it because
    // its own samples only arrive as the requests end.
    for (let batch = 0; batch < requests / 10; batch++) {
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          const stream = await client.chat.completions.create({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] });
          for await (const part of stream) void part;
        }),
      );
    }
    const text = await metrics(gateway);
    const sent = ["won", "lost", "failed"].reduce(
      (sum, outcome) => sum + metric(text, new RegExp(`^subsecond_hedges_total\\{route="chat",outcome="${outcome}"\\}`)),
      0,
    );
    // Two tokens to start with, one of them kept for probes, then 0.05 per decision: the 6 warm-ups are
    // pinned (no decision of the route), 40 decisions here.
    expect(sent).toBeLessThanOrEqual(1 + Math.floor(requests * 0.05));
    expect(sent).toBeGreaterThanOrEqual(1);
    expect(metric(text, /^subsecond_hedges_total\{route="chat",outcome="over_budget"\}/)).toBeGreaterThan(0);
  });
});

describe("first-token learning", () => {
  it("teaches the brain a stream's first token before the stream ends", async () => {
    upstream = await startFakeUpstream((request) => ({
      kind: "sse",
      steps: [
        chunk(request.model, { role: "assistant", content: "" }),
        chunk(request.model, { content: "first" }),
        { pauseMs: 1500 },
        chunk(request.model, {}, "stop"),
      ],
    }));
    gateway = await startTestGateway(hedgedConfig(upstream.url, { enabled: false }));
    const stream = await gateway.client.chat.completions.create({ model: CHEAP, stream: true, messages: [{ role: "user", content: "hi" }] });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    await iterator.next();
    // The stream is still open (its end is 1.5 s away), yet the brain already holds the sample.
    expect(gateway.gateway.brain.sampleCount(CHEAP)).toBe(0);
    const routes = (await (await fetch(`${gateway.url}/admin/routes`)).json()) as {
      routes: { candidates: { id: string; observedTtftP50Ms: number | null }[] }[];
    };
    expect(routes.routes[0]?.candidates.find((c) => c.id === CHEAP)?.observedTtftP50Ms).not.toBeNull();
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) void next;
  });
});

describe("fallback within the target", () => {
  const SLOWER = "acme/slower";

  it("after a failure, falls back to the model that can still meet the target, not to the next cheapest", async () => {
    // Plan by price: cheap, slower (600 ms, within an 800 ms target on its own), fast. Cheap fails after
    // 350 ms; slower would then deliver at ~950 ms, fast at ~370 ms.
    upstream = await startFakeUpstream((request) => {
      if (request.model === CHEAP) return { kind: "error", status: 500, delayMs: 350 };
      return answer(request, ["answer"], request.model === SLOWER ? 600 : 20);
    });
    gateway = await startTestGateway(
      testConfig(
        upstream.url,
        [
          { id: CHEAP, input: 0.05, output: 0.1 },
          { id: SLOWER, input: 0.5, output: 1 },
          { id: FAST, input: 1, output: 2 },
        ],
        {
          routes: { chat: { candidates: [CHEAP, SLOWER, FAST], strategy: "cheapest-within-target", hedging: { marginMs: MARGIN_MS } } },
          defaults: { exploration: { ratio: 0, newModelRatio: 0 } },
        },
      ),
    );
    for (const id of [SLOWER, FAST]) {
      for (let i = 0; i < 6; i++) {
        const warm = await gateway.client.chat.completions.create({ model: id, stream: true, messages: [{ role: "user", content: "warm" }] });
        for await (const part of warm) void part;
      }
    }
    const slowerBefore = upstream.forModel(SLOWER).length;
    const startedAt = performance.now();
    const { data: stream, response } = await gateway.client.chat.completions
      .create({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    let firstContentMs = Number.NaN;
    for await (const part of stream) if (Number.isNaN(firstContentMs) && part.choices[0]?.delta.content) firstContentMs = performance.now() - startedAt;

    expect(response.headers.get("x-subsecond-model")).toBe(FAST);
    expect(response.headers.get("x-subsecond-attempts")).toBe("2");
    expect(upstream.forModel(CHEAP).length).toBe(1);
    expect(upstream.forModel(SLOWER).length).toBe(slowerBefore);
    expect(firstContentMs).toBeLessThan(800);
  });
});
