// The fault soak (issue 25): the built gateway in front of one healthy and one faulty model
// (fault-upstream.mjs), at concurrency 32 of which a few clients stop reading their streams, for a
// bounded time. It reports the requests lost where the healthy model could have served (must be 0), the
// secrets found in any response or log line (must be 0) and the gateway's RSS over time (must be flat).
//
//   npm run bench:soak [-- --seconds 180] [--concurrency 32] [--slow-readers 4] [--fault-share 0.3]
//   npm run bench -- --soak-faults [...]    (the same)
//
// Exit code 0 when every check passed, 1 when one failed, 2 on a bad flag. See bench/README.md.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { Pool, request } from "undici";
import { stringify as stringifyYaml } from "yaml";
import { createChildren } from "./lib/children.mjs";
import { log } from "./lib/output.mjs";
import { memMB } from "./lib/proc.mjs";
import { rssTrend } from "./lib/stats.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** RSS samples before this many seconds in are the heap sizing itself, not a trend. */
const SETTLE_S = 10;
/** The gateway's grace for clients that stop reading, in ms; a slow client stops for three of them. */
const GRACE_MS = 2000;

const { values: flags } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== "--soak-faults"),
  options: {
    seconds: { type: "string", default: "180" },
    concurrency: { type: "string", default: "32" },
    "slow-readers": { type: "string", default: "4" },
    "fault-share": { type: "string", default: "0.3" },
    out: { type: "string", default: join(ROOT, "bench/results/soak-faults.json") },
    "keep-logs": { type: "boolean", default: false },
  },
});
const seconds = Number(flags.seconds);
const concurrency = Number(flags.concurrency);
const slowReaders = Number(flags["slow-readers"]);
if (!(seconds >= 10 && seconds <= 3600) || !Number.isInteger(concurrency) || !Number.isInteger(slowReaders) || slowReaders >= concurrency || slowReaders < 0) {
  log("usage: --seconds 10..3600, --concurrency N, --slow-readers 0..N-1");
  process.exit(2);
}

// Fresh secrets per run: whatever carries them into a response or a log line is found by grep.
const PROVIDER_KEY = `sk-soak-provider-${randomBytes(12).toString("hex")}`;
const GATEWAY_KEY = `sk-soak-gateway-${randomBytes(12).toString("hex")}`;
const SECRETS = [PROVIDER_KEY, GATEWAY_KEY];

const workDir = mkdtempSync(join(tmpdir(), "subsecond-soak-faults-"));
const children = createChildren({ root: ROOT, workDir, pinned: false });
process.on("exit", () => children.killAllSync());
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => process.exit(130));

function gatewayConfig(upstreamUrl) {
  const model = (id, rank, input, output) => ({
    id: `soak/${id}`,
    provider: "soak",
    upstreamModel: id,
    rank,
    score: 100,
    pricePerMTok: { input, output },
    contextTokens: 128000,
    prior: { ttftMs: 50, tokensPerSecond: 200 },
  });
  return {
    server: { host: "127.0.0.1", port: 0, logLevel: "info", eventLimitBytes: 64 * 1024, slowReaderGraceMs: GRACE_MS },
    auth: { apiKeysEnv: "SOAK_GATEWAY_KEYS" },
    providers: { soak: { baseUrl: `${upstreamUrl}/v1`, apiKeyEnv: "SOAK_PROVIDER_KEY", maxConnections: concurrency } },
    models: [model("faulty", 1, 0.1, 0.2), model("healthy", 2, 0.5, 1), model("bulk", 3, 0.5, 1)],
    // A stalled JSON answer gives up after 3 s, not after the whole budget (the healthy model answers in ms).
    defaults: { deadlines: { firstTokenMs: 1600, totalMs: 3000, budgetMs: 30000 } },
    routes: { soak: { candidates: ["soak/faulty", "soak/healthy"], strategy: "ordered", maxAttempts: 3 } },
    defaultRoute: "soak",
  };
}

/** Counts of what the clients saw; `lost` is what the healthy model could have served and did not get to. */
const tally = {
  json: 0,
  stream: 0,
  ok: 0,
  servedByFaulty: 0,
  cutAfterContent: 0,
  lost: 0,
  lostExamples: [],
  slowStreams: 0,
  slowEndedByGateway: 0,
  slowDropped: 0,
  slowResumed: 0,
};
/** Clients still running, for the progress line. */
const running = { reading: 0, slow: 0 };
/** Where each secret was found. */
const leaks = [];

