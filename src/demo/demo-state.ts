// What the demo knows while it runs and when it ends: the client-side tally of answers, one live frame,
// the decision-share timeline and the final summary. Plain data, rendered by view.ts.
import type { ModelState } from "../router/types.js";
import type { RequestKind, RequestOutcome, TrafficResult } from "./traffic.js";

/** Every request outcome, in display order. */
export const OUTCOMES: readonly RequestOutcome[] = ["ok", "http-error", "stream-error-event", "silent-truncation", "network-error", "abandoned"];
/** Every request kind, in display order. */
export const KINDS: readonly RequestKind[] = ["route", "auto", "pinned", "free"];

/** The gateway's answers as the demo's clients received them (status, headers, stream endings). */
export interface TrafficTally {
  /** Requests answered or abandoned. */
  finished: number;
  readonly byOutcome: Record<RequestOutcome, number>;
  /** Non-2xx answers by HTTP status. */
  readonly httpErrorsByStatus: Map<number, number>;
  /** Requests that did not end `ok`, by what they asked for. */
  readonly notOkByKind: Record<RequestKind, number>;
  /** HTTP errors of route/auto/free requests (not pinned), by status. */
  readonly routedHttpErrorsByStatus: Map<number, number>;
  /**
   * Of those, 504s that came once the whole route budget (`budgetMs`) was spent on timeouts: the gateway
   * gave up only when no time was left (e.g. a hung non-streamed attempt costs the whole total deadline).
   */
  routedTimeoutsAfterBudget: number;
  /** The route budget, ms (deadlines.budgetMs of the watched route). */
  readonly budgetMs: number;
  /** Streamed requests answered with 200. */
  streams: number;
  /** Answered `ok` after a fallback (`x-subsecond-attempts` > 1). */
  rescued: number;
  /** `x-subsecond-reason` of answered requests. */
  readonly reasons: Map<string, number>;
}

/** An empty tally; `budgetMs` is the watched route's request budget (deadlines.budgetMs), in ms. */
export function createTally(budgetMs = Number.POSITIVE_INFINITY): TrafficTally {
  return {
    budgetMs,
    routedTimeoutsAfterBudget: 0,
    finished: 0,
    byOutcome: { ok: 0, "http-error": 0, "stream-error-event": 0, "silent-truncation": 0, "network-error": 0, abandoned: 0 },
    httpErrorsByStatus: new Map(),
    notOkByKind: { route: 0, auto: 0, pinned: 0, free: 0 },
    routedHttpErrorsByStatus: new Map(),
    streams: 0,
    rescued: 0,
    reasons: new Map(),
  };
}

const bump = <K>(map: Map<K, number>, key: K, by = 1): void => {
  map.set(key, (map.get(key) ?? 0) + by);
};

/** Adds one finished request to the tally. */
export function tallyResult(tally: TrafficTally, result: TrafficResult): void {
  tally.finished++;
  tally.byOutcome[result.outcome]++;
  if (result.outcome !== "ok") tally.notOkByKind[result.request.kind]++;
  if (result.outcome === "http-error") {
    bump(tally.httpErrorsByStatus, result.status);
    if (result.request.kind !== "pinned") {
      bump(tally.routedHttpErrorsByStatus, result.status);
      // A little slack: the budget runs from the gateway's receipt, the duration from the client's send.
      if (result.status === 504 && result.finishedAtMs - result.sentAtMs >= tally.budgetMs - 50) tally.routedTimeoutsAfterBudget++;
    }
  }
  if (result.request.stream && result.status === 200) tally.streams++;
  if (result.outcome === "ok" && result.attempts > 1) tally.rescued++;
  if (result.reason !== undefined) bump(tally.reasons, result.reason);
}

/** Requests that did not end `ok`. */
export function failedCount(tally: TrafficTally): number {
  return tally.finished - tally.byOutcome.ok;
}

/** One model in the live view. */
export interface ModelRow {
  readonly id: string;
  /** A candidate of the watched route (else it served other routes: pinned, free). */
  readonly candidate: boolean;
  /** Requests it served per second over the last refresh (all routes; subsecond_requests_total). */
  readonly requestsPerSecond: number;
  /** Share of the watched route's decisions over the last few seconds (0..1); null without decisions. */
  readonly decisionShare: number | null;
  /** The brain's measured p95 TTFT, ms; null without samples or outside the route. */
  readonly observedP95Ms: number | null;
  /** The brain's prediction at the route's target percentile, ms; null outside the route. */
  readonly predictedMs: number | null;
  /** Effective (decayed) samples. */
  readonly samples: number;
  readonly state: ModelState;
  /** The route would choose it now. */
  readonly chosen: boolean;
  /** Spend so far on this model, all routes, USD (subsecond_cost_usd_total). */
  readonly costUsd: number;
}

