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
//     an upper confidence bound, so few samples keep a margin; whether it is within target is judged at a
//     margin drawn per decision (Thompson sampling), so a model just past its bound keeps a share. A
//     cold candidate (prediction still leaning on its prior) ranks no faster than the best well-measured
//     one that meets the target: an unmeasured model never displaces measured good latency on speed
//     alone (candidates.ts).
//  3. Choose by strategy. cheapest-within-target: the lowest expected cost for this request among those
//     predicted within target (ties: rank, score, predicted latency), spreading load over near-ties by
//     the power of two choices; none within target → best effort, the lowest predicted latency, at risk.
//     fastest: lowest predicted latency. cheapest: lowest cost. ordered: the configured order.
//  4. Explore (cheapest-within-target and fastest), exploration.ts: a cheaper candidate measured fewer
//     than minSamples times in its life is probed at `exploration.newModelRatio`, so a new model is
//     measured within seconds; otherwise a per-route token bucket earns `exploration.ratio` per decision,
//     and with a whole token the cheapest stale candidate that could improve the choice goes first as a
//     probe; a recovery streak already begun goes on without tokens. Probes ride on requests no larger
//     than the route's mean prompt.
//  5. Hedge (hedging.ts; cheapest-within-target and fastest): the decision says after how long plan[0]
//     is hedged, if it has not delivered and a hedge could still keep the promise; a probe is always
//     hedged, so probing never costs the target.
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
import { contextWindow, createEntry, sameEntry, type Entry } from "./entry.js";
import { createModelHealth, type HealthChange, type HealthListener } from "./health.js";
import { applyRecoveryAtFirstToken, applyRecoveryRule, newModelTarget, recoveringTarget, reserveProbe, staleTarget } from "./exploration.js";
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
export type { HealthChange } from "./health.js";
export type { HedgeOutcome, RouteStats } from "./route-state.js";

export interface BrainOptions {
  readonly clock: Clock;
  readonly rng: Rng;
  readonly stats: StatsConfig;
  readonly health: HealthConfig;
  /** Hears of a model's health changes (circuit opened or closed, cooldown begun) as they happen. */
  readonly onHealthChange?: (modelId: string, change: HealthChange) => void;
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
  /**
   * The next model for a request on a cheapest-within-target `route` whose attempts so far (`tried`) failed
   * `elapsedMs` after it arrived, while the target can still be met: the cheapest untried candidate
   * predicted to deliver in the time left, else the fastest (as a hedge is chosen). Undefined when the
   * target has passed, for other strategies, or when no candidate is left: the plan's order then stands.
   */
  fallback(route: RoutePolicy, request: RequestProfile, tried: ReadonlySet<string>, elapsedMs: number): CatalogModel | undefined;
  /**
   * A fallback attempt of a request on `route` starts. Hedges and fallbacks are both extra attempts, and
   * `hedging.maxRatio` bounds extra attempts per request: a fallback spends a token of the route's hedge
   * budget, as far as the bucket holds one beyond the probes' reserve. A fallback is never refused.
   */
  fallbackStarted(route: RoutePolicy): void;
  /**
   * A request on `routeName` was served by `modelId`; `met`: whether its measured latency met the target
   * (undefined when it was not measured against it). For the route's share of traffic and attainment.
   */
  requestServed(routeName: string, modelId: string, met: boolean | undefined): void;
  /** How a sent hedge ended: `won` (it delivered first), `lost` (the first attempt did) or `failed`. */
  hedgeFinished(routeName: string, outcome: Exclude<HedgeOutcome, "over_budget">): void;
  /** An attempt on `modelId` started; `probe` as in `Decision.probe` (only for plan[0]). */
  attemptStarted(modelId: string, probe: boolean): void;
  /**
   * An attempt's first content arrived `ttftMs` after it started: learnt now. Its report then says
   * `ttftRecorded`. A probe's (`probe`, on a prompt of `promptTokens`) frees the model's probe slot and,
   * on a first-token target, is judged by the recovery rule now.
   */
  firstToken(modelId: string, ttftMs: number, probe?: boolean, promptTokens?: number): void;
  /** An attempt has waited `elapsedMs` (past its route's target) without `metric`: learnt now as "at least". */
  attemptLate(modelId: string, metric: LatencyMetric, elapsedMs: number): void;
  /** An attempt finished (every started attempt must be reported exactly once). */
  attemptFinished(report: AttemptReport): void;
  /**
   * The provider stated `tokens` as the model's real context window (in a context_length_exceeded): from
   * now on its candidate filter uses it, when it is smaller than the configured one.
   */
  learnContextWindow(modelId: string, tokens: number): void;
  /** The context window trusted for `model`, in tokens: learned, else configured. */
  contextWindow(model: CatalogModel): number;
  /** The model refused an assistant prefill: it is not asked to continue a stream again until the next reload. */
  prefillRefused(modelId: string): void;
  /** The model lists the prefill capability and has not refused one since the last reload. */
  mayContinue(model: CatalogModel): boolean;
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
  /** A route's decayed hedge rate, win rate and target attainment. */
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

/** Floating sums of `ratio` may land a hair under 1 (50 × 0.02 = 0.9999…); still a whole token. Decayed means likewise. */
const TOKEN_EPSILON = 1e-9;

/**
 * Strategies that explore and hedge: they pick by predicted latency. `cheapest` and `ordered` routes
 * follow the price or the configured order, which neither probing nor a hedge by prediction would keep.
 */
const EXPLORING: ReadonlySet<RoutePolicy["strategy"]> = new Set(["cheapest-within-target", "fastest"]);

class BrainImpl implements Brain {
  private readonly clock: Clock;
  private readonly rng: Rng;
  private readonly onHealthChange: BrainOptions["onHealthChange"];
  private statsConfig: StatsConfig;
  private healthConfig: HealthConfig;
  private readonly entries = new Map<string, Entry>();
  private readonly routes = new Map<string, RouteState>();
  private readonly table = new CandidateTable((model) => this.entryFor(model));
  /** Statistics of no model, for estimates of ids the brain has never seen. */
  private readonly emptyStats: ModelStats;
  /** The first sync happened: models that arrive later are newcomers. */
  private synced = false;
  /** The needs of a snapshot's typical request: none. */
  private readonly noNeeds: ReadonlySet<never> = new Set<never>();
  private listener: ((event: SharedEvent) => void) | undefined;

