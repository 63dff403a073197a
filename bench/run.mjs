// Benchmark orchestrator: Subsecond against the physical floor (a bare Node proxy) and the direct path,
// interleaved within one run, over several fresh process pairs. See bench/README.md.
//
//   npm run bench [-- --quick] [--repeats N] [--out file] [--soak] [--soak-seconds S]
//                 [--node-flags="--flag ..."] [--gateway-as-floor] [--floor-pipeline] [--gateway-log-level info] [--keep-logs] [--no-freeze] [--pm-qos] [--strict]
//                 [--phases ttfc_c1,ttfc_c16,stream_c1,stream_c16,c1,c16,c64] [--nice=-10] [--wait-lock 600]
//   npm run bench -- --profile [--profile-seconds 10] [--profile-body json|stream|short]
//       CPU-profiles the gateway and the floor under c=16 and prints their top self-time functions.
//
// Layout (2 cores): this process (the load driver) and the mock upstream on core 0; the proxy under
// test on core 1. While one target is measured the other proxy is SIGSTOPped, so the two proxies never
// share core 1. Every child is spawned here, tracked by PID, and killed by PID on exit, error or signal.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { availableParallelism, getPriority, setPriority, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { request } from "undici";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { chatBody, runLoad, summarize } from "./load.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BENCH_KEY = "bench-key";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    soak: { type: "boolean", default: false },
    "soak-seconds": { type: "string", default: "300" },
    out: { type: "string", default: join(ROOT, "bench/results/latest.json") },
    repeats: { type: "string" },
    "node-flags": { type: "string", default: "" },
    "gateway-as-floor": { type: "boolean", default: false },
    "floor-pipeline": { type: "boolean", default: false },
    "gateway-log-level": { type: "string", default: "info" },
    "keep-logs": { type: "boolean", default: false },
    "no-freeze": { type: "boolean", default: false },
    "pm-qos": { type: "boolean", default: false },
    strict: { type: "boolean", default: false },
    nice: { type: "string", default: "-10" },
    "wait-lock": { type: "string", default: "600" },
    phases: { type: "string" },
    profile: { type: "boolean", default: false },
    "profile-seconds": { type: "string", default: "10" },
    "profile-body": { type: "string", default: "json" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (args.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").filter((l, i, a) => a.slice(0, i + 1).every((x) => x.startsWith("//"))).join("\n") + "\n");
  process.exit(0);
}

const quick = args.quick;
const repeats = Number(args.repeats ?? (quick ? 2 : 3));
const nodeFlags = args["node-flags"].split(/\s+/).filter(Boolean);
const soakSeconds = Number(args["soak-seconds"]);
const freeze = !args["no-freeze"];

/** Durations in ms. `warm` is discarded at the start of each phase; `win` is the measured window. */
const T = quick
  ? { cancelWarmup: 500, warmup: 1200, jsonWarm: 300, jsonWin: 1500, streamWarm: 300, streamWin: 1500, ttfcWin: 1500, ttfc16Win: 1000 }
  : { cancelWarmup: 1000, warmup: 3000, jsonWarm: 500, jsonWin: 5000, streamWarm: 500, streamWin: 7000, ttfcWin: 10000, ttfc16Win: 3000 };
const STREAM = { chunks: 64, chunkMs: 20 };
const SHORT = { chunks: 4, chunkMs: 5 };
const PAUSE_BETWEEN_PHASES_MS = 150;
const SOAK_SETTLE_S = 10;

const PHASES = [
  { key: "ttfc_c1", what: `TTFC, short streams ${SHORT.chunks}x${SHORT.chunkMs}ms`, concurrency: 1, body: "short", stream: true, warm: T.streamWarm, win: T.ttfcWin },
  { key: "ttfc_c16", what: `TTFC, short streams ${SHORT.chunks}x${SHORT.chunkMs}ms`, concurrency: 16, body: "short", stream: true, warm: T.streamWarm, win: T.ttfc16Win, stagger: SHORT.chunks * SHORT.chunkMs + SHORT.chunkMs, think: SHORT.chunkMs },
  { key: "stream_c1", what: `stream ${STREAM.chunks}x${STREAM.chunkMs}ms`, concurrency: 1, body: "stream", stream: true, warm: T.streamWarm, win: T.streamWin, abortAtEnd: true },
  { key: "stream_c16", what: `stream ${STREAM.chunks}x${STREAM.chunkMs}ms`, concurrency: 16, body: "stream", stream: true, warm: T.streamWarm, win: T.streamWin, abortAtEnd: true, stagger: STREAM.chunks * STREAM.chunkMs + STREAM.chunkMs, think: STREAM.chunkMs },
  { key: "c1", what: "latency, JSON", concurrency: 1, body: "json", warm: T.jsonWarm, win: T.jsonWin },
  { key: "c16", what: "latency + max req/s, JSON", concurrency: 16, body: "json", warm: T.jsonWarm, win: T.jsonWin, cpu: true },
  { key: "c64", what: "latency + max req/s + RSS, JSON", concurrency: 64, body: "json", warm: T.jsonWarm, win: T.jsonWin, cpu: true, rss: true },
];
const ALL_PHASES = PHASES.map((p) => p.key);
if (args.phases) {
  const want = args.phases.split(",").map((x) => x.trim());
  const bad = want.filter((k) => !ALL_PHASES.includes(k));
  if (bad.length) {
    process.stderr.write(`unknown phase(s) ${bad.join(", ")}; known: ${ALL_PHASES.join(", ")}\n`);
    process.exit(2);
  }
  for (let i = PHASES.length - 1; i >= 0; i--) if (!want.includes(PHASES[i].key)) PHASES.splice(i, 1);
}
const withStreams = PHASES.some((p) => p.stream);
/** The kind of work of a phase, as warm-ups know it. */
const kindOf = (spec) => (spec.stream ? "stream" : "json");
/** The kinds of work the selected phases do, that of the first phases last: for the mock's and the driver's warm-up. */
const KINDS = [...new Set(PHASES.map(kindOf))].reverse();

const BODIES = {
  json: chatBody(),
  stream: chatBody({ stream: true }),
  short: chatBody({ stream: true, marker: `[mock chunks=${SHORT.chunks} ms=${SHORT.chunkMs}] ` }),
};

// ---------------------------------------------------------------------------------------------------
// Children: spawned pinned, tracked by PID, killed by PID.

const children = new Map(); // pid -> { name, child, exited }
const workDir = mkdtempSync(join(tmpdir(), "subsecond-bench-"));
const log = (...a) => process.stderr.write(`${a.join(" ")}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pinSelf() {
  if (availableParallelism() < 2) {
    log("WARN: fewer than 2 CPUs; running unpinned, ratios will be meaningless");
    return false;
  }
  try {
    execFileSync("taskset", ["-a", "-p", "-c", "0", String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    log("WARN: taskset failed (apt-get install -y util-linux); running unpinned");
    return false;
  }
}
const pinned = pinSelf();

/**
 * This host may be shared with other work (builds, test runs). A negative nice value, inherited by
 * every child, gives the benchmark's processes precedence over it; needs root or CAP_SYS_NICE.
 */
function reniceSelf(n) {
  try {
    setPriority(n);
    return getPriority();
  } catch {
    return getPriority();
  }
}
const niceness = reniceSelf(Number(args.nice));

/**
 * --pm-qos: keeps idle CPUs polling instead of halting while the run lasts, with a PM QoS request of
 * 0 µs wake-up latency (Linux, /dev/cpu_dma_latency; tuned's latency-performance profile does the same).
 * The request lasts while the file stays open, so it ends with this process; needs root. Off by default:
 * the issue's floor figures look like those of halting CPUs (bench/README.md, "Idle CPUs").
 */
function holdCpuLatency() {
  if (!args["pm-qos"]) return "as the machine is set (idle CPUs may halt)";
  try {
    const fd = openSync("/dev/cpu_dma_latency", "r+");
    writeSync(fd, Buffer.alloc(4));
    return "held at 0 µs (idle CPUs poll)";
  } catch (error) {
    throw new Error(`--pm-qos: cannot hold /dev/cpu_dma_latency (${error.code ?? error.message}); it needs root`);
  }
}

function spawnPinned(name, cpu, argv, { env = process.env, flags = [], logFile = null } = {}) {
  const cmd = pinned ? "taskset" : process.execPath;
  const cmdArgs = pinned ? ["-c", String(cpu), process.execPath, ...flags, ...argv] : [...flags, ...argv];
  const outPath = logFile ?? join(workDir, `${name}.out`);
  const errPath = `${outPath}.err`;
  const out = openSync(outPath, "w");
  const err = openSync(errPath, "w");
  const child = spawn(cmd, cmdArgs, { cwd: ROOT, env, stdio: ["ignore", out, err] });
  closeSync(out);
  closeSync(err);
  const rec = { name, child, pid: child.pid, outPath, errPath, exited: false, url: null };
  child.on("exit", () => (rec.exited = true));
  children.set(child.pid, rec);
  return rec;
}

/** Waits for the child's {"msg":"listening","url":...} line on its stdout (a file), bounded. */
async function waitListening(rec, timeoutMs = 20_000) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (rec.exited) throw new Error(`${rec.name} exited before listening:\n${tail(rec.errPath)}\n${tail(rec.outPath)}`);
    const text = readFileSync(rec.outPath, "utf8");
    for (const line of text.split("\n")) {
      if (!line.includes('"listening"')) continue;
      try {
        const j = JSON.parse(line);
        if (j.msg === "listening" && typeof j.url === "string") {
          rec.url = j.url.replace("localhost", "127.0.0.1").replace(/\/$/, "");
          return rec;
        }
      } catch {}
    }
    await sleep(25);
  }
  throw new Error(`${rec.name} did not print a listening line within ${timeoutMs} ms:\n${tail(rec.errPath)}\n${tail(rec.outPath)}`);
}

function tail(path, n = 2000) {
  try {
    const t = readFileSync(path, "utf8");
    return t.length > n ? `…${t.slice(-n)}` : t;
  } catch {
    return "";
  }
}

async function stopChild(rec, graceMs = 2000) {
  if (!children.has(rec.pid)) return;
  if (!rec.exited) {
    try {
      process.kill(rec.pid, "SIGCONT");
      process.kill(rec.pid, "SIGTERM");
    } catch {}
    const deadline = performance.now() + graceMs;
    while (!rec.exited && performance.now() < deadline) await sleep(20);
    if (!rec.exited) {
      try {
        process.kill(rec.pid, "SIGKILL");
      } catch {}
      while (!rec.exited && performance.now() < deadline + 2000) await sleep(20);
    }
  }
  children.delete(rec.pid);
}

function killAllSync() {
  for (const rec of children.values()) {
    if (rec.exited) continue;
    try {
      process.kill(rec.pid, "SIGKILL");
    } catch {}
  }
  children.clear();
}

let cleaning = false;
async function cleanup() {
  if (cleaning) return;
  cleaning = true;
  await Promise.all([...children.values()].map(stopChild));
  releaseLock();
  if (!args["keep-logs"]) rmSync(workDir, { recursive: true, force: true });
  else log(`logs kept in ${workDir}`);
}
process.on("exit", () => {
  killAllSync();
  releaseLock();
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    log(`\n${sig}: stopping children`);
    cleanup().finally(() => process.exit(130));
  });
}

const signalProc = (rec, sig) => {
  if (!freeze || !rec || rec.exited) return;
  try {
    process.kill(rec.pid, sig);
  } catch {}
};

// ---------------------------------------------------------------------------------------------------
// /proc readings.

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime+stime of a process, in ms. */
function cpuMs(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK; // fields 14 and 15 of proc(5)
  } catch {
    return NaN;
  }
}

/** VmRSS and VmHWM of a process, in MB. */
function memMB(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
    return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** Busy (all but idle, iowait and steal), interrupt and steal time of cores 0 and 1 from /proc/stat, in ms. */
function coreTimes() {
  const out = {};
  try {
    for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
      const m = /^cpu([01]) (.*)$/.exec(line);
      if (!m) continue;
      const [user, nice, system, , , irq, softirq, steal] = m[2].trim().split(/\s+/).map(Number);
      // busy includes interrupt time: /proc/PID/stat charges most of our loopback softirq to our processes.
      const ms = (x) => (x * 1000) / CLK_TCK;
      out[`cpu${m[1]}`] = { busy: ms(user + nice + system + irq + softirq), irq: ms(irq + softirq), steal: ms(steal) };
    }
  } catch {}
  return out;
}

function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// Targets.

// Below info the gateway does not log its "listening" line, so it gets a port picked here instead.
const LOGS_LISTENING = ["debug", "info"].includes(args["gateway-log-level"]);
let gatewayPort = 0;

async function freePort() {
  const { createServer } = await import("node:net");
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

async function writeGatewayConfig(mockUrl) {
  if (!LOGS_LISTENING) gatewayPort = await freePort();
  const src = parseYaml(readFileSync(join(ROOT, "config/gateway.yaml"), "utf8"));
  const cfg = {
    server: { host: "127.0.0.1", port: gatewayPort, logLevel: args["gateway-log-level"] },
    auth: { apiKeysEnv: "SUBSECOND_API_KEYS" },
    providers: { mock: { baseUrl: `${mockUrl}/v1`, maxConnections: 128 } },
    models: src.models.map((m) => ({ ...m, provider: "mock" })),
    ...(src.defaults ? { defaults: src.defaults } : {}),
    routes: { "realtime-chat": { candidates: "*", strategy: "cheapest-within-target" } },
    defaultRoute: "realtime-chat",
  };
  const path = join(ROOT, "bench/gateway-bench.yaml");
  const header =
    "# Generated by bench/run.mjs from config/gateway.yaml: every model served by the bench mock upstream.\n";
  writeFileSync(path, header + stringifyYaml(cfg));
  return { path, models: cfg.models.length };
}

async function startFloor(name, mockUrl, extraFlags = []) {
  const argv = ["bench/floor-proxy.mjs", "--upstream", mockUrl, ...(args["floor-pipeline"] ? ["--pipeline"] : [])];
  const rec = spawnPinned(name, 1, argv, { flags: [...nodeFlags, ...extraFlags] });
  return waitListening(rec);
}

async function startGateway(name, mockUrl, extraFlags = []) {
  if (args["gateway-as-floor"]) return startFloor(name, mockUrl, extraFlags);
  const env = { ...process.env, SUBSECOND_API_KEYS: BENCH_KEY };
  delete env.PORT;
  delete env.HOST;
  delete env.SUBSECOND_CONFIG;
  const rec = spawnPinned(name, 1, ["dist/main.js", "serve", "--config", "bench/gateway-bench.yaml"], {
    env,
    flags: [...nodeFlags, ...extraFlags],
  });
  if (LOGS_LISTENING) return waitListening(rec, 30_000);
  return waitReady(rec, `http://127.0.0.1:${gatewayPort}`, 30_000);
}

/** Polls GET /readyz until it answers 200, bounded. */
async function waitReady(rec, url, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (rec.exited) throw new Error(`${rec.name} exited before ready:\n${tail(rec.errPath)}\n${tail(rec.outPath)}`);
    try {
      const r = await request(`${url}/readyz`, { headersTimeout: 1000, bodyTimeout: 1000 });
      await r.body.dump();
      if (r.statusCode === 200) {
        rec.url = url;
        return rec;
      }
    } catch {}
    await sleep(50);
  }
  throw new Error(`${rec.name} was not ready at ${url}/readyz within ${timeoutMs} ms:\n${tail(rec.errPath)}`);
}

