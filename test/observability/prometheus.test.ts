// Live check of the observability contract: the built gateway, scripted upstreams, real traffic through the
// official SDK, and a real Prometheus (promtool and prometheus from Debian's `prometheus` package) that must
// answer every dashboard query with data and evaluate every alert rule without error.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ALERTS_FILE,
  REPO_ROOT,
  loadDashboards,
  loadRuleGroups,
  metricNamesIn,
  panelExprs,
  annotationExprs,
  substituteVariables,
} from "./observability-files.js";
import { findBinary, runTool, startGateway, startPrometheus, waitFor, type RunningGateway, type RunningPrometheus } from "./processes.js";
import { scriptByModel, startFakeUpstream, type FakeUpstream } from "../helpers/fake-upstream.js";

const PROMTOOL = findBinary("promtool");
const PROMETHEUS = findBinary("prometheus");
const MISSING = [PROMTOOL ? undefined : "promtool", PROMETHEUS ? undefined : "prometheus"].filter((b): b is string => b !== undefined);
const IN_CI = process.env.CI !== undefined && !["", "0", "false"].includes(process.env.CI);
const INSTALL_HINT = "install Debian's prometheus package: apt-get install -y --no-install-recommends prometheus";

const ADMIN_KEY_ENV = "SUBSECOND_OBS_TEST_ADMIN_KEYS";
const ADMIN_KEY = "obs-test-admin-key";
/** Keys of the client `default` (most traffic) and of `obs-team`, whose limit and budget the client row charts. */
const CLIENT_KEYS_ENV = "SUBSECOND_OBS_TEST_KEYS";
const CLIENT_KEY = "obs-test-key";
const TEAM_KEY_ENV = "SUBSECOND_OBS_TEST_TEAM_KEY";
const TEAM_KEY = "obs-test-team-key";
/** Windows substituted for Grafana's macros; the scrape interval below is 1 s. */
const WINDOWS = { rateInterval: "15s", interval: "5s", range: "1m" };
/** Seconds of scraping (with traffic) before dashboards are queried: ≥ 2 samples in every window, with margin. */
const SCRAPED_SECONDS = 10;

/** Catalog of the test gateway: catalog id → upstream model name, behaviour and price. */
const MODELS = {
  "test/fast-cheap": { upstream: "fast-a", behaviour: { kind: "ok", ttftMs: 15 }, price: { input: 0.1, output: 0.2 } },
  "test/fast-pricey": { upstream: "fast-b", behaviour: { kind: "ok", ttftMs: 40 }, price: { input: 0.5, output: 1.5 } },
  "test/hang": { upstream: "hang", behaviour: { kind: "hang" }, price: { input: 0.05, output: 0.1 } },
  "test/broken": { upstream: "broken", behaviour: { kind: "error" }, price: { input: 0.05, output: 0.1 } },
  "test/limited": { upstream: "limited", behaviour: { kind: "rate_limited", retryAfterSeconds: 1 }, price: { input: 0.05, output: 0.1 } },
} as const;

function gatewayConfig(baseUrl: string, comment: string): string {
  const config = {
    server: { host: "127.0.0.1", port: 0, logLevel: "info" },
    auth: { adminKeysEnv: ADMIN_KEY_ENV, apiKeysEnv: CLIENT_KEYS_ENV },
    // A few requests a minute: the team's traffic is refused now and then (limit="requests").
    clients: { "obs-team": { keyEnv: TEAM_KEY_ENV, limits: { requestsPerMinute: 5, usdPerDay: 100 } } },
    providers: { scripted: { baseUrl } },
    models: Object.entries(MODELS).map(([id, m], index) => ({
      id,
      provider: "scripted",
      upstreamModel: m.upstream,
      rank: index + 1,
      score: 100,
      pricePerMTok: m.price,
      contextTokens: 32768,
      prior: { ttftMs: 100, tokensPerSecond: 200 },
    })),
    defaults: {
      target: { metric: "ttft", percentile: 95, ms: 800 },
      deadlines: { firstTokenMs: 300, idleMs: 1000, totalMs: 1000, budgetMs: 3000 },
    },
    routes: {
      // Picks among the fast models: target met.
      chat: {
        candidates: ["test/fast-cheap", "test/fast-pricey"],
        strategy: "cheapest-within-target",
        deadlines: { firstTokenMs: 300, budgetMs: 3000 },
      },
      // Every request walks hang (timeout) → broken (500) → limited (429) → fast: fallbacks of every kind,
      // and a first token after ≥ 300 ms, so the 250 ms target is missed.
      chain: {
        candidates: ["test/hang", "test/broken", "test/limited", "test/fast-pricey"],
        strategy: "ordered",
        maxAttempts: 4,
        target: { metric: "ttft", percentile: 95, ms: 250 },
        deadlines: { firstTokenMs: 300, totalMs: 600, budgetMs: 3000 },
      },
    },
    defaultRoute: "chat",
    health: { openMs: 1000 },
  };
  return `# ${comment}\n${stringify(config)}`;
}

