// The routing brain: for each request, which models to try and in what order, from the route's policy,
// live latency statistics and model health; when to hedge and to whom; and what it learns from every
// attempt's outcome.
//
// Pure: time comes from the injected Clock, randomness from the injected Rng, and nothing here does I/O.
// One brain serves one process; all its state lives in the object `createBrain` returns.
//
// A decision, per request (DESIGN.md "The decision, per request"):
//  1. Filter: context window (contextTokens < promptTokens + maxOutputTokens), missing capability,
//     circuit open (a half-open circuit whose probe is out counts as open), cooling after a 429.
//  2. Predict each candidate's latency at the route's percentile for this request (predict.ts), read at
//     an upper confidence bound, so few samples keep a margin. A cold candidate (prediction still
//     leaning on its prior) ranks no faster than the best well-measured one that meets the target: an
//     unmeasured model never displaces measured good latency on speed alone (candidates.ts).
//  3. Choose by strategy. cheapest-within-target: the lowest expected cost for this request among those
//     predicted within target (ties: rank, score, predicted latency), spreading load over near-ties by
//     the power of two choices; none within target → best effort, the lowest predicted latency, at risk.
//     fastest: lowest predicted latency. cheapest: lowest cost. ordered: the configured order.
//  4. Explore (cheapest-within-target and fastest), exploration.ts: a cheaper candidate measured fewer
//     than minSamples times in its life is probed at `exploration.newModelRatio`, so a new model is
//     measured within seconds; otherwise a per-route token bucket earns `exploration.ratio` per decision,
//     and with a whole token the stalest eligible candidate that could improve the choice (a recovering
//     one first) goes first as a probe.
//  5. Hedge (hedging.ts; cheapest-within-target and fastest): the decision says after how long plan[0]
//     is hedged, if it has not delivered; a probe is always hedged, so probing never costs the target.
//  6. Plan: the first model, then the other eligible ones in the strategy's order. A half-open model is
//     only ever plan[0], as its single probe; later positions would be further probes.
//
// Learning: a first token is learnt when it arrives (`firstToken`), an attempt still waiting past the
// target when the target passes (`attemptLate`), a loser of a hedge race as "at least as long as it ran",
// and the rest when the attempt ends (`attemptFinished`). When nothing is usable: unusable.ts.
//
// Several replicas (shared-events.ts): with a listener set (`share`), the brain reports what it learnt
// and the health changes and probes it decided, and `applyShared` merges another replica's reports into
// the statistics and health here, so every replica learns from all the traffic.
import type { HealthConfig, StatsConfig } from "../config/schema.js";
import { CandidateTable, type Row } from "./candidates.js";
import { createEntry, type Entry } from "./entry.js";
import { applyRecoveryRule, newModelTarget, reserveProbe, staleTarget } from "./exploration.js";
import { chooseHedge, hedgeDelayMs, hedgeTailPercentile, type HedgeChoice } from "./hedging.js";
import { createModelStats, type ModelStats } from "./model-stats.js";
import { predictMs, type LatencyMetric } from "./predict.js";
import { createRouteState, type HedgeOutcome, type RouteState, type RouteStats } from "./route-state.js";
import { snapshotRows, type CandidateRow } from "./snapshot.js";
import { forcedProbe, nothingUsable } from "./unusable.js";
import type { SharedAttempt, SharedEvent } from "./shared-events.js";
import type { AttemptReport, CatalogModel, Clock, Decision, DecisionReason, ModelState, RequestProfile, Rng, RoutePolicy } from "./types.js";

export { costUsd } from "./candidates.js";
export type { CandidateRow } from "./snapshot.js";
export type { HedgeChoice } from "./hedging.js";
export type { HedgeOutcome, RouteStats } from "./route-state.js";

export interface BrainOptions {
  readonly clock: Clock;
  readonly rng: Rng;
  readonly stats: StatsConfig;
  readonly health: HealthConfig;
}

