// Periodic catalog refresh against a scripted catalog server on 127.0.0.1, under traffic, with the
// official SDK as the client: a new catalog is swapped in without a failed request, garbage is refused.
import { afterEach, describe, expect, it } from "vitest";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { pino } from "pino";
import { stringify } from "yaml";
import { loadConfigFile } from "../../src/config/load.js";
import { startGateway, type Gateway } from "../../src/gateway.js";
import { createSystemClock } from "../../src/router/clock.js";
import { createSeededRng } from "../../src/router/rng.js";
import { startFakeUpstream, streamOf, type FakeUpstream } from "../helpers/fake-upstream.js";
import { PROVIDER_KEY } from "../helpers/gateway.js";
import { useTempDirs } from "../helpers/temp-dir.js";

const tempDir = useTempDirs();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const CATALOG_KEY = "sk-or-catalog-secret";
const CHEAP = "qwen/qwen3.5-9b";
const NANO = "openai/gpt-4.1-nano";
/** What the tests edit of a model in OpenRouter's format. */
interface FixtureModel {
  id: string;
  pricing: { prompt: string; completion: string };
  context_length: unknown;
}
const fixture = JSON.parse(readFileSync(new URL("../fixtures/openrouter/models.json", import.meta.url), "utf8")) as { data: FixtureModel[] };

/** The fixture's models list with `edit` applied to one model. */
function catalogWith(id: string, edit: (model: FixtureModel) => void): string {
  const copy = structuredClone(fixture);
  edit(copy.data.find((model) => model.id === id) as FixtureModel);
  return JSON.stringify(copy);
}

interface CatalogServer {
  readonly url: string;
  /** What the next GET answers. */
  answer: { status: number; body: string };
  readonly requests: IncomingHttpHeaders[];
  close(): Promise<void>;
}