interface PromResponse {
  status: "success" | "error";
  errorType?: string;
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value?: [number, string] }[] } & Record<string, unknown>;
}

async function promGet(base: string, path: string, params: Record<string, string> = {}): Promise<PromResponse> {
  const url = new URL(path, base);
  for (const [key, value] of Object.entries(params)) url.searchParams.append(key, value);
  const res = await fetch(url);
  return (await res.json()) as PromResponse;
}

/** Metric families in Prometheus text exposition, with the sample names of histograms and summaries. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === "histogram" || type === "summary") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(name! + suffix);
  }
  return names;
}

/** The traffic that feeds every panel: routed, pinned, streamed or not, with fallbacks, a timeout and 429s. */
function createTraffic(gatewayUrl: string, alive: () => boolean) {
  const client = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: CLIENT_KEY, maxRetries: 0, timeout: 10000 });
  const team = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: TEAM_KEY, maxRetries: 0, timeout: 10000 });
  const messages = [{ role: "user" as const, content: "Say something short." }];
  const outcomes = new Map<string, number>();
  const count = (key: string): void => void outcomes.set(key, (outcomes.get(key) ?? 0) + 1);

  const call = async (model: string, stream: boolean, includeUsage = false, caller = client): Promise<void> => {
    const key = `${caller === team ? "obs-team " : ""}${model} ${stream ? "stream" : "json"}`;
    try {
      if (stream) {
        const chunks = await caller.chat.completions.create({
          model,
          messages,
          max_tokens: 16,
          stream: true,
          ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
        });
        for await (const _chunk of chunks) {
          // drain
        }
      } else {
        await caller.chat.completions.create({ model, messages, max_tokens: 16 });
      }
      count(`${key} ok`);
    } catch (error) {
      count(`${key} ${error instanceof OpenAI.APIError ? `${error.constructor.name} ${error.status ?? ""}` : String(error)}`);
    }
  };

  const round = async (i: number): Promise<void> => {
    await call("chat", true, true);
    await call("chat", false);
    await call("auto", true);
    await call("chain", true, true);
    await call("chain", false);
    await call("test/fast-cheap", false); // pinned
    await call("test/limited", false); // pinned: 429
    await call("test/broken", true); // pinned: 502
    if (i % 3 === 0) await call("test/hang", true); // pinned: 504 after the first-token deadline
    await call("chat", false, false, team); // 429 once past 5 a minute
  };

  let stopped = false;
  let workers: Promise<void>[] = [];
  return {
    outcomes,
    /** Runs `concurrency` loops of rounds until stop() or `maxMs` (bounded either way). */
    start(concurrency: number, maxMs: number): void {
      const until = Date.now() + maxMs;
      workers = Array.from({ length: concurrency }, async () => {
        for (let i = 0; !stopped && alive() && Date.now() < until; i++) await round(i);
      });
    },
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all(workers);
    },
  };
}

if (MISSING.length > 0 && IN_CI) {
  describe("observability against a real Prometheus", () => {
    it("has promtool and prometheus installed", () => {
      expect.fail(`${MISSING.join(" and ")} not found on PATH: ${INSTALL_HINT}`);
    });
  });
}