export interface Brain {
  /**
   * (Re)loads the catalog and settings: keeps the statistics and health of ids still present, drops
   * those of removed ids, applies the new settings from now on.
   */
  sync(models: readonly CatalogModel[], stats: StatsConfig, health: HealthConfig): void;
  /** The attempt plan for one request on `route`, from the statistics of this instant. */
  decide(route: RoutePolicy, request: RequestProfile): Decision;
  /**
   * The plan for a pinned model or a client's `models: [...]` list: the given order, minus models that
   * are cooling after a 429 (empty plan with `retryAfterMs` when that leaves none) and models whose
   * context window is too small. No reordering by prediction, no hedge. `routeLabel` becomes `Decision.route`.
   */
  planList(routeLabel: string, models: readonly CatalogModel[], reason: "pinned" | "request-list", request: RequestProfile): Decision;
  /**
   * A hedge is due for a request on `route` whose first attempt has run `elapsedMs` without delivering:
   * the model to send it to (a token of the route's hedge budget is spent), or why none goes. A probe's
   * hedge is sent even when the budget is empty.
   */
  hedge(route: RoutePolicy, request: RequestProfile, tried: ReadonlySet<string>, elapsedMs: number, probe: boolean): HedgeChoice;
  /** How a sent hedge ended: `won` (it delivered first), `lost` (the first attempt did) or `failed`. */
  hedgeFinished(routeName: string, outcome: Exclude<HedgeOutcome, "over_budget">): void;
  /** An attempt on `modelId` started; `probe` as in `Decision.probe` (only for plan[0]). */
  attemptStarted(modelId: string, probe: boolean): void;
  /** An attempt's first content arrived `ttftMs` after it started: learnt now. Its report then says `ttftRecorded`. */
  firstToken(modelId: string, ttftMs: number): void;
  /** An attempt has waited `elapsedMs` (past its route's target) without `metric`: learnt now as "at least". */
  attemptLate(modelId: string, metric: LatencyMetric, elapsedMs: number): void;
  /** An attempt finished (every started attempt must be reported exactly once). */
  attemptFinished(report: AttemptReport): void;
  /** Health of a model entry now ("ok" for unknown ids). */
  state(modelId: string): ModelState;
  /** Predicted latency in ms at `percentile` (50..99) for a typical request: mean prompt, `stats.defaultOutputTokens` output. */
  estimateMs(modelId: string, metric: LatencyMetric, percentile: number): number;
  /** Effective (decayed) number of latency samples of a model now. */
  sampleCount(modelId: string): number;
  /**
   * Every candidate of `route` for `request` (default: the route's mean prompt size, no max_tokens, no
   * special needs), in configured order. Side-effect free: spends no exploration budget, draws no
   * random number, reserves no probe.
   */
  snapshot(route: RoutePolicy, request?: RequestProfile): CandidateRow[];
  /** A route's decayed hedge rate and win rate. */
  routeStats(routeName: string): RouteStats;
  /** Reports what this brain learns and decides to `listener` from now on (undefined: stop). */
  share(listener: ((event: SharedEvent) => void) | undefined): void;
  /**
   * Merges another replica's event, which happened `ageMs` ago (0 for live events; a warm start replays
   * older ones). Events about ids not in the catalog are ignored. Nothing is reported back to `share`.
   */
  applyShared(event: SharedEvent, ageMs?: number): void;
}

/** Hedge tokens that ordinary hedges leave in the bucket for the hedges of probes. */
const PROBE_RESERVE = 1;

/** Floating sums of `ratio` may land a hair under 1 (50 × 0.02 = 0.9999…); still a whole token. */
const TOKEN_EPSILON = 1e-9;

/**
 * Strategies that explore and hedge: they pick by predicted latency. `cheapest` and `ordered` routes
 * follow the price or the configured order, which neither probing nor a hedge by prediction would keep.
 */
const EXPLORING: ReadonlySet<RoutePolicy["strategy"]> = new Set(["cheapest-within-target", "fastest"]);

class BrainImpl implements Brain {
  private readonly clock: Clock;
  private readonly rng: Rng;
  private statsConfig: StatsConfig;
  private healthConfig: HealthConfig;
  private readonly entries = new Map<string, Entry>();
  private readonly routes = new Map<string, RouteState>();
  private readonly table = new CandidateTable((model) => this.entryFor(model));
  /** Statistics of no model, for estimates of ids the brain has never seen. */
  private readonly emptyStats: ModelStats;
  /** The needs of a snapshot's typical request: none. */
  private readonly noNeeds: ReadonlySet<never> = new Set<never>();
  private listener: ((event: SharedEvent) => void) | undefined;