async function startCatalogServer(): Promise<CatalogServer> {
  const requests: IncomingHttpHeaders[] = [];
  const state: CatalogServer = {
    url: "",
    answer: { status: 200, body: JSON.stringify(fixture) },
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    requests.push(req.headers);
    res.writeHead(state.answer.status, { "content-type": "application/json" });
    res.end(state.answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return Object.assign(state, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/models?key=in-query` });
}

let closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.reverse()) await close();
  closers = [];
});

function configYaml(upstreamUrl: string, catalogUrl: string, extraRoute = false): string {
  return `# catalog refresh test\n${stringify({
    server: { host: "127.0.0.1", port: 0 },
    auth: { adminKeysEnv: "TEST_ADMIN_KEYS", apiKeysEnv: "TEST_CLIENT_KEYS" },
    providers: { fake: { baseUrl: upstreamUrl, apiKeyEnv: "FAKE_PROVIDER_KEY" } },
    models: [
      {
        id: CHEAP,
        provider: "fake",
        rank: 7,
        score: 118,
        pricePerMTok: { input: 0.1, output: 0.15 },
        contextTokens: 262144,
        prior: { ttftMs: 100, tokensPerSecond: 200 },
      },
      {
        id: NANO,
        provider: "fake",
        rank: 14,
        score: 118,
        pricePerMTok: { input: 0.1, output: 0.4 },
        contextTokens: 1047576,
        prior: { ttftMs: 100, tokensPerSecond: 200 },
      },
    ],
    routes: { chat: { candidates: "*", exploration: { ratio: 0 } }, ...(extraRoute ? { spare: { candidates: [NANO, CHEAP], strategy: "ordered" } } : {}) },
    defaultRoute: "chat",
    catalog: { refreshUrl: catalogUrl, refreshIntervalMs: 1000, refreshKeyEnv: "TEST_CATALOG_KEY" },
  })}`;
}

async function start(
  withCatalogKey = true,
): Promise<{ gateway: Gateway; client: OpenAI; catalog: CatalogServer; logs: string[]; path: string; written: string; upstream: FakeUpstream }> {
  const upstream = await startFakeUpstream((request) => ({ kind: "sse", steps: streamOf(request.model, ["ok"]) }));
  closers.push(() => upstream.close());
  const catalog = await startCatalogServer();
  closers.push(() => catalog.close());
  const path = join(tempDir("subsecond-refresh-"), "gateway.yaml");
  const written = configYaml(upstream.url, catalog.url);
  writeFileSync(path, written);
  const logs: string[] = [];
  const gateway = await startGateway({
    config: await loadConfigFile(path),
    configPath: path,
    env: {
      FAKE_PROVIDER_KEY: PROVIDER_KEY,
      TEST_ADMIN_KEYS: "admin",
      TEST_CLIENT_KEYS: "client",
      ...(withCatalogKey ? { TEST_CATALOG_KEY: CATALOG_KEY } : {}),
    },
    logger: pino({ level: "info" }, { write: (line: string) => void logs.push(line) }),
    clock: createSystemClock(),
    rng: createSeededRng(7),
    reloadDebounceMs: 50,
  });
  closers.push(() => gateway.close());
  const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "client", maxRetries: 0, timeout: 15_000 });
  return { gateway, client, catalog, logs, path, written, upstream };
}

async function adminRoutes(
  url: string,
): Promise<{ catalogRefreshedAt: string | null; routes: Array<{ candidates: Array<{ id: string; pricePerMTok: { input: number } }> }> }> {
  return (await (await fetch(`${url}/admin/routes`, { headers: { authorization: "Bearer admin" } })).json()) as never;
}

async function reloads(url: string, result: "success" | "failure"): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`subsecond_config_reloads_total\\{result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 4000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe("catalog refresh", () => {
  it("swaps a refreshed catalog in under traffic without a failed request, and keeps serving through garbage", async () => {
    const { gateway, client, catalog, logs, path, written } = await start();
    await until("the first refresh", async () => (await adminRoutes(gateway.url)).catalogRefreshedAt !== null);
    expect(catalog.requests[0]?.authorization).toBe(`Bearer ${CATALOG_KEY}`);

    const served: Array<string | null> = [];
    let failures = 0;
    let running = true;
    const worker = async () => {
      while (running) {
        try {
          const { data, response } = await client.chat.completions
            .create({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] })
            .withResponse();
          for await (const _chunk of data) void _chunk;
          served.push(response.headers.get("x-subsecond-model"));
        } catch {
          failures++;
        }
      }
    };
    const workers = [worker(), worker(), worker(), worker()];
    await until("traffic", () => served.length > 20);
    expect(served.at(-1)).toBe(CHEAP);

    // The catalog now prices the cheap model at $2 per 1M tokens, in and out: the route moves to NANO.
    const firstRefresh = (await adminRoutes(gateway.url)).catalogRefreshedAt as string;
    catalog.answer = { status: 200, body: catalogWith(CHEAP, (model) => (model.pricing.prompt = model.pricing.completion = "0.000002")) };
    await until("the route to follow the new prices", () => served.at(-1) === NANO, 4000);
    const refreshed = await adminRoutes(gateway.url);
    expect(refreshed.catalogRefreshedAt && Date.parse(refreshed.catalogRefreshedAt)).toBeGreaterThan(Date.parse(firstRefresh));
    expect(refreshed.routes[0]?.candidates.find((candidate) => candidate.id === CHEAP)?.pricePerMTok.input).toBe(2);
    const refreshedAt = refreshed.catalogRefreshedAt;
    const failedBefore = await reloads(gateway.url, "failure");

    // Garbage: not JSON, then a field of the wrong type, then a server error. Each is refused and logged.
    const invalid = catalogWith(CHEAP, (model) => (model.context_length = "big"));
    for (const answer of [
      { status: 200, body: "<html>maintenance</html>" },
      { status: 200, body: invalid },
      { status: 500, body: "{}" },
    ]) {
      const seen = catalog.requests.length;
      catalog.answer = answer;
      await until("a refresh of the garbage", () => catalog.requests.length > seen, 3000);
      await sleep(100);
    }
    await until("three refused refreshes", async () => (await reloads(gateway.url, "failure")) >= failedBefore + 3);
    const afterGarbage = served.length;
    await sleep(200);
    running = false;
    await Promise.all(workers);

    expect(failures).toBe(0);
    expect(served.length).toBeGreaterThan(afterGarbage);
    expect(served.at(-1)).toBe(NANO);
    expect((await adminRoutes(gateway.url)).catalogRefreshedAt).toBe(refreshedAt);
    expect(await reloads(gateway.url, "success")).toBeGreaterThanOrEqual(2);
    const failed = logs.filter((line) => line.includes("catalog refresh failed")).join("\n");
    expect(failed).toContain("(json)");
    expect(failed).toMatch(/data\[6\] \(qwen\/qwen3\.5-9b\)\.context_length: .*expected number/);
    expect(failed).toContain("HTTP 500");
    expect(logs.some((line) => line.includes('"msg":"catalog refreshed"') && line.includes(`price changed: ${CHEAP} $0.1/$0.15 → $2/$2`))).toBe(true);
    const everything = logs.join("\n");
    expect(everything).not.toContain(CATALOG_KEY);
    expect(everything).not.toContain("in-query");
    // The refresh lives in memory: the file on disk is as it was written.
    expect(readFileSync(path, "utf8")).toBe(written);
  });

  it("never fetches without the key it is told to send, and says which variable is unset", async () => {
    const { gateway, catalog, logs } = await start(false);
    await until("a refused refresh", async () => (await reloads(gateway.url, "failure")) >= 1);
    expect(catalog.requests).toHaveLength(0);
    expect(logs.join("\n")).toContain("catalog.refreshKeyEnv: environment variable TEST_CATALOG_KEY is not set");
    expect((await adminRoutes(gateway.url)).catalogRefreshedAt).toBeNull();
  });

  it("keeps the refreshed catalog across an edit of the config file", async () => {
    const { gateway, client, catalog, path, upstream } = await start();
    catalog.answer = { status: 200, body: catalogWith(CHEAP, (model) => (model.pricing.prompt = model.pricing.completion = "0.000002")) };
    await until(
      "the refreshed price",
      async () => (await adminRoutes(gateway.url)).routes[0]?.candidates.find((c) => c.id === CHEAP)?.pricePerMTok.input === 2,
    );
    writeFileSync(path, configYaml(upstream.url, catalog.url, true));
    expect((await fetch(`${gateway.url}/admin/reload`, { method: "POST", headers: { authorization: "Bearer admin" } })).status).toBe(200);
    const routes = await adminRoutes(gateway.url);
    expect(routes.routes).toHaveLength(2);
    expect(routes.routes[0]?.candidates.find((candidate) => candidate.id === CHEAP)?.pricePerMTok.input).toBe(2);
    const { data, response } = await client.chat.completions
      .create({ model: "chat", messages: [{ role: "user", content: "hi" }], stream: true })
      .withResponse();
    for await (const _chunk of data) void _chunk;
    expect(response.headers.get("x-subsecond-model")).toBe(NANO);
  });
});