  constructor(options: BrainOptions) {
    this.clock = options.clock;
    this.rng = options.rng;
    this.onHealthChange = options.onHealthChange;
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
      const known = this.entries.get(model.id);
      const entry = known ?? this.entryFor(model);
      // After start, a model the change brings in or reprices may have become the cheapest: a newcomer.
      if (this.synced && (known === undefined || repriced(known.model, model))) entry.newcomer = true;
      if (entry.model !== undefined && !sameEntry(entry.model, model))
        entry.health = createModelHealth(health, stats.halfLifeMs, this.healthListener(model.id));
      // A reload forgets refusals, and a learned window once the configured one changes.
      if (entry.model?.contextTokens !== model.contextTokens) entry.learnedContextTokens = undefined;
      entry.prefillRefused = false;
      entry.model = model;
      entry.stats.setHalfLife(stats.halfLifeMs, nowMs);
      entry.health.configure(health, stats.halfLifeMs, nowMs);
    }
    for (const route of this.routes.values()) route.setHalfLife(stats.halfLifeMs, nowMs);
    this.synced = true;
  }

  decide(route: RoutePolicy, request: RequestProfile): Decision {
    const nowMs = this.clock.now();
    const routeState = this.routeState(route);
    routeState.noteDecision(request.promptTokens, route, nowMs);
    const outputTokens = routeState.expectedOutputTokens(request, this.statsConfig.defaultOutputTokens);
    const table = this.table;
    table.evaluate(route, request, outputTokens, this.statsConfig, nowMs, this.rng);
    if (table.eligible === 0) return nothingUsable(table, route, outputTokens, nowMs);

    const chosen = route.strategy === "cheapest-within-target" ? table.spreadNearTies(route, this.rng) : table.at(0);
    const chosenRow = table.row(chosen);
    const atRisk = !chosenRow.within;
    if (!atRisk) chosenRow.entry.withinAtMs = nowMs;
    // With hedging on, a probe goes only where a hedge can protect it: a request whose latency the target
    // bounds as it arrives (a stream, or any request under a total target), while the hedge bucket holds a
    // whole token for its hedge. Probing a slow model then costs hedges, never the target. Ordinary hedges
    // leave the bucket's last token to probes (PROBE_RESERVE), so probes go first when hedges are scarce,
    // as after a brownout, when they are what brings a recovered model back; and hedges stay within
    // maxRatio of the decisions plus one bucket, give or take the hedges of probes decided together.
    // A probe also rides only on a request no larger than the route's mean prompt: its first token
    // measures the model rather than the prompt, and leaves its hedge the most time to rescue it.
    const hedgeable = route.hedging.enabled && (request.stream || route.target.metric === "total");
    const typical = !(request.promptTokens > routeState.meanPromptTokens() * (1 + TOKEN_EPSILON));
    const mayProbe = typical && (!route.hedging.enabled || (hedgeable && routeState.hasHedgeToken(0)));
    const newModel = mayProbe ? this.exploreNewModel(route, routeState, chosen) : -1;
    const stale = newModel < 0 && mayProbe ? this.exploreStale(route, routeState, chosen, atRisk, outputTokens, nowMs) : -1;
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
      if (contextWindow(this.entryFor(model), model) < needed) continue;
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
    const model = this.inTime(route, request, tried, elapsedMs, nowMs);
    if (model === undefined) return { refused: "no_candidate" };
    routeState.takeHedgeToken();
    routeState.noteHedge("sent", nowMs);
    return { model };
  }

  fallback(route: RoutePolicy, request: RequestProfile, tried: ReadonlySet<string>, elapsedMs: number): CatalogModel | undefined {
    if (route.strategy !== "cheapest-within-target" || elapsedMs + route.hedging.marginMs >= route.target.ms) return undefined;
    return this.inTime(route, request, tried, elapsedMs, this.clock.now());
  }

