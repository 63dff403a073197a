import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { parseConfigText } from "../../src/config/load.js";
import { perTokenToPerMillion } from "../../src/catalog/decimal.js";
import { CatalogImportError, importCatalog, type CatalogSource } from "../../src/catalog/import.js";
import { parseModelEndpoints, parseModelsList, servingEndpoint, type ModelEndpoints, type ModelsList } from "../../src/catalog/openrouter.js";

const shipped = readFileSync(new URL("../../config/gateway.yaml", import.meta.url), "utf8");
const fixture = (name: string) => readFileSync(new URL(`../fixtures/openrouter/${name}`, import.meta.url), "utf8");
const ENDPOINTS_DIR = new URL("../fixtures/openrouter/endpoints/", import.meta.url);

function models(name: string): ModelsList {
  const { value, issues } = parseModelsList(fixture(name));
  expect(issues).toEqual([]);
  return value as ModelsList;
}

function endpoints(): Map<string, ModelEndpoints> {
  const byId = new Map<string, ModelEndpoints>();
  for (const file of readdirSync(ENDPOINTS_DIR)) {
    const { value, issues } = parseModelEndpoints(readFileSync(new URL(file, ENDPOINTS_DIR), "utf8"));
    expect(issues).toEqual([]);
    byId.set((value as ModelEndpoints).id, value as ModelEndpoints);
  }
  return byId;
}

const source = (name: string, withEndpoints = false): CatalogSource => ({ name, models: models(name), ...(withEndpoints ? { endpoints: endpoints() } : {}) });

/** Changed lines as [before, after]; the texts must have as many lines. */
function changedLines(before: string, after: string): Array<[string, string]> {
  const a = before.split("\n");
  const b = after.split("\n");
  expect(b).toHaveLength(a.length);
  return a.flatMap((line, index) => (line === b[index] ? [] : [[line, b[index] as string] as [string, string]]));
}

function importIssues(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof CatalogImportError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  throw new Error("expected the import to be refused");
}

describe("perTokenToPerMillion", () => {
  it("moves the decimal point instead of multiplying, so no floating-point noise appears", () => {
    expect(Number("0.0000004") * 1e6).not.toBe(0.4); // the trap: 0.39999999999999997
    expect(perTokenToPerMillion("0.0000004")).toBe("0.4");
    expect(perTokenToPerMillion("0.00000015")).toBe("0.15");
    expect(perTokenToPerMillion("0.00000017")).toBe("0.17");
    expect(perTokenToPerMillion("0.000000035")).toBe("0.035");
    expect(perTokenToPerMillion("0.000001234567")).toBe("1.234567");
    expect(perTokenToPerMillion("0.0000100")).toBe("10");
    expect(perTokenToPerMillion("12.5")).toBe("12500000");
    expect(perTokenToPerMillion("0")).toBe("0");
  });

  it("accepts only plain non-negative decimals", () => {
    for (const text of ["-1", "1e-7", " 0.1", "", ".5", "0.1.2", "0,1"]) expect(perTokenToPerMillion(text)).toBeUndefined();
  });
});