/** One JSON and one streamed request must succeed before anything is measured. */
async function sanity(name, url) {
  const j = await request(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${BENCH_KEY}` },
    body: BODIES.json,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const jt = await j.body.text();
  if (j.statusCode !== 200 || !jt.includes('"choices"'))
    throw new Error(`${name}: sanity JSON request got ${j.statusCode}: ${jt.slice(0, 500)}`);
  if (!withStreams) return { jsonHeaders: j.headers };
  const s = await request(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${BENCH_KEY}` },
    body: BODIES.short,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const st = await s.body.text();
  if (s.statusCode !== 200 || !st.includes("data: [DONE]") || !st.includes('"content":"Hello"'))
    throw new Error(`${name}: sanity stream request got ${s.statusCode}: ${st.slice(0, 500)}`);
  if (st.includes('"usage"')) log(`WARN: ${name} forwarded a usage chunk the client did not ask for`);
  return { jsonHeaders: j.headers, streamHeaders: s.headers };
}

// ---------------------------------------------------------------------------------------------------
// Measurement.

async function mockStats(mock) {
  try {
    const r = await request(`${mock.url}/mock/stats`, { headersTimeout: 2000, bodyTimeout: 2000 });
    return await r.body.json();
  } catch {
    return null;
  }
}

async function runPhase(target, spec, mock, others) {
  const s0 = await mockStats(mock);
  for (const o of others) signalProc(o.proc, "SIGSTOP");
  signalProc(target.proc, "SIGCONT");
  const pid = target.proc?.pid;
  let c0, c1, m0, m1, rssTimer, k0, k1;
  let rssMax = 0;
  let peakReset = false;
  const sampleRss = () => {
    const m = memMB(pid);
    if (m.rss > rssMax) rssMax = m.rss;
  };
  const r = await runLoad({
    url: target.url,
    body: BODIES[spec.body],
    key: BENCH_KEY,
    concurrency: spec.concurrency,
    durationMs: spec.warm + (spec.stagger ?? 0) + spec.win,
    warmMs: spec.warm + (spec.stagger ?? 0),
    staggerMs: spec.stagger ?? 0,
    thinkMs: spec.think ?? 0,
    stream: Boolean(spec.stream),
    abortAtEnd: Boolean(spec.abortAtEnd),
    drainTimeoutMs: spec.stream ? 5000 : 10_000,
    onWindowStart: () => {
      k0 = coreTimes();
      m0 = cpuMs(mock.pid);
      if (pid) {
        c0 = cpuMs(pid);
        if (spec.rss) {
          peakReset = resetPeak(pid);
          rssTimer = setInterval(sampleRss, 200);
        }
      }
    },
    onWindowEnd: () => {
      k1 = coreTimes();
      m1 = cpuMs(mock.pid);
      if (pid) {
        c1 = cpuMs(pid);
        if (spec.rss) {
          clearInterval(rssTimer);
          sampleRss();
        }
      }
    },
  });
  const s1 = await mockStats(mock);
  const out = {
    rps: r.rps,
    completed: r.completed,
    errors: r.errors,
    errorKinds: r.errorKinds,
    lat: summarize(r.lat),
    driverMsPerReq: r.driverCpuMs / Math.max(1, r.completed),
    mockMsPerReq: (m1 - m0) / Math.max(1, r.completed),
  };
  if (pid) out.cpuMsPerReq = (c1 - c0) / Math.max(1, r.completed);
  // New TCP connections the mock accepted per request it served (the whole phase): ~0 when the proxy
  // keeps its upstream connections alive; ~1 when it opens one per request.
  if (s0 && s1) out.upstreamConnsPerReq = (s1.connections - s0.connections) / Math.max(1, s1.requests - s0.requests);
  // Interference: core time not spent in our processes (other work on the machine, plus kernel
  // softirq time that /proc does not charge to a process), as a share of the window.
  if (k0?.cpu0 && k1?.cpu1) {
    const w = r.windowMs;
    out.foreign = {
      core0: (k1.cpu0.busy - k0.cpu0.busy - r.driverCpuMs - (m1 - m0)) / w,
      core1: (k1.cpu1.busy - k0.cpu1.busy - (pid ? c1 - c0 : 0)) / w,
      steal: (k1.cpu0.steal - k0.cpu0.steal + k1.cpu1.steal - k0.cpu1.steal) / w,
      irq0: (k1.cpu0.irq - k0.cpu0.irq) / w,
      irq1: (k1.cpu1.irq - k0.cpu1.irq) / w,
    };
  }
  if (spec.stream) {
    out.ttfc = summarize(r.ttfc);
    out.gaps = summarize(r.gaps);
    out.chunkDelay = summarize(r.chunkDelays);
  }
  if (spec.rss && pid) {
    const m = memMB(pid);
    out.rssPeakMB = Math.max(rssMax, peakReset ? m.hwm : 0);
    out.rssEndMB = m.rss;
    out.hwmLifetimeMB = peakReset ? undefined : m.hwm;
  }
  if (r.errors > 0) log(`  WARN ${target.name} ${spec.key}: ${r.errors} errors ${JSON.stringify(r.errorKinds)}`);
  if (target.proc?.exited) {
    const code = target.proc.child.exitCode ?? target.proc.child.signalCode;
    throw new Error(`${target.name} (pid ${pid}) died during ${spec.key} (${code}):\n${tail(target.proc.errPath)}\n${tail(target.proc.outPath, 1000)}`);
  }
  return out;
}