  constructor(options: BrainOptions) {
    this.clock = options.clock;
    this.rng = options.rng;
    this.statsConfig = options.stats;
    this.healthConfig = options.health;
    this.emptyStats = createModelStats(options.stats.halfLifeMs);
  }

  sync(models: readonly CatalogModel[], stats: StatsConfig, health: HealthConfig): void {
    const nowMs = this.clock.now();
    this.statsConfig = stats;
    this.healthConfig = health;
    const present = new Set(models.map((model) => model.id));
    for (const id of this.entries.keys()) if (!present.has(id)) this.entries.delete(id);
    for (const model of models) {
      const entry = this.entryFor(model);
      entry.model = model;
      entry.stats.setHalfLife(stats.halfLifeMs, nowMs);
      entry.health.configure(health, stats.halfLifeMs, nowMs);
    }
    for (const route of this.routes.values()) route.setHalfLife(stats.halfLifeMs, nowMs);
  }

  decide(route: RoutePolicy, request: RequestProfile): Decision {
    const nowMs = this.clock.now();
    const routeState = this.routeState(route);
    routeState.noteDecision(request.promptTokens, route, nowMs);
    const outputTokens = routeState.expectedOutputTokens(request, this.statsConfig.defaultOutputTokens);
    const table = this.table;
    table.evaluate(route, request, outputTokens, this.statsConfig, nowMs);
    if (table.eligible === 0) return nothingUsable(table, route, outputTokens, nowMs);

    const chosen = route.strategy === "cheapest-within-target" ? table.spreadNearTies(route, this.rng) : table.at(0);
    const chosenRow = table.row(chosen);
    const atRisk = !chosenRow.within;
    // With hedging on, a probe goes only where a hedge can protect it: a request whose latency the target
    // bounds as it arrives (a stream, or any request under a total target), while the hedge budget can
    // lend its hedge a token (its debt under one bucket). Probing a slow model then costs hedges, never
    // the target; ordinary hedges wait while the debt is repaid, so over time hedges stay within maxRatio
    // of the decisions plus one bucket.
    const hedgeable = route.hedging.enabled && (request.stream || route.target.metric === "total");
    const mayProbe = !route.hedging.enabled || (hedgeable && routeState.mayBorrowHedgeToken());
    const newModel = mayProbe ? this.exploreNewModel(route, routeState, chosen) : -1;
    const stale = newModel < 0 && mayProbe ? this.exploreStale(route, routeState, chosen, atRisk, nowMs) : -1;
    const explored = newModel >= 0 ? newModel : stale;
    const first = explored >= 0 ? explored : chosen;
    const firstRow = table.row(first);
    const probe = explored >= 0 || firstRow.halfOpen;
    // A new model's probes run several at once and teach through its samples; the others hold the
    // model's single probe slot and feed the recovery rule.
    if (probe && newModel < 0) {
      reserveProbe(firstRow, route, nowMs);
      // Other replicas hold off until this probe reports, or for the longest it may run.
      this.listener?.({ kind: "probe", modelId: firstRow.model.id, leaseMs: route.deadlines.totalMs });
    }
    const reason: DecisionReason = explored >= 0 ? "explore" : chosenRow.within ? "within-target" : "best-effort";
    return {
      route: route.name,
      plan: table.plan(first, chosen),
      reason,
      atRisk,
      predictedMs: firstRow.predictedMs,
      expectedOutputTokens: outputTokens,
      retryAfterMs: undefined,
      probe,
      hedgeAfterMs:
        hedgeable && EXPLORING.has(route.strategy)
          ? hedgeDelayMs(table, route, first, probe, this.tailMs(firstRow, route, request, outputTokens, nowMs))
          : undefined,
    };
  }

