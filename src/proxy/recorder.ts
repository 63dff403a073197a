// One request's bookkeeping in one place: each attempt's outcome goes to the brain at once and to the
// metrics a moment later; the request's own outcome to the metrics and, as a summary, to the access log.
import { performance } from "node:perf_hooks";
import type { EventLog } from "../events/event-log.js";
import type { FallbackReason, GatewayMetrics, RequestOutcome } from "../metrics/metrics.js";
import { costUsd, type Brain, type HedgeOutcome } from "../router/brain.js";
import type { RequestTrace } from "../observability/tracing.js";
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
  /** The answer's `finish_reason`s and the `model` it names, for the trace. */
  readonly finishReasons?: readonly string[];
  readonly responseModel?: string;
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
  /** Recent events for /admin/events: fallbacks and hedges are written there as they happen. */
  readonly events: EventLog;
}

/** A fallback's reason as the status page's events say it. */
const FALLBACK_DETAIL: Readonly<Record<FallbackReason, string>> = {
  timeout: "timed out; tried the next candidate",
  error: "failed; tried the next candidate",
  rate_limited: "rate limited (429); tried the next candidate",
  context_length: "context too long; tried a larger one",
  circuit_open: "circuit open; skipped",
  buffer_full: "the gateway's answer buffer was full; tried the next candidate",
};

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
  /** The model of the last attempt that was not a hedge: the one a hedge races. */
  #raced: CatalogModel | undefined;
  #hedge: CatalogModel | undefined;

  constructor(
    private readonly deps: RecorderDeps,
    private readonly plan: RequestPlan,
    private readonly profile: RequestProfile,
    /** performance.now() when the request arrived. */
    private readonly startedAt: number,
    /** The request's trace; undefined when tracing is off. */
    private readonly trace: RequestTrace | undefined,
    private readonly meter?: UsageMeter,
  ) {
    this.reason = plan.decision.reason;
    this.#overheadMs = performance.now() - startedAt;
  }

  addOverhead(ms: number): void {
    this.#overheadMs += ms;
  }

  /**
   * An attempt on `model` is about to be sent; a hedge runs beside the first attempt, not after it, and
   * a continuation resumes a stream another attempt began.
   */
  started(model: CatalogModel, probe: boolean, hedge: boolean, continuation = false): void {
    this.attempts++;
    if (hedge) {
      this.#hedge = model;
      this.#hedgeEvent("hedge.fired", probe ? "hedging a probe" : "the first attempt is slow");
    } else {
      this.#raced = model;
      if (this.attempts > 1) this.reason = "fallback";
    }
    this.deps.brain.attemptStarted(model.id, probe);
    this.trace?.attemptStarted(model, {
      attempt: this.attempts,
      reason: hedge ? "hedge" : this.reason,
      hedge,
      probe,
      continuation,
      predictedMs: this.#predictedMs(model),
    });
  }

  /** The client's headers for the attempt on `model`, with its trace context when tracing is on. */
  upstreamHeaders(model: CatalogModel, base: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
    return this.trace === undefined ? base : this.trace.upstreamHeaders(model, base);
  }

  /** An attempt's first content arrived `ttftMs` after it started: the brain learns it now. */
  firstContent(model: CatalogModel, ttftMs: number, probe: boolean): void {
    this.deps.brain.firstToken(model.id, ttftMs, probe, this.profile.promptTokens);
  }

  /** An attempt still has no first content `elapsedMs` after its start, past the target. */
  late(model: CatalogModel, elapsedMs: number): void {
    this.deps.brain.attemptLate(model.id, "ttft", elapsedMs);
  }

  /** How the request's hedge ended, or that one was due and the budget said no. */
  hedge(outcome: HedgeOutcome): void {
    const { metrics, bookkeeping, brain } = this.deps;
    if (outcome !== "over_budget") {
      brain.hedgeFinished(this.plan.decision.route, outcome);
      this.#hedgeEvent(
        `hedge.${outcome}`,
        outcome === "won" ? "the hedge answered first" : outcome === "lost" ? "the first attempt answered first" : "the hedge failed",
      );
    }
    bookkeeping.later(() => metrics.hedge(this.plan.routeLabel, outcome));
  }

  #hedgeEvent(kind: "hedge.fired" | "hedge.won" | "hedge.lost" | "hedge.failed", detail: string): void {
    const models = this.#raced && this.#hedge ? [this.#raced.id, this.#hedge.id] : [];
    this.deps.events.add(kind, { route: this.plan.routeLabel, models, detail });
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
    this.deps.events.add("fallback", { route: this.plan.routeLabel, models: [model.id], detail: FALLBACK_DETAIL[reason] });
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
    this.trace?.attemptEnded(record);
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
    const { metrics, bookkeeping, brain } = this.deps;
    const { routeLabel, target } = this.plan;
    const stream = this.profile.stream;
    const ttftMs = this.#ttftMs;
    const overheadSeconds = this.#overheadMs / 1000;
    const durationSeconds = (endedAt - this.startedAt) / 1000;
    bookkeeping.later(() => {
      metrics.request(routeLabel, model, outcome, stream, durationSeconds);
      metrics.overhead(overheadSeconds);
      if (outcome !== "ok") return;
      const measuredMs = target.metric === "total" ? durationSeconds * 1000 : stream ? ttftMs : undefined;
      const met = measuredMs === undefined ? undefined : measuredMs <= target.ms;
      if (met !== undefined) metrics.targetResult(routeLabel, met);
      brain.requestServed(routeLabel, model, met);
    });
    const summary = { route: routeLabel, model, attempts: this.attempts, reason: this.reason, outcome, status, ttftMs };
    this.trace?.ended(summary, endedAt);
    return summary;
  }

  /** The brain's prediction for `model` at the route's percentile, in ms: the decision's for its first model. */
  #predictedMs(model: CatalogModel): number {
    const { decision, target } = this.plan;
    return model === decision.plan[0] ? decision.predictedMs : this.deps.brain.estimateMs(model.id, target.metric, target.percentile);
  }
}