describe.skipIf(MISSING.length > 0)("observability against a real Prometheus", () => {
  const promtool = PROMTOOL!;
  let tmp = "";
  let upstream: FakeUpstream | undefined;
  let gateway: RunningGateway | undefined;
  let prometheus: RunningPrometheus | undefined;
  let traffic: ReturnType<typeof createTraffic> | undefined;
  let reloadedVia = "";
  /** Fails with the gateway's last output when it is no longer running (a crash is the finding then). */
  const expectGatewayRunning = (): void => {
    const exit = gateway?.handle.exit();
    if (exit !== undefined) expect.fail(`the gateway stopped (${exit}); its last output:\n${gateway!.handle.tail(40)}`);
  };

  /**
   * One rejected and one accepted reload, so both results of subsecond_config_reloads_total exist and the
   * config hash changes. POST /admin/reload when the gateway has it, SIGHUP otherwise.
   */
  const reloadTwice = async (configPath: string, baseUrl: string): Promise<void> => {
    const reload = async (): Promise<void> => {
      const res = await fetch(`${gateway!.url}/admin/reload`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      if (res.status === 404 || res.status === 405) {
        process.kill(gateway!.handle.pid, "SIGHUP");
        reloadedVia = "SIGHUP";
      } else {
        reloadedVia = `POST /admin/reload (${res.status})`;
      }
    };
    const counted = (result: string) => async (): Promise<true | undefined> => {
      const text = await (await fetch(`${gateway!.url}/metrics`)).text();
      return new RegExp(`^subsecond_config_reloads_total\\{result="${result}"\\} [1-9]`, "m").test(text) ? true : undefined;
    };
    writeFileSync(configPath, gatewayConfig(baseUrl, "broken on purpose").replace(/^defaultRoute: chat$/m, "defaultRoute: no-such-route"));
    await reload();
    await waitFor(`subsecond_config_reloads_total{result="failure"} ≥ 1 after an invalid config (${reloadedVia})`, counted("failure"), 5000);
    writeFileSync(configPath, gatewayConfig(baseUrl, "reloaded by the test"));
    await reload();
    await waitFor(`subsecond_config_reloads_total{result="success"} ≥ 1 after a valid config (${reloadedVia})`, counted("success"), 5000);
  };

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "subsecond-obs-"));
    const configPath = join(tmp, "gateway.yaml");
    upstream = await startFakeUpstream(scriptByModel(Object.fromEntries(Object.values(MODELS).map((m) => [m.upstream, m.behaviour]))));
    writeFileSync(configPath, gatewayConfig(upstream.url, "generated by test/observability/prometheus.test.ts"));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      [ADMIN_KEY_ENV]: ADMIN_KEY,
      [CLIENT_KEYS_ENV]: CLIENT_KEY,
      [TEAM_KEY_ENV]: TEAM_KEY,
      SUBSECOND_CONFIG: configPath,
    };
    delete env.PORT;
    delete env.HOST;
    gateway = await startGateway(REPO_ROOT, configPath, env);
    try {
      await reloadTwice(configPath, upstream.url);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- gateway output ---\n${gateway.handle.tail()}`, { cause: error });
    }

    traffic = createTraffic(gateway.url, () => gateway?.handle.exit() === undefined);
    traffic.start(3, 45000);

    // The shipped scrape config, pointed at this gateway, every second, with the shipped alert rules.
    const promConfig = parse(readFileSync(join(REPO_ROOT, "docker", "prometheus.yml"), "utf8")) as {
      global: Record<string, string>;
      rule_files: string[];
      scrape_configs: { job_name: string; scrape_interval?: string; scrape_timeout?: string; static_configs: { targets: string[] }[] }[];
    };
    promConfig.global = { ...promConfig.global, scrape_interval: "1s", evaluation_interval: "1s" };
    promConfig.rule_files = [ALERTS_FILE];
    const job = promConfig.scrape_configs.find((c) => c.job_name === "subsecond")!;
    Object.assign(job, { scrape_interval: "1s", scrape_timeout: "1s", static_configs: [{ targets: [new URL(gateway.url).host] }] });
    const promConfigPath = join(tmp, "prometheus.yml");
    writeFileSync(promConfigPath, stringify(promConfig));
    const checked = runTool(promtool, ["check", "config", promConfigPath]);
    expect(checked.status, checked.output).toBe(0);
    prometheus = await startPrometheus(PROMETHEUS!, promConfigPath, join(tmp, "tsdb"));
  }, 40000);

  afterAll(async () => {
    await traffic?.stop();
    await prometheus?.handle.stop();
    await gateway?.handle.stop();
    await upstream?.close();
    if (tmp !== "") rmSync(tmp, { recursive: true, force: true });
  }, 20000);

  it("promtool accepts the alert rules and their unit tests pass", () => {
    const rules = runTool(promtool, ["check", "rules", ALERTS_FILE]);
    expect(rules.status, rules.output).toBe(0);
    const unit = runTool(promtool, ["test", "rules", "alerts.rules-test.yaml"], { cwd: join(REPO_ROOT, "test", "observability") });
    expect(unit.status, unit.output).toBe(0);
  });

  it("traffic produced routing, fallback, timeout and rate-limit series", async () => {
    expectGatewayRunning();
    const series = (name: string, label = "", value = "[0-9]"): [string, RegExp] => [
      `${name}{${label}}`,
      new RegExp(`^${name}\\{[^}]*${label}[^}]*\\} ${value}`, "m"),
    ];
    const required: [string, RegExp][] = [
      ...["timeout", "error", "rate_limited"].map((reason) => series("subsecond_fallbacks_total", `reason="${reason}"`, "[1-9]")),
      ...["ok", "timeout", "error", "rate_limited"].map((outcome) => series("subsecond_upstream_attempts_total", `outcome="${outcome}"`, "[1-9]")),
      ...["chat", "chain", "pinned"].map((route) => series("subsecond_requests_total", `route="${route}"`, "[1-9]")),
      ...["met", "missed"].map((result) => series("subsecond_route_target_total", `result="${result}"`, "[1-9]")),
      ...["prompt", "completion"].map((kind) => series("subsecond_tokens_total", `kind="${kind}"`, "[1-9]")),
      series("subsecond_cost_usd_total"),
      ...["default", "obs-team"].map((client) => series("subsecond_client_requests_total", `client="${client}",outcome="ok"`, "[1-9]")),
      series("subsecond_client_limited_total", 'client="obs-team",limit="requests"', "[1-9]"),
      series("subsecond_client_cost_usd_total", 'client="obs-team"', "[0-9.e-]*[1-9]"),
      series("subsecond_client_spent_today_usd", 'client="obs-team"'),
      series("subsecond_time_to_first_token_seconds_bucket"),
      series("subsecond_gateway_overhead_seconds_bucket"),
    ];
    let missing: string[] = [];
    await waitFor(
      "every series the dashboards chart",
      async () => {
        if (gateway!.handle.exit() !== undefined) return true;
        const body = await (await fetch(`${gateway!.url}/metrics`)).text();
        missing = required.filter(([, re]) => !re.test(body)).map(([what]) => what);
        return missing.length === 0 ? true : undefined;
      },
      15000,
      250,
    ).catch(() => undefined);
    expectGatewayRunning();
    expect(missing, `missing series after 15 s of traffic; client outcomes: ${JSON.stringify(Object.fromEntries(traffic!.outcomes))}`).toEqual([]);
  }, 20000);

  it("every dashboard query returns data from a real Prometheus", async () => {
    expectGatewayRunning();
    const prom = prometheus!.url;
    await waitFor(
      `${SCRAPED_SECONDS} s of scrapes of the gateway`,
      async () => {
        const r = await promGet(prom, "/api/v1/query", { query: 'count_over_time(up{job="subsecond"}[1m])' });
        const samples = Number(r.data?.result[0]?.value?.[1] ?? 0);
        return samples >= SCRAPED_SECONDS ? true : undefined;
      },
      30000,
      250,
    );
    expectGatewayRunning();
    const problems: string[] = [];
    let checked = 0;
    for (const d of loadDashboards()) {
      for (const { file, panel, refId, expr } of panelExprs(d)) {
        const query = substituteVariables(expr, WINDOWS);
        const r = await promGet(prom, "/api/v1/query", { query });
        checked++;
        const where = `${file} / "${panel}" (${refId}): ${query}`;
        if (r.status !== "success") problems.push(`${where}\n    → ${r.errorType}: ${r.error}`);
        else if (!r.data || r.data.result.length === 0) problems.push(`${where}\n    → empty result`);
        else if (!r.data.result.some((s) => Number.isFinite(Number(s.value?.[1])))) problems.push(`${where}\n    → only NaN/Inf values`);
      }
      for (const { file, panel, expr } of annotationExprs(d)) {
        const r = await promGet(prom, "/api/v1/query", { query: substituteVariables(expr, WINDOWS) });
        if (r.status !== "success") problems.push(`${file} / ${panel}: ${expr}\n    → ${r.errorType}: ${r.error}`);
      }
      // Template variables must list values too, or every panel filtered by them would be empty.
      for (const v of d.dashboard.templating?.list ?? []) {
        if (v.type !== "query") continue;
        const q = typeof v.query === "string" ? v.query : String((v.query as { query?: unknown }).query);
        const m = /^label_values\((.+), (\w+)\)$/.exec(q);
        if (!m) {
          problems.push(`${d.file} / variable ${v.name}: unsupported query ${q}`);
          continue;
        }
        const r = await promGet(prom, `/api/v1/label/${m[2]}/values`, { "match[]": substituteVariables(m[1]!, WINDOWS) });
        if (r.status !== "success" || !Array.isArray(r.data) || r.data.length === 0) problems.push(`${d.file} / variable ${v.name}: ${q} lists no values`);
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(problems, `dashboard queries without data:\n${problems.join("\n")}`).toEqual([]);
  }, 45000);

  it("alert rules evaluate on real data and name only exported metrics", async () => {
    expectGatewayRunning();
    const prom = prometheus!.url;
    const exported = exposedNames(await (await fetch(`${gateway!.url}/metrics`)).text());
    const problems: string[] = [];
    for (const group of loadRuleGroups()) {
      for (const rule of group.rules) {
        const name = rule.alert ?? rule.record ?? "?";
        const r = await promGet(prom, "/api/v1/query", { query: rule.expr });
        if (r.status !== "success") problems.push(`${name}: ${r.errorType}: ${r.error}`);
        for (const metric of metricNamesIn(rule.expr)) if (!exported.has(metric)) problems.push(`${name}: ${metric} is not in the gateway's /metrics`);
      }
    }
    // Prometheus loaded the file and evaluates every rule without error.
    const rules = await waitFor(
      "rule evaluation",
      async () => {
        const r = (await promGet(prom, "/api/v1/rules")) as {
          data?: { groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] };
        };
        const all = r.data?.groups.flatMap((g) => g.rules) ?? [];
        return all.length > 0 && all.every((rule) => rule.health !== "unknown") ? all : undefined;
      },
      10000,
      250,
    );
    expect(rules.length).toBe(loadRuleGroups().flatMap((g) => g.rules).length);
    for (const rule of rules) if (rule.health !== "ok") problems.push(`${rule.name}: health ${rule.health} ${rule.lastError ?? ""}`);
    // The rejected reload of beforeAll is a first failure (its counter series is born at 1): it must alert.
    const firing = await waitFor(
      "SubsecondConfigReloadFailed to fire",
      async () => {
        const r = (await promGet(prom, "/api/v1/alerts")) as { data?: { alerts: { labels: { alertname: string }; state: string }[] } };
        return r.data?.alerts.find((a) => a.labels.alertname === "SubsecondConfigReloadFailed" && a.state === "firing");
      },
      10000,
      250,
    );
    expect(firing, `reload triggered via ${reloadedVia}`).toBeDefined();
    expect(problems, problems.join("\n")).toEqual([]);
  }, 30000);

  it("promtool check metrics finds no problem in the gateway's own metrics", async () => {
    expectGatewayRunning();
    const text = await (await fetch(`${gateway!.url}/metrics`)).text();
    expect(text).toMatch(/^subsecond_request_duration_seconds_bucket\{/m);
    const result = runTool(promtool, ["check", "metrics"], { input: text });
    const lines = result.output.split("\n").filter((line) => line.trim() !== "");
    // prom-client's default nodejs_*/process_* metrics are not ours to rename; everything else must be clean.
    const ours = lines.filter((line) => !/^(nodejs_|process_)/.test(line.trim()));
    expect(ours, `promtool check metrics (exit ${result.status}):\n${result.output}`).toEqual([]);
  });
});
