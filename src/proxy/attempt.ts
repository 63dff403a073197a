// What every upstream attempt is given and what it reports: one model, one upstream call, one result.
import type { GatewayError } from "../errors.js";
import type { CatalogModel } from "../router/types.js";
import type { AttemptFailure } from "./failures.js";
import type { AttemptRecord } from "./recorder.js";
import type { RequestOutcome } from "../metrics/metrics.js";
import type { Usage } from "./sse.js";
import type { UpstreamProvider } from "./upstream.js";

/** What an attempt tells the request it belongs to, as it runs. */
export interface AttemptEvents {
  /** Time spent in the gateway, not waiting for the upstream or the client, in ms. */
  addOverhead(ms: number): void;
  /**
   * The first content arrived `ttftMs` after the attempt started (`learn`: not yet reported as late).
   * True when this attempt answers the client; false when another attempt of the request got there
   * first (this one then stops).
   */
  firstContent(ttftMs: number, learn: boolean): boolean;
  /** The first content left for the client at `atMs` (performance.now()). */
  committed(atMs: number): void;
  /** Still no first content `elapsedMs` after the start, past the target: learnt now as a lower bound. */
  late(elapsedMs: number): void;
}

export interface AttemptSpec {
  readonly model: CatalogModel;
  readonly provider: UpstreamProvider;
  /** The request body for this model (`model` rewritten). */
  readonly body: Buffer;
  /** Client headers passed to the provider. */
  readonly passHeaders: Readonly<Record<string, string>>;
  /** An exploration or half-open probe. */
  readonly probe: boolean;
  readonly events: AttemptEvents;
  /** The routing headers of the response, computed when it is sent. */
  readonly responseHeaders: () => Record<string, string>;
}

/** Nothing reached the client: the executor may try the next candidate. */
export interface AttemptFailed {
  readonly kind: "failed";
  readonly failure: AttemptFailure;
  readonly record: AttemptRecord;
  /** How long the attempt ran, in ms. */
  readonly elapsedMs: number;
}

/**
 * A stream that failed after content reached the client, left open: continued on another model
 * (continuation.ts), or ended with `error`.
 */
export interface StreamCut {
  /** The in-band error that ends the client's stream when nobody continues it. */
  readonly error: GatewayError;
  /** The upstream's own error event, sent before `error`, when an in-band error cut the stream. */
  readonly upstreamEvent: Buffer | undefined;
  /** The `delta.content` text the client received. */
  readonly text: string;
  /** Tool calls, a function call or a refusal reached the client: a prefill cannot carry them. */
  readonly structured: boolean;
  /** The first content event the client received (its `id` is the stream's). */
  readonly firstContent: Buffer | undefined;
  /** Usage the upstream reported before the cut, if any. */
  readonly usage: Usage | undefined;
}

/** The client got its answer (or, for a stream cut after content, an in-band error). */
export interface AttemptServed {
  readonly kind: "served";
  readonly outcome: RequestOutcome;
  readonly status: number;
  readonly record: AttemptRecord;
  /** performance.now() when the response ended. */
  readonly endedAt: number;
  /** A stream cut after content: the client's response is still open, for the caller to end. */
  readonly cut?: StreamCut;
}

/** The record of a failure before anything reached the client; a timeout carries its deadline. */
export function failedAttempt(
  spec: AttemptSpec,
  failure: AttemptFailure,
  elapsedMs: number,
  timeoutMetric: "ttft" | "total",
  deadlineMs?: number,
  ttftRecorded = false,
): AttemptFailed {
  return {
    kind: "failed",
    failure,
    elapsedMs,
    record: {
      model: spec.model,
      probe: spec.probe,
      outcome: failure.outcome,
      ...(failure.outcome === "timeout" ? { deadlineMs: deadlineMs ?? elapsedMs, timeoutMetric } : {}),
      ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
      ...(ttftRecorded ? { ttftRecorded } : {}),
    },
  };
}