  planList(routeLabel: string, models: readonly CatalogModel[], reason: "pinned" | "request-list", request: RequestProfile): Decision {
    const nowMs = this.clock.now();
    const outputTokens = this.routes.get(routeLabel)?.expectedOutputTokens(request, this.statsConfig.defaultOutputTokens) ?? this.defaultOutput(request);
    const needed = request.promptTokens + (request.maxOutputTokens ?? 0);
    const plan: CatalogModel[] = [];
    let shortestCoolMs = Number.POSITIVE_INFINITY;
    for (const model of models) {
      if (model.contextTokens < needed) continue;
      const coolMs = this.entryFor(model).health.cooldownRemainingMs(nowMs);
      if (coolMs > 0) {
        if (coolMs < shortestCoolMs) shortestCoolMs = coolMs;
        continue;
      }
      plan.push(model);
    }
    const head = plan[0];
    const cooling = shortestCoolMs < Number.POSITIVE_INFINITY;
    // A plan without a route has no target; predictedMs reports the gateway's default objective, p95 TTFT.
    const predicted = head
      ? predictMs(this.entryFor(head).stats, head.prior, "ttft", 95, request.promptTokens, outputTokens, this.statsConfig, nowMs)
      : Number.NaN;
    const decision: Decision = {
      route: routeLabel,
      plan,
      reason,
      atRisk: false,
      predictedMs: predicted,
      expectedOutputTokens: outputTokens,
      retryAfterMs: head === undefined && cooling ? shortestCoolMs : undefined,
      probe: false,
      hedgeAfterMs: undefined,
    };
    return head === undefined && models.length > 0 ? { ...decision, excludedBy: cooling ? "cooling" : "context" } : decision;
  }

  hedge(route: RoutePolicy, request: RequestProfile, tried: ReadonlySet<string>, elapsedMs: number, probe: boolean): HedgeChoice {
    const nowMs = this.clock.now();
    const routeState = this.routeState(route);
    // Ordinary hedges leave the last token to probes: without probes a recovered model never returns.
    if (!probe && !routeState.hasHedgeToken(PROBE_RESERVE)) {
      routeState.noteHedge("over_budget", nowMs);
      return { refused: "over_budget" };
    }
    const table = this.table;
    table.evaluate(route, request, routeState.expectedOutputTokens(request, this.statsConfig.defaultOutputTokens), this.statsConfig, nowMs);
    const index = chooseHedge(table, route, tried, elapsedMs);
    if (index < 0) return { refused: "no_candidate" };
    routeState.takeHedgeToken();
    routeState.noteHedge("sent", nowMs);
    return { model: table.row(index).model };
  }

  hedgeFinished(routeName: string, outcome: Exclude<HedgeOutcome, "over_budget">): void {
    this.routes.get(routeName)?.noteHedge(outcome, this.clock.now());
  }

  attemptStarted(modelId: string, probe: boolean): void {
    const entry = this.entries.get(modelId);
    if (entry === undefined) return;
    entry.stats.inFlight++;
    if (probe) entry.health.probeStarted();
  }

  firstToken(modelId: string, ttftMs: number): void {
    const entry = this.entries.get(modelId);
    if (entry === undefined) return;
    entry.stats.recordFirstToken(this.clock.now(), ttftMs);
    this.listener?.({ kind: "first_token", modelId, ttftMs });
  }

  attemptLate(modelId: string, metric: LatencyMetric, elapsedMs: number): void {
    const entry = this.entries.get(modelId);
    if (entry === undefined) return;
    entry.stats.recordAtLeast(this.clock.now(), metric, elapsedMs);
    this.listener?.({ kind: "late", modelId, metric, elapsedMs });
  }

  attemptFinished(report: AttemptReport): void {
    const entry = this.entries.get(report.modelId);
    // A model removed by a reload while its attempt ran: nothing left to learn about.
    if (entry === undefined) return;
    const nowMs = this.clock.now();
    const probe = report.probe === true;
    const { stats, health } = entry;
    if (stats.inFlight > 0) stats.inFlight--;
    if (probe) health.probeFinished();
    if (report.outcome !== "client_error") entry.lifetimeAttempts++;
    const listener = this.listener;
    const openedAtMs = health.openedAtMs;
    const recordedTtftMs = this.learnStats(entry, report, nowMs);
    this.learnHealth(entry, report, probe, nowMs);
    const forgot =
      probe && applyRecoveryRule(entry, report, report.ttftMs ?? (Number.isNaN(recordedTtftMs) ? undefined : recordedTtftMs), this.statsConfig, nowMs);
    if (listener === undefined) return;
    const { modelId } = report;
    listener({ kind: "finished", attempt: sharedAttempt(report) });
    if (report.outcome === "rate_limited") listener({ kind: "cooling", modelId, coolMs: health.cooldownRemainingMs(nowMs) });
    if (health.openedAtMs !== openedAtMs && !(Number.isNaN(health.openedAtMs) && Number.isNaN(openedAtMs))) {
      listener(Number.isNaN(health.openedAtMs) ? { kind: "closed", modelId } : { kind: "opened", modelId });
    }
    if (forgot) listener({ kind: "forgot", modelId, agoMs: nowMs - entry.recoverySinceMs });
  }

