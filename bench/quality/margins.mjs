// `node bench/quality/margins.mjs`: what a margin under the target costs. For each scenario of the
// quality bench, and for the demo's story, the oracle's attainment and cost when it demands a stricter
// percentile than the route's p95: the best a router can do that keeps its chosen model's p97, say,
// under the target. Analytic (no traffic is sent); the route's candidates and prices come from a
// gateway started on the bench's config, as in the bench itself.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createSimRng, loadSimProfiles, phaseAt } from "../../dist/sim/index.js";
import { ROOT } from "./bench.mjs";
import { startGatewayProcess, TARGET } from "./gateway.mjs";
import { expectedCompletionTokens, oracleAtPercentiles } from "./oracle.mjs";
import { SCENARIOS } from "./scenarios.mjs";
import { planTraffic } from "./traffic.mjs";

const USAGE = `node bench/quality/margins.mjs [--percentiles 95,96,97,97.5,98] [--seeds 1,2,3]

Per scenario and for the demo's story (config/sim-profiles.yaml): the oracle's attainment and cost ÷ the
p95 oracle's when a model must keep each percentile's true quantile under ${TARGET.ms} ms. Requests: the
bench's traffic plans (20 req/s, 30 s) of each seed. Needs a built dist/. See bench/quality/README.md.
`;

const PLAN = { ratePerSecond: 20, durationMs: 30_000 };

function numbers(name, text) {
  const values = text.split(",").map(Number);
  if (values.some((value) => !Number.isFinite(value))) throw new RangeError(`--${name}: not a list of numbers: "${text}"`);
  return values;
}

async function main(argv) {
  let options;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        percentiles: { type: "string", default: "95,96,97,97.5,98" },
        seeds: { type: "string", default: "1,2,3" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const percentiles = numbers("percentiles", values.percentiles);
    if (percentiles.some((p) => !(p >= TARGET.percentile && p < 100))) throw new RangeError(`--percentiles: each from ${TARGET.percentile} to under 100`);
    options = { percentiles: [TARGET.percentile, ...percentiles.filter((p) => p !== TARGET.percentile)], seeds: numbers("seeds", values.seeds) };
  } catch (error) {
    process.stderr.write(`${error.message}\n\n${USAGE}`);
    return 2;
  }

  const dir = mkdtempSync(join(tmpdir(), "subsecond-margins-"));
  let candidates;
  try {
    const gateway = await startGatewayProcess({ root: ROOT, dir, simulatorUrl: "http://127.0.0.1:9/v1", maxSeconds: 60 });
    candidates = gateway.candidates;
    await gateway.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const stories = [
    ...SCENARIOS.map((scenario) => ({ name: scenario.name, path: join(ROOT, "bench/quality/scenarios", scenario.file) })),
    { name: "demo story", path: join(ROOT, "config/sim-profiles.yaml") },
  ];
  const header = ["story", ...options.percentiles.map((p) => `p${p}`)];
  const rows = [];
  for (const story of stories) {
    const profiles = await loadSimProfiles(story.path);
    const byId = new Map(profiles.models.map((model) => [model.id, model]));
    const requests = options.seeds.flatMap((seed) =>
      planTraffic(createSimRng(seed ^ 0x7a11c), PLAN).map((request) => ({
        fraction: request.atMs / PLAN.durationMs,
        promptTokens: request.promptTokens,
        maxTokens: request.maxTokens,
      })),
    );
    const levels = oracleAtPercentiles({
      candidates,
      profileOf: (id) => byId.get(id),
      phaseAt: (id, fraction) => phaseAt(profiles, id, fraction),
      target: TARGET,
      requests,
      percentiles: options.percentiles,
      completionTokensOf: (id, maxTokens) => expectedCompletionTokens(byId.get(id).outputTokens, maxTokens),
    });
    const baseUsd = levels[0].costUsd;
    rows.push([story.name, ...levels.map((level) => `${(level.attainment * 100).toFixed(1)}%  ${(level.costUsd / baseUsd).toFixed(2)}×`)]);
  }
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("   ");
  process.stdout.write(
    `The oracle that keeps each percentile's true quantile ≤ ${TARGET.ms} ms: its attainment (one attempt's chance of a first token within ${TARGET.ms} ms; faults miss) and cost ÷ the p${TARGET.percentile} oracle's; seeds ${options.seeds.join(",")}\n`,
  );
  process.stdout.write(`${[line(header), ...rows.map(line)].join("\n")}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
