// A provider's Retry-After is bounded by health.cooldownMaxMs, and a reload that changes a model entry
// gives that entry a fresh health (issue 25, item 4).
import { afterEach, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadConfigFile } from "../../src/config/load.js";
import { completion, startFakeUpstream, type FakeUpstream } from "../helpers/fake-upstream.js";
import { startTestGateway, testConfig, type TestGateway } from "../helpers/gateway.js";
import { useTempDirs } from "../helpers/temp-dir.js";

const tempDir = useTempDirs();

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  await upstream?.close();
  gateway = undefined;
  upstream = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ask = { messages: [{ role: "user" as const, content: "hi" }] };

/** `acme/limited` answers 429 with `Retry-After: 99999999` (three years) once, then serves. */
async function startLimited(cooldownMaxMs: number, limitedInput = 0.1) {
  let limitedOnce = false;
  upstream = await startFakeUpstream((request) => {
    if (request.model === "acme/limited" && !limitedOnce) {
      limitedOnce = true;
      return { kind: "error", status: 429, headers: { "retry-after": "99999999" }, body: { error: { message: "slow down", type: "rate_limit_exceeded" } } };
    }
    return { kind: "json", body: completion(request.model, `from ${request.model}`) };
  });
  const config = (input: number) =>
    testConfig(upstream?.url as string, [{ id: "acme/limited", input }, { id: "acme/backup" }], {
      health: { cooldownMaxMs },
      auth: { adminKeysEnv: "TEST_ADMIN_KEYS" },
    });
  const path = join(tempDir("subsecond-cooldown-"), "gateway.yaml");
  writeFileSync(path, stringify(config(limitedInput)));
  gateway = await startTestGateway({}, { configPath: path, config: await loadConfigFile(path), env: { TEST_ADMIN_KEYS: "admin" } });
  const served = async () =>
    (await gateway?.client.chat.completions.create({ model: "chat", ...ask }).withResponse())?.response.headers.get("x-subsecond-model");
  expect(await served()).toBe("acme/backup");
  expect(gateway.gateway.brain.state("acme/limited")).toBe("cooling");
  return { path, config, served, gateway };
}

describe("rate-limit cooldowns", () => {
  it("cools a model down for at most health.cooldownMaxMs, whatever its Retry-After says", async () => {
    const { served, gateway } = await startLimited(300);
    expect(await served()).toBe("acme/backup");
    await sleep(350);
    expect(gateway.gateway.brain.state("acme/limited")).toBe("ok");
    expect(await served()).toBe("acme/limited");
  });

  it("starts a changed model entry with fresh health on reload, and keeps an unchanged one's", async () => {
    const { path, config, served, gateway } = await startLimited(60_000);
    const reload = () => fetch(`${gateway.url}/admin/reload`, { method: "POST", headers: { authorization: "Bearer admin" } });

    writeFileSync(path, `# unchanged entries\n${stringify(config(0.1))}`);
    expect((await reload()).status).toBe(200);
    expect(gateway.gateway.brain.state("acme/limited")).toBe("cooling");

    writeFileSync(path, stringify(config(0.05)));
    expect((await reload()).status).toBe(200);
    expect(gateway.gateway.brain.state("acme/limited")).toBe("ok");
    expect(await served()).toBe("acme/limited");
  });
});
