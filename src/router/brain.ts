// The routing brain: for each request, which models to try and in what order, from the route's policy,
// live latency statistics and model health; and what it learns from every attempt's outcome.
//
// Pure: time comes from the injected Clock, randomness from the injected Rng, and nothing here does I/O.
// One brain serves one process; all its state lives in the object `createBrain` returns.
//
// A decision, per request (DESIGN.md "The decision, per request"):
//  1. Filter: context window (contextTokens < promptTokens + maxOutputTokens), missing capability,
//     circuit open (a half-open circuit whose probe is out counts as open), cooling after a 429.
//  2. Predict each candidate's latency at the route's percentile for this request (predict.ts).
//     A cold candidate (prediction still leaning on its prior) ranks no faster than the best
//     well-measured one that meets the target: an unmeasured model never displaces measured good
//     latency on speed alone (measured latency that misses the target is not "good", and is not shielded).
//  3. Choose by strategy. cheapest-within-target: the lowest expected cost for this request among those
//     predicted within target (ties: rank, score, predicted latency), spreading load over near-ties by
//     the power of two choices; none within target → best effort, the lowest predicted latency, at risk.
//     fastest: lowest predicted latency. cheapest: lowest cost. ordered: the configured order.
//  4. Explore (cheapest-within-target and fastest): a per-route token bucket earns `exploration.ratio`
//     per decision (capped at 1). With a whole token, the stalest eligible candidate that could improve
//     the choice — cheaper than it, or at any price when the choice is at risk (fastest: every
//     candidate) — whose newest sample is older than `staleAfterMs` and which has no probe out, goes
//     first as a probe. Stalest first, so several stale candidates take turns; but a model in the middle
//     of a recovery streak (predict.ts) goes before them, stale or not, so a recovered model finishes its
//     streak quickly.
//  5. Plan: the first model, then the other eligible ones in the strategy's order. A half-open model is
//     only ever plan[0], as its single probe; later positions would be further probes.
//
// When nothing is usable: candidates that only fail context or capability give an empty plan with
// `excludedBy`. If health is the reason, the route still serves when it can: a candidate whose circuit
// is open (and not cooling) is probed at once — the one that opened earliest — since a 502 from a likely
// broken model beats refusing outright; only when no such probe can be sent (all cooling, or the open
// ones already being probed) is the plan empty, with `retryAfterMs` = the shortest remaining cooldown
// when any candidate is cooling. A merely slow route never gets an empty plan: slowness is never a
// filter, only a prediction.
import type { HealthConfig, StatsConfig } from "../config/schema.js";
import { createDecayingTotals, type DecayingTotals } from "./forward-decay.js";
import { createModelHealth, type ModelHealth } from "./health.js";
import { createModelStats, type ModelStats } from "./model-stats.js";
import { isCold, predictMs, type LatencyMetric } from "./predict.js";
import type {
  AttemptReport,
  CatalogModel,
  Clock,
  Decision,
  DecisionReason,
  Exclusion,
  ModelState,
  RequestProfile,
  Rng,
  RoutePolicy,
} from "./types.js";

export interface BrainOptions {
  readonly clock: Clock;
  readonly rng: Rng;
  readonly stats: StatsConfig;
  readonly health: HealthConfig;
}

