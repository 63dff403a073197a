// One run of one scenario with one seed: the simulator (dist/sim, in this process) playing the
// scenario's profile, the built gateway as a child process in front of it, the seeded traffic, and
// /metrics read every 500 ms. Returns what was observed; scoring is score.mjs's job.
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createSimRng, loadSimProfiles, startSimulator } from "../../dist/sim/index.js";
import { freePort, ROUTE, startGatewayProcess } from "./gateway.mjs";
import { scrape } from "./prometheus.mjs";
import { planTraffic, sendTraffic } from "./traffic.mjs";

/** Width of the bins in which the share of the route's decisions is measured, in ms. */
export const BIN_MS = 500;
/** How long requests may take to end after the last one was sent, in ms (the demo's budget is 10 s). */
const DRAIN_MS = 15_000;

/** @typedef {{ atMs: number, decisions: Map<string, number> }} Tick  cumulative first choices of the route per model, `atMs` after the story start */

/**
 * @typedef {object} ObservedRun
 * @property {import("./traffic.mjs").RequestRecord[]} records
 * @property {Tick[]} ticks
 * @property {import("./prometheus.mjs").Exposition} finalMetrics  /metrics after the last request ended
 * @property {{ id: string, pricePerMTok: { input: number, output: number } }[]} candidates
 * @property {object} profiles      the validated simulator profiles
 * @property {(modelId: string, atMs: number) => object} phaseAt  the simulator's phase of a model at a performance.now() time
 * @property {number} startAtMs     performance.now() at the story's start (= the traffic's)
 * @property {number} wallMs        how long the run took, set-up and drain included
 * @property {{ loadBefore: number, loadAfter: number, loopDelayP99Ms: number, loopDelayMaxMs: number }} host
 *   the host's 1-minute load average around the run, and this process's event-loop delay while the
 *   traffic ran (a late loop delays the client's TTFT readings and the simulator's answers alike)
 */

/**
 * Reads the route's first choices from /metrics at `startAtMs` + k·BIN_MS until stopped. A read that
 * fails or comes late is skipped: the bins around it merge.
 */
function pollDecisions(dispatcher, startAtMs) {
  const ticks = [];
  const controller = new AbortController();
  const polling = (async () => {
    for (let k = 0; !controller.signal.aborted; k++) {
      k = Math.max(k, Math.ceil((performance.now() - startAtMs) / BIN_MS));
      const waitMs = startAtMs + k * BIN_MS - performance.now();
      if (waitMs > 0) await sleep(waitMs, undefined, { signal: controller.signal }).catch(() => undefined);
      if (controller.signal.aborted) return;
      const atMs = performance.now() - startAtMs;
      try {
        const decisions = new Map();
        for (const sample of (await scrape(dispatcher, ["subsecond_route_decisions_total"])).samples) {
          if (sample.labels.route === ROUTE) decisions.set(sample.labels.model, (decisions.get(sample.labels.model) ?? 0) + sample.value);
        }
        ticks.push({ atMs, decisions });
      } catch {
        // skipped: see above
      }
    }
  })();
  return {
    ticks,
    async stop() {
      controller.abort();
      await polling;
    },
  };
}

/**
 * Runs `scenario` once.
 * @param {object} options
 * @param {string} options.root              repository root (dist/ and config/demo.yaml)
 * @param {import("./scenarios.mjs").Scenario} options.scenario
 * @param {number} options.seed              seeds the simulator and the traffic plan
 * @param {number} options.durationMs        traffic and story length
 * @param {number} options.ratePerSecond     mean request rate
 * @param {AbortSignal} [options.signal]     stops the traffic early
 * @returns {Promise<ObservedRun>}
 */
export async function runScenario({ root, scenario, seed, durationMs, ratePerSecond, signal }) {
  const startedMs = performance.now();
  const profiles = await loadSimProfiles(join(root, "bench/quality/scenarios", scenario.file));
  const plan = planTraffic(createSimRng(seed ^ 0x7a11c), { ratePerSecond, durationMs });
  const dir = mkdtempSync(join(tmpdir(), "subsecond-quality-"));
  let gateway;
  let simulator;
  try {
    // The simulator starts after the gateway is ready, so its story and the traffic start together.
    const simulatorPort = await freePort();
    gateway = await startGatewayProcess({
      root,
      dir,
      simulatorUrl: `http://127.0.0.1:${simulatorPort}/v1`,
      maxSeconds: (durationMs + DRAIN_MS) / 1000 + 60,
    });
    const startAtMs = performance.now() + 200;
    simulator = await startSimulator({ profiles, port: simulatorPort, storyDurationMs: durationMs, seed, startAtMs });
    const loadBefore = loadavg()[0];
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const poller = pollDecisions(gateway.dispatcher, startAtMs);
    const records = await sendTraffic({ dispatcher: gateway.dispatcher, route: ROUTE, plan, startAtMs, drainMs: DRAIN_MS, signal });
    loopDelay.disable();
    await poller.stop();
    const finalMetrics = await scrape(gateway.dispatcher);
    const sim = simulator;
    return {
      records,
      ticks: poller.ticks,
      finalMetrics,
      candidates: gateway.candidates,
      profiles,
      phaseAt: (modelId, atMs) => sim.phaseAt(modelId, atMs),
      startAtMs,
      wallMs: performance.now() - startedMs,
      host: { loadBefore, loadAfter: loadavg()[0], loopDelayP99Ms: loopDelay.percentile(99) / 1e6, loopDelayMaxMs: loopDelay.max / 1e6 },
    };
  } finally {
    await gateway?.stop();
    await simulator?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
