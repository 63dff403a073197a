import { describe, expect, it } from "vitest";
import { writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createSeededRng } from "../../src/router/rng.js";
import { ConfigError } from "../../src/config/load.js";
import {
  DEFAULT_MIX,
  DurationError,
  loadDemoConfig,
  parseDurationMs,
  planRequest,
  readStream,
  renderSummary,
  requestBody,
  type DemoSummary,
  type TimelineWindow,
} from "../../src/demo/index.js";
import { createTally } from "../../src/demo/demo-state.js";
import { useTempDirs } from "../helpers/temp-dir.js";

const tempDir = useTempDirs();

const DEMO_CONFIG = new URL("../../config/demo.yaml", import.meta.url).pathname;

function body(text: string, breakAfter = false): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      // Split mid-event, as a network would.
      controller.enqueue(bytes.subarray(0, Math.floor(bytes.length / 2)));
      controller.enqueue(bytes.subarray(Math.floor(bytes.length / 2)));
      if (breakAfter) controller.error(new Error("socket hang up"));
      else controller.close();
    },
  });
}

const chunk = (content: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

describe("parseDurationMs", () => {
  it("reads seconds by default, and ms, s and m suffixes", () => {
    expect(parseDurationMs("--duration", "45")).toBe(45_000);
    expect(parseDurationMs("--duration", "45s")).toBe(45_000);
    expect(parseDurationMs("--duration", "1500ms")).toBe(1500);
    expect(parseDurationMs("--duration", "2m")).toBe(120_000);
    expect(parseDurationMs("--duration", "0.5s")).toBe(500);
  });

  it("rejects zero, negatives and junk with a message naming the flag", () => {
    for (const bad of ["0", "-3", "abc", "10h", ""]) expect(() => parseDurationMs("--duration", bad)).toThrow(DurationError);
    expect(() => parseDurationMs("--duration", "10h")).toThrow(/--duration must be a positive duration/);
  });
});

describe("readStream", () => {
  it("sees [DONE] and the time to the first content chunk", async () => {
    const end = await readStream(
      body(`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n${chunk("Hi")}data: [DONE]\n\n`),
      performance.now(),
    );
    expect(end).toMatchObject({ done: true, errorEvent: false, broken: false });
    expect(end.ttftMs).toBeGreaterThanOrEqual(0);
  });

  it("tells an in-band error event from a silent truncation", async () => {
    const cut = await readStream(body(`${chunk("Hi")}data: {"error":{"message":"cut","type":"server_error","param":null,"code":"stream_cut"}}\n\n`), 0);
    expect(cut).toMatchObject({ done: false, errorEvent: true, errorCode: "stream_cut" });
    const silent = await readStream(body(chunk("Hi")), 0);
    expect(silent).toMatchObject({ done: false, errorEvent: false });
    const broken = await readStream(body(chunk("Hi"), true), 0);
    expect(broken).toMatchObject({ done: false, errorEvent: false, broken: true });
  });
});

describe("the traffic mix", () => {
  it("is reproducible from its seed and close to the configured shares", () => {
    const draw = (seed: number) => {
      const rng = createSeededRng(seed);
      return Array.from({ length: 4000 }, () => planRequest(DEFAULT_MIX, rng));
    };
    const requests = draw(3);
    expect(draw(3)).toEqual(requests);
    const share = (predicate: (r: (typeof requests)[number]) => boolean) => requests.filter(predicate).length / requests.length;
    expect(share((r) => r.kind === "route" && r.model === "realtime-chat")).toBeCloseTo(0.8, 1);
    expect(share((r) => r.kind === "auto")).toBeCloseTo(0.08, 1);
    expect(share((r) => r.kind === "pinned" && DEFAULT_MIX.pinned.includes(r.model))).toBeCloseTo(0.06, 1);
    expect(share((r) => r.kind === "free" && r.model === "realtime-chat-free")).toBeCloseTo(0.06, 1);
    expect(share((r) => r.stream)).toBeCloseTo(0.7, 1);
    expect(share((r) => r.promptTokens >= 2000)).toBeCloseTo(0.1, 1);
  });

  it("builds an OpenAI chat body of about four characters per prompt token", () => {
    const sent = requestBody({ kind: "route", model: "realtime-chat", stream: true, promptTokens: 500, maxTokens: 96 });
    expect(sent).toMatchObject({ model: "realtime-chat", stream: true, max_tokens: 96 });
    const messages = sent.messages as { role: string; content: string }[];
    expect(messages[1]?.content).toHaveLength(2000);
  });
});

describe("loadDemoConfig", () => {
  it("points the simulator provider at the given URL, in memory only", async () => {
    const before = readFileSync(DEMO_CONFIG, "utf8");
    const config = await loadDemoConfig(DEMO_CONFIG, "http://127.0.0.1:45678/v1");
    expect(config.config.providers.simulator?.baseUrl).toBe("http://127.0.0.1:45678/v1");
    expect(config.models).toHaveLength(15);
    expect(config.routes.get("realtime-chat")?.target).toEqual({ metric: "ttft", percentile: 95, ms: 800 });
    expect(readFileSync(DEMO_CONFIG, "utf8")).toBe(before);
  });

  it("names the missing provider", async () => {
    const dir = tempDir("subsecond-demo-");
    const file = join(dir, "other.yaml");
    writeFileSync(file, readFileSync(DEMO_CONFIG, "utf8").replaceAll("simulator", "local"));
    const error = await loadDemoConfig(file, "http://127.0.0.1:1/v1").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]?.path).toBe("providers.simulator");
  });
});

