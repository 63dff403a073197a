import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import OpenAI from "openai";
import { parseSimProfiles, parseSimProfilesText, type SimProfiles, type SimProfilesInput } from "../../src/sim/profiles.js";
import { startDemo, type DemoSummary, type TimelineWindow, type TrafficResult } from "../../src/demo/index.js";

const DEMO_CONFIG = new URL("../../config/demo.yaml", import.meta.url).pathname;
const FOCUS = "qwen/qwen3.5-flash-02-23";
const STORY_MS = 26_000;

/**
 * The shipped models and latencies (config/sim-profiles.yaml) on a story compressed for a test:
 * - qwen3.5-flash browns out (TTFT ×5, decode ×0.6) from 15% to 38% of the story, leaving more than half of it
 *   for the recovery: 3 probes in a row on target, each at most once per (answer time + staleAfterMs), took
 *   4.5–9.5 s in trial runs;
 * - fault episodes (429 burst, hangs, 5xx, cuts) fall inside the brownout, where traffic has moved to the
 *   fallbacks; there, one stream in five of every likely fallback is cut, so some streams are cut mid-answer
 *   (and continued by the models config/demo.yaml marks prefill, themselves cut now and then);
 * - openai/gpt-4.1-nano answers without faults outside its 5xx episode, so the SDK calls pinned to it at the
 *   start are deterministic;
 * - qwen3.5-flash has no slow TTFT tail (shipped: 2% ×4) and never hangs (shipped: 0.3%). With them, one hang
 *   (a first-token timeout, recorded as ≥ 1500 ms) or two tail samples among the first ~35 put the brain's
 *   p95 over the 800 ms target, and the model then stays out (its quantile no longer moves without traffic)
 *   until probes re-admit it: in trial runs the router left the healthy pick before the brownout in about one
 *   run in four. That is a brain behaviour (reported), not what this test is about.
 */
function testProfiles(): SimProfiles {
  const shipped = parseSimProfilesText(readFileSync(new URL("../../config/sim-profiles.yaml", import.meta.url), "utf8"));
  const models = shipped.models.map((model): SimProfilesInput["models"][number] => {
    if (model.id === FOCUS)
      return {
        ...model,
        ttft: { ...model.ttft, tail: { probability: 0, multiplier: 1 } },
        faults: { ...model.faults, hang: { probability: 0, modes: ["no-headers"] } },
      };
    if (model.id === "openai/gpt-4.1-nano")
      return {
        ...model,
        faults: { serverError: { probability: 0, statuses: [502] }, hang: { probability: 0, modes: ["no-headers"] }, cut: { probability: 0 } },
      };
    return model;
  });
  return parseSimProfiles({
    story: { ...shipped.story, durationMs: STORY_MS },
    faults: shipped.faults,
    models,
    timeline: [
      {
        name: "gemma-free-quota",
        models: ["google/gemma-4-26b-a4b-it:free"],
        from: 0.05,
        to: 0.12,
        faults: { rateLimit: { probability: 0.9, retryAfterSeconds: 3 } },
      },
      { name: "qwen-flash-brownout", models: [FOCUS], from: 0.15, to: 0.38, ramp: 0.02, ttftMultiplier: 5, tokensPerSecondMultiplier: 0.6 },
      {
        name: "seed-flash-hangs",
        models: ["bytedance-seed/seed-1.6-flash"],
        from: 0.22,
        to: 0.28,
        faults: { hang: { probability: 0.2, modes: ["no-headers", "no-first-token"] } },
      },
      { name: "gpt41-nano-5xx", models: ["openai/gpt-4.1-nano"], from: 0.28, to: 0.33, faults: { serverError: { probability: 0.25, statuses: [502, 503] } } },
      {
        name: "fallback-cuts",
        models: [
          "google/gemma-4-26b-a4b-it",
          "bytedance-seed/seed-1.6-flash",
          "google/gemini-2.5-flash-lite",
          "google/gemini-2.5-flash-lite-preview-09-2025",
          "openai/gpt-4.1-nano",
          "qwen/qwen3.5-9b",
        ],
        from: 0.3,
        to: 0.38,
        faults: { cut: { probability: 0.2 } },
      },
      { name: "flash-lite-drift", models: ["google/gemini-2.5-flash-lite"], from: 0.8, to: 0.95, ramp: 0.05, ttftMultiplier: 1.6 },
    ],
  });
}

/** Share of the focus model among the realtime-chat decisions of the slices inside [from, to). */
function shareDuring(summary: DemoSummary, from: number, to: number): { share: number; decisions: number } {
  const inside = summary.timeline.filter((w: TimelineWindow) => w.fromFraction >= from - 1e-9 && w.toFraction <= to + 1e-9);
  let decisions = 0;
  let focus = 0;
  for (const window of inside) {
    decisions += window.decisions;
    focus += window.byModel.get(FOCUS) ?? 0;
  }
  return { share: decisions > 0 ? focus / decisions : Number.NaN, decisions };
}

const ask = { messages: [{ role: "user" as const, content: "Say hello in five words." }], max_tokens: 24 };

