// Reads the observability artefacts (Grafana dashboards, alert rules, provisioning) for the tests that check them.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { Registry } from "prom-client";
import { createMetrics, type MetricsSource } from "../../src/metrics/metrics.js";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const DASHBOARDS_DIR = join(REPO_ROOT, "dashboards");
export const ALERTS_FILE = join(DASHBOARDS_DIR, "alerts.yaml");

/** How every panel, target and annotation must name its data source. */
export const DS_REF = { type: "prometheus", uid: "${DS_PROMETHEUS}" } as const;

export interface GrafanaTarget {
  refId?: string;
  expr?: string;
  datasource?: unknown;
  [key: string]: unknown;
}

export interface GrafanaPanel {
  id?: number;
  type: string;
  title?: string;
  datasource?: unknown;
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
  gridPos?: { h: number; w: number; x: number; y: number };
  [key: string]: unknown;
}

export interface GrafanaVariable {
  name: string;
  type: string;
  query?: unknown;
  datasource?: unknown;
  multi?: boolean;
  includeAll?: boolean;
  [key: string]: unknown;
}

export interface GrafanaDashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  templating?: { list?: GrafanaVariable[] };
  annotations?: { list?: GrafanaTarget[] };
  panels?: GrafanaPanel[];
  [key: string]: unknown;
}

export interface DashboardFile {
  /** File name under dashboards/, e.g. `subsecond-overview.json`. */
  file: string;
  dashboard: GrafanaDashboard;
}

/** Every `*.json` directly under dashboards/ (what the Grafana file provider loads). */
export function loadDashboards(): DashboardFile[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), "utf8")) as GrafanaDashboard }));
}

/** All panels, including those nested in collapsed rows. */
export function allPanels(dashboard: GrafanaDashboard): GrafanaPanel[] {
  const out: GrafanaPanel[] = [];
  const visit = (panels: readonly GrafanaPanel[] | undefined): void => {
    for (const panel of panels ?? []) {
      out.push(panel);
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  return out;
}

export interface PanelExpr {
  file: string;
  panel: string;
  refId: string;
  expr: string;
}

/** Every PromQL expression of every panel target, with where it comes from. */
export function panelExprs({ file, dashboard }: DashboardFile): PanelExpr[] {
  return allPanels(dashboard).flatMap((panel) =>
    (panel.targets ?? [])
      .filter((target): target is GrafanaTarget & { expr: string } => typeof target.expr === "string")
      .map((target) => ({ file, panel: panel.title ?? `(panel ${panel.id})`, refId: target.refId ?? "?", expr: target.expr })),
  );
}

/** PromQL of the dashboard's annotation queries. */
export function annotationExprs({ file, dashboard }: DashboardFile): PanelExpr[] {
  return (dashboard.annotations?.list ?? [])
    .filter((a): a is GrafanaTarget & { expr: string } => typeof a.expr === "string")
    .map((a) => ({ file, panel: `annotation ${String(a.name)}`, refId: "-", expr: a.expr }));
}

export interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  interval?: string;
  rules: AlertRule[];
}

export function loadRuleGroups(): RuleGroup[] {
  const doc = parse(readFileSync(ALERTS_FILE, "utf8")) as { groups?: RuleGroup[] };
  return doc.groups ?? [];
}

export function readYaml(relativePath: string): unknown {
  return parse(readFileSync(join(REPO_ROOT, relativePath), "utf8"));
}

/**
 * Names of exported metric families referenced by a PromQL expression: identifiers of the gateway's own
 * (`subsecond_`) and default Node.js metrics. Quoted strings are removed first so label values and
 * legend-like text cannot match.
 */
export function metricNamesIn(expr: string): string[] {
  const unquoted = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const names = unquoted.match(/\b(?:subsecond|nodejs|process)_[A-Za-z0-9_]*/g) ?? [];
  return [...new Set(names)];
}

/**
 * Sample names the gateway's registry exposes, built app-free from `createMetrics` with a stub source:
 * counters and gauges by name, histograms and summaries with their `_bucket`/`_sum`/`_count` series.
 */
export async function exportedSampleNames(): Promise<Set<string>> {
  const source: MetricsSource = {
    modelIds: () => ["stub/model"],
    modelState: () => "ok",
    latencyEstimateSeconds: () => 0.5,
    configHash: () => "000000000000",
    healthyCandidates: () => [],
  };
  const registry = new Registry();
  createMetrics(registry, source);
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    const type = String(metric.type); // typed as an enum, a string at run time
    if (type === "histogram" || type === "summary") {
      for (const suffix of ["_bucket", "_sum", "_count"]) names.add(metric.name + suffix);
    }
  }
  return names;
}

/** Grafana variable references: `$name`, `${name}`, `${name:format}`, `[[name]]`. */
const VARIABLE = /\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g;

/**
 * Turns a dashboard expression into plain PromQL for a real Prometheus, as Grafana would with "All"
 * selected: interval macros become fixed windows and every dashboard variable inside a label matcher
 * becomes the regex `.*` (an equality matcher on a variable becomes `=~`).
 */
export function substituteVariables(expr: string, windows = { rateInterval: "15s", interval: "5s", range: "1m" }): string {
  const macros: Record<string, string> = {
    __rate_interval: windows.rateInterval,
    __interval: windows.interval,
    __range: windows.range,
  };
  // label="$var" / label=~"${var}" / label!~"$var" → regex matchers on `.*`.
  let out = expr.replace(/([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|=|!=)\s*"((?:[^"\\]|\\.)*)"/g, (match, label: string, op: string, value: string) => {
    if (!/\$\{?\w+|\[\[\w+\]\]/.test(value) || /\$\{?__/.test(value)) return match;
    const regexOp = op === "=" || op === "=~" ? "=~" : "!~";
    return `${label}${regexOp}".*"`;
  });
  out = out.replace(VARIABLE, (match, braced: string | undefined, plain: string | undefined, bracketed: string | undefined) => {
    const name = braced ?? plain ?? bracketed ?? "";
    const value = macros[name];
    if (value === undefined) throw new Error(`unsubstituted dashboard variable ${match} in: ${expr}`);
    return value;
  });
  return out;
}