/** Target attainment of one route label (subsecond_route_target_total). */
export interface RouteAttainment {
  readonly route: string;
  readonly met: number;
  readonly missed: number;
}

/** Fallbacks away from one model for one reason during one refresh (subsecond_fallbacks_total deltas). */
export interface FallbackEvent {
  /** Since the demo started, ms. */
  readonly atMs: number;
  readonly model: string;
  readonly reason: string;
  readonly count: number;
}

/** One refresh of the live view. */
export interface Frame {
  /** The demo gateway's base URL, e.g. http://127.0.0.1:8080 (its status page is /ui). */
  readonly gatewayUrl: string;
  readonly elapsedMs: number;
  readonly durationMs: number;
  /** Position in the simulator's story, 0..1 (context: the script, not an observation). */
  readonly storyFraction: number;
  /** Episodes the simulator is playing now (context: the script, not an observation). */
  readonly scripted: readonly string[];
  /** The watched route and its target, e.g. "p95 ttft ≤ 800 ms". */
  readonly route: string;
  readonly target: string;
  readonly tally: TrafficTally;
  readonly sent: number;
  readonly inFlight: number;
  /** Requests sent per second over the last refresh. */
  readonly sentPerSecond: number;
  readonly models: readonly ModelRow[];
  readonly attainment: readonly RouteAttainment[];
  readonly fallbacksByReason: ReadonlyMap<string, number>;
  /** Newest last. */
  readonly recentFallbacks: readonly FallbackEvent[];
  readonly costUsd: number;
}

/** The watched route's decisions during one slice of the story. */
export interface TimelineWindow {
  /** Story fractions covered, [from, to). */
  readonly fromFraction: number;
  readonly toFraction: number;
  /** Since the demo started, ms. */
  readonly startMs: number;
  readonly endMs: number;
  /** Decisions of the watched route in this window (subsecond_route_decisions_total delta). */
  readonly decisions: number;
  /** Decisions by first-choice model. */
  readonly byModel: ReadonlyMap<string, number>;
  /** Target results of the watched route in this window (subsecond_route_target_total delta). */
  readonly met: number;
  readonly missed: number;
  /** Fallbacks on the watched route in this window. */
  readonly fallbacks: number;
  /** The brain's measured p95 TTFT of the focus model at the window's end, ms (null: no samples). */
  readonly focusObservedP95Ms: number | null;
  /** The brain's prediction for the focus model at the window's end, ms. */
  readonly focusPredictedMs: number | null;
  /** Episodes the simulator played during the window (context only). */
  readonly scripted: readonly string[];
}

/** Share of `model` among a window's decisions, 0..1 (0 for an empty window). */
export function shareOf(window: TimelineWindow, model: string): number {
  return window.decisions > 0 ? (window.byModel.get(model) ?? 0) / window.decisions : 0;
}

/** What the demo prints at the end; every number comes from the gateway (its answers, metrics or brain). */
export interface DemoSummary {
  readonly gatewayUrl: string;
  readonly simulatorUrl: string;
  readonly seed: number;
  readonly ratePerSecond: number;
  /** Planned story length, ms. */
  readonly durationMs: number;
  /** Traffic actually ran this long, ms (shorter after Ctrl-C). */
  readonly ranMs: number;
  /** Stopped by a signal before the end of the story. */
  readonly interrupted: boolean;
  readonly route: string;
  readonly focusModel: string;
  readonly sent: number;
  /** Arrivals not sent because too many requests were in flight. */
  readonly skipped: number;
  readonly tally: TrafficTally;
  /** Fallbacks by reason, all routes (subsecond_fallbacks_total). */
  readonly fallbacksByReason: ReadonlyMap<string, number>;
  /** Fallbacks by the model left, all routes. */
  readonly fallbacksByModel: ReadonlyMap<string, number>;
  /** Upstream attempts by outcome (subsecond_upstream_attempts_total). */
  readonly attemptsByOutcome: ReadonlyMap<string, number>;
  /** Hedges by outcome, all routes (subsecond_hedges_total: won, lost, failed, over_budget). */
  readonly hedgesByOutcome: ReadonlyMap<string, number>;
  /** Streams cut after content, all routes (subsecond_continuations_total: completed, failed, refused, no_candidate, ineligible). */
  readonly continuationsByOutcome: ReadonlyMap<string, number>;
  /** Requests by gateway outcome (subsecond_requests_total). */
  readonly requestsByOutcome: ReadonlyMap<string, number>;
  /** Decisions of the watched route by model and by reason over the whole run. */
  readonly decisionsByModel: ReadonlyMap<string, number>;
  readonly decisionsByReason: ReadonlyMap<string, number>;
  readonly costUsd: number;
  readonly costByModel: ReadonlyMap<string, number>;
  readonly attainment: readonly RouteAttainment[];
  readonly timeline: readonly TimelineWindow[];
}
