// GET /admin/events, the new /admin/routes figures (attainment, share, observed latency) and GET /ui,
// over real sockets: a scripted upstream, the gateway on port 0, the openai SDK as the client.
import { createHash } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfigFile } from "../../src/config/load.js";
import { scriptByModel, startFakeUpstream, type FakeUpstream, type ModelBehavior } from "../helpers/fake-upstream.js";
import { startTestGateway, testConfig, type TestGateway } from "../helpers/gateway.js";
import { useTempDirs } from "../helpers/temp-dir.js";

const CHEAP = "acme/cheap";
const SPARE = "acme/spare";
const ADMIN = { authorization: "Bearer admin" };

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;
const tempDir = useTempDirs();
afterEach(async () => {
  await gateway?.close();
  await upstream?.close();
  gateway = undefined;
  upstream = undefined;
});

interface EventJson {
  id: number;
  time: string;
  kind: string;
  route: string | null;
  models: string[];
  detail: string;
}
interface EventsJson {
  events: EventJson[];
  latestId: number;
  oldestId: number;
}
interface CandidateJson {
  id: string;
  share: number | null;
  observedMs: number | null;
  predictedMs: number;
  state: string;
}
interface RoutesJson {
  routes: { name: string; attainment: number | null; candidates: CandidateJson[] }[];
}

function config(url: string, health: Record<string, unknown> = {}): Record<string, unknown> {
  return testConfig(url, [{ id: CHEAP }, { id: SPARE }], {
    auth: { adminKeysEnv: "TEST_ADMIN_KEYS", apiKeysEnv: "TEST_CLIENT_KEYS" },
    health: { consecutiveFailures: 2, openMs: 60_000, ...health },
  });
}

async function start(behaviors: Record<string, ModelBehavior>, health: Record<string, unknown> = {}): Promise<TestGateway> {
  upstream = await startFakeUpstream(scriptByModel(behaviors));
  gateway = await startTestGateway(config(upstream.url, health), { clientKey: "client", env: { TEST_ADMIN_KEYS: "admin", TEST_CLIENT_KEYS: "client" } });
  return gateway;
}

async function events(test: TestGateway, since?: number): Promise<EventsJson> {
  const response = await fetch(`${test.url}/admin/events${since === undefined ? "" : `?since=${since}`}`, { headers: ADMIN });
  expect(response.status).toBe(200);
  return (await response.json()) as EventsJson;
}

async function routes(test: TestGateway): Promise<RoutesJson> {
  return (await (await fetch(`${test.url}/admin/routes`, { headers: ADMIN })).json()) as RoutesJson;
}

async function chat(test: TestGateway): Promise<string | null> {
  const { response } = await test.client.chat.completions.create({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] }).withResponse();
  await response.text();
  return response.headers.get("x-subsecond-model");
}

