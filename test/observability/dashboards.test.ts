// Static checks of the Grafana dashboards, alert rules and provisioning files (no sockets, no binaries).
import { existsSync } from "node:fs";
import { basename, join, isAbsolute } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  DASHBOARDS_DIR,
  DS_REF,
  REPO_ROOT,
  allPanels,
  annotationExprs,
  exportedSampleNames,
  loadDashboards,
  loadRuleGroups,
  metricNamesIn,
  panelExprs,
  readYaml,
  substituteVariables,
  type DashboardFile,
  type GrafanaVariable,
} from "./observability-files.js";

/** Stable uid per file: links, bookmarks and provisioning updates rely on it. */
const EXPECTED_UIDS: Record<string, string> = {
  "subsecond-overview.json": "subsecond-overview",
  "subsecond-model.json": "subsecond-model",
};

/** Grafana's core panel types we allow (no plugins to install). */
const CORE_PANEL_TYPES = new Set(["timeseries", "stat", "gauge", "bargauge", "table", "state-timeline", "heatmap", "text", "row", "piechart"]);

/** Every metric of DESIGN.md "Metrics"; the overview must chart each of them. */
const DESIGN_METRICS = [
  "subsecond_requests_total",
  "subsecond_request_duration_seconds",
  "subsecond_time_to_first_token_seconds",
  "subsecond_upstream_attempts_total",
  "subsecond_fallbacks_total",
  "subsecond_route_decisions_total",
  "subsecond_route_target_total",
  "subsecond_tokens_total",
  "subsecond_cost_usd_total",
  "subsecond_model_latency_estimate_seconds",
  "subsecond_model_state",
  "subsecond_gateway_overhead_seconds",
  "subsecond_config_reloads_total",
  "subsecond_config_info",
];

const dashboards = loadDashboards();
const variable = (d: DashboardFile, name: string): GrafanaVariable | undefined => d.dashboard.templating?.list?.find((v) => v.name === name);
const variableQuery = (v: GrafanaVariable): string =>
  typeof v.query === "string" ? v.query : typeof v.query === "object" && v.query !== null ? String((v.query as { query?: unknown }).query) : "";
const histogramBase = (name: string): string => name.replace(/_bucket$/, "");

let exported: Set<string>;
beforeAll(async () => {
  exported = await exportedSampleNames();
});

