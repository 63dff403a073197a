// What every upstream attempt is given and what it reports: one model, one upstream call, one result.
import type { CatalogModel } from "../router/types.js";
import type { AttemptFailure } from "./failures.js";
import type { AttemptRecord } from "./recorder.js";
import type { RequestOutcome } from "../metrics/metrics.js";
import type { UpstreamProvider } from "./upstream.js";

/** The gateway-side clock of an attempt: time spent in the gateway, and the first content. */
export interface AttemptMeter {
  addOverhead(ms: number): void;
  /** The first content of `model` left for the client at `atMs` (performance.now()). */
  firstToken(model: CatalogModel, atMs: number): void;
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
  readonly meter: AttemptMeter;
  /** The routing headers of the response, computed when it is sent. */
  readonly responseHeaders: () => Record<string, string>;
}

/** Nothing reached the client: the executor may try the next candidate. */
export interface AttemptFailed {
  readonly kind: "failed";
  readonly failure: AttemptFailure;
  readonly record: AttemptRecord;
}

/** The client got its answer (or, for a stream cut after content, an in-band error). */
export interface AttemptServed {
  readonly kind: "served";
  readonly outcome: RequestOutcome;
  readonly status: number;
  readonly record: AttemptRecord;
  /** performance.now() when the response ended. */
  readonly endedAt: number;
}

/** The record of a failure before anything reached the client; a timeout carries its deadline. */
export function failedAttempt(spec: AttemptSpec, failure: AttemptFailure, elapsedMs: number, timeoutMetric: "ttft" | "total", deadlineMs?: number): AttemptFailed {
  return {
    kind: "failed",
    failure,
    record: {
      model: spec.model,
      probe: spec.probe,
      outcome: failure.outcome,
      ...(failure.outcome === "timeout" ? { deadlineMs: deadlineMs ?? elapsedMs, timeoutMetric } : {}),
      ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
    },
  };
}