describe("subsecond demo", () => {
  it("moves off the browned-out model and back, rescues faults, never truncates silently, and serves the openai SDK", async () => {
    const results: TrafficResult[] = [];
    const printed: string[] = [];
    const demo = await startDemo({
      durationMs: STORY_MS,
      ratePerSecond: 35,
      seed: 7,
      configPath: DEMO_CONFIG,
      profiles: testProfiles(),
      gatewayPort: 0,
      simulatorPort: 0,
      ui: "none",
      windows: 20,
      write: (text) => printed.push(text),
      onResult: (result) => results.push(result),
    });

    // (d) The official SDK, pointed at the demo gateway while the demo runs (first seconds: no fault episode).
    const client = new OpenAI({ baseURL: `${demo.gatewayUrl}/v1`, apiKey: "demo", maxRetries: 0, timeout: 15_000 });
    const routed = await client.chat.completions.create({ model: "realtime-chat", ...ask }).withResponse();
    expect(routed.data.choices[0]?.message.content).toMatch(/\w+/);
    expect(routed.response.headers.get("x-subsecond-route")).toBe("realtime-chat");
    const pinned = await client.chat.completions.create({ model: "openai/gpt-4.1-nano", ...ask }).withResponse();
    expect(pinned.data.choices[0]?.message.content).toMatch(/\w+/);
    expect(pinned.response.headers.get("x-subsecond-model")).toBe("openai/gpt-4.1-nano");
    expect(pinned.response.headers.get("x-subsecond-reason")).toBe("pinned");
    for (const model of ["realtime-chat", "openai/gpt-4.1-nano"]) {
      const stream = await client.chat.completions.create({ model, ...ask, stream: true });
      let text = "";
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(text, model).toMatch(/\w+/);
      expect(finish, model).toBe("length");
    }

    const summary = await demo.finished;
    expect(summary.interrupted).toBe(false);
    expect(summary.sent).toBeGreaterThan(600);
    expect(results).toHaveLength(summary.sent);

    // (a) The gateway's own decision counter: qwen3.5-flash carries realtime-chat before its brownout,
    // loses it while browned out (only exploration probes remain), and gets it back after.
    const before = shareDuring(summary, 0, 0.15);
    const during = shareDuring(summary, 0.25, 0.35);
    const after = shareDuring(summary, 0.8, 1);
    const story = `before ${before.share.toFixed(2)}/${before.decisions}, during ${during.share.toFixed(2)}/${during.decisions}, after ${after.share.toFixed(2)}/${after.decisions}`;
    expect(before.decisions, story).toBeGreaterThan(60);
    expect(during.decisions, story).toBeGreaterThan(50);
    expect(after.decisions, story).toBeGreaterThan(60);
    expect(before.share, story).toBeGreaterThan(0.5);
    expect(during.share, story).toBeLessThan(0.15);
    expect(after.share, story).toBeGreaterThan(0.5);
    // The brain measured the brownout: its p95 TTFT of the model at the end of a "during" slice is over target.
    const duringWindow = summary.timeline.find((w) => w.fromFraction >= 0.3 - 1e-9);
    expect(duringWindow?.focusObservedP95Ms ?? 0).toBeGreaterThan(800);

    // (b) Faults before the first token were rescued: no request on a route (realtime-chat, auto, free) failed,
    // with one exception the design allows: a 504 once the whole budget was spent on timeouts. Only a
    // non-streamed request can get there (a hung or very long JSON answer costs the whole 5 s total deadline,
    // so two of them spend the 10 s budget; a stream's first-token deadline is 1.5 s and 4 attempts fit).
    // It happened about once in five full-suite runs (the other test files compete for the CPU).
    const routedFailures = results.filter(
      (r) => r.request.kind !== "pinned" && (r.outcome === "http-error" || r.outcome === "network-error" || r.outcome === "abandoned"),
    );
    const show = (r: TrafficResult) =>
      `demo-${r.index} ${r.request.model} ${r.request.stream ? "stream" : "json"} prompt ${r.request.promptTokens} max ${r.request.maxTokens ?? "-"}: ${r.status} ${r.errorCode ?? ""} after ${Math.round(r.finishedAtMs - r.sentAtMs)} ms`;
    const budgetSpent = (r: TrafficResult) =>
      !r.request.stream && r.status === 504 && r.errorCode === "upstream_timeout" && r.finishedAtMs - r.sentAtMs >= summary.tally.budgetMs - 50;
    expect(routedFailures.filter((r) => !budgetSpent(r)).map(show)).toEqual([]);
    expect(routedFailures.length, routedFailures.map(show).join("; ")).toBeLessThanOrEqual(3);
    expect(summary.tally.routedTimeoutsAfterBudget).toBe(routedFailures.length);
    for (const r of results.filter((r) => r.request.kind === "pinned" && r.outcome === "http-error")) expect([429, 502, 504]).toContain(r.status);
    expect(summary.tally.byOutcome["network-error"]).toBe(0);
    expect(summary.tally.byOutcome.abandoned).toBe(0);
    expect(summary.tally.rescued).toBeGreaterThan(0);
    expect(summary.fallbacksByReason.get("timeout") ?? 0).toBeGreaterThan(0);
    expect((summary.fallbacksByReason.get("error") ?? 0) + (summary.fallbacksByReason.get("rate_limited") ?? 0)).toBeGreaterThan(0);

    // (c) A stream without [DONE] always ended with an in-band error event; some streams were cut mid-answer
    // and finished by a model with prefill (the gateway counted them), the others ended with their error.
    const unfinished = results.filter((r) => r.request.stream && r.status === 200 && r.outcome !== "ok");
    for (const r of unfinished) {
      expect(r.outcome).toBe("stream-error-event");
      expect(["stream_cut", "stream_stalled", "upstream_error"]).toContain(r.errorCode);
    }
    expect(summary.tally.byOutcome["silent-truncation"]).toBe(0);
    expect(summary.continuationsByOutcome.get("completed") ?? 0).toBeGreaterThan(0);

    // The summary says the same, from the gateway's counters.
    expect(summary.costUsd).toBeGreaterThan(0);
    expect(summary.attainment.find((a) => a.route === "realtime-chat")?.met ?? 0).toBeGreaterThan(0);
    expect(printed).toEqual([]);
  }, 60_000);
});
