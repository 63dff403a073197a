// Builds the live view's frames from the gateway's counters and its brain, one refresh at a time.
import type { Brain } from "../router/brain.js";
import type { CatalogModel, RoutePolicy } from "../router/types.js";
import type { FallbackEvent, Frame, ModelRow, RouteAttainment, TrafficTally } from "./demo-state.js";
import { NO_COUNTERS, delta, sumBy, total, type GatewayCounters } from "./observe.js";

/** What frames are built from. */
export interface FrameSource {
  /** The gateway's base URL, shown in every frame. */
  readonly gatewayUrl: string;
  /** The watched route (its candidates get a row each, with the brain's view of them). */
  readonly route: RoutePolicy;
  /** The whole catalog: models outside the route get a row once they served a request. */
  readonly models: readonly CatalogModel[];
  readonly brain: Brain;
  /** Story length, ms. */
  readonly durationMs: number;
  /** How far back the decision share looks, ms. */
  readonly shareWindowMs: number;
  readonly tally: TrafficTally;
  readonly sent: () => number;
  readonly inFlight: () => number;
  /** Episodes the simulator plays at a story fraction (context for the reader). */
  readonly scriptedAt: (fraction: number) => readonly string[];
}

/** Target attainment per route label, from subsecond_route_target_total. */
export function attainmentOf(counters: GatewayCounters): RouteAttainment[] {
  return [...sumBy(counters.target, "route").keys()].map((route) => ({
    route,
    met: total(counters.target, { route, result: "met" }),
    missed: total(counters.target, { route, result: "missed" }),
  }));
}

const fallbackKey = (labels: Readonly<Record<string, string>>) => `${labels.from_model ?? ""}\u0000${labels.reason ?? ""}`;

/** A frame builder; each `build` reports rates since the previous one. */
export function createFrameBuilder(source: FrameSource): { build(counters: GatewayCounters, nowMs: number): Frame } {
  const { route, brain } = source;
  const candidates = new Set(route.candidates.map((model) => model.id));
  const target = `${route.strategy}, target p${route.target.percentile} ${route.target.metric} ≤ ${route.target.ms} ms`;
  const recentFallbacks: FallbackEvent[] = [];
  /** Decisions per model of each recent refresh, with when it was built. */
  const recentDecisions: { atMs: number; byModel: Map<string, number> }[] = [];
  let previous = NO_COUNTERS;
  let previousSent = 0;
  let previousMs = 0;

  return {
    build(counters, nowMs) {
      const seconds = Math.max(0.001, (nowMs - previousMs) / 1000);
      const served = delta(sumBy(counters.requests, "model"), sumBy(previous.requests, "model"));
      const where = { route: route.name };
      recentDecisions.push({ atMs: nowMs, byModel: delta(sumBy(counters.decisions, "model", where), sumBy(previous.decisions, "model", where)) });
      while ((recentDecisions[0]?.atMs ?? nowMs) <= nowMs - source.shareWindowMs) recentDecisions.shift();
      const recent = new Map<string, number>();
      let recentTotal = 0;
      for (const slice of recentDecisions) {
        for (const [id, n] of slice.byModel) {
          recent.set(id, (recent.get(id) ?? 0) + n);
          recentTotal += n;
        }
      }
      const costByModel = sumBy(counters.cost, "model");
      const everServed = sumBy(counters.requests, "model");
      const rows: ModelRow[] = brain.snapshot(route).map((row) => ({
        id: row.id,
        candidate: true,
        requestsPerSecond: (served.get(row.id) ?? 0) / seconds,
        decisionShare: recentTotal > 0 ? (recent.get(row.id) ?? 0) / recentTotal : null,
        observedP95Ms: row.observedTtftP95Ms,
        predictedMs: row.predictedMs,
        samples: row.samples,
        state: row.state,
        chosen: row.wouldChoose,
        costUsd: costByModel.get(row.id) ?? 0,
      }));
      for (const model of source.models) {
        if (candidates.has(model.id) || !((everServed.get(model.id) ?? 0) > 0)) continue;
        rows.push({
          id: model.id,
          candidate: false,
          requestsPerSecond: (served.get(model.id) ?? 0) / seconds,
          decisionShare: null,
          observedP95Ms: null,
          predictedMs: null,
          samples: brain.sampleCount(model.id),
          state: brain.state(model.id),
          chosen: false,
          costUsd: costByModel.get(model.id) ?? 0,
        });
      }
      const fallbacksNow = new Map(counters.fallbacks.map((sample) => [fallbackKey(sample.labels), sample.value]));
      const fallbacksBefore = new Map(previous.fallbacks.map((sample) => [fallbackKey(sample.labels), sample.value]));
      for (const [key, count] of delta(fallbacksNow, fallbacksBefore)) {
        const [model = "", reason = ""] = key.split("\u0000");
        recentFallbacks.push({ atMs: nowMs, model, reason, count });
      }
      recentFallbacks.splice(0, Math.max(0, recentFallbacks.length - 3));
      const sent = source.sent();
      const fraction = Math.min(1, nowMs / source.durationMs);
      const frame: Frame = {
        gatewayUrl: source.gatewayUrl,
        elapsedMs: nowMs,
        durationMs: source.durationMs,
        storyFraction: fraction,
        scripted: source.scriptedAt(fraction),
        route: route.name,
        target,
        tally: source.tally,
        sent,
        inFlight: source.inFlight(),
        sentPerSecond: (sent - previousSent) / seconds,
        models: rows,
        attainment: attainmentOf(counters),
        fallbacksByReason: sumBy(counters.fallbacks, "reason"),
        recentFallbacks: [...recentFallbacks],
        costUsd: total(counters.cost),
      };
      previous = counters;
      previousSent = sent;
      previousMs = nowMs;
      return frame;
    },
  };
}
