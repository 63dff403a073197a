// Shared vocabulary of the routing brain: catalog entries, route policies, requests, decisions, outcomes.
import type { Capability } from "../config/schema.js";
import type { CatalogModel } from "../config/catalog.js";

export type { CatalogModel, RoutePolicy } from "../config/catalog.js";

/** Monotonic time source, in milliseconds. Injected so the brain can run on a fake clock. */
export interface Clock {
  now(): number;
}

/** Uniform random numbers in [0, 1). Injected so decisions are reproducible in tests. */
export interface Rng {
  next(): number;
}

/** What the router needs to know about one request. */
export interface RequestProfile {
  /** Estimated prompt tokens. */
  readonly promptTokens: number;
  /** `max_completion_tokens` / `max_tokens` when the client set one. */
  readonly maxOutputTokens: number | undefined;
  readonly needs: ReadonlySet<Capability>;
  readonly stream: boolean;
}

export type DecisionReason = "within-target" | "best-effort" | "explore" | "pinned" | "request-list";

/** Health of a model entry, as exported in `subsecond_model_state` (0..3). */
export type ModelState = "ok" | "half-open" | "cooling" | "open";

/** Why a candidate was left out of a decision (for /admin/routes and `explain`). */
export type Exclusion = "context" | "capability" | "open" | "cooling";

export interface Decision {
  readonly route: string;
  /** Models to try, in order. Empty when nothing is usable (see `retryAfterMs`). */
  readonly plan: readonly CatalogModel[];
  readonly reason: DecisionReason;
  /** No candidate was predicted to meet the target. */
  readonly atRisk: boolean;
  /** Predicted latency of the first model in the plan at the route's percentile, in ms. */
  readonly predictedMs: number;
  /** Output tokens assumed for cost and total-latency prediction. */
  readonly expectedOutputTokens: number;
  /** When every candidate is cooling down after 429s: the shortest wait, in ms. */
  readonly retryAfterMs: number | undefined;
  /** `plan[0]` is an exploration or half-open probe (its report must carry `probe: true`). */
  readonly probe: boolean;
  /**
   * When plan[0] has not delivered (its first content; a non-streamed answer) this long after it
   * started, in ms, a hedge is due (`Brain.hedge`). Undefined: no hedge for this request.
   */
  readonly hedgeAfterMs: number | undefined;
  /**
   * When the plan is empty: why the candidates were left out — "context" (no window is large enough),
   * "capability", "cooling" (429s: see `retryAfterMs`) or "open" (circuits). Undefined otherwise.
   */
  readonly excludedBy?: Exclusion;
}

/**
 * How an attempt ended. `superseded`: cancelled because another attempt of the request delivered first
 * (a hedge race); neither the model's success nor its failure. `gateway_error`: the gateway itself could
 * not make the call (out of file descriptors or local ports); nothing is learnt about the model.
 */
export type AttemptOutcome = "ok" | "timeout" | "error" | "rate_limited" | "client_error" | "superseded" | "gateway_error";

/** What happened to one upstream attempt; fed back to the brain. */
export interface AttemptReport {
  readonly modelId: string;
  readonly route: string;
  readonly outcome: AttemptOutcome;
  /**
   * Time to first content token, in ms: measured on streams. Non-streaming attempts report only
   * `totalMs` (+ `outputTokens`); the brain derives their first-token time from its per-token estimate.
   */
  readonly ttftMs?: number;
  /** Whole attempt, in ms (successful attempts). */
  readonly totalMs?: number;
  readonly promptTokens?: number;
  readonly outputTokens?: number;
  /** For timeouts: the deadline that fired, in ms (recorded as a censored sample ≥ this). */
  readonly deadlineMs?: number;
  /** Which latency the timed-out deadline bounds. */
  readonly timeoutMetric?: "ttft" | "total";
  /** For 429s: the provider's Retry-After, in ms, if it sent one. */
  readonly retryAfterMs?: number;
  /** This attempt was an exploration or half-open probe. */
  readonly probe?: boolean;
  /** The first token was already learnt (`Brain.firstToken` or `Brain.attemptLate`): not recorded again. */
  readonly ttftRecorded?: boolean;
  /** For `superseded`: how long the attempt ran, in ms (a lower bound of its latency, if it had no first token). */
  readonly elapsedMs?: number;
}
