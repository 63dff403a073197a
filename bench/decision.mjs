// Micro-benchmark of one routing decision: `brain.decide()` over the 12 candidates of realtime-chat
// (config/gateway.yaml) with warm statistics and varying request sizes. Pure CPU, no I/O.
//
//   npx tsc -p tsconfig.build.json && node bench/decision.mjs [--n 200000] [--batch 1000]
//        [--route realtime-chat] [--all-models] [--report-every K]
//
// Prints JSON to stdout: { "decisionMicros": { "mean", "p50", "p99" }, ... }, µs per decision; p50
// and p99 are over batches (a single decision is too short to time on its own). With --report-every K,
// every K-th decision's first model also reports an outcome (timed too), which invalidates that model's
// cached quantiles as live traffic would; the default, 0, times decide() alone. --all-models routes
// over the whole catalog (15 models, :free variants included) with the route's settings.
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createBrain } from "../dist/router/brain.js";
import { createSystemClock } from "../dist/router/clock.js";
import { createSeededRng } from "../dist/router/rng.js";
import { loadConfigFile } from "../dist/config/load.js";

const { values: args } = parseArgs({
  options: {
    n: { type: "string", default: "200000" },
    batch: { type: "string", default: "1000" },
    config: { type: "string", default: fileURLToPath(new URL("../config/gateway.yaml", import.meta.url)) },
    route: { type: "string", default: "realtime-chat" },
    "report-every": { type: "string", default: "0" },
    "all-models": { type: "boolean", default: false },
  },
});
const total = Number(args.n);
const batch = Number(args.batch);
const reportEvery = Number(args["report-every"]);

const loaded = await loadConfigFile(args.config);
const configured = loaded.routes.get(args.route);
if (!configured) throw new Error(`no route ${args.route} in ${args.config}`);
const route = args["all-models"] ? { ...configured, candidates: loaded.models } : configured;
const { stats, health } = loaded.config;
const clock = createSystemClock();
const rng = createSeededRng(1);
const brain = createBrain({ clock, rng, stats, health });
brain.sync(loaded.models, stats, health);

// Warm statistics: 400 streamed samples per candidate, each model with its own latency level and spread,
// so that some meet the 800 ms target and some do not.
const sampleRng = createSeededRng(2);
route.candidates.forEach((model, i) => {
  const baseMs = 250 + 90 * i;
  for (let k = 0; k < 400; k++) {
    const ttftMs = baseMs * (0.7 + 0.6 * sampleRng.next());
    brain.attemptStarted(model.id, false);
    brain.attemptFinished({
      modelId: model.id,
      route: route.name,
      outcome: "ok",
      ttftMs,
      totalMs: ttftMs + 2000 * (0.8 + 0.4 * sampleRng.next()),
      promptTokens: 200 + Math.floor(4000 * sampleRng.next()),
      outputTokens: 150 + Math.floor(200 * sampleRng.next()),
    });
  }
});

// 64 request shapes: prompts from 50 to ~30 000 tokens, some with max_tokens.
const requests = Array.from({ length: 64 }, (_, i) => ({
  promptTokens: Math.round(50 * 1.1 ** (i % 64)),
  maxOutputTokens: i % 3 === 0 ? 512 : undefined,
  needs: new Set(),
  stream: true,
}));

let sink = 0;
const run = (count, offset) => {
  for (let i = 0; i < count; i++) {
    const decision = brain.decide(route, requests[(offset + i) & 63]);
    sink += decision.plan.length;
    if (reportEvery > 0 && (offset + i) % reportEvery === 0 && decision.plan[0]) {
      const modelId = decision.plan[0].id;
      brain.attemptStarted(modelId, decision.probe);
      brain.attemptFinished({
        modelId,
        route: route.name,
        outcome: "ok",
        ttftMs: 300 + (i & 255),
        totalMs: 2500,
        promptTokens: 1000,
        outputTokens: 200,
        probe: decision.probe,
      });
    }
  }
};
run(50_000, 0); // JIT warm-up

const perDecision = [];
const started = performance.now();
for (let done = 0; done < total; done += batch) {
  const t0 = performance.now();
  run(batch, done);
  perDecision.push(((performance.now() - t0) * 1000) / batch);
}
const elapsedMs = performance.now() - started;
perDecision.sort((a, b) => a - b);
const at = (p) => perDecision[Math.min(perDecision.length - 1, Math.floor(p * perDecision.length))];
const round = (x) => Math.round(x * 1000) / 1000;
process.stdout.write(
  `${JSON.stringify({
    decisionMicros: { mean: round((elapsedMs * 1000) / total), p50: round(at(0.5)), p99: round(at(0.99)) },
    decisions: total,
    batch,
    candidates: route.candidates.length,
    reportEvery,
    node: process.version,
    checksum: sink,
  })}\n`,
);
