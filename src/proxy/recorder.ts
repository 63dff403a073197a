// One request's bookkeeping in one place: each attempt's outcome goes to the brain at once and to the
// metrics a moment later; the request's own outcome to the metrics and, as a summary, to the access log.
import { performance } from "node:perf_hooks";
import type { FallbackReason, GatewayMetrics, RequestOutcome } from "../metrics/metrics.js";
import { costUsd, type Brain, type HedgeOutcome } from "../router/brain.js";
import type { AttemptOutcome, CatalogModel, RequestProfile } from "../router/types.js";
import type { Bookkeeping } from "./bookkeeping.js";
import type { RequestPlan } from "./plan.js";
import type { Usage } from "./sse.js";

/** What one finished attempt teaches. `cancelled`: the client left; nothing is learnt about the model. */
export interface AttemptRecord {
  readonly model: CatalogModel;
  readonly probe: boolean;
  readonly outcome: AttemptOutcome | "cancelled";
  /** Time to first content from the attempt's start, in ms (streams). */
  readonly ttftMs?: number;
  /** Whole attempt, in ms (successful attempts). */
  readonly totalMs?: number;
  /** For timeouts: the deadline that fired, in ms, and which latency it bounds. */
  readonly deadlineMs?: number;
  readonly timeoutMetric?: "ttft" | "total";
  readonly retryAfterMs?: number;
  readonly usage?: Usage;
  /** The first token was already learnt (at first content, or as late): not recorded again. */
  readonly ttftRecorded?: boolean;
  /** How long the attempt ran, in ms (superseded attempts). */
  readonly elapsedMs?: number;
}

/** A finished request, as the access log prints it. */
export interface RequestSummary {
  readonly route: string;
  readonly model: string;
  readonly attempts: number;
  readonly reason: string;
  readonly outcome: RequestOutcome;
  readonly status: number;
  /** Time to first content from the request's arrival, in ms (streams that delivered content). */
  readonly ttftMs: number | undefined;
}

/** Hears the usage of each attempt and its cost in USD (the client's share of the metering). */
export type UsageMeter = (promptTokens: number, completionTokens: number, usd: number) => void;

export interface RecorderDeps {
  readonly brain: Brain;
  readonly metrics: GatewayMetrics;
  /** Where metrics wait until the response has left. */
  readonly bookkeeping: Bookkeeping;
}

/** Records one request; create one per request. */
export class AttemptRecorder {
  /** Attempts started so far. */
  attempts = 0;
  /** `x-subsecond-reason`: the decision's reason, `fallback` from the second attempt on. */
  reason: string;
  #ttftMs: number | undefined;
  /** Time spent in the gateway, not waiting for the upstream or the client, in ms. */
  #overheadMs: number;
  #decisionCounted = false;

  constructor(
    private readonly deps: RecorderDeps,
    private readonly plan: RequestPlan,
    private readonly profile: RequestProfile,
    /** performance.now() when the request arrived. */
    private readonly startedAt: number,
    private readonly meter?: UsageMeter,
  ) {
    this.reason = plan.decision.reason;
    this.#overheadMs = performance.now() - startedAt;
  }

  addOverhead(ms: number): void {
    this.#overheadMs += ms;
  }

  /** An attempt on `model` is about to be sent; a hedge runs beside the first attempt, not after it. */
  started(model: CatalogModel, probe: boolean, hedge: boolean): void {
    this.attempts++;
    if (!hedge && this.attempts > 1) this.reason = "fallback";
    this.deps.brain.attemptStarted(model.id, probe);
  }

  /** An attempt's first content arrived `ttftMs` after it started: the brain learns it now. */
  firstContent(model: CatalogModel, ttftMs: number): void {
    this.deps.brain.firstToken(model.id, ttftMs);
  }

  /** An attempt still has no first content `elapsedMs` after its start, past the target. */
  late(model: CatalogModel, elapsedMs: number): void {
    this.deps.brain.attemptLate(model.id, "ttft", elapsedMs);
  }

