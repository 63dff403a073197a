import { afterEach, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { getPriority } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { startFakeUpstream, streamOf, type FakeUpstream } from "../helpers/fake-upstream.js";
import { testConfig } from "../helpers/gateway.js";
import { useTempDirs } from "../helpers/temp-dir.js";

const MAIN = new URL("../../dist/main.js", import.meta.url).pathname;
const GATEWAY_YAML = new URL("../../config/gateway.yaml", import.meta.url).pathname;

const tempDir = useTempDirs();

/** Writes an edited copy of config/gateway.yaml to a scratch directory and returns its path. */
function shippedConfigVariant(name: string, edit: (text: string) => string): string {
  const file = join(tempDir("subsecond-check-"), name);
  writeFileSync(file, edit(readFileSync(GATEWAY_YAML, "utf8")));
  return file;
}

let child: ChildProcess | undefined;
let upstream: FakeUpstream | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  child = undefined;
  await upstream?.close();
  upstream = undefined;
});

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", env: { ...process.env, ...env } });
}

/** Starts `subsecond serve` and resolves with its URL from the "listening" log line. */
function serve(configPath: string, env: Record<string, string> = {}): Promise<{ url: string; logs: string[] }> {
  const logs: string[] = [];
  child = spawn(process.execPath, [MAIN, "serve", "--config", configPath], { env: { ...process.env, PORT: "0", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let buffered = "";
    child?.stdout?.on("data", (data: Buffer) => {
      buffered += data.toString();
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        logs.push(line);
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === "listening" && entry.url) resolve({ url: entry.url, logs });
      }
    });
    child?.stderr?.on("data", (data: Buffer) => logs.push(data.toString()));
    child?.once("exit", (code) => reject(new Error(`serve exited with ${code}: ${logs.join("\n")}`)));
  });
}

/** The nice values of a process's main thread and of its other threads (Linux `/proc`). */
function threadNices(pid: number): { main: number; helpers: number[] } {
  const niceOf = (tid: string) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    // Fields after the command name, which sits in parentheses: state is field 3, nice field 19.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  };
  const helpers = readdirSync(`/proc/${pid}/task`).filter((tid) => tid !== String(pid));
  return { main: niceOf(String(pid)), helpers: helpers.map(niceOf) };
}