/** Unmeasured load at c=16: JSON, short streams, or long streams that the client cancels mid-way. */
const WARM_LOADS = {
  json: { body: "json" },
  stream: { body: "short", stream: true },
  cancel: { body: "stream", stream: true, abortAtEnd: true },
};
const warmLoad = (target, kind, ms, mock, others) =>
  runPhase(target, { key: `warmup-${kind}`, concurrency: 16, warm: 0, win: ms, ...WARM_LOADS[kind] }, mock, others);

/**
 * Brings a target to its steady state for the given kinds of work ("stream", "json"), in that order,
 * and for no other: a major GC later frees the object maps only that other kind used, and V8 drops the
 * code compiled against them (bench/README.md, "Repeats and phases"). Cancelled streams come first: a
 * process's first client cancellation deoptimises dozens of hot functions in Node's and undici's stream
 * code at once (`--trace-deopt`: "code dependencies"), and V8 then recompiles them over the next seconds
 * on the proxy's one core. Without this, the first phase after the first cut, `stream_c16`, measured that.
 */
async function warmUp(target, mock, others, kinds) {
  for (const kind of kinds) {
    if (kind === "stream") await warmLoad(target, "cancel", T.cancelWarmup, mock, others);
    await warmLoad(target, kind, T.warmup, mock, others);
  }
}