/** Records each secret in `text`, with what surrounds it (the secret itself replaced by its name). */
function findSecrets(where, text) {
  for (const secret of SECRETS) {
    const at = text.indexOf(secret);
    if (at === -1) continue;
    const name = secret === PROVIDER_KEY ? "provider key" : "gateway key";
    leaks.push({ where, secret: name, context: text.slice(Math.max(0, at - 200), at + secret.length + 100).replaceAll(secret, `<${name}>`) });
  }
}

function lose(kind, status, text) {
  tally.lost++;
  if (tally.lostExamples.length < 5) tally.lostExamples.push({ kind, status, text: text.slice(0, 300) });
}

/** A client that reads everything: half JSON, half streams, back to back until `endAt`. */
async function readingClient(pool, endAt) {
  running.reading++;
  let k = 0;
  while (performance.now() < endAt) {
    const stream = k++ % 2 === 0;
    tally[stream ? "stream" : "json"]++;
    try {
      const response = await pool.request({
        path: "/v1/chat/completions",
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${GATEWAY_KEY}` },
        body: JSON.stringify({ model: "soak", messages: [{ role: "user", content: "Say hello" }], stream }),
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
      const text = await response.body.text();
      findSecrets("response", `${JSON.stringify(response.headers)}\n${text}`);
      const servedBy = response.headers["x-subsecond-model"];
      if (servedBy === "soak/faulty") tally.servedByFaulty++;
      if (response.statusCode !== 200) lose(stream ? "stream" : "json", response.statusCode, text);
      else if (!stream) {
        if (text.includes('"choices"')) tally.ok++;
        else lose("json", 200, text);
      } else if (text.trimEnd().endsWith("data: [DONE]")) tally.ok++;
      // After content a stream cannot move to another model: the faulty model's cut ends it, by design.
      else if (servedBy === "soak/faulty" && text.includes('data: {"error"')) tally.cutAfterContent++;
      else lose("stream", 200, text.slice(-300));
    } catch (error) {
      lose(stream ? "stream" : "json", 0, String(error));
    }
  }
  running.reading--;
}

/**
 * A client that opens an endless stream and stops reading: every other time for 2 graces (it then reads
 * the gateway's error event), otherwise for 4 (the gateway has disconnected it by then). A client that
 * was not cut off by then (its buffers took long to fill) reads on for one grace and hangs up.
 */
async function slowClient(port, endAt) {
  const body = JSON.stringify({ model: "soak/bulk", messages: [{ role: "user", content: "Say a lot" }], stream: true });
  const request = `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nauthorization: Bearer ${GATEWAY_KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  running.slow++;
  while (performance.now() < endAt) {
    const stopMs = (tally.slowStreams++ % 2 === 0 ? 2 : 4) * GRACE_MS;
    const outcome = await new Promise((resolveOutcome) => {
      const socket = connect(port, "127.0.0.1", () => socket.write(request));
      // Secrets are searched in every read, with the end of the previous one in front.
      let tail = "";
      let stopped = false;
      socket.on("data", (data) => {
        const text = tail + data.toString("latin1");
        findSecrets("slow stream", text);
        tail = text.slice(-512);
        // The chunked body's last chunk: the stream is over (the connection would be kept alive).
        if (tail.endsWith("\r\n0\r\n\r\n")) socket.destroy();
        if (stopped) return;
        stopped = true;
        socket.pause();
        setTimeout(() => {
          socket.resume();
          setTimeout(() => {
            if (!socket.destroyed) resolveOutcome("resumed");
            socket.destroy();
          }, GRACE_MS);
        }, stopMs);
      });
      socket.on("error", () => resolveOutcome("dropped"));
      socket.on("close", () => resolveOutcome(tail.includes('"code":"slow_reader"') ? "ended" : "dropped"));
    });
    tally[{ ended: "slowEndedByGateway", dropped: "slowDropped", resumed: "slowResumed" }[outcome]]++;
  }
  running.slow--;
}

function metricLines(text, name) {
  return text.split("\n").filter((line) => line.startsWith(name));
}

async function main() {
  const upstream = await children.waitListening(children.spawnPinned("fault-upstream", 0, ["bench/fault-upstream.mjs", "--fault-share", flags["fault-share"]]));
  const configPath = join(workDir, "gateway.yaml");
  writeFileSync(configPath, stringifyYaml(gatewayConfig(upstream.url)));
  const env = { ...process.env, SOAK_PROVIDER_KEY: PROVIDER_KEY, SOAK_GATEWAY_KEYS: GATEWAY_KEY };
  delete env.PORT;
  delete env.HOST;
  const gw = await children.waitListening(children.spawnPinned("gateway", 1, ["dist/main.js", "serve", "--config", configPath], { env }), 30_000);
  const port = Number(new URL(gw.url).port);
  log(`soak: ${seconds} s, ${concurrency} clients (${slowReaders} stop reading their streams), faulty model fails ${flags["fault-share"]} of its requests`);

  const samples = [];
  const t0 = performance.now();
  const sample = () => samples.push({ tSec: (performance.now() - t0) / 1000, rssMB: memMB(gw.pid).rss });
  sample();
  const sampler = setInterval(sample, 5000);
  const progress = setInterval(
    () =>
      log(
        `  ${Math.round((performance.now() - t0) / 1000)} s: ${tally.ok} ok, ${tally.lost} lost, RSS ${samples.at(-1).rssMB.toFixed(0)} MB, clients running: ${running.reading} + ${running.slow} slow`,
      ),
    10_000,
  );
  const endAt = t0 + seconds * 1000;
  const pool = new Pool(gw.url, { connections: concurrency, pipelining: 1 });
  await Promise.all([
    ...Array.from({ length: concurrency - slowReaders }, () => readingClient(pool, endAt)),
    ...Array.from({ length: slowReaders }, () => slowClient(port, endAt)),
  ]);
  clearInterval(sampler);
  clearInterval(progress);
  sample();
  const metrics = await (await pool.request({ path: "/metrics", method: "GET" })).body.text();
  const faults = await (await request(`${upstream.url}/faults`)).body.json();
  await pool.close();
  await children.stop(gw, 15_000);
  await children.stop(upstream);

  const logText = `${readFileSync(gw.outPath, "utf8")}\n${readFileSync(gw.errPath, "utf8")}`;
  const logLines = logText.split("\n");
  for (const line of logLines) findSecrets("gateway log", line);
  const trend = rssTrend(samples, SETTLE_S);
  const result = {
    seconds,
    concurrency,
    slowReaders,
    faultShare: Number(flags["fault-share"]),
    requests: tally.json + tally.stream,
    ...tally,
    faultsServed: faults,
    secretsFound: leaks.length,
    leaks: leaks.slice(0, 10),
    logLines: logLines.length,
    rss: { ...trend, samples },
    gatewayRequests: metricLines(metrics, "subsecond_requests_total{"),
    gatewayFallbacks: metricLines(metrics, "subsecond_fallbacks_total{"),
    checks: { noneLost: tally.lost === 0, noSecrets: leaks.length === 0, rssFlat: trend.flat },
  };
  mkdirSync(dirname(flags.out), { recursive: true });
  writeFileSync(flags.out, `${JSON.stringify(result, null, 2)}\n`);
  const print = (line) => process.stdout.write(`${line}\n`);
  print(`fault soak: ${seconds} s, c=${concurrency} (${slowReaders} slow readers), faulty model failing ${flags["fault-share"]} of its requests`);
  print(
    `  requests ${result.requests} (${tally.json} JSON, ${tally.stream} streams): ${tally.ok} ok, ${tally.cutAfterContent} streams cut after content by the faulty model (by design), ${tally.lost} lost`,
  );
  print(
    `  faults served: ${Object.entries(faults)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  print(
    `  slow streams ${tally.slowStreams}: ${tally.slowEndedByGateway} ended by the gateway with slow_reader, ${tally.slowDropped} disconnected, ${tally.slowResumed} still running when the client read again`,
  );
  print(
    `  secrets found: ${leaks.length} (${new Set(leaks.map((l) => `${l.secret} in ${l.where}`)).size} kinds) in responses and ${logLines.length} log lines`,
  );
  print(
    `  RSS start ${trend.startMB.toFixed(1)} / peak ${trend.peakMB.toFixed(1)} / end ${trend.endMB.toFixed(1)} MB, slope ${trend.slopeMBPerMin.toFixed(2)} MB/min: ${trend.flat ? "flat" : "NOT flat"}`,
  );
  for (const [name, ok] of Object.entries(result.checks)) print(`  ${ok ? "PASS" : "FAIL"} ${name}`);
  print(`  (JSON: ${flags.out})`);
  if (flags["keep-logs"]) print(`  logs: ${workDir}`);
  else rmSync(workDir, { recursive: true, force: true });
  process.exit(Object.values(result.checks).every(Boolean) ? 0 : 1);
}

main().catch((error) => {
  log(`soak failed: ${error?.stack ?? error}`);
  process.exit(2);
});
