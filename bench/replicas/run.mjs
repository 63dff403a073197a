// npm run bench:replicas — how fast replicas leave a browning-out model: 1 replica vs 3 replicas at the
// same total load through haproxy (round robin), the 3 without and with shared state (redis-server).
//
// Each scenario: a scripted upstream with two models, "cheap" (fast, chosen while within target) and
// "dear" (fast, 50× the price); the route wants p95 TTFT ≤ 800 ms. Streamed requests arrive at a fixed
// total rate (open loop). After the warm-up, "cheap" browns out in one of two ways:
//   latency  one request in four waits 2.5 s for its first token: its p95 misses the target once the
//            slow samples weigh enough in the decaying window;
//   errors   a seeded 60% of its answers are 503s (each falls back to "dear"): its circuit opens after
//            five failures in a row.
// The figure: seconds from the brownout until cheap's share of upstream arrivals stays at or under 10%
// for a whole second (250 ms buckets; probes still go there now and then). Bounded: about 25 s per
// scenario, six scenarios.
//
//   npm run bench:replicas [-- --rate 30 --warmup 6 --after 10 --brownouts latency,errors --json out.json]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent } from "undici";
import { startHaproxy, startRedis, startReplicas } from "./cluster.mjs";
import { createSeededRng } from "../../dist/router/rng.js";
import { killAllChildren } from "../quality/processes.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "30" },
    warmup: { type: "string", default: "6" },
    after: { type: "string", default: "10" },
    brownouts: { type: "string", default: "latency,errors" },
    json: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  process.stdout.write(
    "npm run bench:replicas [-- --rate 30 (requests/s in total) --warmup 6 (s) --after 10 (s after the brownout) --brownouts latency,errors --json out.json]\n",
  );
  process.exit(0);
}
const RATE = Number(values.rate);
const WARMUP_MS = Number(values.warmup) * 1000;
const AFTER_MS = Number(values.after) * 1000;
const BUCKET_MS = 250;
const BROWNOUT_TTFT_MS = 2500;
const FAST_TTFT_MS = 60;
const SLOW_EVERY = 4;
const ERROR_SHARE = 0.6;
const BROWNOUTS = values.brownouts.split(",").filter(Boolean);
for (const brownout of BROWNOUTS) {
  if (brownout !== "latency" && brownout !== "errors") {
    process.stderr.write(`--brownouts: "${brownout}" is neither latency nor errors\n`);
    process.exit(2);
  }
}

/** The upstream: SSE for both models; from `brownoutAt` (performance.now()) on, "cheap" browns out as `kind` says. */
function startUpstream(kind) {
  const arrivals = [];
  let brownoutAt = Number.POSITIVE_INFINITY;
  let cheapAfterBrownout = 0;
  // The same error pattern in every scenario.
  const rng = createSeededRng(42);
  const server = createServer((request, response) => {
    const parts = [];
    request.on("data", (part) => parts.push(part));
    request.on("end", () => {
      const now = performance.now();
      let model = "unknown";
      try {
        model = JSON.parse(Buffer.concat(parts).toString("utf8")).model;
      } catch {
        // not JSON: answered as unknown
      }
      arrivals.push({ atMs: now, model });
      if (kind === "errors" && model === "cheap" && now >= brownoutAt && rng.next() < ERROR_SHARE) {
        response.writeHead(503, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: { message: "overloaded", type: "server_error" } }));
        return;
      }
      // A tail brownout: one request in SLOW_EVERY is slow. p95 crosses the target once enough slow samples
      // are in the decaying window, so how fast that happens depends on how many samples a replica sees.
      const slow = kind === "latency" && model === "cheap" && now >= brownoutAt && ++cheapAfterBrownout % SLOW_EVERY === 0;
      const ttftMs = slow ? BROWNOUT_TTFT_MS : FAST_TTFT_MS;
      const chunk = (delta, finish = null) =>
        `data: ${JSON.stringify({ id: "b", object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(chunk({ role: "assistant", content: "" }));
      const timer = setTimeout(() => {
        response.write(chunk({ content: "hello" }));
        response.write(chunk({}, "stop"));
        response.write(
          `data: ${JSON.stringify({ id: "b", object: "chat.completion.chunk", created: 1, model, choices: [], usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 } })}\n\n`,
        );
        response.end("data: [DONE]\n\n");
      }, ttftMs);
      response.on("close", () => clearTimeout(timer));
    });
  });
  return new Promise((resolveStart) =>
    server.listen(0, "127.0.0.1", () =>
      resolveStart({
        url: `http://127.0.0.1:${server.address().port}/v1`,
        arrivals,
        brownout: () => (brownoutAt = performance.now()),
        close: () => new Promise((done) => server.close(done)),
      }),
    ),
  );
}

function gatewayConfig(upstreamUrl, shared) {
  const model = (id, price) => ({
    id,
    provider: "bench",
    rank: 1,
    score: 100,
    pricePerMTok: { input: price, output: price },
    contextTokens: 128000,
    prior: { ttftMs: 150, tokensPerSecond: 100 },
  });
  return {
    server: { logLevel: "warn", drainTimeoutMs: 1000 },
    providers: { bench: { baseUrl: upstreamUrl, apiKeyEnv: "BENCH_PROVIDER_KEY" } },
    models: [model("cheap", 0.1), model("dear", 5)],
    routes: { chat: { candidates: ["cheap", "dear"], target: { metric: "ttft", percentile: 95, ms: 800 }, deadlines: { firstTokenMs: 4000 } } },
    defaultRoute: "chat",
    ...(shared ? { sharedState: { redisUrlEnv: "BENCH_REDIS_URL" } } : {}),
  };
}

