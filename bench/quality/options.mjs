// Command-line options of `npm run bench:quality`, parsed into the options of runQualityBench.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SCENARIOS, scenarioNamed } from "./scenarios.mjs";

export const USAGE = `npm run bench:quality [-- options]

Runs the built gateway (dist/) against the simulator on each scenario and scores its routing against an
oracle that knows the simulator's true latency at every moment. See bench/quality/README.md.

  --scenario name[,name]   scenarios to run (default: all: ${SCENARIOS.map((scenario) => scenario.name).join(", ")})
  --seeds 1,2,3            one run per seed; the table shows medians (default 1,2,3)
  --duration-ms N          traffic and story length per run (default 30000; --quick 12000)
  --rate N                 mean requests per second, Poisson arrivals (default 20)
  --quick                  one seed (the first of --seeds), shorter runs: a smoke run
  --out path               where the JSON goes (default bench/quality/results/<timestamp>.json)
  -h, --help
`;

/**
 * @typedef {object} BenchOptions
 * @property {string[]} scenarios   scenario names, in run order
 * @property {number[]} seeds
 * @property {number} durationMs
 * @property {number} ratePerSecond
 * @property {boolean} quick
 * @property {string} out           JSON path
 * @property {boolean} help
 */

function positive(name, value, { integer = false, max = Number.POSITIVE_INFINITY } = {}) {
  const parsed = Number(value);
  if (!(parsed > 0) || parsed > max || (integer && !Number.isInteger(parsed))) {
    throw new RangeError(`--${name} must be a positive ${integer ? "integer" : "number"}${Number.isFinite(max) ? ` up to ${max}` : ""}, got "${value}"`);
  }
  return parsed;
}

/**
 * Parses `argv` (without node and the script).
 * @param {readonly string[]} argv
 * @param {{ root: string, now?: Date }} context  `root`: the repository, for the default --out
 * @returns {BenchOptions}
 * @throws {RangeError|TypeError} naming the bad option
 */
export function parseBenchArgs(argv, { root, now = new Date() }) {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      scenario: { type: "string", multiple: true },
      seeds: { type: "string", default: "1,2,3" },
      "duration-ms": { type: "string" },
      rate: { type: "string", default: "20" },
      quick: { type: "boolean", default: false },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const scenarios = (values.scenario ?? SCENARIOS.map((scenario) => scenario.name)).flatMap((list) => list.split(",")).filter((name) => name !== "");
  for (const name of scenarios) scenarioNamed(name);
  const seeds = values.seeds
    .split(",")
    .filter((seed) => seed !== "")
    .map((seed) => {
      const parsed = Number(seed);
      if (!Number.isInteger(parsed) || parsed < 0) throw new RangeError(`--seeds takes non-negative integers, got "${seed}"`);
      return parsed;
    });
  if (seeds.length === 0) throw new RangeError("--seeds needs at least one seed");
  const stamp = now
    .toISOString()
    .replace(/:/g, "-")
    .replace(/\.\d+Z$/, "Z");
  return {
    scenarios,
    seeds: values.quick ? seeds.slice(0, 1) : seeds,
    durationMs:
      values["duration-ms"] === undefined ? (values.quick ? 12_000 : 30_000) : positive("duration-ms", values["duration-ms"], { integer: true, max: 600_000 }),
    ratePerSecond: positive("rate", values.rate, { max: 200 }),
    quick: values.quick,
    out: values.out ?? join(root, "bench/quality/results", `${stamp}.json`),
    help: values.help,
  };
}