/** Largest share of a core that went to work other than ours during the window. */
const foreignMax = (out) => Math.max(out.foreign?.core0 ?? 0, out.foreign?.core1 ?? 0);
// About 5–10% of a core goes to background work and accounting slack even on a quiet host.
const FOREIGN_LIMIT = 0.2;
const pct = (x) => `${(x * 100).toFixed(0)}%`;

// Quick runs must stay under 2 minutes, so they only flag interference; full runs measure again, within
// budgets that keep a run under 10 minutes (8–8.5 without re-measuring).
let quietBudgetMs = (quick ? 0 : 45) * 1000;
let retriesLeft = quick ? 0 : 6;
/** Waits (from a bounded budget for the whole run) until neither core is busier than FOREIGN_LIMIT. */
async function waitQuiet() {
  const t0 = performance.now();
  while (quietBudgetMs > 0) {
    const a = coreTimes();
    await sleep(300);
    const b = coreTimes();
    quietBudgetMs -= 300;
    const busy = Math.max(b.cpu0.busy - a.cpu0.busy, b.cpu1.busy - a.cpu1.busy) / 300;
    if (busy <= FOREIGN_LIMIT) return { quiet: true, ms: performance.now() - t0 };
  }
  return { quiet: false, ms: performance.now() - t0 };
}

const rotate = (a, k) => a.map((_, i) => a[(i + k) % a.length]);

// ---------------------------------------------------------------------------------------------------
// Aggregation and report.

const median = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const get = (o, path) => path.split(".").reduce((x, k) => (x == null ? undefined : x[k]), o);

/** Metric rows: `path` inside a phase result; `added` subtracts direct's value of the same repeat. */
const ROWS = [
  { label: "c=1 latency p50, added", phase: "c1", path: "lat.p50", unit: "ms", added: true },
  { label: "c=1 latency p99, added", phase: "c1", path: "lat.p99", unit: "ms", added: true },
  { label: "c=16 latency p50, added", phase: "c16", path: "lat.p50", unit: "ms", added: true },
  { label: "c=16 latency p99, added", phase: "c16", path: "lat.p99", unit: "ms", added: true },
  { label: "c=64 latency p50, added", phase: "c64", path: "lat.p50", unit: "ms", added: true },
  { label: "c=64 latency p99, added", phase: "c64", path: "lat.p99", unit: "ms", added: true },
  { label: "max req/s, c=16", phase: "c16", path: "rps", unit: "req/s" },
  { label: "max req/s, c=64", phase: "c64", path: "rps", unit: "req/s" },
  { label: "CPU per request, c=16", phase: "c16", path: "cpuMsPerReq", unit: "ms", directPath: "mockMsPerReq" },
  { label: "CPU per request, c=64", phase: "c64", path: "cpuMsPerReq", unit: "ms", directPath: "mockMsPerReq" },
  { label: "TTFC p50, added, c=1 (short)", phase: "ttfc_c1", path: "ttfc.p50", unit: "ms", added: true },
  { label: "TTFC p99, added, c=1 (short)", phase: "ttfc_c1", path: "ttfc.p99", unit: "ms", added: true },
  { label: "TTFC p50, added, c=16 (short)", phase: "ttfc_c16", path: "ttfc.p50", unit: "ms", added: true },
  { label: "TTFC p99, added, c=16 (short)", phase: "ttfc_c16", path: "ttfc.p99", unit: "ms", added: true },
  { label: "TTFC p50, added, c=1 (64x20)", phase: "stream_c1", path: "ttfc.p50", unit: "ms", added: true },
  { label: "TTFC p50, added, c=16 (64x20)", phase: "stream_c16", path: "ttfc.p50", unit: "ms", added: true },
  { label: "TTFC p99, added, c=16 (64x20)", phase: "stream_c16", path: "ttfc.p99", unit: "ms", added: true },
  { label: "chunk gap p50, added, c=1", phase: "stream_c1", path: "gaps.p50", unit: "ms", added: true },
  { label: "chunk gap p99, added, c=1", phase: "stream_c1", path: "gaps.p99", unit: "ms", added: true },
  { label: "chunk gap p50, added, c=16", phase: "stream_c16", path: "gaps.p50", unit: "ms", added: true },
  { label: "chunk gap p99, added, c=16", phase: "stream_c16", path: "gaps.p99", unit: "ms", added: true },
  { label: "chunk delay p50, added, c=1", phase: "stream_c1", path: "chunkDelay.p50", unit: "ms", added: true },
  { label: "chunk delay p99, added, c=1", phase: "stream_c1", path: "chunkDelay.p99", unit: "ms", added: true },
  { label: "chunk delay p50, added, c=16", phase: "stream_c16", path: "chunkDelay.p50", unit: "ms", added: true },
  { label: "chunk delay p99, added, c=16", phase: "stream_c16", path: "chunkDelay.p99", unit: "ms", added: true },
  { label: "upstream conns per request, c=16", phase: "c16", path: "upstreamConnsPerReq", unit: "n" },
  { label: "upstream conns per request, stream c=1", phase: "ttfc_c1", path: "upstreamConnsPerReq", unit: "n" },
  { label: "upstream conns per request, stream c=16", phase: "stream_c16", path: "upstreamConnsPerReq", unit: "n" },
  { label: "RSS after start", phase: "start", path: "rssMB", unit: "MB" },
  { label: "peak RSS during c=64", phase: "c64", path: "rssPeakMB", unit: "MB" },
];

