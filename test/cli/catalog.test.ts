// `subsecond catalog import`, run as a user runs it: the built CLI on copies of config/gateway.yaml.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { useTempDirs } from "../helpers/temp-dir.js";

const MAIN = new URL("../../dist/main.js", import.meta.url).pathname;
const GATEWAY_YAML = new URL("../../config/gateway.yaml", import.meta.url).pathname;
const FIXTURES = new URL("../fixtures/openrouter/", import.meta.url).pathname;

const tempDir = useTempDirs();

function shippedCopy(): string {
  const file = join(tempDir("subsecond-catalog-"), "gateway.yaml");
  copyFileSync(GATEWAY_YAML, file);
  return file;
}

function catalogImport(...args: string[]) {
  return spawnSync(process.execPath, [MAIN, "catalog", "import", ...args], { encoding: "utf8" });
}

describe("subsecond catalog import", () => {
  it("is a no-op, byte for byte, on the shipped config with a catalog that agrees with it", () => {
    const config = shippedCopy();
    const result = catalogImport(join(FIXTURES, "models.json"), "--config", config, "--write");
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("15 of the 15 catalog entries");
    expect(result.stdout).toContain("no change that affects routing");
    expect(result.stdout).toContain("already up to date; nothing to write");
    expect(readFileSync(config, "utf8")).toBe(readFileSync(GATEWAY_YAML, "utf8"));
  });

  it("prints the change in the words of check --against, and writes only with --write", () => {
    const config = shippedCopy();
    const shipped = readFileSync(config, "utf8");
    const dry = catalogImport(join(FIXTURES, "models-changed.json"), "--config", config);
    expect(dry.status).toBe(0);
    for (const line of [
      "price changed: xiaomi/mimo-v2.5 $0.14/$0.28 → $0.17/$0.28 per 1M tokens (input/output)",
      "context changed: qwen/qwen3.5-flash-02-23 1000000 → 1048576 tokens",
      "capabilities changed: bytedance-seed/seed-2.0-mini [tools, json] → [tools, json, vision]",
      "capabilities changed: google/gemma-4-31b-it [tools, json, vision] → [json, vision]",
      "route realtime-chat: still chooses qwen/qwen3.5-9b",
      "not written (a dry run; --write writes it)",
    ]) {
      expect(dry.stdout).toContain(line);
    }
    expect(readFileSync(config, "utf8")).toBe(shipped);

    const written = catalogImport(join(FIXTURES, "models-changed.json"), "--config", config, "--write");
    expect(written.status).toBe(0);
    expect(written.stdout).toMatch(/written \(hash [0-9a-f]{12}\); comments and order kept/);
    const after = readFileSync(config, "utf8");
    expect(after).toContain("pricePerMTok: { input: 0.17, output: 0.28 }");
    expect(after.split("\n").filter((line, index) => line !== shipped.split("\n")[index])).toHaveLength(4);
    expect(spawnSync(process.execPath, [MAIN, "check", config], { encoding: "utf8" }).status).toBe(0);
    expect(catalogImport(join(FIXTURES, "models-changed.json"), "--config", config, "--write").stdout).toContain("already up to date");
  });

  it("sets priors from endpoint statistics and says what each route chooses now", () => {
    const config = shippedCopy();
    const result = catalogImport(join(FIXTURES, "models.json"), "--endpoints", join(FIXTURES, "endpoints"), "--config", config, "--write");
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('prior changed: qwen/qwen3.5-9b null → {"ttftMs":450,"tokensPerSecond":95}');
    expect(result.stdout).toContain(
      "route realtime-chat: still chooses qwen/qwen3.5-9b: now within target, predicted 700 ms (was best-effort, predicted 3025 ms)",
    );
    expect(readFileSync(config, "utf8")).toContain("contextTokens: 262144, prior: { ttftMs: 450, tokensPerSecond: 95 } }");
    const check = spawnSync(process.execPath, [MAIN, "check", config], { encoding: "utf8" });
    expect(check.stdout).not.toContain("no candidate's prior first-token time");
  });

  it("refuses an invalid catalog, naming each field path, and leaves the config alone", () => {
    const config = shippedCopy();
    const result = catalogImport(join(FIXTURES, "models-invalid.json"), "--config", config, "--write");
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/models-invalid\.json: 2 errors/);
    expect(result.stderr).toMatch(/data\[1\] \(xiaomi\/mimo-v2\.5\)\.pricing\.prompt: .*expected string/);
    expect(result.stderr).toMatch(/data\[6\] \(qwen\/qwen3\.5-9b\)\.context_length: .*expected number/);
    expect(readFileSync(config, "utf8")).toBe(readFileSync(GATEWAY_YAML, "utf8"));
  });

  it("refuses endpoint statistics that do not parse, naming the file and the field", () => {
    const dir = tempDir("subsecond-endpoints-");
    mkdirSync(join(dir, "qwen"));
    writeFileSync(join(dir, "qwen", "9b.json"), JSON.stringify({ data: { id: "qwen/qwen3.5-9b", endpoints: [{ latency_last_30m: { p50: "fast" } }] } }));
    const result = catalogImport(join(FIXTURES, "models.json"), "--endpoints", dir, "--config", shippedCopy());
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/qwen\/9b\.json: data\.endpoints\[0\]\.latency_last_30m\.p50: .*expected number/);
  });

  it("adds a model from the catalog only with a score the user gives", () => {
    const config = shippedCopy();
    const refused = catalogImport(join(FIXTURES, "models.json"), "--config", config, "--add", "mistralai/ministral-8b-2512", "--write");
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("--score: required with --add");
    expect(readFileSync(config, "utf8")).toBe(readFileSync(GATEWAY_YAML, "utf8"));

    const added = catalogImport(join(FIXTURES, "models.json"), "--config", config, "--add", "mistralai/ministral-8b-2512", "--score", "110", "--write");
    expect(added.status).toBe(0);
    expect(added.stdout).toContain("model added: mistralai/ministral-8b-2512 ($0.15/$0.15 per 1M tokens, 131072 context, provider openrouter)");
    expect(added.stdout).toContain("route realtime-chat: candidates added: mistralai/ministral-8b-2512");
    expect(readFileSync(config, "utf8")).toContain("  - { id: mistralai/ministral-8b-2512, provider: openrouter, rank: 16, score: 110,");
  });
});
