// Priors imported from OpenRouter's endpoint statistics, on a real gateway: a never-measured model is
// choosable from its first request when its published latency meets the target, and never ranks faster
// than a well-measured model (the brain's guarantee holds for imported priors too).
import { afterEach, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { stringify } from "yaml";
import { parseConfigText, type LoadedConfig } from "../../src/config/load.js";
import { importCatalog } from "../../src/catalog/import.js";
import { parseModelsList, type ModelEndpoints, type ModelsList } from "../../src/catalog/openrouter.js";
import { readEndpointsDir } from "../../src/cli/catalog.js";
import { startFakeUpstream, streamOf, type FakeUpstream } from "../helpers/fake-upstream.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";

const FIXTURES = new URL("../fixtures/openrouter/", import.meta.url);
const models = parseModelsList(readFileSync(new URL("models.json", FIXTURES), "utf8")).value as ModelsList;

const CHEAP = "qwen/qwen3.5-9b"; // 0.10/0.15 per 1M tokens in the catalog; no prior configured
const NANO = "openai/gpt-4.1-nano"; // 0.10/0.40

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  await upstream?.close();
  gateway = undefined;
  upstream = undefined;
});

/** Two seed models behind the fake upstream; NANO answers after `nanoTtftMs`, CHEAP at once. */
async function configText(nanoTtftMs: number): Promise<string> {
  upstream = await startFakeUpstream((request) => ({ kind: "sse", steps: streamOf(request.model, ["ok"], request.model === NANO ? nanoTtftMs : 0) }));
  return `# two seed models, catalog prices\n${stringify({
    server: { host: "127.0.0.1", port: 0, logLevel: "silent" },
    providers: { fake: { baseUrl: upstream.url, apiKeyEnv: "FAKE_PROVIDER_KEY" } },
    models: [
      { id: CHEAP, provider: "fake", rank: 7, score: 118, pricePerMTok: { input: 0.1, output: 0.15 }, contextTokens: 262144 },
      {
        id: NANO,
        provider: "fake",
        rank: 14,
        score: 118,
        pricePerMTok: { input: 0.1, output: 0.4 },
        contextTokens: 1047576,
        prior: { ttftMs: 300, tokensPerSecond: 100 },
      },
    ],
    routes: {
      chat: { candidates: "*", exploration: { ratio: 0 } },
      fast: { candidates: "*", strategy: "fastest", exploration: { ratio: 0 } },
    },
    defaultRoute: "chat",
  })}`;
}

function imported(text: string, endpoints: ReadonlyMap<string, ModelEndpoints>): LoadedConfig {
  return parseConfigText(importCatalog(text, "gateway.yaml", { name: "models.json", models, endpoints }).text, "gateway.yaml");
}

async function firstChoice(route: string): Promise<{ model: string | null; reason: string | null }> {
  const { data, response } = await (gateway as TestGateway).client.chat.completions
    .create({ model: route, stream: true, messages: [{ role: "user", content: "hi" }] })
    .withResponse();
  for await (const _chunk of data) void _chunk;
  return { model: response.headers.get("x-subsecond-model"), reason: response.headers.get("x-subsecond-reason") };
}

describe("priors from endpoint statistics", () => {
  it("make a never-measured model choosable from its first request when its published latency meets the target", async () => {
    const text = await configText(0);
    // Without statistics the cheap model starts from the default prior (2000 ms × 1.5): over the 800 ms target.
    gateway = await startTestGateway({}, { config: parseConfigText(text, "gateway.yaml") });
    expect(await firstChoice("chat")).toEqual({ model: NANO, reason: "within-target" });
    await gateway.close();
    gateway = undefined;

    // The fixture publishes a p90 first-token latency of 450 ms for it (675 ms with the cold penalty).
    const config = imported(text, await readEndpointsDir(new URL("endpoints", FIXTURES).pathname));
    expect(config.modelsById.get(CHEAP)?.prior).toEqual({ ttftMs: 450, tokensPerSecond: 95 });
    gateway = await startTestGateway({}, { config });
    expect(gateway.gateway.brain.sampleCount(CHEAP)).toBe(0);
    expect(await firstChoice("chat")).toEqual({ model: CHEAP, reason: "within-target" });
  });

  it("never rank a cold model faster than a well-measured one, however rosy its published latency", async () => {
    const text = await configText(250);
    const rosy: ModelEndpoints = {
      id: CHEAP,
      endpoints: [
        {
          tag: "rosy",
          pricing: { prompt: "0.0000001", completion: "0.00000015" },
          latency_last_30m: { p50: 40, p90: 60 },
          throughput_last_30m: { p50: 400, p90: 500 },
        },
      ],
    };
    const config = imported(text, new Map([[CHEAP, rosy]]));
    expect(config.modelsById.get(CHEAP)?.prior).toEqual({ ttftMs: 60, tokensPerSecond: 400 });
    gateway = await startTestGateway({}, { config });
    for (let i = 0; i < 8; i++) await firstChoice(NANO);
    expect(gateway.gateway.brain.sampleCount(NANO)).toBeGreaterThan(5);
    // Measured at ~250 ms, NANO stays the fastest choice although CHEAP's prior predicts 90 ms ...
    expect(await firstChoice("fast")).toEqual({ model: NANO, reason: "within-target" });
    // ... and CHEAP, never measured, still wins where it may: on price, within the target.
    expect(gateway.gateway.brain.sampleCount(CHEAP)).toBe(0);
    expect(await firstChoice("chat")).toEqual({ model: CHEAP, reason: "within-target" });
  });
});
