import { describe, expect, it } from "vitest";
import { createTally, type Frame, type ModelRow } from "../../src/demo/demo-state.js";
import { createLiveScreen, frameLines, renderFrame, type ScreenSize } from "../../src/demo/view.js";

/** The rows of a frame captured from `npm run demo` (26 s in, qwen3.5-flash browned out, gemma-4-26b chosen). */
const SAMPLE_ROWS: [id: string, rps: number, share: number | null, p95: number | null, predicted: number | null, samples: number, costUsd: number][] = [
  ["xiaomi/mimo-v2.5", 0, 0, null, 1080, 1, 0],
  ["google/gemma-4-26b-a4b-it", 10, 0.86, 704, 702, 39.2, 0.004746],
  ["google/gemma-4-31b-it", 0, 0, null, 855, 0, 0],
  ["qwen/qwen3.5-9b", 0, 0.04, 1536, 1559, 10.6, 0.000694],
  ["bytedance-seed/seed-2.0-mini", 1, 0, 850, 836, 3.1, 0.000331],
  ["qwen/qwen3.5-flash-02-23", 0, 0.04, 1719, 1738, 40.6, 0.005549],
  ["bytedance-seed/seed-1.6-flash", 0, 0.02, 1564, 1515, 9.3, 0.002965],
  ["google/gemini-2.5-flash-lite-preview-09-2025", 0, 0, 606, 500, 0.8, 0.000441],
  ["openai/gpt-5-nano", 0, 0.02, 1359, 1383, 1.6, 0.00089],
  ["google/gemini-2.5-flash-lite", 0, 0, 376, 400, 3.4, 0.000885],
  ["openai/gpt-4.1-nano", 1, 0.02, 640, 575, 2.3, 0.0006],
  ["stepfun/step-3.7-flash", 0, 0, null, 2280, 0, 0],
  ["nvidia/nemotron-3-nano-omni-30b-a3b-reasoning:free", 0, null, null, null, 0.9, 0],
  ["google/gemma-4-26b-a4b-it:free", 0, null, null, null, 4.1, 0],
  ["google/gemma-4-31b-it:free", 0, null, null, null, 0.9, 0],
];

/** That frame as rendered without a size limit (README showed it before the links line was added). */
const SAMPLE_TEXT = `Subsecond demo   t=26.0s/45.0s   story 57.9% [#################.............]   simulator plays: qwen-flash-brownout
traffic   256 sent (14.0/s) · 234 ok · 1 not ok · 21 in flight · 8 rescued by fallback · stream cuts ended by an error event 1 · silent truncations 0
route     realtime-chat: cheapest-within-target, target p95 ttft ≤ 800 ms   (→ the brain's choice now; share: of its decisions in the last 5 s; ∘ other routes only)
   model                                          req/s  share  p95 obs predicted samples  state          cost
   xiaomi/mimo-v2.5                                 0.0     0%        -   1080 ms     1.0  ok        $0.000000
 → google/gemma-4-26b-a4b-it                       10.0  86.0%   704 ms    702 ms    39.2  ok        $0.004746
   google/gemma-4-31b-it                            0.0     0%        -    855 ms     0.0  ok        $0.000000
   qwen/qwen3.5-9b                                  0.0   4.0%  1536 ms   1559 ms    10.6  ok        $0.000694
   bytedance-seed/seed-2.0-mini                     1.0     0%   850 ms    836 ms     3.1  ok        $0.000331
   qwen/qwen3.5-flash-02-23                         0.0   4.0%  1719 ms   1738 ms    40.6  ok        $0.005549
   bytedance-seed/seed-1.6-flash                    0.0   2.0%  1564 ms   1515 ms     9.3  ok        $0.002965
   google/gemini-2.5-flash-lite-preview-09-2025     0.0     0%   606 ms    500 ms     0.8  ok        $0.000441
   openai/gpt-5-nano                                0.0   2.0%  1359 ms   1383 ms     1.6  ok        $0.000890
   google/gemini-2.5-flash-lite                     0.0     0%   376 ms    400 ms     3.4  ok        $0.000885
   openai/gpt-4.1-nano                              1.0   2.0%   640 ms    575 ms     2.3  ok        $0.000600
   stepfun/step-3.7-flash                           0.0     0%        -   2280 ms     0.0  ok        $0.000000
 ∘ nvidia/nemotron-3-nano-omni-30b-a3b-reasoning…   0.0      -        -         -     0.9  ok        $0.000000
 ∘ google/gemma-4-26b-a4b-it:free                   0.0      -        -         -     4.1  ok        $0.000000
 ∘ google/gemma-4-31b-it:free                       0.0      -        -         -     0.9  ok        $0.000000
target    realtime-chat 88.2% (135/153) · realtime-chat-free 77.8% (7/9) · pinned 100% (10/10)
fallbacks rate_limited 4 · timeout 9 · error 1
last      +24.0s qwen/qwen3.5-flash-02-23 timeout ×2 · +24.0s google/gemma-4-26b-a4b-it error ×1 · +26.0s xiaomi/mimo-v2.5 timeout ×1
cost      $0.017101 so far
open      http://127.0.0.1:8080/ui (status page) · http://127.0.0.1:8080/v1 (OpenAI base URL) · Ctrl-C stops the traffic and prints the summary`;

