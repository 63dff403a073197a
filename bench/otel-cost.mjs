// Micro-benchmark of what tracing costs one request, in CPU time: the hooks a served request calls on the
// built gateway's tracing (a server span under a caller's traceparent, one client span, its traceparent
// for the provider, the end of both) with every span exported over OTLP/HTTP to bench/otlp-sink.mjs in a
// child process, against the same loop with tracing off. CPU time (process.cpuUsage) rather than latency,
// so that other work on a shared host is not counted; the batch exports are included, amortised.
//
//   npm run build && node bench/otel-cost.mjs [--requests 20000] [--rounds 5] [--dist DIR]
//
// Each round runs the requests with tracing off, then on, yielding to the event loop after each request
// as a server does (so the batch processor exports as it would). Prints µs of CPU per request per round
// and the median of the differences.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" },
    rounds: { type: "string", default: "5" },
    dist: { type: "string", default: new URL("../dist", import.meta.url).pathname },
  },
});
const requests = Number(args.requests);
const rounds = Number(args.rounds);

const sink = spawn(process.execPath, [new URL("./otlp-sink.mjs", import.meta.url).pathname], { stdio: ["ignore", "pipe", "inherit"] });
const [line] = await once(sink.stdout, "data");
const sinkUrl = JSON.parse(String(line)).url;

for (const key of Object.keys(process.env)) if (key.startsWith("OTEL_")) delete process.env[key];
const { createTracing } = await import(pathToFileURL(resolve(args.dist, "observability/tracing.js")).href);
const problem = (message) => process.stderr.write(`${message}\n`);
const off = await createTracing(process.env, problem);
process.env.OTEL_EXPORTER_OTLP_ENDPOINT = sinkUrl;
process.env.OTEL_SERVICE_NAME = "subsecond-otel-cost";
const on = await createTracing(process.env, problem);
if (off !== undefined || on === undefined) throw new Error("createTracing: expected off without an endpoint and on with one");

const model = { id: "mock/model", provider: "mock", upstreamModel: "mock-model" };
const passHeaders = { "content-type": "application/json", "x-request-id": "req-1" };
const start = { attempt: 1, reason: "within-target", hedge: false, probe: false, continuation: false, predictedMs: 420 };
const usage = { promptTokens: 12, completionTokens: 64 };
const finishReasons = ["stop"];
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const yieldToLoop = () => new Promise((resolveYield) => setImmediate(resolveYield));

/** CPU µs per request of `requests` requests' hooks on `tracing` (undefined: off, one null check per hook as in the recorder). */
async function measure(tracing) {
  const hookUs = new Float64Array(requests);
  const before = process.cpuUsage();
  for (let i = 0; i < requests; i++) {
    const t0 = performance.now();
    const traceparent = `00-${(i + 1).toString(16).padStart(32, "0")}-${(i + 1).toString(16).padStart(16, "0")}-01`;
    const trace = tracing?.startRequest({ traceparent, "content-type": "application/json" }, performance.now());
    trace?.planned("realtime-chat", "auto");
    trace?.attemptStarted(model, start);
    const headers = trace === undefined ? passHeaders : trace.upstreamHeaders(model, passHeaders);
    if (headers["x-request-id"] === undefined) throw new Error("headers lost");
    trace?.attemptEnded({ model, outcome: "ok", usage, finishReasons, responseModel: "mock-model" });
    trace?.ended({ model: model.id, outcome: "ok", status: 200, attempts: 1, reason: "within-target" }, performance.now());
    hookUs[i] = (performance.now() - t0) * 1000;
    await yieldToLoop();
  }
  const used = process.cpuUsage(before);
  return { cpuUs: (used.user + used.system) / requests, hookP50Us: median(hookUs) };
}

const diffs = [];
const hookDiffs = [];
await measure(undefined);
await measure(on);
for (let round = 0; round < rounds; round++) {
  const offRound = await measure(undefined);
  const onRound = await measure(on);
  diffs.push(onRound.cpuUs - offRound.cpuUs);
  hookDiffs.push(onRound.hookP50Us - offRound.hookP50Us);
  console.log(
    `round ${round + 1}: CPU per request off ${offRound.cpuUs.toFixed(2)} µs, on ${onRound.cpuUs.toFixed(2)} µs; the hooks' own time p50 off ${offRound.hookP50Us.toFixed(2)} µs, on ${onRound.hookP50Us.toFixed(2)} µs`,
  );
}
const beforeShutdown = process.cpuUsage();
await on.shutdown();
const shutdown = process.cpuUsage(beforeShutdown);
const stats = await (await fetch(`${sinkUrl}/sink/stats`)).json();
sink.kill("SIGTERM");
console.log(
  `tracing adds ${median(hookDiffs).toFixed(2)} µs to a request's path (p50) and ${median(diffs).toFixed(2)} µs CPU per request, exports included (medians of ${rounds} rounds of ${requests}); final flush ${((shutdown.user + shutdown.system) / 1000).toFixed(1)} ms; sink got ${stats.exports} exports, ${(stats.bytes / 1e6).toFixed(1)} MB`,
);