function aggregate(reps) {
  const rows = [];
  for (const row of ROWS) {
    const per = { direct: [], floor: [], subsecond: [] };
    const directAbs = [];
    for (const rep of reps) {
      const ph = rep.phases[row.phase];
      if (!ph) continue;
      const d = get(ph.direct, row.directPath ?? row.path);
      directAbs.push(d);
      for (const t of ["floor", "subsecond"]) {
        const v = get(ph[t], row.path);
        per[t].push(row.added ? v - d : v);
      }
    }
    const floor = median(per.floor);
    const sub = median(per.subsecond);
    rows.push({
      label: row.label,
      unit: row.unit,
      phase: row.phase,
      path: row.path,
      added: Boolean(row.added),
      direct: median(directAbs),
      floor,
      subsecond: sub,
      diff: sub - floor,
      ratio: sub / floor,
      perRepeat: { direct: directAbs, floor: per.floor, subsecond: per.subsecond },
    });
  }
  return rows;
}

function acceptance(rows, soak) {
  const r = (label) => rows.find((x) => x.label === label);
  const checks = [];
  const add = (name, ok, detail) => checks.push({ name, result: ok === null ? "SKIP" : ok ? "PASS" : "FAIL", detail });
  // A row whose phase did not run (--phases) has no values: its checks are skipped, not failed.
  const missing = (...xs) => xs.some((x) => !Number.isFinite(x.floor) || !Number.isFinite(x.subsecond));
  const within = (label, ms) => {
    const x = r(label);
    if (missing(x)) return add(`${label}: gateway ≤ floor + ${ms} ms`, null, "not measured");
    add(`${label}: gateway ≤ floor + ${ms} ms`, x.diff <= ms, `${fmtMs(x.subsecond)} vs ${fmtMs(x.floor)} (${fmtSigned(x.diff)} ms)`);
  };
  const ratio = (label, max) => {
    const x = r(label);
    if (missing(x)) return add(`${label}: gateway ≤ ${max}× floor`, null, "not measured");
    // A non-positive floor value means the floor added nothing measurable; then compare absolute ms.
    const ok = x.floor > 0 ? x.subsecond <= max * x.floor : x.subsecond <= 0.15;
    add(`${label}: gateway ≤ ${max}× floor`, ok, `${fmtMs(x.subsecond)} vs ${fmtMs(x.floor)} (${fmtRatio(x.ratio)})`);
  };
  /** At most `max`× the floor's or `ms` over it, whichever is looser: for p99s that are near their own noise. */
  const ratioOrOver = (label, max, ms) => {
    const name = `${label}: gateway ≤ max(${max}× floor, floor + ${ms} ms)`;
    const x = r(label);
    if (missing(x)) return add(name, null, "not measured");
    add(name, x.subsecond <= Math.max(max * x.floor, x.floor + ms), `${fmtMs(x.subsecond)} vs ${fmtMs(x.floor)} (${fmtRatio(x.ratio)}, ${fmtSigned(x.diff)} ms)`);
  };
  within("c=1 latency p50, added", 0.15);
  ratio("c=1 latency p99, added", 1.5);
  ratio("c=16 latency p99, added", 1.5);
  ratio("c=64 latency p99, added", 1.5);
  for (const label of ["max req/s, c=16", "max req/s, c=64"]) {
    const x = r(label);
    if (missing(x)) {
      add(`${label}: gateway ≥ 70% of floor (goal 85%)`, null, "not measured");
      continue;
    }
    add(`${label}: gateway ≥ 70% of floor (goal 85%)`, x.ratio >= 0.7, `${x.subsecond.toFixed(0)} vs ${x.floor.toFixed(0)} req/s (${(x.ratio * 100).toFixed(0)}%${x.ratio >= 0.85 ? ", goal met" : ", goal 85% not met"})`);
  }
  within("TTFC p50, added, c=1 (short)", 0.15);
  ratio("TTFC p99, added, c=1 (short)", 1.5);
  within("TTFC p50, added, c=16 (short)", 0.15);
  ratio("TTFC p99, added, c=16 (short)", 1.5);
  // The p99 of the 64 × 20 ms streams at c=16 stays in the table but is not checked: a window holds about
  // 87 of their starts, so it is nearly the worst one (bench/README.md). ttfc_c16 has about 2,000.
  within("TTFC p50, added, c=16 (64x20)", 0.15);
  // "No added per-chunk gap beyond noise". Gaps show jitter and buffering; chunk delay (mock write to
  // driver read, stamped in each chunk) also shows a constant per-chunk cost. Noise at p50 is 0.15 ms
  // (the latency tolerance). The chunk delay p99 is about 0.1 ms, and the floor's own median moves by
  // more than 1.5× between runs (bench/README.md): it may be 1.5× the floor's or 0.15 ms over it.
  for (const c of ["c=1", "c=16"]) {
    within(`chunk delay p50, added, ${c}`, 0.15);
    ratioOrOver(`chunk delay p99, added, ${c}`, 1.5, 0.15);
    const g50 = r(`chunk gap p50, added, ${c}`);
    if (missing(g50)) continue;
    add(`chunk gap p50, added, ${c}: gateway ≤ max(floor, 0) + 0.15 ms`, g50.subsecond <= Math.max(0, g50.floor) + 0.15, `${fmtSigned(g50.subsecond)} vs floor ${fmtSigned(g50.floor)} ms`);
    ratioOrOver(`chunk gap p99, added, ${c}`, 1.5, 0.5);
  }
  // The issue's memory limit: the gateway's peak RSS at c=64 at most the floor's + this, in MB.
  const RSS_HEADROOM_MB = 40;
  const rss = r("peak RSS during c=64");
  const rssName = `peak RSS during c=64: gateway ≤ floor + ${RSS_HEADROOM_MB} MB`;
  if (missing(rss)) add(rssName, null, "not measured");
  else add(rssName, rss.diff <= RSS_HEADROOM_MB, `${rss.subsecond.toFixed(1)} vs ${rss.floor.toFixed(1)} MB (${fmtSigned(rss.diff, 1)} MB)`);
  if (soak) {
    add(`RSS flat (±10%) over the ${soak.seconds} s soak`, soak.flat, `start ${soak.startMB.toFixed(1)} MB, peak ${soak.peakMB.toFixed(1)}, end ${soak.endMB.toFixed(1)}, slope ${fmtSigned(soak.slopeMBPerMin, 2)} MB/min, end/start ${fmtSigned(soak.endVsStartPct, 1)}%`);
    // Flatness compares the end with the start; a balloon in between is bounded by the c=64 limit.
    const name = `peak RSS over the ${soak.seconds} s soak: gateway ≤ floor's c=64 peak + ${RSS_HEADROOM_MB} MB`;
    if (missing(rss)) add(name, null, "c64 not measured");
    else add(name, soak.peakMB <= rss.floor + RSS_HEADROOM_MB, `${soak.peakMB.toFixed(1)} vs ${rss.floor.toFixed(1)} MB (${fmtSigned(soak.peakMB - rss.floor, 1)} MB)`);
  } else add("RSS flat (±10%) over the 5-minute soak", null, "run with --soak");
  return checks;
}