  state(modelId: string): ModelState {
    return this.entries.get(modelId)?.health.state(this.clock.now()) ?? "ok";
  }

  estimateMs(modelId: string, metric: LatencyMetric, percentile: number): number {
    const entry = this.entries.get(modelId);
    const stats = entry?.stats ?? this.emptyStats;
    const meanPrompt = stats.meanPromptTokens();
    return predictMs(
      stats,
      entry?.model?.prior,
      metric,
      percentile,
      meanPrompt >= 0 ? meanPrompt : 0,
      this.statsConfig.defaultOutputTokens,
      this.statsConfig,
      this.clock.now(),
    );
  }

  sampleCount(modelId: string): number {
    return this.entries.get(modelId)?.stats.totalMs.effectiveCount(this.clock.now()) ?? 0;
  }

  snapshot(route: RoutePolicy, request?: RequestProfile): CandidateRow[] {
    const nowMs = this.clock.now();
    const routeState = this.routes.get(route.name);
    const meanPrompt = routeState?.meanPromptTokens() ?? Number.NaN;
    const profile: RequestProfile = request ?? {
      promptTokens: meanPrompt >= 0 ? Math.round(meanPrompt) : 0,
      maxOutputTokens: undefined,
      needs: this.noNeeds,
      stream: true,
    };
    const outputTokens = routeState?.expectedOutputTokens(profile, this.statsConfig.defaultOutputTokens) ?? this.defaultOutput(profile);
    const table = this.table;
    table.evaluate(route, profile, outputTokens, this.statsConfig, nowMs);
    const chosen = table.eligible > 0 ? table.at(0) : forcedProbe(table, nowMs);
    return snapshotRows(table, chosen, nowMs);
  }

  routeStats(routeName: string): RouteStats {
    return this.routes.get(routeName)?.stats(this.clock.now()) ?? { hedgeRate: null, hedgeWinRate: null };
  }

  share(listener: ((event: SharedEvent) => void) | undefined): void {
    this.listener = listener;
  }

