import { afterEach, describe, expect, it } from "vitest";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadConfigFile } from "../../src/config/load.js";
import { startFakeUpstream, streamOf, type FakeUpstream } from "../helpers/fake-upstream.js";
import { startTestGateway, testConfig, type TestGateway } from "../helpers/gateway.js";
import { useTempDirs } from "../helpers/temp-dir.js";

const tempDir = useTempDirs();

let upstreams: FakeUpstream[] = [];
let gateway: TestGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  for (const upstream of upstreams) await upstream.close();
  gateway = undefined;
  upstreams = [];
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function routeConfig(url: string, cheapInput: number): Record<string, unknown> {
  return testConfig(
    url,
    [
      { id: "acme/cheap", input: cheapInput, output: cheapInput },
      { id: "acme/other", input: 1, output: 1 },
    ],
    {
      routes: { chat: { candidates: "*", strategy: "cheapest-within-target", exploration: { ratio: 0 } } },
      auth: { adminKeysEnv: "TEST_ADMIN_KEYS", apiKeysEnv: "TEST_CLIENT_KEYS" },
    },
  );
}

/** Writes atomically, as editors and config management do (the watcher must survive the rename). */
function writeConfig(path: string, config: Record<string, unknown> | string): void {
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, typeof config === "string" ? config : `# yaml-language-server: $schema=./schema.json\n${stringify(config)}`);
  renameSync(temporary, path);
}

/** A gateway on a config file whose cheap model costs `cheapInput`. */
async function start(cheapInput: number) {
  const upstream = await startFakeUpstream((request) => ({ kind: "sse", steps: streamOf(request.model, ["ok"]) }));
  upstreams.push(upstream);
  const dir = tempDir("subsecond-reload-");
  const path = join(dir, "gateway.yaml");
  writeConfig(path, routeConfig(upstream.url, cheapInput));
  gateway = await startTestGateway(
    {},
    { configPath: path, config: await loadConfigFile(path), clientKey: "client", env: { TEST_ADMIN_KEYS: "admin", TEST_CLIENT_KEYS: "client" } },
  );
  return { upstream, path, gateway };
}

async function metric(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = pattern.exec(text);
  return match ? Number(match[1]) : 0;
}

