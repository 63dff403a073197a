// Reads what the gateway itself observed — its metrics registry and its brain — for the demo's views.
import type { GatewayMetrics } from "../metrics/metrics.js";

/** One labelled value of a counter. */
export interface CounterSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The gateway counters the demo shows (names as in DESIGN.md "Metrics"). */
export interface GatewayCounters {
  /** subsecond_requests_total{route,model,outcome} */
  readonly requests: readonly CounterSample[];
  /** subsecond_route_decisions_total{route,model,reason} */
  readonly decisions: readonly CounterSample[];
  /** subsecond_fallbacks_total{route,from_model,reason} */
  readonly fallbacks: readonly CounterSample[];
  /** subsecond_route_target_total{route,result} */
  readonly target: readonly CounterSample[];
  /** subsecond_cost_usd_total{route,model}, USD */
  readonly cost: readonly CounterSample[];
  /** subsecond_upstream_attempts_total{model,outcome} */
  readonly attempts: readonly CounterSample[];
  /** subsecond_hedges_total{route,outcome} */
  readonly hedges: readonly CounterSample[];
  /** subsecond_continuations_total{route,outcome} */
  readonly continuations: readonly CounterSample[];
}

const NAMES = {
  requests: "subsecond_requests_total",
  decisions: "subsecond_route_decisions_total",
  fallbacks: "subsecond_fallbacks_total",
  target: "subsecond_route_target_total",
  cost: "subsecond_cost_usd_total",
  attempts: "subsecond_upstream_attempts_total",
  hedges: "subsecond_hedges_total",
  continuations: "subsecond_continuations_total",
} as const;

async function readCounter(registry: GatewayMetrics["registry"], name: string): Promise<CounterSample[]> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return [];
  const { values } = await metric.get();
  return values.map((sample) => {
    const labels: Record<string, string> = {};
    for (const [key, value] of Object.entries(sample.labels)) if (value !== undefined) labels[key] = String(value);
    return { labels, value: sample.value };
  });
}

/** Reads the counters from the gateway's registry (its own registry, never prom-client's global one). */
export async function readCounters(registry: GatewayMetrics["registry"]): Promise<GatewayCounters> {
  const [requests, decisions, fallbacks, target, cost, attempts, hedges, continuations] = await Promise.all([
    readCounter(registry, NAMES.requests),
    readCounter(registry, NAMES.decisions),
    readCounter(registry, NAMES.fallbacks),
    readCounter(registry, NAMES.target),
    readCounter(registry, NAMES.cost),
    readCounter(registry, NAMES.attempts),
    readCounter(registry, NAMES.hedges),
    readCounter(registry, NAMES.continuations),
  ]);
  return { requests, decisions, fallbacks, target, cost, attempts, hedges, continuations };
}

/** Counters that are all zero (the state before the first request). */
export const NO_COUNTERS: GatewayCounters = { requests: [], decisions: [], fallbacks: [], target: [], cost: [], attempts: [], hedges: [], continuations: [] };

/**
 * Sums `samples` by the value of label `by`, keeping only samples whose labels match `where`.
 * @returns label value → sum, in first-seen order.
 */
export function sumBy(samples: readonly CounterSample[], by: string, where: Readonly<Record<string, string>> = {}): Map<string, number> {
  const out = new Map<string, number>();
  outer: for (const sample of samples) {
    for (const [key, value] of Object.entries(where)) if (sample.labels[key] !== value) continue outer;
    const key = sample.labels[by] ?? "";
    out.set(key, (out.get(key) ?? 0) + sample.value);
  }
  return out;
}

/** Sum of every sample matching `where`. */
export function total(samples: readonly CounterSample[], where: Readonly<Record<string, string>> = {}): number {
  let sum = 0;
  for (const value of sumBy(samples, "", where).values()) sum += value;
  return sum;
}

/** `after − before` per key (counters only grow; a key missing before counts from 0). */
export function delta(after: ReadonlyMap<string, number>, before: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of after) {
    const change = value - (before.get(key) ?? 0);
    if (change > 0) out.set(key, change);
  }
  return out;
}