function sampleFrame(): Frame {
  const tally = createTally();
  tally.finished = 235;
  tally.byOutcome.ok = 234;
  tally.byOutcome["stream-error-event"] = 1;
  tally.rescued = 8;
  const models = SAMPLE_ROWS.map(([id, requestsPerSecond, decisionShare, observedP95Ms, predictedMs, samples, costUsd]): ModelRow => ({
    id,
    candidate: !id.endsWith(":free"),
    requestsPerSecond,
    decisionShare,
    observedP95Ms,
    predictedMs,
    samples,
    state: "ok",
    chosen: id === "google/gemma-4-26b-a4b-it",
    costUsd,
  }));
  return {
    gatewayUrl: "http://127.0.0.1:8080",
    elapsedMs: 26_000,
    durationMs: 45_000,
    storyFraction: 0.579,
    scripted: ["qwen-flash-brownout"],
    route: "realtime-chat",
    target: "cheapest-within-target, target p95 ttft ≤ 800 ms",
    tally,
    sent: 256,
    inFlight: 21,
    sentPerSecond: 14,
    models,
    attainment: [
      { route: "realtime-chat", met: 135, missed: 18 },
      { route: "realtime-chat-free", met: 7, missed: 2 },
      { route: "pinned", met: 10, missed: 0 },
    ],
    fallbacksByReason: new Map([
      ["rate_limited", 4],
      ["timeout", 9],
      ["error", 1],
    ]),
    recentFallbacks: [
      { atMs: 24_000, model: "qwen/qwen3.5-flash-02-23", reason: "timeout", count: 2 },
      { atMs: 24_000, model: "google/gemma-4-26b-a4b-it", reason: "error", count: 1 },
      { atMs: 26_000, model: "xiaomi/mimo-v2.5", reason: "timeout", count: 1 },
    ],
    costUsd: 0.017101,
  };
}

const header = (lines: readonly string[]) => lines.find((line) => /^ {3}model /.test(line)) ?? "";
/** The table row of model `id` (its name possibly cut with …), or "". */
const row = (lines: readonly string[], id: string) =>
  lines.find((line) => {
    const name = line.slice(3).split(" ")[0] ?? "";
    return name === id || (name.length > 1 && name.endsWith("…") && id.startsWith(name.slice(0, -1)));
  }) ?? "";