  fallbackStarted(route: RoutePolicy): void {
    if (route.hedging.enabled) this.routeState(route).spendForFallback(PROBE_RESERVE);
  }

  requestServed(routeName: string, modelId: string, met: boolean | undefined): void {
    this.routes.get(routeName)?.noteServed(modelId, met, this.clock.now());
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

  firstToken(modelId: string, ttftMs: number, probe = false, promptTokens = 0): void {
    const entry = this.entries.get(modelId);
    if (entry === undefined) return;
    const nowMs = this.clock.now();
    entry.stats.recordFirstToken(nowMs, ttftMs);
    this.listener?.({ kind: "first_token", modelId, ttftMs });
    // A probe's verdict on a first-token target is known at its first token: its slot is free for the
    // next probe now, not when the stream ends, and the recovery rule is judged now.
    if (!probe || entry.probeMetric === "total") return;
    entry.health.probeFinished();
    entry.probeSlotsFreedEarly++;
    const forgot = applyRecoveryAtFirstToken(entry, ttftMs, promptTokens, this.statsConfig, nowMs);
    if (forgot) this.listener?.({ kind: "forgot", modelId, agoMs: nowMs - entry.recoverySinceMs });
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
    if (probe && entry.probeSlotsFreedEarly > 0) entry.probeSlotsFreedEarly--;
    else if (probe) health.probeFinished();
    if (report.outcome !== "client_error" && report.outcome !== "gateway_error") entry.lifetimeAttempts++;
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

  learnContextWindow(modelId: string, tokens: number): void {
    const entry = this.entries.get(modelId);
    if (entry?.model === undefined || tokens >= contextWindow(entry, entry.model)) return;
    entry.learnedContextTokens = tokens;
  }

  contextWindow(model: CatalogModel): number {
    return contextWindow(this.entryFor(model), model);
  }

  prefillRefused(modelId: string): void {
    const entry = this.entries.get(modelId);
    if (entry !== undefined) entry.prefillRefused = true;
  }

  mayContinue(model: CatalogModel): boolean {
    return model.capabilities.has("prefill") && !this.entryFor(model).prefillRefused;
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
    return snapshotRows(table, chosen, route.target, (modelId) => routeState?.servedShare(modelId, nowMs) ?? null, nowMs);
  }

  routeStats(routeName: string): RouteStats {
    return this.routes.get(routeName)?.stats(this.clock.now()) ?? { hedgeRate: null, hedgeWinRate: null, attainment: null };
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
      case "gateway_error":
        // The request's fault or the gateway's, not the model's: nothing is learnt about its health or latency.
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
      case "gateway_error":
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

  /**
   * A recovering row to probe instead of `chosen` (free: a streak already started goes on at once, one
   * probe at a time), else a stale one (spending the route's exploration budget), or -1.
   */
  private exploreStale(route: RoutePolicy, routeState: RouteState, chosen: number, atRisk: boolean, outputTokens: number, nowMs: number): number {
    if (!EXPLORING.has(route.strategy)) return -1;
    const tokens = routeState.earnExploreToken(route.exploration.ratio);
    if (route.exploration.ratio > 0) {
      const recovering = recoveringTarget(this.table, route, chosen, atRisk, nowMs);
      if (recovering >= 0) return recovering;
    }
    if (tokens < 1 - TOKEN_EPSILON) return -1;
    const target = staleTarget(this.table, route, chosen, atRisk, outputTokens, this.statsConfig, nowMs);
    if (target >= 0) routeState.spendExploreToken();
    return target;
  }

  /** For a request that has run `elapsedMs`: the untried model to try next, as a hedge is chosen (`chooseHedge`). */
  private inTime(route: RoutePolicy, request: RequestProfile, tried: ReadonlySet<string>, elapsedMs: number, nowMs: number): CatalogModel | undefined {
    const table = this.table;
    table.evaluate(route, request, this.routeState(route).expectedOutputTokens(request, this.statsConfig.defaultOutputTokens), this.statsConfig, nowMs);
    const index = chooseHedge(table, route, tried, elapsedMs);
    return index >= 0 ? table.row(index).model : undefined;
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

  /** `onHealthChange` for the model `id`, if anyone listens. */
  private healthListener(id: string): HealthListener | undefined {
    const listener = this.onHealthChange;
    return listener && ((change) => listener(id, change));
  }

  private entryFor(model: CatalogModel): Entry {
    let entry = this.entries.get(model.id);
    if (entry === undefined) {
      // Lazily, for models a route names before the first sync: bounded by the catalog all the same.
      entry = createEntry(model, this.statsConfig, this.healthConfig, false, this.healthListener(model.id));
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

function repriced(before: CatalogModel | undefined, after: CatalogModel): boolean {
  return before !== undefined && (before.pricePerMTok.input !== after.pricePerMTok.input || before.pricePerMTok.output !== after.pricePerMTok.output);
}

/** A brain with no statistics yet; call `sync` with the catalog before routing. */
export function createBrain(options: BrainOptions): Brain {
  return new BrainImpl(options);
}