describe("importCatalog", () => {
  it("leaves the shipped config byte for byte as it is when the catalog agrees with it", () => {
    const result = importCatalog(shipped, "gateway.yaml", source("models.json"));
    expect(result.text).toBe(shipped);
    expect(result.matched).toBe(15);
    expect(result.notes).toEqual(["stepfun/step-3.7-flash: no input or output price published; kept as configured"]);
  });

  it("changes exactly the fields that differ, and nothing else", () => {
    const result = importCatalog(shipped, "gateway.yaml", source("models-changed.json"));
    const replaced = (line: string, from: string, to: string) => [line, line.replace(from, to)];
    const line = (id: string) => shipped.split("\n").find((text) => text.startsWith(`  - { id: ${id},`)) as string;
    expect(changedLines(shipped, result.text)).toEqual([
      replaced(line("xiaomi/mimo-v2.5"), "input: 0.14,", "input: 0.17,"),
      replaced(line("google/gemma-4-31b-it"), "capabilities: [tools, json, vision]", "capabilities: [json, vision]"),
      replaced(line("bytedance-seed/seed-2.0-mini"), "contextTokens: 262144 }", "contextTokens: 262144, capabilities: [tools, json, vision] }"),
      replaced(line("qwen/qwen3.5-flash-02-23"), "contextTokens: 1000000 }", "contextTokens: 1048576 }"),
    ]);
    const before = parseConfigText(shipped, "before");
    const after = parseConfigText(result.text, "after");
    expect(after.models.map((model) => [model.id, model.rank, model.score])).toEqual(before.models.map((model) => [model.id, model.rank, model.score]));
    expect(after.modelsById.get("xiaomi/mimo-v2.5")?.pricePerMTok).toEqual({ input: 0.17, output: 0.28 });
  });

  it("sets priors from the endpoint that serves: the cheapest that is up and publishes latency", () => {
    const result = importCatalog(shipped, "gateway.yaml", source("models.json", true));
    const config = parseConfigText(result.text, "after");
    // Together, not the faster but dearer DeepInfra, nor the cheaper Offline endpoint (status -2).
    expect(config.modelsById.get("qwen/qwen3.5-9b")?.prior).toEqual({ ttftMs: 450, tokensPerSecond: 95 });
    expect(config.modelsById.get("google/gemma-4-26b-a4b-it")?.prior).toEqual({ ttftMs: 430, tokensPerSecond: 95 });
    expect(config.modelsById.get("openai/gpt-4.1-nano")?.prior).toEqual({ ttftMs: 520, tokensPerSecond: 110 });
    expect(config.modelsById.get("stepfun/step-3.7-flash")?.prior).toBeUndefined();
    expect(config.models.filter((model) => model.prior !== undefined)).toHaveLength(14);
    expect(result.notes).toContain("qwen/qwen3.5-9b: prior from endpoint together");
    expect(result.notes).toContain(
      "stepfun/step-3.7-flash: no endpoint that is up publishes its latency (OpenRouter shows it to authenticated requests only); prior kept as configured",
    );
    expect(changedLines(shipped, result.text)).toHaveLength(14);
  });

  it("picks the slower of two equally cheap endpoints, and skips those marked down", () => {
    const endpoint = (tag: string, p90: number, status = 0) => ({
      tag,
      status,
      pricing: { prompt: "0.0000001", completion: "0.0000002" },
      latency_last_30m: { p50: p90 / 2, p90 },
    });
    expect(servingEndpoint([endpoint("fast", 300), endpoint("slow", 600), endpoint("down", 900, -5)])?.tag).toBe("slow");
  });

  it("refuses a catalog entry the config uses whose price is not a decimal string, naming the field", () => {
    const list = models("models.json");
    const nano = list.data.findIndex((model) => model.id === "openai/gpt-4.1-nano");
    const broken: ModelsList = {
      data: list.data.map((model, index) => (index === nano ? { ...model, pricing: { prompt: "0.0000001", completion: "4e-7" } } : model)),
    };
    expect(importIssues(() => importCatalog(shipped, "gateway.yaml", { name: "models.json", models: broken }))).toEqual([
      `data[${nano}] (openai/gpt-4.1-nano).pricing.completion: "4e-7" is not a non-negative decimal number of USD per token`,
    ]);
  });

  it("adds named models ranked after the last, with the score the user gives, and refuses without one", () => {
    const result = importCatalog(shipped, "gateway.yaml", source("models.json"), { ids: ["mistralai/ministral-8b-2512"], score: 110 });
    expect(changedLines(shipped, result.text.replace(/\n {2}- \{ id: mistralai[^\n]*/, ""))).toEqual([]);
    expect(result.text).toContain(
      "\n  - { id: mistralai/ministral-8b-2512, provider: openrouter, rank: 16, score: 110, pricePerMTok: { input: 0.15, output: 0.15 }, contextTokens: 131072, capabilities: [tools, json] }\ndefaults:",
    );
    expect(parseConfigText(result.text, "after").modelsById.get("mistralai/ministral-8b-2512")?.rank).toBe(16);
    expect(
      importIssues(() => importCatalog(shipped, "gateway.yaml", source("models.json"), { ids: ["mistralai/ministral-8b-2512"], score: undefined })),
    ).toEqual([expect.stringMatching(/^--score: required with --add/)]);
    expect(importIssues(() => importCatalog(shipped, "gateway.yaml", source("models.json"), { ids: ["acme/ghost", "qwen/qwen3.5-9b"], score: 100 }))).toEqual([
      "--add acme/ghost: not in models.json",
      expect.stringMatching(/^--add qwen\/qwen3\.5-9b: already in the catalog \(models\[6\]\)/),
    ]);
  });
});

describe("OpenRouter formats", () => {
  it("refuses an invalid models list, naming every field path", () => {
    const { value, issues } = parseModelsList(fixture("models-invalid.json"));
    expect(value).toBeUndefined();
    expect(issues.map((issue) => `${issue.path}: ${issue.message}`)).toEqual([
      expect.stringMatching(/^data\[1\] \(xiaomi\/mimo-v2\.5\)\.pricing\.prompt: .*expected string/),
      expect.stringMatching(/^data\[6\] \(qwen\/qwen3\.5-9b\)\.context_length: .*expected number/),
    ]);
    expect(parseModelsList("{ not json").issues).toEqual([{ path: "(json)", message: expect.any(String) }]);
  });

  it("refuses endpoint latencies that look like seconds: OpenRouter documents milliseconds", () => {
    const text = JSON.stringify({ data: { id: "openai/gpt-4", endpoints: [{ latency_last_30m: { p50: 0.25, p75: 0.35, p90: 0.48, p99: 0.85 } }] } });
    expect(parseModelEndpoints(text).issues).toEqual(
      ["p50", "p75", "p90", "p99"].map((p) => ({
        path: `data.endpoints[0].latency_last_30m.${p}`,
        message: expect.stringMatching(/milliseconds.*looks like seconds/),
      })),
    );
  });
});
