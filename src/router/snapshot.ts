// A route's candidates as /admin/routes and `subsecond explain` show them.
import type { CandidateTable } from "./candidates.js";
import type { Exclusion, ModelState, RoutePolicy } from "./types.js";

/** One candidate of a route, for a typical or a given request. */
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
  /** Predicted latency at the route's target metric and percentile (upper confidence bound), in ms. */
  readonly predictedMs: number;
  /** Observed latency at the route's target metric and percentile, in ms (compare with predictedMs); null without samples. */
  readonly observedMs: number | null;
  /** Share (0..1) of the route's recently served requests that this model served (decayed); null before any. */
  readonly share: number | null;
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
  /** The context window the router uses, in tokens: the learned one when there is one, else the configured one. */
  readonly contextTokens: number;
  /** The window a provider stated in a context_length_exceeded, when smaller than the configured one; null otherwise. */
  readonly learnedContextTokens: number | null;
  /** The model lists prefill and has not refused one since the last reload: it may continue a cut stream. */
  readonly mayContinue: boolean;
}

/**
 * The evaluated rows of `table`, in configured order; `chosen` is the row the strategy puts first,
 * `target` the route's, and `shareOf` a model's share of the route's served requests.
 */
export function snapshotRows(
  table: CandidateTable,
  chosen: number,
  target: RoutePolicy["target"],
  shareOf: (modelId: string) => number | null,
  nowMs: number,
): CandidateRow[] {
  const out: CandidateRow[] = [];
  for (let i = 0; i < table.count; i++) {
    const row = table.row(i);
    const { model, entry } = row;
    const ttft = entry.stats.ttftMs;
    const hasTtft = ttft.effectiveCount(nowMs) > 0;
    const observed = target.metric === "ttft" ? ttft : entry.stats.totalMs;
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
      observedMs: observed.effectiveCount(nowMs) > 0 ? observed.quantile(target.percentile / 100) : null,
      share: shareOf(model.id),
      observedTtftP50Ms: hasTtft ? ttft.quantile(0.5) : null,
      observedTtftP95Ms: hasTtft ? ttft.quantile(0.95) : null,
      state: entry.health.state(nowMs),
      eligible: row.exclusion === null,
      exclusion: row.exclusion ?? (row.within ? null : "over-target"),
      wouldChoose: i === chosen,
      inFlight: entry.stats.inFlight,
      errorRate: Number.isNaN(errorRate) ? null : errorRate,
      timeoutRate: Number.isNaN(timeoutRate) ? null : timeoutRate,
      contextTokens: entry.learnedContextTokens ?? model.contextTokens,
      learnedContextTokens: entry.learnedContextTokens ?? null,
      mayContinue: model.capabilities.has("prefill") && !entry.prefillRefused,
    });
  }
  return out;
}