describe("GET /admin/events", () => {
  it("lists the fallbacks and the circuit opening of a failing model, in order, and polls with ?since", async () => {
    const behaviors: Record<string, ModelBehavior> = { [CHEAP]: { kind: "ok", ttftMs: 5 }, [SPARE]: { kind: "ok", ttftMs: 5 } };
    const test = await start(behaviors);
    expect(await chat(test)).toBe(CHEAP);
    expect(await events(test)).toEqual({ events: [], latestId: 0, oldestId: 0 });

    behaviors[CHEAP] = { kind: "error" };
    expect(await chat(test)).toBe(SPARE);
    const first = await events(test);
    expect(first.events).toEqual([
      { id: 1, time: expect.any(String), kind: "fallback", route: "chat", models: [CHEAP], detail: "failed; tried the next candidate" },
    ]);
    expect(Date.now() - Date.parse(first.events[0]?.time ?? "")).toBeLessThan(10_000);

    expect(await chat(test)).toBe(SPARE);
    const later = await events(test, first.latestId);
    expect(later.events.map(({ id, kind, models }) => ({ id, kind, models }))).toEqual([
      { id: 2, kind: "circuit.opened", models: [CHEAP] },
      { id: 3, kind: "fallback", models: [CHEAP] },
    ]);
    expect(later.events[0]?.detail).toBe("2 failures in a row: circuit open for 60 s");
    expect(later.events[0]?.route).toBeNull();
    expect((await events(test, later.latestId)).events).toEqual([]);
  });

  it("announces a cooldown once when a model answers 429, with the provider's Retry-After", async () => {
    const test = await start({ [CHEAP]: { kind: "rate_limited", retryAfterSeconds: 30 }, [SPARE]: { kind: "ok", ttftMs: 5 } });
    expect(await chat(test)).toBe(SPARE);
    expect(await chat(test)).toBe(SPARE);
    const kinds = (await events(test)).events.map(({ kind, models, detail }) => ({ kind, models, detail }));
    expect(kinds).toEqual([
      { kind: "cooldown", models: [CHEAP], detail: "429 with Retry-After: cooling for 30 s" },
      { kind: "fallback", models: [CHEAP], detail: "rate limited (429); tried the next candidate" },
    ]);
  });

  it("records reloads that fail and succeed", async () => {
    upstream = await startFakeUpstream(scriptByModel({ [CHEAP]: { kind: "ok", ttftMs: 5 }, [SPARE]: { kind: "ok", ttftMs: 5 } }));
    const path = join(tempDir("subsecond-status-"), "gateway.yaml");
    const write = (raw: Record<string, unknown>) => {
      writeFileSync(`${path}.tmp`, stringify(raw));
      renameSync(`${path}.tmp`, path);
    };
    write(config(upstream.url));
    const test = await startTestGateway(
      {},
      { configPath: path, config: await loadConfigFile(path), env: { TEST_ADMIN_KEYS: "admin", TEST_CLIENT_KEYS: "client" } },
    );
    gateway = test;
    const lastReload = async () => (await events(test)).events.filter((event) => event.kind.startsWith("reload.")).at(-1);

    write({ ...config(upstream.url), models: [] });
    await expect.poll(lastReload, { timeout: 5000 }).toMatchObject({ kind: "reload.failed", route: null, models: [] });
    expect((await lastReload())?.detail).toMatch(/^rejected, the current config keeps serving: .*models/);

    write({ ...config(upstream.url), models: testConfig(upstream.url, [{ id: CHEAP, input: 0.2 }, { id: SPARE }]).models });
    await expect.poll(lastReload, { timeout: 5000 }).toMatchObject({ kind: "reload.ok" });
    expect((await lastReload())?.detail).toMatch(/^config [0-9a-f]{12}: price changed: acme\/cheap \$0\.1\/\$0\.4 → \$0\.2\/\$0\.4/);
  });

  it("tells a hedge's race: fired, then won, each naming the first attempt's model and the hedge's", async () => {
    upstream = await startFakeUpstream(scriptByModel({ [CHEAP]: { kind: "ok", ttftMs: 1500 }, [SPARE]: { kind: "ok", ttftMs: 5 } }));
    gateway = await startTestGateway(
      testConfig(upstream.url, [{ id: CHEAP, input: 0.05, output: 0.1 }, { id: SPARE }], {
        routes: { chat: { candidates: [CHEAP, SPARE], strategy: "cheapest-within-target", hedging: { marginMs: 100 } } },
        defaults: { exploration: { ratio: 0, newModelRatio: 0 } },
      }),
    );
    // The spare is measured fast (pinned requests), so the cheap model's slow first token is hedged to it.
    for (let i = 0; i < 6; i++) {
      const stream = await gateway.client.chat.completions.create({ model: SPARE, stream: true, messages: [{ role: "user", content: "warm" }] });
      for await (const part of stream) void part;
    }
    const { response } = await gateway.client.chat.completions
      .create({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    await response.text();
    expect(response.headers.get("x-subsecond-hedged")).toBe("1");
    const test = gateway;
    // The race's end is recorded as its round closes, a moment after the client's last byte.
    const race = async () => (await events(test)).events.map(({ kind, route, models }) => ({ kind, route, models }));
    await expect.poll(race, { timeout: 2000 }).toEqual([
      { kind: "hedge.fired", route: "chat", models: [CHEAP, SPARE] },
      { kind: "hedge.won", route: "chat", models: [CHEAP, SPARE] },
    ]);
  });

  it("needs the admin key and rejects a `since` that is not an event id", async () => {
    const test = await start({ [CHEAP]: { kind: "ok", ttftMs: 5 }, [SPARE]: { kind: "ok", ttftMs: 5 } });
    expect((await fetch(`${test.url}/admin/events`)).status).toBe(401);
    expect((await fetch(`${test.url}/admin/events`, { headers: { authorization: "Bearer client" } })).status).toBe(401);
    for (const since of ["-1", "abc", "1.5", "1e3"]) {
      const response = await fetch(`${test.url}/admin/events?since=${since}`, { headers: ADMIN });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: "invalid_value", param: "since" } });
    }
  });
});

describe("GET /admin/routes, live figures", () => {
  it("reports each candidate's share of the route's traffic, its observed latency and the route's attainment", async () => {
    const behaviors: Record<string, ModelBehavior> = { [CHEAP]: { kind: "ok", ttftMs: 5 }, [SPARE]: { kind: "ok", ttftMs: 5 } };
    const test = await start(behaviors, { consecutiveFailures: 100 });
    let before = await routes(test);
    expect(before.routes[0]).toMatchObject({ name: "chat", attainment: null });
    expect(before.routes[0]?.candidates.map(({ share, observedMs }) => ({ share, observedMs }))).toEqual([
      { share: null, observedMs: null },
      { share: null, observedMs: null },
    ]);

    for (let i = 0; i < 4; i++) expect(await chat(test)).toBe(CHEAP);
    test.gateway.flushBookkeeping();
    before = await routes(test);
    const [cheap, spare] = before.routes[0]?.candidates ?? [];
    expect(before.routes[0]?.attainment).toBe(1);
    expect(cheap?.share).toBeCloseTo(1, 6);
    expect(spare?.share).toBe(0);
    expect(cheap?.observedMs).toBeGreaterThan(0);
    expect(cheap?.observedMs).toBeLessThan(800);
    expect(spare?.observedMs).toBeNull();

    behaviors[CHEAP] = { kind: "error" };
    for (let i = 0; i < 4; i++) expect(await chat(test)).toBe(SPARE);
    test.gateway.flushBookkeeping();
    const after = (await routes(test)).routes[0]?.candidates ?? [];
    expect(after[0]?.share).toBeCloseTo(0.5, 2);
    expect(after[1]?.share).toBeCloseTo(0.5, 2);
  });
});

describe("GET /ui", () => {
  it("serves the page without a key, with a CSP that admits exactly its inline script and style", async () => {
    const test = await start({ [CHEAP]: { kind: "ok", ttftMs: 5 }, [SPARE]: { kind: "ok", ttftMs: 5 } });
    const response = await fetch(`${test.url}/ui`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await response.text();
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)="(https?:)?\/\//);
    const csp = response.headers.get("content-security-policy") ?? "";
    const digest = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? "";
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? "";
    expect(csp).toContain(`script-src ${digest(script)};`);
    expect(csp).toContain(`style-src ${digest(style)};`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
  });
});