/** One candidate of a route as /admin/routes and `subsecond explain` show it. */
export interface CandidateRow {
  readonly id: string;
  readonly rank: number;
  readonly score: number;
  /** USD per 1M tokens. */
  readonly pricePerMTok: { readonly input: number; readonly output: number };
  /** Expected cost of the request, in USD. */
  readonly expectedCostUsd: number;
  /** Effective (decayed) number of latency samples. */
  readonly samples: number;
  /** Predicted latency at the route's target metric and percentile, in ms. */
  readonly predictedMs: number;
  /** Observed TTFT median, in ms; null without samples. */
  readonly observedTtftP50Ms: number | null;
  /** Observed TTFT 95th percentile, in ms; null without samples. */
  readonly observedTtftP95Ms: number | null;
  readonly state: ModelState;
  /** Passes the filters (context, capability, health) and may be in a plan. */
  readonly eligible: boolean;
  /** Why it is not eligible, or "over-target" when eligible but predicted to miss the target. */
  readonly exclusion: Exclusion | "over-target" | null;
  /** The strategy would put it first now (leaving out random load spreading and exploration). */
  readonly wouldChoose: boolean;
  /** Attempts in flight. */
  readonly inFlight: number;
  /** Decayed share of attempts that failed with an error (0..1); null before any attempt. */
  readonly errorRate: number | null;
  /** Decayed share of attempts that timed out (0..1); null before any attempt. */
  readonly timeoutRate: number | null;
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
   * context window is too small. No reordering by prediction. `routeLabel` becomes `Decision.route`.
   */
  planList(routeLabel: string, models: readonly CatalogModel[], reason: "pinned" | "request-list", request: RequestProfile): Decision;
  /** An attempt on `modelId` started; `probe` as in `Decision.probe` (only for plan[0]). */
  attemptStarted(modelId: string, probe: boolean): void;
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
}

/** Per model entry: statistics, health, and the state of the recovery rule (predict.ts). */
interface Entry {
  model: CatalogModel | undefined;
  readonly stats: ModelStats;
  readonly health: ModelHealth;
  /** Consecutive probes that met the target while predicted to miss it. */
  recoveryStreak: number;
  /** When the first of those probes reported, in ms. */
  recoverySinceMs: number;
  /** What the decision that sent the current probe expected (undefined: no probe expectation). */
  probeMetric: LatencyMetric | undefined;
  probeTargetMs: number;
  probePredictedMiss: boolean;
}

/** Per route: the exploration budget and decayed averages of request sizes. */
interface RouteState {
  tokens: number;
  readonly sizes: DecayingTotals;
}
const OUTPUT_SUM = 0;
const OUTPUT_WEIGHT = 1;
const PROMPT_SUM = 2;
const PROMPT_WEIGHT = 3;

/** Scratch row of the candidate table; reused across decisions so `decide` allocates only its result. */
interface Row {
  model: CatalogModel;
  entry: Entry;
  /** Position in route.candidates. */
  index: number;
  exclusion: Exclusion | null;
  /** Eligible only as the circuit's single probe. */
  halfOpen: boolean;
  predictedMs: number;
  /** Predicted latency for ranking on speed: a cold row ranks no faster than the best measured one within target. */
  speedMs: number;
  costUsd: number;
  cold: boolean;
  within: boolean;
}

/** Floating sums of `ratio` may land a hair under 1 (50 × 0.02 = 0.9999…); still a whole token. */
const TOKEN_EPSILON = 1e-9;

function lacksCapability(model: CatalogModel, needs: RequestProfile["needs"]): boolean {
  if (needs.size === 0) return false;
  for (const need of needs) if (!model.capabilities.has(need)) return true;
  return false;
}

function compareCost(a: Row, b: Row): number {
  return a.costUsd - b.costUsd || a.model.rank - b.model.rank || b.model.score - a.model.score || a.predictedMs - b.predictedMs || a.index - b.index;
}

function compareSpeed(a: Row, b: Row): number {
  return (
    a.speedMs - b.speedMs ||
    Number(a.cold) - Number(b.cold) ||
    a.costUsd - b.costUsd ||
    a.model.rank - b.model.rank ||
    b.model.score - a.model.score ||
    a.index - b.index
  );
}

/** cheapest-within-target: within target by cost first, then the rest by predicted latency. */
function compareWithinTarget(a: Row, b: Row): number {
  if (a.within !== b.within) return a.within ? -1 : 1;
  return a.within ? compareCost(a, b) : compareSpeed(a, b);
}