describe("subsecond check", () => {
  it("accepts the shipped config", () => {
    const result = run(["check", GATEWAY_YAML]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/valid \(15 models/);
  });

  it("rejects a broken copy, naming every field path", () => {
    const file = shippedConfigVariant("broken.yaml", (text) =>
      text
        .replace("input: 0.14, output: 0.28", "input: -0.14, output: 0.28")
        .replace("rank: 7,", 'rank: "seven",')
        .replace("minScore: 100", "minScore: 100, candidatez: 1"),
    );
    const result = run(["check", file]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("models[1] (xiaomi/mimo-v2.5).pricePerMTok.input");
    expect(result.stderr).toContain("models[6] (qwen/qwen3.5-9b).rank");
    expect(result.stderr).toContain('routes.realtime-chat: Unrecognized key: "candidatez"');
  });
});

describe("subsecond check --against", () => {
  it("describes a change in words and each route's choice before and after", () => {
    const file = shippedConfigVariant("new.yaml", (text) =>
      text
        .replace("input: 0.07, output: 0.26", "input: 0.30, output: 0.90")
        .replace("output: 0.28 }, contextTokens: 1048576 }", "output: 0.28 }, contextTokens: 1048576, capabilities: [tools, json, vision] }")
        .replace(
          'realtime-chat: { candidates: "*", minScore: 100 }',
          'realtime-chat: { candidates: "*", minScore: 100, target: { metric: ttft, percentile: 95, ms: 1200 } }',
        )
        .replace(
          "  - { id: stepfun/step-3.7-flash,",
          "  - { id: acme/new-mini, provider: openrouter, rank: 16, score: 110, pricePerMTok: { input: 0.01, output: 0.02 }, contextTokens: 131072, prior: { ttftMs: 300, tokensPerSecond: 150 } }\n  - { id: stepfun/step-3.7-flash,",
        ),
    );
    const result = run(["check", file, "--against", GATEWAY_YAML]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("model added: acme/new-mini");
    expect(result.stdout).toContain("price changed: qwen/qwen3.5-flash-02-23 $0.07/$0.26 → $0.3/$0.9");
    expect(result.stdout).toContain("capabilities changed: xiaomi/mimo-v2.5 [tools, json] → [tools, json, vision]");
    expect(result.stdout).toContain("route realtime-chat: candidates added: acme/new-mini");
    expect(result.stdout).toContain("route realtime-chat: target p95 ttft ≤ 800 ms → p95 ttft ≤ 1200 ms");
    expect(result.stdout).toContain("route realtime-chat: would choose acme/new-mini (was qwen/qwen3.5-9b)");
  });

  it("warns about policies that can never be met", () => {
    const result = run(["check", GATEWAY_YAML]);
    expect(result.stdout).toContain("warning: routes.realtime-chat: no candidate's prior first-token time (fastest 2000 ms) meets the target of 800 ms");
  });
});

describe("subsecond explain", () => {
  it("prints the decision table of a hypothetical request", () => {
    const result = run(["explain", "--config", GATEWAY_YAML, "--route", "realtime-chat", "--prompt-tokens", "800", "--max-tokens", "200"]);
    expect(result.status).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toBe("route realtime-chat: cheapest-within-target, target p95 ttft ≤ 800 ms");
    expect(lines.filter((line) => line.startsWith(" → "))).toHaveLength(1);
    expect(lines.some((line) => line.includes("xiaomi/mimo-v2.5") && line.includes("0.14") && line.includes("0.28"))).toBe(true);
    expect(run(["explain", "--config", GATEWAY_YAML, "--route", "nope"]).status).toBe(1);
  });
});

describe("subsecond serve", () => {
  it("refuses to start when a provider key is missing, naming the variable", () => {
    const result = spawnSync(process.execPath, [MAIN, "serve", "--config", GATEWAY_YAML], {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", PORT: "0" },
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("OPENROUTER_API_KEY");
  });

  // At nice 19 already, lowered and not lowered would look the same.
  it.runIf(process.platform === "linux" && getPriority() < 19)("runs its helper threads server.helperThreadNice levels below the event loop", async () => {
    const dir = tempDir("subsecond-serve-");
    const configWith = (name: string, server: Record<string, unknown>) => {
      const file = join(dir, name);
      writeFileSync(
        file,
        stringify(testConfig("http://127.0.0.1:9", [{ id: "acme/one" }], { server: { host: "127.0.0.1", port: 0, logLevel: "info", ...server } })),
      );
      return file;
    };
    const own = getPriority();

    await serve(configWith("default.yaml", {}), { FAKE_PROVIDER_KEY: "k" });
    const lowered = threadNices(child?.pid as number);
    expect(lowered.main).toBe(own);
    const low = Math.min(19, own + 10);
    // V8's four platform workers at least; a thread started after start-up keeps the main thread's level.
    expect(lowered.helpers.filter((nice) => nice === low).length).toBeGreaterThanOrEqual(4);
    expect(lowered.helpers.every((nice) => nice === low || nice === own)).toBe(true);
    child?.kill("SIGKILL");

    await serve(configWith("off.yaml", { helperThreadNice: 0 }), { FAKE_PROVIDER_KEY: "k" });
    const same = threadNices(child?.pid as number);
    expect(same.main).toBe(own);
    expect(same.helpers.length).toBeGreaterThan(0);
    expect(same.helpers.every((nice) => nice === own)).toBe(true);
  });

  // Below nice 9, the helpers' level (own + 10) and the trace worker's (19) differ.
  it.runIf(process.platform === "linux" && getPriority() < 9)("runs the trace worker at nice 19, below the other helper threads", async () => {
    const file = join(tempDir("subsecond-serve-"), "traced.yaml");
    writeFileSync(file, stringify(testConfig("http://127.0.0.1:9", [{ id: "acme/one" }], { server: { host: "127.0.0.1", port: 0, logLevel: "info" } })));
    const own = getPriority();
    // Nothing listens on port 9: spans would be lost, which this test does not look at.
    await serve(file, { FAKE_PROVIDER_KEY: "k", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" });
    const nices = threadNices(child?.pid as number);
    expect(nices.main).toBe(own);
    expect(nices.helpers.filter((nice) => nice === 19)).toHaveLength(1);
    expect(nices.helpers.filter((nice) => nice === own + 10).length).toBeGreaterThanOrEqual(4);
  });

  it("drains in-flight streams on SIGTERM and exits 0", async () => {
    upstream = await startFakeUpstream((request) => ({ kind: "sse", steps: streamOf(request.model, ["a ", "b ", "c ", "d ", "e"], 150) }));
    const dir = tempDir("subsecond-serve-");
    const file = join(dir, "gateway.yaml");
    writeFileSync(file, stringify(testConfig(upstream.url, [{ id: "acme/one" }], { server: { host: "127.0.0.1", port: 0, logLevel: "info" } })));
    const { url, logs } = await serve(file, { FAKE_PROVIDER_KEY: "sk-cli-test-secret-42" });
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] }),
    });
    const exited = new Promise<number | null>((resolve) => child?.once("exit", (code) => resolve(code)));
    child?.kill("SIGTERM");
    const body = await response.text();
    expect(body).toContain('"content":"e"');
    expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(await exited).toBe(0);
    const requestLog = logs.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.msg === "request");
    expect(requestLog).toMatchObject({ method: "POST", path: "/v1/chat/completions", status: 200, model: "acme/one", route: "chat" });
    expect(logs.join("\n")).not.toContain("sk-cli-test-secret-42");
  });
});