const fmtMs = (v) => (Number.isFinite(v) ? `${v >= 0 ? "+" : ""}${v.toFixed(3)}` : "-");
const fmtSigned = (v, d = 3) => (Number.isFinite(v) ? `${v >= 0 ? "+" : ""}${v.toFixed(d)}` : "-");
const fmtRatio = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : "-");

function fmtCell(v, row, col) {
  if (!Number.isFinite(v)) return "-";
  if (row.unit === "req/s") return v.toFixed(0);
  if (row.unit === "n") return v.toFixed(3);
  if (row.unit === "MB") return col === "diff" ? fmtSigned(v, 1) : v.toFixed(1);
  if (col === "direct") return row.added ? `[${v.toFixed(3)}]` : v.toFixed(3);
  return row.added || col === "diff" ? fmtSigned(v) : v.toFixed(3);
}

function table(rows) {
  const head = ["metric", "unit", "direct", "floor", "subsecond", "sub-floor", "sub/floor"];
  const body = rows.map((row) => [
    row.label,
    row.unit,
    fmtCell(row.direct, row, "direct"),
    fmtCell(row.floor, row, "floor"),
    fmtCell(row.subsecond, row, "sub"),
    fmtCell(row.diff, row, "diff"),
    fmtRatio(row.ratio),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...body.map(line)].join("\n");
}

// ---------------------------------------------------------------------------------------------------
// Soak and the decision micro-benchmark.

async function soak(mock) {
  const gw = await startGateway("gateway-soak", mock.url);
  await sanity("subsecond", gw.url);
  const target = { name: "subsecond", url: gw.url, proc: gw };
  log(`soak: ${soakSeconds} s at c=64 (56 JSON + 8 short streams) through the gateway, RSS every 5 s`);
  await warmUp(target, mock, [], ["stream", "json"]);
  const live = { completed: 0 };
  const samples = [];
  const t0 = performance.now();
  let lastCount = 0;
  let lastT = t0;
  const sample = () => {
    const now = performance.now();
    const m = memMB(gw.pid);
    samples.push({ tSec: (now - t0) / 1000, rssMB: m.rss, rps: ((live.completed - lastCount) * 1000) / (now - lastT) });
    lastCount = live.completed;
    lastT = now;
  };
  sample();
  const timer = setInterval(sample, 5000);
  const common = { url: gw.url, key: BENCH_KEY, durationMs: soakSeconds * 1000, live, drainTimeoutMs: 10_000 };
  const [a, b] = await Promise.all([
    runLoad({ ...common, body: BODIES.json, concurrency: 56 }),
    runLoad({ ...common, body: BODIES.short, concurrency: 8, stream: true }),
  ]);
  clearInterval(timer);
  sample();
  await stopChild(gw);
  // The reference is taken from SOAK_SETTLE_S in: by then the heap has sized itself for c=64, and what
  // follows is the part that must stay flat.
  const settled = samples.filter((p) => p.tSec >= SOAK_SETTLE_S);
  const pts = settled.length >= 2 ? settled : samples;
  // The median of the first 30 s after settling, so that one GC-timed sample does not set the baseline.
  const startMB = median(pts.filter((p) => p.tSec <= pts[0].tSec + 30).map((p) => p.rssMB));
  const endMB = pts[pts.length - 1].rssMB;
  const peakMB = Math.max(...samples.map((p) => p.rssMB));
  const n = pts.length;
  const mx = pts.reduce((acc, p) => acc + p.tSec, 0) / n;
  const my = pts.reduce((acc, p) => acc + p.rssMB, 0) / n;
  const slope = pts.reduce((acc, p) => acc + (p.tSec - mx) * (p.rssMB - my), 0) / pts.reduce((acc, p) => acc + (p.tSec - mx) ** 2, 0);
  const spanS = pts[pts.length - 1].tSec - pts[0].tSec;
  const fitChangePct = ((slope * spanS) / startMB) * 100;
  const endVsStartPct = ((endMB - startMB) / startMB) * 100;
  const peakVsStartPct = ((Math.max(...pts.map((p) => p.rssMB)) - startMB) / startMB) * 100;
  return {
    seconds: soakSeconds,
    concurrency: 64,
    requests: a.completed + b.completed,
    rps: (a.completed + b.completed) / soakSeconds,
    errors: a.errors + b.errors,
    latencyJson: summarize(a.lat),
    startMB,
    peakMB,
    endMB,
    slopeMBPerMin: slope * 60,
    fitChangePct,
    endVsStartPct,
    peakVsStartPct,
    settleSeconds: SOAK_SETTLE_S,
    rssAtLoadStartMB: samples[0].rssMB,
    flat: Math.abs(endVsStartPct) <= 10 && Math.abs(fitChangePct) <= 10,
    samples,
  };
}

async function runDecision() {
  const script = join(ROOT, "bench/decision.mjs");
  if (!existsSync(script)) return { skipped: "bench/decision.mjs not found" };
  const rec = spawnPinned("decision", 1, ["bench/decision.mjs"], { env: { ...process.env, BENCH_QUICK: quick ? "1" : "" } });
  const deadline = performance.now() + (quick ? 30_000 : 120_000);
  while (!rec.exited && performance.now() < deadline) await sleep(50);
  const timedOut = !rec.exited;
  await stopChild(rec);
  const text = readFileSync(rec.outPath, "utf8").trim();
  if (timedOut) return { error: "timed out", stdout: text.slice(-2000) };
  if (rec.child.exitCode !== 0) return { error: `exit ${rec.child.exitCode}`, stderr: tail(rec.errPath), stdout: text.slice(-2000) };
  try {
    return JSON.parse(text);
  } catch {}
  const lines = text.split("\n").reverse();
  for (const l of lines) {
    try {
      return JSON.parse(l);
    } catch {}
  }
  return { raw: text.slice(-4000) };
}

// ---------------------------------------------------------------------------------------------------

// One run at a time: two runs would share the two cores, and bench/gateway-bench.yaml, which the
// gateway hot-reloads, would point one run's gateway at the other run's mock.
const LOCK = join(ROOT, "bench/results/run.lock");
let haveLock = false;

function lockHolder() {
  try {
    const pid = Number(readFileSync(LOCK, "utf8").trim());
    if (!pid || pid === process.pid) return null;
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("run.mjs") ? pid : null;
  } catch {
    return null;
  }
}

async function acquireLock() {
  mkdirSync(dirname(LOCK), { recursive: true });
  const deadline = performance.now() + Number(args["wait-lock"]) * 1000;
  let told = false;
  for (;;) {
    const holder = lockHolder();
    if (!holder) {
      // A stale lock (its run died) is simply taken over.
      writeFileSync(LOCK, String(process.pid));
      haveLock = true;
      return;
    } else if (!told) {
      log(`another bench run (pid ${holder}) is in progress; waiting for it (at most ${args["wait-lock"]} s)`);
      told = true;
    }
    if (performance.now() > deadline) throw new Error(`bench run ${holder} still holds ${LOCK}`);
    await sleep(500);
  }
}

function releaseLock() {
  if (!haveLock) return;
  haveLock = false;
  try {
    if (readFileSync(LOCK, "utf8").trim() === String(process.pid)) rmSync(LOCK, { force: true });
  } catch {}
}

/** --profile: each proxy alone under c=16 with --cpu-prof, then its top self-time functions. */
async function profileMode() {
  const dir = join(ROOT, "bench/results/profiles");
  mkdirSync(dir, { recursive: true });
  const mock = await waitListening(spawnPinned("mock", 0, ["bench/mock-upstream.mjs", "--chunks", String(STREAM.chunks), "--chunk-ms", String(STREAM.chunkMs)]));
  await writeGatewayConfig(mock.url);
  const seconds = Number(args["profile-seconds"]);
  const body = args["profile-body"];
  if (!BODIES[body]) throw new Error(`--profile-body must be one of ${Object.keys(BODIES).join(", ")}`);
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const files = [];
  for (const [name, start] of [["subsecond", startGateway], ["floor", startFloor]]) {
    const file = `${name}-${body}-${stamp}.cpuprofile`;
    const proc = await start(`${name}-prof`, mock.url, ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-name", file]);
    await sanity(name, proc.url);
    const target = { name, url: proc.url, proc };
    const stream = body !== "json";
    await warmUp(target, mock, [], [kindOf({ stream })]);
    const res = await runPhase(target, { key: "profile", concurrency: 16, body, stream, warm: 500, win: seconds * 1000, abortAtEnd: body === "stream", stagger: body === "stream" ? 1300 : 0, cpu: true }, mock, []);
    log(`${name}: ${res.rps.toFixed(0)} req/s, ${(res.cpuMsPerReq * 1000).toFixed(0)} µs CPU per request (profiler on)`);
    await stopChild(proc, 20_000);
    if (!existsSync(join(dir, file))) throw new Error(`${name} wrote no profile (it must exit cleanly on SIGTERM)`);
    files.push(join(dir, file));
  }
  await stopChild(mock);
  for (const f of files) {
    for (const by of ["function", "package"]) {
      const out = execFileSync(process.execPath, [join(ROOT, "bench/profile-top.mjs"), f, "--top", by === "function" ? "30" : "12", "--by", by], { cwd: ROOT, encoding: "utf8" });
      process.stdout.write(`\n${out}`);
    }
  }
  return 0;
}

function gitInfo() {
  const g = (...a) => {
    try {
      return execFileSync("git", a, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      return null;
    }
  };
  return { commit: g("rev-parse", "HEAD"), dirtySrc: Boolean(g("status", "--porcelain", "src")) };
}

async function main() {
  const started = performance.now();
  const deadlineMs = (quick ? 240 : 900) * 1000 + (args.soak ? (soakSeconds + 60) * 1000 : 0);
  const watchdog = setTimeout(() => {
    log(`ERROR: run exceeded ${deadlineMs / 1000} s; aborting`);
    cleanup().finally(() => process.exit(3));
  }, deadlineMs);
  watchdog.unref();

  const cpuLatency = holdCpuLatency();
  if (!args["gateway-as-floor"] && !existsSync(join(ROOT, "dist/main.js")))
    throw new Error("dist/main.js not found: run `npm run build` (or --gateway-as-floor to check the harness)");
  log(`subsecond bench: ${quick ? "quick" : "full"}, ${repeats} repeats, pinned=${pinned}, nice ${niceness}, CPU wake-up latency ${cpuLatency}, node ${process.version} ${nodeFlags.join(" ")}`);

  const mock = await waitListening(spawnPinned("mock", 0, ["bench/mock-upstream.mjs", "--chunks", String(STREAM.chunks), "--chunk-ms", String(STREAM.chunkMs)]));
  const gwConfig = await writeGatewayConfig(mock.url);
  const direct = { name: "direct", url: mock.url, proc: null };

  const reps = [];
  for (let r = 0; r < repeats; r++) {
    const tRep = performance.now();
    const [floorProc, gwProc] = await Promise.all([startFloor(`floor-${r}`, mock.url), startGateway(`gateway-${r}`, mock.url)]);
    const floor = { name: "floor", url: floorProc.url, proc: floorProc };
    const sub = { name: "subsecond", url: gwProc.url, proc: gwProc };
    const targets = [direct, floor, sub];
    const rep = { repeat: r, phases: {} };
    rep.phases.start = {
      direct: {},
      floor: { rssMB: memMB(floorProc.pid).rss },
      subsecond: { rssMB: memMB(gwProc.pid).rss },
    };
    await sanity("floor", floor.url);
    const gwSanity = await sanity("subsecond", sub.url);
    if (r === 0) rep.gatewayHeaders = Object.fromEntries(Object.entries(gwSanity.jsonHeaders).filter(([k]) => k.startsWith("x-")));
    const others = (t) => targets.filter((x) => x !== t && x.proc);
    if (r === 0) await warmUp(direct, mock, others(direct), KINDS);
    // Each proxy is warmed up for the kind of work of the phases that follow, and again when it changes.
    let work;
    for (let p = 0; p < PHASES.length; p++) {
      const spec = PHASES[p];
      const phaseWork = kindOf(spec);
      if (phaseWork !== work) {
        for (const t of [floor, sub]) await warmUp(t, mock, others(t), [phaseWork]);
        work = phaseWork;
      }
      const res = {};
      for (const t of rotate(targets, r + p)) {
        let out = await runPhase(t, spec, mock, others(t));
        await sleep(PAUSE_BETWEEN_PHASES_MS);
        // Other work on the machine (this host is shared) invalidates a phase: measure it once more.
        if (foreignMax(out) > FOREIGN_LIMIT && retriesLeft > 0) {
          retriesLeft--;
          const waited = await waitQuiet();
          log(`  ${t.name} ${spec.key}: ${pct(foreignMax(out))} of a core went to other work; measuring again${waited.quiet ? ` (quiet after ${(waited.ms / 1000).toFixed(1)} s)` : " (machine still busy)"}`);
          const again = await runPhase(t, spec, mock, others(t));
          again.firstAttemptForeign = out.foreign;
          out = foreignMax(again) < foreignMax(out) ? again : { ...out, retryForeign: again.foreign };
          await sleep(PAUSE_BETWEEN_PHASES_MS);
        }
        res[t.name] = out;
      }
      rep.phases[spec.key] = res;
      const f = (t) => (spec.stream ? `ttfc p50 ${res[t].ttfc.p50.toFixed(3)}` : `p50 ${res[t].lat.p50.toFixed(3)} ${res[t].rps.toFixed(0)}/s`);
      const fg = Math.max(...Object.values(res).map(foreignMax));
      log(`  r${r} ${spec.key.padEnd(10)} direct ${f("direct")} | floor ${f("floor")} | subsecond ${f("subsecond")} | other work ≤ ${pct(fg)}`);
    }
    for (const t of [floor, sub]) signalProc(t.proc, "SIGCONT");
    if (!args["gateway-as-floor"]) {
      try {
        rep.gatewayLogBytesPerRequest = statSync(gwProc.outPath).size / Math.max(1, Object.values(rep.phases).reduce((s, ph) => s + (ph.subsecond?.completed ?? 0), 0));
      } catch {}
    }
    await Promise.all([stopChild(floorProc), stopChild(gwProc)]);
    if (!args["keep-logs"]) rmSync(gwProc.outPath, { force: true });
    rep.seconds = (performance.now() - tRep) / 1000;
    reps.push(rep);
    log(`repeat ${r + 1}/${repeats} done in ${rep.seconds.toFixed(1)} s`);
  }

  const rows = aggregate(reps);
  const soakResult = args.soak ? await soak(mock) : null;
  await stopChild(mock);
  const decision = await runDecision();
  const checks = acceptance(rows, soakResult);

  const perRepeat = (phase) =>
    ["floor", "subsecond"].map((t) => `${t} ${reps.map((rep) => rep.phases[phase]?.[t].rps.toFixed(0) ?? "-").join(", ")}`).join("; ");
  const driver = median(reps.map((rep) => rep.phases.c16?.direct.driverMsPerReq * 1000));
  const mockCpu = median(reps.map((rep) => rep.phases.c16?.direct.mockMsPerReq * 1000));
  const phaseOuts = reps.flatMap((rep) => Object.entries(rep.phases).filter(([k]) => k !== "start").flatMap(([, ph]) => Object.values(ph)));
  const busyPhases = phaseOuts.filter((o) => foreignMax(o) > FOREIGN_LIMIT).length;
  const interference = { phases: phaseOuts.length, busyPhases, limit: FOREIGN_LIMIT, worst: Math.max(0, ...phaseOuts.map(foreignMax)) };
  const lines = [
    "",
    `Subsecond bench (${quick ? "quick" : "full"}): medians over ${repeats} fresh process pairs; latencies in ms; "added" = target − direct of the same repeat; [direct absolute]`,
    table(rows.filter((x) => Number.isFinite(x.floor) || Number.isFinite(x.subsecond))),
    "",
    `req/s by repeat, c=16 (V8 fast/slow modes show here): ${perRepeat("c16")}`,
    `req/s by repeat, c=64: ${perRepeat("c64")}`,
    ...(busyPhases
      ? [`WARNING: other work took > ${pct(FOREIGN_LIMIT)} of a core in ${busyPhases} of ${phaseOuts.length} measured phases (worst ${pct(interference.worst)}): this host was shared, treat the numbers as unreliable`]
      : [`machine quiet: no measured phase lost more than ${pct(FOREIGN_LIMIT)} of a core to other work`]),
    `driver overhead (core 0): ${driver.toFixed(1)} µs CPU per request in the driver, ${mockCpu.toFixed(1)} µs in the mock (direct, c=16)`,
    ...(reps[0]?.gatewayLogBytesPerRequest ? [`gateway log output: ${reps[0].gatewayLogBytesPerRequest.toFixed(0)} bytes per request`] : []),
    ...(soakResult
      ? [`soak: ${soakResult.seconds} s, ${soakResult.rps.toFixed(0)} req/s, ${soakResult.errors} errors, RSS start ${soakResult.startMB.toFixed(1)} / peak ${soakResult.peakMB.toFixed(1)} / end ${soakResult.endMB.toFixed(1)} MB, slope ${fmtSigned(soakResult.slopeMBPerMin, 2)} MB/min`]
      : []),
    `decision: ${JSON.stringify(decision).slice(0, 400)}`,
    "",
    "Acceptance:",
    ...checks.map((c) => `  ${c.result.padEnd(4)}  ${c.name} — ${c.detail}`),
    "",
  ];
  process.stdout.write(lines.join("\n") + "\n");

  const result = {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      nodeFlags,
      cpus: availableParallelism(),
      pinned,
      niceness,
      cpuLatency,
      quick,
      repeats,
      durationsMs: T,
      stream: STREAM,
      shortStream: SHORT,
      freeze,
      gatewayAsFloor: args["gateway-as-floor"],
      floorPipeline: args["floor-pipeline"],
      gatewayConfig: gwConfig,
      gatewayLogLevel: args["gateway-log-level"],
      interference,
      git: gitInfo(),
      seconds: (performance.now() - started) / 1000,
    },
    summary: rows,
    acceptance: checks,
    repeats: reps,
    soak: soakResult,
    decision,
  };
  mkdirSync(dirname(resolve(args.out)), { recursive: true });
  writeFileSync(resolve(args.out), JSON.stringify(result, null, 2));
  log(`wrote ${resolve(args.out)} (${result.meta.seconds.toFixed(0)} s)`);
  return args.strict && checks.some((c) => c.result === "FAIL") ? 1 : 0;
}

acquireLock()
  .then(() => (args.profile ? profileMode() : main()))
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (err) => {
    log(`ERROR: ${err?.stack ?? err}`);
    await cleanup();
    process.exit(2);
  });