describe("the live view's frame", () => {
  it("puts every item on one line and the table in 110 columns when the size is unbounded", () => {
    expect(frameLines(sampleFrame())).toEqual(SAMPLE_TEXT.split("\n"));
    expect(renderFrame(sampleFrame())).toBe(SAMPLE_TEXT);
  });

  for (const size of [
    { columns: 80, rows: 24 },
    { columns: 100, rows: 30 },
    { columns: 160, rows: 45 },
    { columns: 60, rows: 20 },
  ]) {
    it(`fits ${size.columns}×${size.rows}: one header line, no line wider than the terminal, the chosen model shown`, () => {
      const lines = frameLines(sampleFrame(), size);
      expect(lines.length).toBeLessThanOrEqual(size.rows);
      expect(lines.filter((line) => line.includes("Subsecond demo"))).toHaveLength(1);
      expect(lines[0]).toMatch(/^Subsecond demo {3}t=26\.0s\/45\.0s/);
      for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(size.columns);
      expect(header(lines)).toMatch(/ share +p95 obs /);
      expect(row(lines, "google/gemma-4-26b-a4b-it")).toMatch(/^ → google\/gemma-4-26b-a4b-it +.*86\.0% +704 ms/);
      expect(lines.filter((line) => line.startsWith("cost"))).toEqual(["cost      $0.017101 so far"]);
    });
  }

  it("keeps every column at 100 columns, narrowing the model's name instead", () => {
    const lines = frameLines(sampleFrame(), { columns: 100, rows: 30 });
    expect(header(lines)).toBe(`   ${"model".padEnd(36)} req/s  share  p95 obs predicted samples  state          cost`);
    expect(row(lines, "google/gemini-2.5-flash-lite-preview")).toMatch(
      /^ {3}google\/gemini-2\.5-flash-lite-previe… +0\.0 +0% +606 ms +500 ms +0\.8 +ok +\$0\.000441$/,
    );
  });

  it("at 80 columns drops samples and req/s rather than wrap, and wraps labelled lines between their parts", () => {
    const lines = frameLines(sampleFrame(), { columns: 80, rows: 40 });
    expect(header(lines)).toBe(`   ${"model".padEnd(30)}  share  p95 obs predicted  state          cost`);
    expect(row(lines, "qwen/qwen3.5-flash-02-23")).toBe(`   ${"qwen/qwen3.5-flash-02-23".padEnd(30)}   4.0%  1719 ms   1738 ms  ok        $0.005549`);
    expect(lines.slice(0, 2)).toEqual([
      "Subsecond demo   t=26.0s/45.0s   story 57.9% [#################.............]",
      "          simulator plays: qwen-flash-brownout",
    ]);
    const traffic = lines.slice(lines.findIndex((line) => line.startsWith("traffic")));
    expect(traffic.slice(0, 3)).toEqual([
      "traffic   256 sent (14.0/s) · 234 ok · 1 not ok · 21 in flight",
      "          8 rescued by fallback · stream cuts ended by an error event 1",
      "          silent truncations 0",
    ]);
    expect(lines.slice(-3)).toEqual([
      "open      http://127.0.0.1:8080/ui (status page)",
      "          http://127.0.0.1:8080/v1 (OpenAI base URL)",
      "          Ctrl-C stops the traffic and prints the summary",
    ]);
    expect(lines).toHaveLength(2 + 3 + 3 + 1 + 15 + 2 + 1 + 3 + 1 + 3);
  });

  it("on a short terminal collapses labelled lines, leaves out the last fallbacks and the links, then idle models", () => {
    const collapsed = frameLines(sampleFrame(), { columns: 80, rows: 24 });
    expect(collapsed).toHaveLength(24);
    expect(collapsed.slice(0, 4)).toEqual([
      "Subsecond demo   t=26.0s/45.0s   story 57.9% [#################.............]",
      "          simulator plays: qwen-flash-brownout",
      "traffic   256 sent (14.0/s) · 234 ok · 1 not ok · 21 in flight …",
      "route     realtime-chat: cheapest-within-target, target p95 ttft ≤ 800 ms …",
    ]);
    expect(collapsed.slice(-4)).toEqual([
      "target    realtime-chat 88.2% (135/153) · realtime-chat-free 77.8% (7/9) …",
      "fallbacks rate_limited 4 · timeout 9 · error 1",
      "cost      $0.017101 so far",
      "open      http://127.0.0.1:8080/ui (status page) …",
    ]);
    for (const [id] of SAMPLE_ROWS) expect(row(collapsed, id), id).not.toBe("");

    const short = frameLines(sampleFrame(), { columns: 80, rows: 16 });
    expect(short).toHaveLength(16);
    expect(short[0]).toBe("Subsecond demo   t=26.0s/45.0s   story 57.9% [#################.............] …");
    expect(short.some((line) => line.startsWith("open"))).toBe(false);
    expect(short).toContain("   … 7 more models (the terminal is too short for them)");
    // Idle rows went first: every model with traffic or a share of the decisions is still there.
    for (const [id, rps, share] of SAMPLE_ROWS) expect(row(short, id) !== "", id).toBe(rps > 0 || (share ?? 0) > 0 || id === "xiaomi/mimo-v2.5");

    const tiny = frameLines(sampleFrame(), { columns: 30, rows: 3 });
    expect(tiny).toHaveLength(3);
    for (const line of tiny) expect(line.length).toBeLessThanOrEqual(30);
  });
});