describe("hot reload", () => {
  it("switches decisions within 2 s of a price change, without failing a request, and survives a broken rewrite", async () => {
    const { upstream, path, gateway } = await start(0.01);
    const served: Array<{ at: number; model: string | null }> = [];
    let failures = 0;
    let running = true;
    const worker = async () => {
      while (running) {
        try {
          const { data, response } = await gateway.client.chat.completions
            .create({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] })
            .withResponse();
          for await (const _chunk of data) void _chunk;
          served.push({ at: performance.now(), model: response.headers.get("x-subsecond-model") });
        } catch {
          failures++;
        }
      }
    };
    const workers = [worker(), worker(), worker(), worker()];
    await sleep(500);
    expect(served.at(-1)?.model).toBe("acme/cheap");

    const changedAt = performance.now();
    writeConfig(path, routeConfig(upstream.url, 5));
    while (performance.now() - changedAt < 2000 && served.at(-1)?.model !== "acme/other") await sleep(20);
    const switchedAt = served.find((entry) => entry.at > changedAt && entry.model === "acme/other")?.at;
    expect(switchedAt, "decisions changed after the price change").toBeDefined();
    expect((switchedAt as number) - changedAt).toBeLessThan(2000);
    await sleep(300);
    expect(served.at(-1)?.model).toBe("acme/other");
    expect(await metric(gateway.url, /subsecond_config_reloads_total\{result="success"\} (\d+)/)).toBeGreaterThanOrEqual(1);

    writeConfig(path, "providers: [this is not: valid\n");
    await sleep(600);
    const afterBroken = served.length;
    await sleep(300);
    running = false;
    await Promise.all(workers);
    expect(served.length).toBeGreaterThan(afterBroken);
    expect(served.at(-1)?.model).toBe("acme/other");
    expect(failures).toBe(0);
    expect(await metric(gateway.url, /subsecond_config_reloads_total\{result="failure"\} (\d+)/)).toBeGreaterThanOrEqual(1);
  });

  it("reloads on POST /admin/reload with an admin key, reports errors by field path, and exposes the config hash", async () => {
    const { upstream, path, gateway } = await start(0.01);
    const reload = (key: string) => fetch(`${gateway.url}/admin/reload`, { method: "POST", headers: { authorization: `Bearer ${key}` } });
    expect((await reload("client")).status).toBe(401);
    const before = await (await fetch(`${gateway.url}/metrics`)).text();
    const hashBefore = /subsecond_config_info\{hash="(\w+)"\} 1/.exec(before)?.[1];
    expect(hashBefore).toMatch(/^[0-9a-f]{12}$/);

    writeFileSync(path, stringify(routeConfig(upstream.url, -1)));
    const rejected = await reload("admin");
    expect(rejected.status).toBe(400);
    expect(((await rejected.json()) as { error: { message: string } }).error.message).toContain("models[0] (acme/cheap).pricePerMTok.input");

    writeFileSync(path, stringify(routeConfig(upstream.url, 0.02)));
    const accepted = await reload("admin");
    expect(accepted.status).toBe(200);
    const { hash } = (await accepted.json()) as { hash: string };
    expect(hash).not.toBe(hashBefore);
    expect(await (await fetch(`${gateway.url}/metrics`)).text()).toContain(`subsecond_config_info{hash="${hash}"} 1`);
  });

  it("keeps statistics of models that remain, drops removed ones, and sends a moved provider to fresh connections", async () => {
    const { upstream, path, gateway } = await start(0.01);
    for (const model of ["acme/cheap", "acme/cheap", "acme/cheap", "acme/cheap", "acme/cheap", "acme/other"]) {
      await gateway.client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], stream: true }).then(async (s) => {
        for await (const _chunk of s) void _chunk;
      });
    }
    expect(gateway.gateway.brain.sampleCount("acme/other")).toBeGreaterThan(0);
    const second = await startFakeUpstream((request) => ({ kind: "sse", steps: streamOf(request.model, ["moved"]) }));
    upstreams.push(second);
    const moved = testConfig(second.url, [{ id: "acme/cheap", input: 0.01, output: 0.01 }], {
      auth: { adminKeysEnv: "TEST_ADMIN_KEYS", apiKeysEnv: "TEST_CLIENT_KEYS" },
    });
    writeFileSync(path, stringify(moved));
    expect((await fetch(`${gateway.url}/admin/reload`, { method: "POST", headers: { authorization: "Bearer admin" } })).status).toBe(200);
    expect(gateway.gateway.brain.sampleCount("acme/cheap")).toBeGreaterThan(3);
    expect(gateway.gateway.brain.sampleCount("acme/other")).toBe(0);
    let text = "";
    for await (const chunk of await gateway.client.chat.completions.create({
      model: "acme/cheap",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    })) {
      text += chunk.choices[0]?.delta.content ?? "";
    }
    expect(text).toBe("moved");
    expect(second.requests).toHaveLength(1);
    expect(upstream.requests).toHaveLength(6);
  });

  it("reports not ready after a reload that needs a missing provider key, and never calls that provider keyless", async () => {
    const { upstream, path, gateway } = await start(0.01);
    writeFileSync(path, stringify({ ...routeConfig(upstream.url, 0.01), providers: { fake: { baseUrl: upstream.url, apiKeyEnv: "UNSET_PROVIDER_KEY" } } }));
    expect((await fetch(`${gateway.url}/admin/reload`, { method: "POST", headers: { authorization: "Bearer admin" } })).status).toBe(200);
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain("UNSET_PROVIDER_KEY");
    const error = await gateway.client.chat.completions.create({ model: "chat", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect((error as { status?: number }).status).toBe(503);
    expect(upstream.requests).toHaveLength(0);
  });
});