describe("the summary", () => {
  it("shows the decision shares per slice, failures by kind, fallbacks, cost and attainment", () => {
    const window = (from: number, byModel: Record<string, number>, scripted: string[] = []): TimelineWindow => {
      const map = new Map(Object.entries(byModel));
      return {
        fromFraction: from,
        toFraction: from + 0.5,
        startMs: from * 10_000,
        endMs: (from + 0.5) * 10_000,
        decisions: [...map.values()].reduce((a, b) => a + b, 0),
        byModel: map,
        met: 9,
        missed: 1,
        fallbacks: 2,
        focusObservedP95Ms: 420,
        focusPredictedMs: 433,
        scripted,
      };
    };
    const tally = createTally();
    tally.finished = 100;
    tally.byOutcome.ok = 97;
    tally.byOutcome["http-error"] = 2;
    tally.byOutcome["stream-error-event"] = 1;
    tally.httpErrorsByStatus.set(502, 2);
    tally.notOkByKind.pinned = 2;
    tally.notOkByKind.route = 1;
    tally.rescued = 5;
    const summary: DemoSummary = {
      gatewayUrl: "http://127.0.0.1:8080",
      simulatorUrl: "http://127.0.0.1:8181/v1",
      seed: 1,
      ratePerSecond: 10,
      durationMs: 10_000,
      ranMs: 10_000,
      interrupted: false,
      route: "realtime-chat",
      focusModel: "qwen/qwen3.5-flash-02-23",
      sent: 100,
      skipped: 0,
      tally,
      fallbacksByReason: new Map([
        ["timeout", 4],
        ["rate_limited", 1],
      ]),
      fallbacksByModel: new Map([["qwen/qwen3.5-flash-02-23", 4]]),
      attemptsByOutcome: new Map([
        ["ok", 100],
        ["timeout", 4],
        ["superseded", 3],
      ]),
      hedgesByOutcome: new Map([
        ["won", 3],
        ["lost", 1],
        ["failed", 0],
        ["over_budget", 2],
      ]),
      continuationsByOutcome: new Map([
        ["completed", 2],
        ["failed", 1],
        ["refused", 0],
        ["no_candidate", 0],
        ["ineligible", 0],
      ]),
      requestsByOutcome: new Map([["ok", 97]]),
      decisionsByModel: new Map([
        ["qwen/qwen3.5-flash-02-23", 50],
        ["google/gemma-4-26b-a4b-it", 40],
      ]),
      decisionsByReason: new Map([
        ["within-target", 85],
        ["explore", 5],
      ]),
      costUsd: 0.0123,
      costByModel: new Map([["qwen/qwen3.5-flash-02-23", 0.01]]),
      attainment: [{ route: "realtime-chat", met: 90, missed: 10 }],
      timeline: [
        window(0, { "qwen/qwen3.5-flash-02-23": 45, "google/gemma-4-26b-a4b-it": 5 }),
        window(0.5, { "qwen/qwen3.5-flash-02-23": 5, "google/gemma-4-26b-a4b-it": 35 }, ["qwen-flash-brownout"]),
      ],
    };
    const text = renderSummary(summary);
    expect(text).toContain("100 sent · 97 ok · 3 not ok");
    expect(text).toContain("2 HTTP errors (502 2), 1 stream cut mid-answer and ended by an error event, 0 silent truncations");
    expect(text).toContain("HTTP errors on routes (realtime-chat, auto, free): 0");
    expect(text).toContain("rescued by a fallback: 5");
    expect(text).toContain("fallbacks 5 — by reason: timeout 4, rate_limited 1");
    expect(text).toContain("hedges    4 sent (4.0 per 100 requests) — won 3, lost 1; 2 due but over budget");
    expect(text).toContain("continued 2 streams cut mid-answer, finished by another model; other outcomes: failed 1");
    expect(text).toContain("$0.012300 total");
    expect(text).toContain("realtime-chat 90.0% (90/100)");
    const rows = text.split("\n").filter((line) => /^\d+–\d+%/.test(line));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^0–50%\s+0\.0s–5\.0s\s+50\s+90\.0%\s+10\.0%/);
    expect(rows[1]).toMatch(/^50–100%\s+5\.0s–10\.0s\s+40\s+12\.5%\s+87\.5%.*qwen-flash-brownout$/);
  });
});
