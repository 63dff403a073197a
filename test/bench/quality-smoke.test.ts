// Smoke test of the routing-quality bench: one short scenario through its own run function (the built
// gateway from dist/ against the simulator), then the JSON it wrote is read back and checked.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseBenchArgs, ROOT, runQualityBench, type BenchResult } from "../../bench/quality/bench.mjs";
import { useTempDirs } from "../helpers/temp-dir.js";

const tempDir = useTempDirs();

describe("npm run bench:quality", () => {
  it("runs a scenario for a few seconds and writes sane figures", async () => {
    const out = join(tempDir("subsecond-quality-smoke-"), "result.json");
    const options = parseBenchArgs(["--quick", "--scenario", "brownout", "--duration-ms", "5000", "--out", out], { root: ROOT });
    const lines: string[] = [];
    const { outPath, table } = await runQualityBench(options, { log: (line) => lines.push(line) });

    expect(outPath).toBe(out);
    const result = JSON.parse(readFileSync(out, "utf8")) as BenchResult;
    expect(result.options).toMatchObject({ scenarios: ["brownout"], seeds: [1], durationMs: 5000 });
    const [scenario] = result.scenarios;
    const run = scenario?.runs[0];
    if (scenario === undefined || run === undefined) throw new Error("no run in the JSON");
    expect(scenario.name).toBe("brownout");
    expect(run.requests.sent).toBeGreaterThan(50);
    for (const share of [run.attainment.gateway, run.attainment.oracle, run.attainment.fastest, run.attainment.cheapest]) {
      expect(share).toBeGreaterThanOrEqual(0);
      expect(share).toBeLessThanOrEqual(1);
    }
    // The oracle's expected attainment on healthy-but-for-one seed models is high by construction.
    expect(run.attainment.oracle).toBeGreaterThan(0.9);
    expect(run.costRatio.gateway).toBeGreaterThan(0);
    expect(run.costRatio.cheapest).toBeLessThanOrEqual(1);
    expect(run.extraAttemptsPer100).toBeGreaterThanOrEqual(0);
    expect(run.degradation).toMatchObject({ model: "qwen/qwen3.5-flash-02-23", fromSeconds: 1.5, toSeconds: 3 });
    expect(Object.keys(run.servedBy).length).toBeGreaterThan(0);
    expect(scenario.median.attainment.gateway).toBe(run.attainment.gateway);
    expect(table).toMatch(/^brownout\s+1\s/m);
    expect(lines).toHaveLength(1);
  }, 40_000);
});
