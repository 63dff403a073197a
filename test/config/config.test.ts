import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { parse, stringify } from "yaml";
import { ConfigError, parseConfig, parseConfigText } from "../../src/config/load.js";

const shipped = readFileSync(new URL("../../config/gateway.yaml", import.meta.url), "utf8");

function issuesOf(input: unknown): string[] {
  try {
    parseConfig(input, "test.yaml");
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  throw new Error("expected the config to be rejected");
}

describe("config/gateway.yaml", () => {
  it("holds the 15 seed models with their ids, ranks, prices and context sizes", () => {
    const config = parseConfigText(shipped, "gateway.yaml");
    expect(config.models).toHaveLength(15);
    expect(config.models.map((m) => m.rank)).toEqual([...Array(15).keys()].map((i) => i + 1));
    const nano = config.modelsById.get("openai/gpt-5-nano");
    expect(nano?.pricePerMTok).toEqual({ input: 0.05, output: 0.4 });
    expect(nano?.contextTokens).toBe(400000);
    expect(config.modelsById.get("stepfun/step-3.7-flash")?.score).toBe(117);
    expect(config.modelsById.get("google/gemma-4-26b-a4b-it:free")?.free).toBe(true);
  });

  it("keeps :free variants out of realtime-chat unless the route allows them", () => {
    const config = parseConfigText(shipped, "gateway.yaml");
    const route = config.routes.get("realtime-chat");
    expect(route?.target).toEqual({ metric: "ttft", percentile: 95, ms: 800 });
    expect(route?.candidates.some((m) => m.free)).toBe(false);
    expect(route?.candidates).toHaveLength(12);
  });
});

describe("config validation", () => {
  // A parsed YAML document, edited freely to break it: typed loosely on purpose.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const base = () => parse(shipped) as Record<string, any>;

  it("lists every error at once, each with its field path", () => {
    const config = base();
    config.models[1].pricePerMTok.input = -1;
    config.models[2].provider = "nope";
    config.models[3].id = config.models[0].id;
    config.models[4].contextTokens = "big";
    config.routes["realtime-chat"].candidates = ["ghost/model"];
    config.defaultRoute = "missing";
    const issues = issuesOf(config);
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^models\[1\] \(xiaomi\/mimo-v2\.5\)\.pricePerMTok\.input: .*>=0/),
        expect.stringMatching(/^models\[2\] .*\.provider: unknown provider "nope"/),
        expect.stringMatching(/^models\[3\] .*\.id: duplicate model id/),
        expect.stringMatching(/^models\[4\] .*\.contextTokens: .*expected number/),
        'routes.realtime-chat.candidates[0]: unknown model "ghost/model"',
        // models[3] was google/gemma-4-26b-a4b-it, which the free route lists
        'routes.realtime-chat-free.candidates[3]: unknown model "google/gemma-4-26b-a4b-it"',
        'defaultRoute: unknown route "missing"',
      ]),
    );
    expect(issues).toHaveLength(7);
  });

  it("rejects unknown keys, naming them", () => {
    const config = base();
    config.routes["realtime-chat"].targett = { ms: 5 };
    expect(issuesOf(config)).toEqual([expect.stringMatching(/^routes\.realtime-chat: Unrecognized key: "targett"/)]);
  });

  it("refuses a headers timeout longer than the request timeout that contains it", () => {
    const config = base();
    config.server = { headersTimeoutMs: 20_000, requestTimeoutMs: 10_000 };
    expect(issuesOf(config)).toEqual([expect.stringMatching(/^server\.headersTimeoutMs: must not exceed server\.requestTimeoutMs/)]);
  });

  it("rejects inline secrets and says to use apiKeyEnv", () => {
    const config = base();
    config.providers.openrouter.apiKey = "sk-or-secret";
    const issues = issuesOf(config);
    expect(issues).toEqual([expect.stringMatching(/^providers\.openrouter\.apiKey: .*apiKeyEnv/)]);
    expect(issues.join("\n")).not.toContain("sk-or-secret");
  });

  it("checks the catalog refresh settings, naming each field, and never takes a key inline", () => {
    const config = base();
    config.catalog = { refreshUrl: "ftp://example.com/models", refreshIntervalMs: 60, refreshKeyEnv: "not a name", refreshKey: "sk-or-secret" };
    const issues = issuesOf(config);
    expect(issues).toEqual([
      expect.stringMatching(/^catalog\.refreshUrl: /),
      "catalog.refreshIntervalMs: at least 1000 ms (the unit is milliseconds)",
      "catalog.refreshKeyEnv: must be an environment variable name",
      expect.stringMatching(/^catalog\.refreshKey: .*refreshKeyEnv/),
    ]);
    expect(issues.join("\n")).not.toContain("sk-or-secret");
    config.catalog = { refreshUrl: "https://openrouter.ai/api/v1/models" };
    expect(parseConfig(config, "test.yaml").config.catalog).toEqual({ refreshUrl: "https://openrouter.ai/api/v1/models", refreshIntervalMs: 3_600_000 });
  });

  it("rejects a route that its filters leave empty", () => {
    const config = base();
    config.routes["realtime-chat"].minScore = 500;
    expect(issuesOf(config)).toEqual([expect.stringMatching(/^routes\.realtime-chat\.candidates: no model is left/)]);
  });

  it("rejects limits that are not positive integers, naming them", () => {
    const config = base();
    config.server = { eventLimitBytes: 0, jsonDepthLimit: 4 };
    expect(issuesOf(config)).toEqual([expect.stringMatching(/^server\.eventLimitBytes: .*>0/), expect.stringMatching(/^server\.jsonDepthLimit: .*>=8/)]);
    config.server = { jsonDepthLimit: 5000 };
    expect(issuesOf(config)).toEqual([expect.stringMatching(/^server\.jsonDepthLimit: .*<=1000/)]);
  });

  it("reports YAML syntax errors with a line number", () => {
    expect(() => parseConfigText("providers: [\n", "bad.yaml")).toThrow(/line \d+/);
    expect(() => parseConfigText(stringify({ a: 1 }), "x.yaml")).toThrow(ConfigError);
  });
});
