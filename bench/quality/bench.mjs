// The routing-quality bench (issue 23) as a function: runs each scenario once per seed, scores the
// runs, writes the JSON and returns it. bench/quality/run.mjs is its command line.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ROUTE, TARGET } from "./gateway.mjs";
import { medianFigures, renderTable } from "./report.mjs";
import { runScenario } from "./scenario-run.mjs";
import { scenarioNamed } from "./scenarios.mjs";
import { scoreRun } from "./score.mjs";

export { parseBenchArgs, USAGE } from "./options.mjs";
export { renderTable } from "./report.mjs";

/** The repository this bench belongs to: its dist/ is what gets measured. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The commit of `root` and whether its tree differs from it, so results say what they measured. */
function sourceState(root) {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: root, encoding: "utf8" }).trim() !== "";
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

const pct = (value) => (value === null ? "-" : `${(value * 100).toFixed(1)}%`);

/** One line about a finished run. */
function describeRun(name, figures) {
  const parts = [
    `attainment ${pct(figures.attainment.gateway)} (oracle ${pct(figures.attainment.oracle)})`,
    `cost ÷ oracle ${figures.costRatio.gateway?.toFixed(2) ?? "-"}`,
    `extra attempts ${figures.extraAttemptsPer100?.toFixed(1) ?? "-"}/100`,
  ];
  if (figures.degradation !== null) {
    const s = (value) => (value === null ? "never" : `${value.toFixed(1)} s`);
    parts.push(`leave ${s(figures.degradation.leaveSeconds)}, return ${s(figures.degradation.returnSeconds)}`);
  }
  parts.push(`${figures.requests.sent} requests, ${figures.requests.failed} failed, ${figures.wallSeconds.toFixed(0)} s`);
  parts.push(
    `host load ${figures.host.loadBefore.toFixed(1)}→${figures.host.loadAfter.toFixed(1)}, client loop delay p99 ${figures.host.loopDelayP99Ms.toFixed(0)} ms`,
  );
  return `${name} seed ${figures.seed}: ${parts.join(", ")}`;
}

/**
 * Runs the bench: every scenario of `options.scenarios` once per seed, one run at a time (the gateway
 * and the traffic each get a core of a 2-core host), scored and summarised as medians over seeds. The
 * JSON is written to `options.out`.
 * @param {import("./options.mjs").BenchOptions} options
 * @param {{ root?: string, log?: (line: string) => void, signal?: AbortSignal }} [context]
 *   `root`: the repository whose dist/ and config/demo.yaml are used (default: this one); `log`:
 *   receives a line per finished run; `signal`: stops the run in progress and rejects.
 * @returns {Promise<{ result: object, outPath: string, table: string }>}
 */
export async function runQualityBench(options, { root = ROOT, log = () => undefined, signal } = {}) {
  const started = new Date();
  const startedMs = performance.now();
  const scenarios = [];
  for (const name of options.scenarios) {
    const scenario = scenarioNamed(name);
    const runs = [];
    for (const seed of options.seeds) {
      signal?.throwIfAborted();
      const observed = await runScenario({ root, scenario, seed, durationMs: options.durationMs, ratePerSecond: options.ratePerSecond, signal });
      signal?.throwIfAborted();
      const figures = scoreRun(observed, { scenario, seed, durationMs: options.durationMs, target: TARGET });
      runs.push(figures);
      log(describeRun(name, figures));
    }
    scenarios.push({
      name,
      about: scenario.about,
      profile: relative(root, join(root, "bench/quality/scenarios", scenario.file)),
      seeds: [...options.seeds],
      median: medianFigures(runs),
      runs,
    });
  }
  const result = {
    bench: "quality",
    startedAt: started.toISOString(),
    runSeconds: (performance.now() - startedMs) / 1000,
    source: sourceState(root),
    node: process.version,
    options: { scenarios: options.scenarios, seeds: options.seeds, durationMs: options.durationMs, ratePerSecond: options.ratePerSecond, quick: options.quick },
    route: ROUTE,
    target: TARGET,
    scenarios,
  };
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(options.out, `${JSON.stringify(result, null, 2)}\n`);
  return { result, outPath: options.out, table: renderTable(scenarios, TARGET) };
}