describe("the live screen", () => {
  const open = (size: ScreenSize) => {
    const out: string[] = [];
    let current = size;
    const screen = createLiveScreen(
      (text) => out.push(text),
      () => current,
    );
    return { screen, out, resizeTo: (next: ScreenSize) => (current = next) };
  };

  it("draws on the alternate screen from the top-left corner, each line placed, erased and cut to the width", () => {
    const { screen, out } = open({ columns: 5, rows: 4 });
    screen.show(() => ["abc", "abcdefgh"]);
    expect(out).toEqual(["\x1b[?1049h\x1b[?25l\x1b[1;1H\x1b[2Kabc\x1b[2;1H\x1b[2Kabcd…\x1b[3;1H\x1b[J"]);
    // The next picture replaces this one in place, whatever was on screen: no scrolling, no cursor-up count.
    screen.show(() => ["x"]);
    expect(out[1]).toBe("\x1b[1;1H\x1b[2Kx\x1b[2;1H\x1b[J");
  });

  it("renders for the current size, never draws more lines than rows and never writes past the last one", () => {
    const { screen, out } = open({ columns: 10, rows: 2 });
    const sizes: ScreenSize[] = [];
    screen.show((size) => {
      sizes.push(size);
      return ["one", "two", "three"];
    });
    expect(sizes).toEqual([{ columns: 10, rows: 2 }]);
    expect(out[0]).toBe("\x1b[?1049h\x1b[?25l\x1b[1;1H\x1b[2Kone\x1b[2;1H\x1b[2Ktwo");
  });

  it("on resize clears and shows the last picture again, rendered for the new size", () => {
    const { screen, out, resizeTo } = open({ columns: 80, rows: 24 });
    screen.resize();
    expect(out).toEqual([]);
    screen.show((size) => [`${size.columns}x${size.rows}`]);
    resizeTo({ columns: 100, rows: 30 });
    screen.resize();
    expect(out[1]).toBe("\x1b[2J\x1b[1;1H\x1b[2K100x30\x1b[2;1H\x1b[J");
  });

  it("closes once: cursor shown, normal screen back; nothing to restore when it never drew", () => {
    const idle = open({ columns: 80, rows: 24 });
    idle.screen.close();
    expect(idle.out).toEqual([]);
    const { screen, out } = open({ columns: 80, rows: 24 });
    screen.show(() => ["a"]);
    screen.close();
    screen.close();
    screen.resize();
    expect(out.slice(1)).toEqual(["\x1b[?25h\x1b[?1049l"]);
  });
});