describe("dashboards", () => {
  it("are exactly the expected files, with stable, unique uids", () => {
    expect(dashboards.map((d) => d.file)).toEqual(Object.keys(EXPECTED_UIDS).sort());
    for (const { file, dashboard } of dashboards) expect(dashboard.uid, file).toBe(EXPECTED_UIDS[file]);
    const uids = dashboards.map((d) => d.dashboard.uid);
    expect(new Set(uids).size).toBe(uids.length);
  });

  describe.each(dashboards)("$file", (d) => {
    const { dashboard, file } = d;
    const panels = allPanels(dashboard);
    const exprs = panelExprs(d);

    it("has a current schemaVersion, a title and no saved id/version leftovers", () => {
      expect(typeof dashboard.schemaVersion).toBe("number");
      expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
      expect(dashboard.title).toMatch(/^Subsecond/);
      expect(dashboard).not.toHaveProperty("id");
      expect(dashboard).not.toHaveProperty("version");
      expect(dashboard).not.toHaveProperty("iteration");
    });

    it("saves no variable selection (`current`) and offers DS_PROMETHEUS, route and model", () => {
      const vars = dashboard.templating?.list ?? [];
      for (const v of vars) {
        expect(v, `variable ${v.name}`).not.toHaveProperty("current");
        expect(v.options ?? [], `variable ${v.name} options`).toEqual([]);
      }
      const ds = variable(d, "DS_PROMETHEUS");
      expect(ds).toMatchObject({ type: "datasource", query: "prometheus" });
      for (const name of ["route", "model"]) {
        const v = variable(d, name);
        expect(v, `variable ${name}`).toBeDefined();
        expect(v?.type).toBe("query");
        expect(v?.datasource).toEqual(DS_REF);
        expect(variableQuery(v!)).toMatch(new RegExp(`^label_values\\(subsecond_\\w+(\\{[^}]*\\})?, ${name}\\)$`));
        if (v?.includeAll) expect(v.allValue, `${name} allValue`).toBe(".*");
      }
      // Every variable used in a panel is defined.
      const defined = new Set(vars.map((v) => v.name));
      for (const { expr } of exprs) {
        for (const [, name] of expr.matchAll(/\$\{?(\w+)/g)) {
          if (!name!.startsWith("__")) expect(defined.has(name!), `$${name} in ${expr}`).toBe(true);
        }
      }
    });

    it("uses only core panel types, with unique ids and a grid position", () => {
      for (const panel of panels) {
        expect(CORE_PANEL_TYPES.has(panel.type), `${panel.title}: type ${panel.type}`).toBe(true);
        expect(panel.gridPos, `${panel.title}: gridPos`).toBeDefined();
      }
      const ids = panels.map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
    });

    it("points every panel, target and annotation at ${DS_PROMETHEUS}", () => {
      for (const panel of panels.filter((p) => p.type !== "row")) {
        expect(panel.datasource, `panel ${panel.title}`).toEqual(DS_REF);
        expect(panel.targets?.length ?? 0, `panel ${panel.title} has targets`).toBeGreaterThan(0);
        for (const target of panel.targets ?? []) expect(target.datasource, `panel ${panel.title} target ${target.refId}`).toEqual(DS_REF);
      }
      for (const annotation of dashboard.annotations?.list ?? []) expect(annotation.datasource, `annotation ${String(annotation.name)}`).toEqual(DS_REF);
    });

    it("gives every panel a unit", () => {
      for (const panel of panels.filter((p) => p.type !== "row")) {
        const unit = panel.fieldConfig?.defaults?.unit;
        expect(typeof unit === "string" && unit.length > 0, `panel ${panel.title}: fieldConfig.defaults.unit`).toBe(true);
      }
    });

    it("writes queries the Grafana way, without padding", () => {
      expect(exprs.length).toBeGreaterThan(0);
      for (const { panel, expr } of [...exprs, ...annotationExprs(d)]) {
        const where = `${file} / ${panel}: ${expr}`;
        expect(expr, where).not.toMatch(/\bvector\s*\(/);
        expect(expr, where).not.toMatch(/\bor\s+on\s*\(\s*\)/);
        expect(expr, where).not.toMatch(/\babsent\s*\(/);
        // Range windows come from Grafana's macros, never hard-coded.
        for (const [, window] of expr.matchAll(/\[([^\]]*)\]/g)) expect(window, where).toMatch(/^\$__(rate_interval|interval|range)$/);
        // Counters are only read through rate()/increase().
        for (const name of metricNamesIn(expr).filter((n) => /_(total|bucket)$/.test(n))) {
          expect(expr, `${where} reads ${name} raw`).toMatch(new RegExp(`(rate|increase)\\(${name}(\\{[^}]*\\})?\\[`));
        }
        // histogram_quantile(q, sum by (le, ...) (rate(x_bucket[$__rate_interval])))
        if (expr.includes("histogram_quantile")) {
          expect(expr, where).toMatch(/histogram_quantile\(0\.\d+, sum by \(le(, \w+)*\) \(rate\(\w+_bucket(\{[^}]*\})?\[\$__rate_interval\]\)\)\)/);
        }
      }
    });

    it("substitutes cleanly into plain PromQL for the live test", () => {
      for (const { expr } of exprs) {
        const plain = substituteVariables(expr);
        expect(plain, expr).not.toMatch(/\$|\[\[/);
      }
      expect(substituteVariables('rate(x{route=~"$route", model="${model}"}[$__rate_interval])')).toBe('rate(x{route=~".*", model=~".*"}[15s])');
    });

    it("names only metrics the gateway exports", () => {
      for (const { panel, expr } of [...exprs, ...annotationExprs(d)]) {
        for (const name of metricNamesIn(expr)) expect(exported.has(name), `${file} / ${panel}: unknown metric ${name} in ${expr}`).toBe(true);
      }
    });
  });

  it("overview charts every metric of the design, with the requested panels", () => {
    const overview = dashboards.find((d) => d.file === "subsecond-overview.json")!;
    const exprs = panelExprs(overview).map((e) => e.expr);
    const used = new Set(exprs.flatMap(metricNamesIn).map(histogramBase));
    for (const metric of DESIGN_METRICS) expect(used.has(metric), `overview uses ${metric}`).toBe(true);
    const has = (re: RegExp): boolean => exprs.some((e) => re.test(e));
    expect(has(/sum by \(route, model\) \(rate\(subsecond_requests_total/), "requests/s by route and model").toBe(true);
    for (const q of ["0.5", "0.95", "0.99"]) {
      expect(has(new RegExp(`histogram_quantile\\(${q}, sum by \\(le, model\\) \\(rate\\(subsecond_time_to_first_token_seconds_bucket`)), `TTFT p${q}`).toBe(
        true,
      );
      expect(has(new RegExp(`histogram_quantile\\(${q}, sum by \\(le, model\\) \\(rate\\(subsecond_request_duration_seconds_bucket`)), `duration p${q}`).toBe(
        true,
      );
    }
    expect(has(/result="met".*\/ sum by \(route\) \(rate\(subsecond_route_target_total/), "target attainment met / (met + missed)").toBe(true);
    expect(has(/sum by \(reason, from_model\) \(rate\(subsecond_fallbacks_total/), "fallbacks by reason and from_model").toBe(true);
    expect(has(/rate\(subsecond_cost_usd_total\{[^}]*\}\[\$__rate_interval\]\)\) \* 3600/), "cost per hour").toBe(true);
    expect(has(/sum by \(kind\) \(rate\(subsecond_tokens_total/), "tokens/s by kind").toBe(true);
    for (const q of ["0.5", "0.99"])
      expect(has(new RegExp(`histogram_quantile\\(${q}, sum by \\(le\\) \\(rate\\(subsecond_gateway_overhead_seconds_bucket`)), `overhead p${q}`).toBe(true);

    const states = allPanels(overview.dashboard).find((p) => p.targets?.some((t) => String(t.expr).includes("subsecond_model_state")));
    const mappings = JSON.stringify((states?.fieldConfig?.defaults as { mappings?: unknown } | undefined)?.mappings ?? []);
    for (const [value, text] of [
      ["0", "ok"],
      ["1", "half-open"],
      ["2", "cooling"],
      ["3", "open"],
    ]) {
      expect(mappings, `model state mapping ${value} → ${text}`).toContain(`"${value}":{"text":"${text}"`);
    }
  });

  it("overview repeats a row per client with its requests, spend, limited requests and budget", () => {
    const overview = dashboards.find((d) => d.file === "subsecond-overview.json")!;
    const panels = overview.dashboard.panels ?? [];
    const rowIndex = panels.findIndex((p) => p.type === "row" && (p as { repeat?: string }).repeat === "client");
    expect(rowIndex, "a row with repeat: client").toBeGreaterThanOrEqual(0);
    expect(variableQuery(variable(overview, "client")!)).toBe("label_values(subsecond_client_requests_total, client)");
    const nextRow = panels.findIndex((p, index) => index > rowIndex && p.type === "row");
    const exprs = panels.slice(rowIndex + 1, nextRow).flatMap((p) => (p.targets ?? []).map((t) => String(t.expr)));
    for (const metric of [
      "subsecond_client_requests_total",
      "subsecond_client_cost_usd_total",
      "subsecond_client_limited_total",
      "subsecond_client_budget_usd",
    ]) {
      expect(
        exprs.some((expr) => expr.includes(metric) && expr.includes('client=~"$client"')),
        `client row charts ${metric}`,
      ).toBe(true);
    }
  });

  it("model drill-down filters every query by $model", () => {
    const drill = dashboards.find((d) => d.file === "subsecond-model.json")!;
    for (const { panel, expr } of panelExprs(drill)) expect(expr, panel).toMatch(/model=~"\$model"/);
    const model = variable(drill, "model");
    expect(model?.multi).toBe(false);
  });
});

describe("alert rules (dashboards/alerts.yaml)", () => {
  const groups = loadRuleGroups();
  const rules = groups.flatMap((g) => g.rules.map((rule) => ({ group: g.name, ...rule })));
  const alerts = rules.filter((r) => r.alert !== undefined);

  it("has uniquely named alerts with for, severity, summary and description", () => {
    expect(alerts.length).toBeGreaterThan(0);
    expect(new Set(alerts.map((a) => a.alert)).size).toBe(alerts.length);
    for (const a of alerts) {
      expect(a.for, `${a.alert}: for`).toMatch(/^\d+[smh]$/);
      expect(["page", "ticket", "warning"], `${a.alert}: labels.severity`).toContain(a.labels?.severity);
      expect(a.annotations?.summary, `${a.alert}: summary`).toBeTruthy();
      expect(a.annotations?.description, `${a.alert}: description`).toBeTruthy();
    }
  });

  it("covers the agreed conditions", () => {
    const expr = (name: string): string => alerts.find((a) => a.alert === name)?.expr ?? "";
    const fast = expr("SubsecondTargetBudgetBurnFast");
    expect(fast).toMatch(/subsecond_route_target_total\{result="missed"\}\[1h\]/);
    expect(fast).toMatch(/subsecond_route_target_total\{result="missed"\}\[5m\]/);
    expect(fast).toContain("14.4 * (1 - 0.99)");
    const slow = expr("SubsecondTargetBudgetBurnSlow");
    expect(slow).toMatch(/\[6h\][\s\S]*\[30m\]/);
    expect(slow).toContain("6 * (1 - 0.99)");
    expect(expr("SubsecondRouteUnavailable")).toContain('outcome="unavailable"');
    expect(expr("SubsecondRouteNoHealthyCandidate")).toMatch(/min by \(route\) \(subsecond_route_healthy_candidates\) == 0/);
    expect(expr("SubsecondFallbackRateHigh")).toMatch(/subsecond_fallbacks_total[\s\S]*\/[\s\S]*subsecond_requests_total[\s\S]*> 0\.2/);
    expect(expr("SubsecondModelCircuitOpen")).toMatch(/max_over_time\(subsecond_model_state\[1m\]\)\) == 3/);
    expect(expr("SubsecondGatewayOverheadHigh")).toMatch(/histogram_quantile\(0\.99, [\s\S]*subsecond_gateway_overhead_seconds_bucket[\s\S]*> 0\.005/);
    expect(expr("SubsecondClientBudgetNearlySpent")).toMatch(/subsecond_client_spent_today_usd[\s\S]*\/[\s\S]*subsecond_client_budget_usd[\s\S]*> 0\.9/);
    expect(expr("SubsecondConfigReloadFailed")).toContain('increase(subsecond_config_reloads_total{result="failure"}[15m])) > 0');
  });

  it("names only metrics the gateway exports", () => {
    for (const rule of rules) {
      for (const name of metricNamesIn(rule.expr)) expect(exported.has(name), `${rule.alert ?? rule.record}: unknown metric ${name}`).toBe(true);
    }
  });
});

describe("provisioning and scrape config", () => {
  type Datasources = {
    apiVersion: number;
    datasources: { name: string; uid: string; type: string; url: string; isDefault?: boolean; jsonData?: { timeInterval?: string } }[];
  };
  type Providers = { apiVersion: number; providers: { name: string; type: string; folderUid?: string; options: { path: string } }[] };
  type PromConfig = {
    global?: { scrape_interval?: string };
    rule_files?: string[];
    scrape_configs?: { job_name: string; scrape_interval?: string; metrics_path?: string; static_configs?: { targets: string[] }[] }[];
  };
  const datasources = readYaml("dashboards/provisioning/datasources.yaml") as Datasources;
  const providers = readYaml("dashboards/provisioning/dashboards.yaml") as Providers;
  const prometheus = readYaml("docker/prometheus.yml") as PromConfig;

  it("provisions one default Prometheus data source with a fixed uid, which DS_PROMETHEUS selects", () => {
    expect(datasources.apiVersion).toBe(1);
    const prom = datasources.datasources.filter((ds) => ds.type === "prometheus");
    expect(prom).toHaveLength(1);
    expect(prom[0]).toMatchObject({ url: "http://prometheus:9090", isDefault: true });
    expect(prom[0]!.uid).toMatch(/^[a-z0-9-]+$/);
    // The DS_PROMETHEUS variable lists data sources of this type and starts on the default one.
    for (const d of dashboards) expect(variable(d, "DS_PROMETHEUS")?.query).toBe(prom[0]!.type);
  });

  it("provisions the dashboards from files into a fixed folder", () => {
    expect(providers.apiVersion).toBe(1);
    const [provider] = providers.providers;
    expect(provider).toMatchObject({ type: "file", folderUid: "subsecond" });
    expect(isAbsolute(provider!.options.path)).toBe(true);
    // The provider path is where compose mounts dashboards/; make sure there is something to load there.
    expect(provider!.options.path).toBe("/var/lib/grafana/dashboards");
    expect(existsSync(DASHBOARDS_DIR)).toBe(true);
    expect(dashboards.length).toBeGreaterThan(0);
  });

  it("scrapes the gateway every 5s and loads the alert rules", () => {
    const job = prometheus.scrape_configs?.find((c) => c.job_name === "subsecond");
    expect(job).toBeDefined();
    expect(job!.scrape_interval ?? prometheus.global?.scrape_interval).toBe("5s");
    expect(job!.metrics_path ?? "/metrics").toBe("/metrics");
    expect(job!.static_configs?.flatMap((s) => s.targets)).toEqual(["gateway:8080"]);
    const ruleFiles = prometheus.rule_files ?? [];
    expect(ruleFiles).toHaveLength(1);
    // Mounted from dashboards/ under the same name.
    expect(existsSync(join(REPO_ROOT, "dashboards", basename(ruleFiles[0]!)))).toBe(true);
    // Grafana's $__rate_interval assumes the data source's timeInterval is the scrape interval.
    expect(datasources.datasources[0]!.jsonData?.timeInterval).toBe(job!.scrape_interval);
  });
});
