// --soak: minutes at c=64 through a fresh gateway, its RSS sampled every 5 s, and whether it stayed flat.
import { runLoad, summarize } from "../load.mjs";
import { memMB } from "./proc.mjs";
import { rssTrend } from "./stats.mjs";
import { BENCH_KEY, BODIES } from "./workload.mjs";

/**
 * The reference is taken from this many seconds in: by then the heap has sized itself for c=64, and
 * what follows is the part that must stay flat.
 */
const SOAK_SETTLE_S = 10;

/** Runs the soak against `mock`; `targets`, `runner` and `children` are the run's. */
export async function runSoak({ options, targets, runner, children, log }, mock) {
  const soakSeconds = options.soakSeconds;
  const gw = await targets.startGateway("gateway-soak", mock.url);
  await targets.sanity("subsecond", gw.url);
  const target = { name: "subsecond", url: gw.url, proc: gw };
  log(`soak: ${soakSeconds} s at c=64 (56 JSON + 8 short streams) through the gateway, RSS every 5 s`);
  await runner.warmUp(target, mock, [], ["stream", "json"]);
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
  await children.stop(gw);
  const trend = rssTrend(samples, SOAK_SETTLE_S);
  return {
    seconds: soakSeconds,
    concurrency: 64,
    requests: a.completed + b.completed,
    rps: (a.completed + b.completed) / soakSeconds,
    errors: a.errors + b.errors,
    latencyJson: summarize(a.lat),
    ...trend,
    settleSeconds: SOAK_SETTLE_S,
    rssAtLoadStartMB: samples[0].rssMB,
    samples,
  };
}