/** Open-loop traffic at RATE per second for `durationMs`, streamed, through `url`. */
async function traffic(url, durationMs, dispatcher) {
  const body = JSON.stringify({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] });
  const pending = [];
  let failures = 0;
  const started = performance.now();
  for (let sent = 0; performance.now() - started < durationMs; sent++) {
    const dueMs = started + (sent * 1000) / RATE;
    const waitMs = dueMs - performance.now();
    if (waitMs > 0) await sleep(waitMs);
    pending.push(
      fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body, dispatcher })
        .then(async (response) => {
          const text = await response.text();
          if (!response.ok || !text.includes("[DONE]")) {
            failures++;
            if (process.env.BENCH_DEBUG) process.stderr.write(`${response.status} ${text.slice(0, 300)}\n`);
          }
        })
        .catch((error) => {
          failures++;
          if (process.env.BENCH_DEBUG) process.stderr.write(`${String(error)} ${String(error.cause)}\n`);
        }),
    );
  }
  await Promise.all(pending);
  return failures;
}

/** Seconds from `fromMs` until cheap's share of arrivals stays ≤ 10% for four buckets in a row; NaN if never. */
function secondsToLeave(arrivals, fromMs, untilMs) {
  const buckets = [];
  for (let start = fromMs; start + BUCKET_MS <= untilMs; start += BUCKET_MS) {
    const inBucket = arrivals.filter((a) => a.atMs >= start && a.atMs < start + BUCKET_MS);
    const cheap = inBucket.filter((a) => a.model === "cheap").length;
    buckets.push(inBucket.length === 0 ? 0 : cheap / inBucket.length);
  }
  for (let index = 0; index + 4 <= buckets.length; index++) {
    if (buckets.slice(index, index + 4).every((share) => share <= 0.1)) return (index * BUCKET_MS) / 1000;
  }
  return Number.NaN;
}

async function scenario(kind, name, count, shared) {
  const dir = mkdtempSync(join(tmpdir(), "subsecond-bench-replicas-"));
  const upstream = await startUpstream(kind);
  const redis = shared ? await startRedis({ maxSeconds: 120 }) : undefined;
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", BENCH_PROVIDER_KEY: "bench", ...(redis ? { BENCH_REDIS_URL: redis.url } : {}) };
  const replicas = await startReplicas({ root: ROOT, dir, config: gatewayConfig(upstream.url, shared), env, count, maxSeconds: 120 });
  const proxy = await startHaproxy({ dir, backends: replicas.map((replica) => replica.port), maxSeconds: 120 });
  const dispatcher = new Agent({ connections: 256 });
  try {
    // Let every replica connect to Redis before traffic starts.
    if (shared) await sleep(1000);
    const running = traffic(proxy.url, WARMUP_MS + AFTER_MS, dispatcher);
    await sleep(WARMUP_MS);
    upstream.brownout();
    const brownoutAt = performance.now();
    const failures = await running;
    const leave = secondsToLeave(upstream.arrivals, brownoutAt, brownoutAt + AFTER_MS);
    const shares = [];
    for (let start = brownoutAt - 2000; start < brownoutAt + AFTER_MS; start += 1000) {
      const inSecond = upstream.arrivals.filter((a) => a.atMs >= start && a.atMs < start + 1000);
      shares.push(inSecond.length === 0 ? 0 : Math.round((100 * inSecond.filter((a) => a.model === "cheap").length) / inSecond.length));
    }
    const result = { brownout: kind, scenario: name, replicas: count, shared, secondsToLeave: leave, cheapSharePerSecond: shares, failures };
    process.stdout.write(
      `${kind.padEnd(8)} ${name.padEnd(28)} ${Number.isNaN(leave) ? "never" : `${leave.toFixed(2)} s`}   cheap's share per second from 2 s before the brownout: ${shares.join(" ")} %   (failed requests: ${failures})\n`,
    );
    return result;
  } finally {
    await dispatcher.close();
    await proxy.stop();
    await Promise.all(replicas.map((replica) => replica.stop(2000)));
    await redis?.stop();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.on("SIGINT", () => {
  killAllChildren();
  process.exit(130);
});
process.stdout.write(
  `bench:replicas — ${RATE} requests/s in total; after ${WARMUP_MS / 1000} s "cheap" browns out: latency (one request in ${SLOW_EVERY} takes ${BROWNOUT_TTFT_MS} ms to its first token, else ${FAST_TTFT_MS} ms) or errors (${ERROR_SHARE * 100}% answered 503); seconds until its share of traffic stays ≤ 10%\n`,
);
const results = [];
for (const kind of BROWNOUTS) {
  results.push(await scenario(kind, "1 replica", 1, false));
  results.push(await scenario(kind, "3 replicas, no shared state", 3, false));
  results.push(await scenario(kind, "3 replicas, shared (Redis)", 3, true));
}
if (values.json)
  writeFileSync(values.json, `${JSON.stringify({ rate: RATE, warmupMs: WARMUP_MS, afterMs: AFTER_MS, errorShare: ERROR_SHARE, results }, null, 2)}\n`);