  applyShared(event: SharedEvent, ageMs = 0): void {
    const entry = this.entries.get(event.kind === "finished" ? event.attempt.modelId : event.modelId);
    if (entry === undefined) return;
    const nowMs = this.clock.now();
    const atMs = nowMs - (ageMs > 0 ? ageMs : 0);
    const { stats, health } = entry;
    switch (event.kind) {
      case "first_token":
        stats.recordFirstToken(atMs, event.ttftMs);
        return;
      case "late":
        stats.recordAtLeast(atMs, event.metric, event.elapsedMs);
        return;
      case "finished": {
        const attempt = event.attempt;
        if (attempt.outcome !== "client_error") entry.lifetimeAttempts++;
        this.learnStats(entry, { ...attempt, route: "" }, atMs);
        if (attempt.probe === true) health.releaseRemoteProbe();
        return;
      }
      case "cooling":
        health.coolUntil(atMs + event.coolMs);
        return;
      case "opened":
        if (atMs + this.healthConfig.openMs > nowMs) health.openAt(atMs);
        return;
      case "closed":
        health.closeCircuit();
        entry.recoveryStreak = 0;
        return;
      case "probe":
        if (atMs + event.leaseMs > nowMs) health.holdRemoteProbe(atMs + event.leaseMs);
        if (atMs > entry.probedAtMs) entry.probedAtMs = atMs;
        return;
      case "forgot":
        stats.forgetBefore(atMs - event.agoMs, nowMs, this.statsConfig.minSamples);
        entry.recoveryStreak = 0;
        return;
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  /** Records what a finished attempt says about latency; returns the first token recorded (NaN if none). */
  private learnStats(entry: Entry, report: AttemptReport, nowMs: number): number {
    const { stats } = entry;
    const recorded = report.ttftRecorded === true;
    switch (report.outcome) {
      case "ok": {
        const prior = entry.model?.prior ?? this.statsConfig.defaultPrior;
        const ttftMs = stats.recordSuccess(
          nowMs,
          report.ttftMs,
          report.totalMs,
          report.promptTokens,
          report.outputTokens,
          1000 / prior.tokensPerSecond,
          recorded,
        );
        this.routes.get(report.route)?.noteOutput(report.outputTokens, nowMs);
        return ttftMs;
      }
      case "timeout":
        stats.recordTimeout(nowMs, report.timeoutMetric ?? "ttft", report.deadlineMs, report.ttftMs, report.promptTokens, report.outputTokens, recorded);
        return Number.NaN;
      case "error":
        stats.recordError(nowMs);
        return Number.NaN;
      case "rate_limited":
        return Number.NaN;
      case "superseded":
        // A lower bound only when it says the model is slow: a loser cancelled early says nothing.
        if (!recorded && report.elapsedMs !== undefined && report.elapsedMs > this.estimateMs(report.modelId, "ttft", 50)) {
          stats.recordAtLeast(nowMs, "ttft", report.elapsedMs);
        }
        return Number.NaN;
      case "client_error":
        // The request's fault, not the model's: nothing is learnt about its health or latency.
        return Number.NaN;
    }
  }

  /** Records what a finished attempt says about the model's health (circuit, 429 cooldown). */
  private learnHealth(entry: Entry, report: AttemptReport, probe: boolean, nowMs: number): void {
    const { health } = entry;
    switch (report.outcome) {
      case "ok":
        health.recordSuccess(nowMs, probe);
        return;
      case "timeout":
        health.recordTimeout(nowMs, probe);
        return;
      case "error":
        health.recordFailure(nowMs, probe);
        return;
      case "rate_limited":
        health.recordRateLimited(nowMs, report.retryAfterMs, this.rng);
        return;
      case "superseded":
      case "client_error":
        return;
    }
  }

  /** A new model to probe instead of `chosen` (spending the route's new-model budget), or -1. */
  private exploreNewModel(route: RoutePolicy, routeState: RouteState, chosen: number): number {
    if (!EXPLORING.has(route.strategy)) return -1;
    if (routeState.earnNewModelToken(route.exploration.newModelRatio) < 1 - TOKEN_EPSILON) return -1;
    const target = newModelTarget(this.table, chosen, this.statsConfig.minSamples);
    if (target >= 0) routeState.spendNewModelToken();
    return target;
  }

  /** A stale or recovering row to probe instead of `chosen` (spending the route's exploration budget), or -1. */
  private exploreStale(route: RoutePolicy, routeState: RouteState, chosen: number, atRisk: boolean, nowMs: number): number {
    if (!EXPLORING.has(route.strategy)) return -1;
    if (routeState.earnExploreToken(route.exploration.ratio) < 1 - TOKEN_EPSILON) return -1;
    const target = staleTarget(this.table, route, chosen, atRisk, nowMs);
    if (target >= 0) routeState.spendExploreToken();
    return target;
  }

  /** plan[0]'s predicted latency at the hedge's tail percentile: no hedge is due before it. */
  private tailMs(row: Row, route: RoutePolicy, request: RequestProfile, outputTokens: number, nowMs: number): number {
    return predictMs(
      row.entry.stats,
      row.model.prior,
      route.target.metric,
      hedgeTailPercentile(route),
      request.promptTokens,
      outputTokens,
      this.statsConfig,
      nowMs,
    );
  }

  private entryFor(model: CatalogModel): Entry {
    let entry = this.entries.get(model.id);
    if (entry === undefined) {
      // Lazily, for models a route names before the first sync: bounded by the catalog all the same.
      entry = createEntry(model, this.statsConfig, this.healthConfig);
      this.entries.set(model.id, entry);
    }
    return entry;
  }

  private routeState(route: RoutePolicy): RouteState {
    let state = this.routes.get(route.name);
    if (state === undefined) {
      state = createRouteState(this.statsConfig.halfLifeMs);
      this.routes.set(route.name, state);
    }
    return state;
  }

  private defaultOutput(request: RequestProfile): number {
    return request.maxOutputTokens !== undefined && request.maxOutputTokens > 0 ? request.maxOutputTokens : this.statsConfig.defaultOutputTokens;
  }
}

/** What other replicas learn from a finished attempt: the report without its route. */
function sharedAttempt(report: AttemptReport): SharedAttempt {
  const { route: _route, retryAfterMs: _retryAfterMs, ...attempt } = report;
  return attempt;
}

/** A brain with no statistics yet; call `sync` with the catalog before routing. */
export function createBrain(options: BrainOptions): Brain {
  return new BrainImpl(options);
}