function compareOrdered(a: Row, b: Row): number {
  return a.index - b.index;
}

const COMPARATORS = {
  "cheapest-within-target": compareWithinTarget,
  fastest: compareSpeed,
  cheapest: compareCost,
  ordered: compareOrdered,
} as const;

class BrainImpl implements Brain {
  private readonly clock: Clock;
  private readonly rng: Rng;
  private statsConfig: StatsConfig;
  private healthConfig: HealthConfig;
  private readonly entries = new Map<string, Entry>();
  private readonly routes = new Map<string, RouteState>();
  private readonly rows: Row[] = [];
  /** Indices into `rows` of the eligible candidates, in the strategy's order. */
  private readonly order: number[] = [];
  /** Statistics of no model, for estimates of ids the brain has never seen. */
  private readonly emptyStats: ModelStats;
  /** The needs of a snapshot's typical request: none. */
  private readonly noNeeds: ReadonlySet<never> = new Set<never>();

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
    for (const route of this.routes.values()) route.sizes.setHalfLife(stats.halfLifeMs, nowMs);
  }

  decide(route: RoutePolicy, request: RequestProfile): Decision {
    const nowMs = this.clock.now();
    const routeState = this.routeState(route.name);
    routeState.sizes.add(PROMPT_SUM, request.promptTokens, nowMs);
    routeState.sizes.add(PROMPT_WEIGHT, 1, nowMs);
    const outputTokens = this.expectedOutputTokens(request, routeState);
    const count = this.evaluate(route, request, outputTokens, nowMs);
    const eligible = this.sortEligible(route, count);
    if (eligible === 0) return this.nothingUsable(route, count, outputTokens, nowMs);

    const rows = this.rows;
    const chosen = route.strategy === "cheapest-within-target" ? this.spreadNearTies(route, eligible) : this.at(0);
    const chosenRow = rows[chosen] as Row;
    const atRisk = !chosenRow.within;

    let first = chosen;
    let explored = false;
    if (route.strategy === "cheapest-within-target" || route.strategy === "fastest") {
      const tokens = Math.min(1, routeState.tokens + route.exploration.ratio);
      routeState.tokens = tokens;
      if (tokens >= 1 - TOKEN_EPSILON) {
        const target = this.exploreTarget(route, chosen, atRisk, eligible, nowMs);
        if (target >= 0) {
          routeState.tokens = Math.max(0, tokens - 1);
          first = target;
          explored = true;
        }
      }
    }

    const firstRow = rows[first] as Row;
    const probe = explored || firstRow.halfOpen;
    if (probe) this.reserveProbe(firstRow, route, nowMs);
    const reason: DecisionReason = explored ? "explore" : chosenRow.within ? "within-target" : "best-effort";
    return {
      route: route.name,
      plan: this.buildPlan(first, chosen, eligible),
      reason,
      atRisk,
      predictedMs: firstRow.predictedMs,
      expectedOutputTokens: outputTokens,
      retryAfterMs: undefined,
      probe,
    };
  }

  planList(routeLabel: string, models: readonly CatalogModel[], reason: "pinned" | "request-list", request: RequestProfile): Decision {
    const nowMs = this.clock.now();
    const outputTokens = this.expectedOutputTokens(request, this.routes.get(routeLabel));
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
    };
    return head === undefined && models.length > 0 ? { ...decision, excludedBy: cooling ? "cooling" : "context" } : decision;
  }

  attemptStarted(modelId: string, probe: boolean): void {
    const entry = this.entries.get(modelId);
    if (entry === undefined) return;
    entry.stats.inFlight++;
    if (probe) entry.health.probeStarted();
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
    let recordedTtftMs = Number.NaN;
    switch (report.outcome) {
      case "ok": {
        const prior = entry.model?.prior ?? this.statsConfig.defaultPrior;
        recordedTtftMs = stats.recordSuccess(nowMs, report.ttftMs, report.totalMs, report.promptTokens, report.outputTokens, 1000 / prior.tokensPerSecond);
        health.recordSuccess(nowMs, probe);
        const output = report.outputTokens;
        const route = this.routes.get(report.route);
        if (route !== undefined && output !== undefined && Number.isFinite(output) && output >= 0) {
          route.sizes.add(OUTPUT_SUM, output, nowMs);
          route.sizes.add(OUTPUT_WEIGHT, 1, nowMs);
        }
        break;
      }
      case "timeout":
        stats.recordTimeout(nowMs, report.timeoutMetric ?? "ttft", report.deadlineMs, report.ttftMs, report.promptTokens, report.outputTokens);
        health.recordTimeout(nowMs, probe);
        break;
      case "error":
        stats.recordError(nowMs);
        health.recordFailure(nowMs, probe);
        break;
      case "rate_limited":
        health.recordRateLimited(nowMs, report.retryAfterMs, this.rng);
        break;
      case "client_error":
        // The request's fault, not the model's: nothing is learnt about its health or latency.
        break;
    }
    if (probe) this.applyRecoveryRule(entry, report, recordedTtftMs, nowMs);
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
    const meanPrompt = routeState?.sizes.ratio(PROMPT_SUM, PROMPT_WEIGHT) ?? Number.NaN;
    const profile: RequestProfile = request ?? {
      promptTokens: meanPrompt >= 0 ? Math.round(meanPrompt) : 0,
      maxOutputTokens: undefined,
      needs: this.noNeeds,
      stream: true,
    };
    const outputTokens = this.expectedOutputTokens(profile, routeState);
    const count = this.evaluate(route, profile, outputTokens, nowMs);
    const eligible = this.sortEligible(route, count);
    const chosen = eligible > 0 ? this.at(0) : this.forcedProbe(count, nowMs);
    const out: CandidateRow[] = [];
    for (let i = 0; i < count; i++) {
      const row = this.rows[i] as Row;
      const { model, entry } = row;
      const ttft = entry.stats.ttftMs;
      const hasTtft = ttft.effectiveCount(nowMs) > 0;
      const errorRate = entry.stats.errorRate();
      const timeoutRate = entry.stats.timeoutRate();
      out.push({
        id: model.id,
        rank: model.rank,
        score: model.score,
        pricePerMTok: model.pricePerMTok,
        expectedCostUsd: row.costUsd,
        samples: entry.stats.totalMs.effectiveCount(nowMs),
        predictedMs: row.predictedMs,
        observedTtftP50Ms: hasTtft ? ttft.quantile(0.5) : null,
        observedTtftP95Ms: hasTtft ? ttft.quantile(0.95) : null,
        state: entry.health.state(nowMs),
        eligible: row.exclusion === null,
        exclusion: row.exclusion ?? (row.within ? null : "over-target"),
        wouldChoose: i === chosen,
        inFlight: entry.stats.inFlight,
        errorRate: Number.isNaN(errorRate) ? null : errorRate,
        timeoutRate: Number.isNaN(timeoutRate) ? null : timeoutRate,
      });
    }
    return out;
  }

  // ---- internals ------------------------------------------------------------------------------

  private entryFor(model: CatalogModel): Entry {
    let entry = this.entries.get(model.id);
    if (entry === undefined) {
      // Lazily, for models a route names before the first sync: bounded by the catalog all the same.
      entry = {
        model,
        stats: createModelStats(this.statsConfig.halfLifeMs),
        health: createModelHealth(this.healthConfig, this.statsConfig.halfLifeMs),
        recoveryStreak: 0,
        recoverySinceMs: 0,
        probeMetric: undefined,
        probeTargetMs: 0,
        probePredictedMiss: false,
      };
      this.entries.set(model.id, entry);
    }
    return entry;
  }

  private routeState(name: string): RouteState {
    let state = this.routes.get(name);
    if (state === undefined) {
      state = { tokens: 0, sizes: createDecayingTotals(4, this.statsConfig.halfLifeMs) };
      this.routes.set(name, state);
    }
    return state;
  }

  /** max_tokens when the client set it; else the route's decayed mean of observed output; else the default. */
  private expectedOutputTokens(request: RequestProfile, route: RouteState | undefined): number {
    if (request.maxOutputTokens !== undefined && request.maxOutputTokens > 0) return request.maxOutputTokens;
    const mean = route?.sizes.ratio(OUTPUT_SUM, OUTPUT_WEIGHT) ?? Number.NaN;
    return mean >= 0 ? Math.max(1, Math.round(mean)) : this.statsConfig.defaultOutputTokens;
  }

  private at(position: number): number {
    return this.order[position] ?? 0;
  }

  /** Fills rows[0..n) for the route's candidates; reads state, changes none. Returns n. */
  private evaluate(route: RoutePolicy, request: RequestProfile, outputTokens: number, nowMs: number): number {
    const candidates = route.candidates;
    const count = candidates.length;
    const config = this.statsConfig;
    const { metric, percentile, ms: targetMs } = route.target;
    const needed = request.promptTokens + (request.maxOutputTokens ?? 0);
    let bestMeasuredMs = Number.POSITIVE_INFINITY;
    for (let i = 0; i < count; i++) {
      const model = candidates[i] as CatalogModel;
      const entry = this.entryFor(model);
      const row = this.rowAt(i, model, entry);
      row.index = i;
      row.exclusion = model.contextTokens < needed ? "context" : lacksCapability(model, request.needs) ? "capability" : entry.health.exclusion(nowMs);
      row.halfOpen = row.exclusion === null && entry.health.isHalfOpen(nowMs);
      row.costUsd = costUsd(model, request.promptTokens, outputTokens);
      row.predictedMs = predictMs(entry.stats, model.prior, metric, percentile, request.promptTokens, outputTokens, config, nowMs);
      row.cold = isCold(entry.stats, metric, config, nowMs);
      row.within = row.predictedMs <= targetMs;
      if (row.exclusion === null && !row.cold && row.predictedMs < bestMeasuredMs) bestMeasuredMs = row.predictedMs;
    }
    // Good measured latency (within target) is protected from rosy priors; a measured model that misses
    // the target anyway is not, or a promising newcomer could never be tried in its place.
    const floorMs = bestMeasuredMs < targetMs ? bestMeasuredMs : targetMs;
    for (let i = 0; i < count; i++) {
      const row = this.rows[i] as Row;
      row.speedMs = row.cold && row.predictedMs < floorMs ? floorMs : row.predictedMs;
    }
    return count;
  }

  private rowAt(i: number, model: CatalogModel, entry: Entry): Row {
    let row = this.rows[i];
    if (row === undefined) {
      row = { model, entry, index: i, exclusion: null, halfOpen: false, predictedMs: 0, speedMs: 0, costUsd: 0, cold: true, within: false };
      this.rows[i] = row;
    } else {
      row.model = model;
      row.entry = entry;
    }
    return row;
  }

  /** Puts the eligible rows' indices into `order`, sorted by the strategy (insertion sort: n ≤ ~20). Returns their count. */
  private sortEligible(route: RoutePolicy, count: number): number {
    const rows = this.rows;
    const order = this.order;
    const compare = COMPARATORS[route.strategy];
    let eligible = 0;
    for (let i = 0; i < count; i++) {
      const row = rows[i] as Row;
      if (row.exclusion !== null) continue;
      let position = eligible++;
      while (position > 0 && compare(rows[order[position - 1] ?? 0] as Row, row) > 0) {
        order[position] = order[position - 1] ?? 0;
        position--;
      }
      order[position] = i;
    }
    return eligible;
  }

  /**
   * Power of two choices among within-target rows whose cost is within `nearTieRatio` of the cheapest:
   * two distinct ones at random, the one with fewer attempts in flight wins (a tie keeps the first draw).
   * Always taking the argmin would herd every request onto one model at high rates.
   */
  private spreadNearTies(route: RoutePolicy, eligible: number): number {
    const rows = this.rows;
    const cheapest = rows[this.at(0)] as Row;
    if (!cheapest.within) return this.at(0);
    const limit = cheapest.costUsd * (1 + route.nearTieRatio);
    let ties = 1;
    while (ties < eligible) {
      const row = rows[this.at(ties)] as Row;
      if (!row.within || row.costUsd > limit) break;
      ties++;
    }
    if (ties < 2) return this.at(0);
    const first = Math.floor(this.rng.next() * ties);
    let second = Math.floor(this.rng.next() * (ties - 1));
    if (second >= first) second++;
    const a = this.at(first);
    const b = this.at(second);
    return (rows[b] as Row).entry.stats.inFlight < (rows[a] as Row).entry.stats.inFlight ? b : a;
  }

  /** The stalest eligible row worth probing instead of `chosen`, or -1. */
  private exploreTarget(route: RoutePolicy, chosen: number, atRisk: boolean, eligible: number, nowMs: number): number {
    const rows = this.rows;
    const chosenCost = (rows[chosen] as Row).costUsd;
    const anyPrice = atRisk || route.strategy === "fastest";
    const staleBeforeMs = nowMs - route.exploration.staleAfterMs;
    let best = -1;
    let bestAtMs = Number.POSITIVE_INFINITY;
    let bestCost = Number.POSITIVE_INFINITY;
    for (let k = 0; k < eligible; k++) {
      const index = this.at(k);
      if (index === chosen) continue;
      const row = rows[index] as Row;
      if (!anyPrice && !(row.costUsd < chosenCost)) continue;
      if (row.entry.health.probeBusy(nowMs)) continue;
      // A model in the middle of a recovery streak is probed next, stale or not, so that a recovered
      // model completes its streak within a few probes instead of waiting its turn among stale ones.
      if (row.entry.recoveryStreak > 0) return index;
      const newestMs = row.entry.stats.newestSampleAtMs;
      if (newestMs > staleBeforeMs) continue;
      if (newestMs < bestAtMs || (newestMs === bestAtMs && row.costUsd < bestCost)) {
        best = index;
        bestAtMs = newestMs;
        bestCost = row.costUsd;
      }
    }
    return best;
  }

  private buildPlan(first: number, chosen: number, eligible: number): CatalogModel[] {
    const rows = this.rows;
    const plan: CatalogModel[] = [(rows[first] as Row).model];
    const chosenRow = rows[chosen] as Row;
    if (chosen !== first && !chosenRow.halfOpen) plan.push(chosenRow.model);
    for (let k = 0; k < eligible; k++) {
      const index = this.at(k);
      if (index === first || index === chosen) continue;
      const row = rows[index] as Row;
      // Only plan[0] may be a half-open model's probe; anywhere else it would be a second one.
      if (!row.halfOpen) plan.push(row.model);
    }
    return plan;
  }

  /** Holds the probe slot and notes what the prediction said, for the recovery rule. */
  private reserveProbe(row: Row, route: RoutePolicy, nowMs: number): void {
    const entry = row.entry;
    // Long enough to bridge decide → attemptStarted; short, so a probe that never started blocks little.
    entry.health.reserveProbe(nowMs + route.deadlines.firstTokenMs);
    entry.probeMetric = route.target.metric;
    entry.probeTargetMs = route.target.ms;
    entry.probePredictedMiss = !row.within;
  }

  /** The open-circuit row (not cooling, no probe out) whose circuit opened earliest, or -1. */
  private forcedProbe(count: number, nowMs: number): number {
    let best = -1;
    let bestOpenedMs = Number.POSITIVE_INFINITY;
    for (let i = 0; i < count; i++) {
      const row = this.rows[i] as Row;
      if (row.exclusion !== "open") continue;
      const health = row.entry.health;
      if (health.probeBusy(nowMs) || health.cooldownRemainingMs(nowMs) > 0) continue;
      if (health.openedAtMs < bestOpenedMs) {
        best = i;
        bestOpenedMs = health.openedAtMs;
      }
    }
    return best;
  }

  private nothingUsable(route: RoutePolicy, count: number, outputTokens: number, nowMs: number): Decision {
    const forced = this.forcedProbe(count, nowMs);
    if (forced >= 0) {
      const row = this.rows[forced] as Row;
      row.entry.health.forceHalfOpen(nowMs);
      this.reserveProbe(row, route, nowMs);
      return {
        route: route.name,
        plan: [row.model],
        reason: "best-effort",
        atRisk: true,
        predictedMs: row.predictedMs,
        expectedOutputTokens: outputTokens,
        retryAfterMs: undefined,
        probe: true,
      };
    }
    let context = 0;
    let capability = 0;
    let open = 0;
    let shortestCoolMs = Number.POSITIVE_INFINITY;
    for (let i = 0; i < count; i++) {
      const row = this.rows[i] as Row;
      if (row.exclusion === "context") context++;
      else if (row.exclusion === "capability") capability++;
      else {
        const coolMs = row.entry.health.cooldownRemainingMs(nowMs);
        if (coolMs > 0 && coolMs < shortestCoolMs) shortestCoolMs = coolMs;
        if (coolMs === 0) open++;
      }
    }
    const cooling = shortestCoolMs < Number.POSITIVE_INFINITY;
    const excludedBy: Exclusion = cooling ? "cooling" : open > 0 ? "open" : context >= capability ? "context" : "capability";
    return {
      route: route.name,
      plan: [],
      reason: "best-effort",
      atRisk: true,
      predictedMs: Number.NaN,
      expectedOutputTokens: outputTokens,
      retryAfterMs: cooling ? shortestCoolMs : undefined,
      probe: false,
      excludedBy,
    };
  }

  /**
   * Recovery rule (predict.ts): a probe that met the target while its prediction said it would miss
   * extends the streak; `recoverySamples` in a row forget the history before the first of them. Any
   * other probe result that says something about latency ends the streak.
   */
  private applyRecoveryRule(entry: Entry, report: AttemptReport, ttftMs: number, nowMs: number): void {
    const metric = entry.probeMetric;
    if (metric === undefined) return;
    entry.probeMetric = undefined;
    if (report.outcome === "client_error" || report.outcome === "rate_limited") return;
    const valueMs = metric === "ttft" ? (Number.isNaN(ttftMs) ? undefined : ttftMs) : report.totalMs;
    if (report.outcome === "ok" && valueMs === undefined) return;
    if (report.outcome !== "ok" || valueMs === undefined || valueMs > entry.probeTargetMs || !entry.probePredictedMiss) {
      entry.recoveryStreak = 0;
      return;
    }
    if (entry.recoveryStreak === 0) entry.recoverySinceMs = nowMs;
    entry.recoveryStreak++;
    if (entry.recoveryStreak >= this.statsConfig.recoverySamples) {
      entry.stats.forgetBefore(entry.recoverySinceMs, nowMs, this.statsConfig.minSamples);
      entry.recoveryStreak = 0;
    }
  }
}

/** Dollars for a request of `promptTokens` in and `outputTokens` out at the model's catalog prices. */
export function costUsd(model: CatalogModel, promptTokens: number, outputTokens: number): number {
  return (promptTokens * model.pricePerMTok.input + outputTokens * model.pricePerMTok.output) / 1e6;
}

/** A brain with no statistics yet; call `sync` with the catalog before routing. */
export function createBrain(options: BrainOptions): Brain {
  return new BrainImpl(options);
}