  /** How the request's hedge ended, or that one was due and the budget said no. */
  hedge(outcome: HedgeOutcome): void {
    const { metrics, bookkeeping, brain } = this.deps;
    if (outcome !== "over_budget") brain.hedgeFinished(this.plan.decision.route, outcome);
    bookkeeping.later(() => metrics.hedge(this.plan.routeLabel, outcome));
  }

  /** Counts the decision once, after the first request is on its way: off the request's critical path. */
  countDecision(): void {
    const first = this.plan.decision.plan[0];
    if (this.#decisionCounted || !first) return;
    this.#decisionCounted = true;
    this.deps.metrics.decision(this.plan.routeLabel, first.id, this.plan.decision.reason);
  }

  /** The first content of `model` left for the client at `atMs` (performance.now()). */
  committed(model: CatalogModel, atMs: number): void {
    this.#ttftMs = atMs - this.startedAt;
    this.deps.metrics.timeToFirstToken(this.plan.routeLabel, model.id, this.#ttftMs / 1000);
  }

  fallback(model: CatalogModel, reason: FallbackReason): void {
    this.deps.metrics.fallback(this.plan.routeLabel, model.id, reason);
  }

  /** A finished attempt: the brain learns now, the metrics count it a moment later. */
  attemptFinished(record: AttemptRecord): void {
    const { brain, metrics, bookkeeping } = this.deps;
    const { model, usage } = record;
    brain.attemptFinished({
      modelId: model.id,
      route: this.plan.decision.route,
      outcome: record.outcome === "cancelled" ? "client_error" : record.outcome,
      ...(record.ttftMs !== undefined ? { ttftMs: record.ttftMs } : {}),
      ...(record.totalMs !== undefined ? { totalMs: record.totalMs } : {}),
      ...(record.deadlineMs !== undefined ? { deadlineMs: record.deadlineMs, timeoutMetric: record.timeoutMetric ?? "ttft" } : {}),
      ...(record.retryAfterMs !== undefined ? { retryAfterMs: record.retryAfterMs } : {}),
      ...(record.outcome === "ok" ? { promptTokens: usage?.promptTokens ?? this.profile.promptTokens } : {}),
      ...(usage ? { outputTokens: usage.completionTokens } : {}),
      ...(record.ttftRecorded ? { ttftRecorded: true } : {}),
      ...(record.elapsedMs !== undefined ? { elapsedMs: record.elapsedMs } : {}),
      probe: record.probe,
    });
    if (record.outcome === "cancelled") return;
    const outcome = record.outcome;
    // A superseded attempt reported no usage, but the provider read its prompt: hedging is metered.
    const billed = usage ?? (outcome === "superseded" ? { promptTokens: this.profile.promptTokens, completionTokens: 0 } : undefined);
    bookkeeping.later(() => {
      metrics.attempt(model.id, outcome);
      if (!billed) return;
      const usd = costUsd(model, billed.promptTokens, billed.completionTokens);
      metrics.usage(this.plan.routeLabel, model.id, billed.promptTokens, billed.completionTokens, usd);
      this.meter?.(billed.promptTokens, billed.completionTokens, usd);
    });
  }

  /** The request ended at `endedAt` (performance.now()); its metrics follow a moment later. */
  finish(model: string, outcome: RequestOutcome, status: number, endedAt = performance.now()): RequestSummary {
    const { metrics, bookkeeping } = this.deps;
    const { routeLabel, target } = this.plan;
    const stream = this.profile.stream;
    const ttftMs = this.#ttftMs;
    const overheadSeconds = this.#overheadMs / 1000;
    const durationSeconds = (endedAt - this.startedAt) / 1000;
    bookkeeping.later(() => {
      metrics.request(routeLabel, model, outcome, stream, durationSeconds);
      metrics.overhead(overheadSeconds);
      if (outcome === "ok" && (target.metric === "total" || stream)) {
        const measuredMs = target.metric === "total" ? durationSeconds * 1000 : ttftMs;
        if (measuredMs !== undefined) metrics.targetResult(routeLabel, measuredMs <= target.ms);
      }
    });
    return { route: routeLabel, model, attempts: this.attempts, reason: this.reason, outcome, status, ttftMs };
  }
}
