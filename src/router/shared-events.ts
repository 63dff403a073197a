// What one replica's brain tells the others (DESIGN.md "Beyond one machine"): observations, not
// snapshots. Each event is something the brain learnt or decided about one model entry; a replica that
// receives it applies it to its own statistics and health as if it had seen it (Brain.applyShared).
import type { LatencyMetric } from "./predict.js";
import type { AttemptOutcome } from "./types.js";

/** A finished attempt, as other replicas learn it: AttemptReport without the route (routes are local). */
export interface SharedAttempt {
  readonly modelId: string;
  readonly outcome: AttemptOutcome;
  readonly ttftMs?: number;
  readonly totalMs?: number;
  readonly promptTokens?: number;
  readonly outputTokens?: number;
  readonly deadlineMs?: number;
  readonly timeoutMetric?: LatencyMetric;
  /** The first token was shared already (a `first_token` or `late` event): not recorded again. */
  readonly ttftRecorded?: boolean;
  readonly elapsedMs?: number;
  /** The attempt was the sender's probe: its lease on the model's probe ends. */
  readonly probe?: boolean;
}

export type SharedEvent =
  | { readonly kind: "first_token"; readonly modelId: string; readonly ttftMs: number }
  | { readonly kind: "late"; readonly modelId: string; readonly metric: LatencyMetric; readonly elapsedMs: number }
  | { readonly kind: "finished"; readonly attempt: SharedAttempt }
  /** The model answered 429: cooling for `coolMs` from the event. */
  | { readonly kind: "cooling"; readonly modelId: string; readonly coolMs: number }
  /** The model's circuit opened (or a failed probe reopened it). */
  | { readonly kind: "opened"; readonly modelId: string }
  /** A probe closed the model's circuit. */
  | { readonly kind: "closed"; readonly modelId: string }
  /** The sender probes the model (stale, recovering or half-open): others hold off for `leaseMs` or until it finishes. */
  | { readonly kind: "probe"; readonly modelId: string; readonly leaseMs: number }
  /** The recovery rule forgot the model's history older than `agoMs` before the event. */
  | { readonly kind: "forgot"; readonly modelId: string; readonly agoMs: number };

/** Events others should see at once rather than within the batch interval: health and probe leases. */
export function isUrgent(event: SharedEvent): boolean {
  return event.kind !== "first_token" && event.kind !== "late" && event.kind !== "finished";
}
