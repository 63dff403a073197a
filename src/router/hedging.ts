// Hedged attempts (DESIGN.md "Hedging: the target is a promise"): when plan[0] has not delivered by the
// hedge delay, a second attempt goes to the candidate most likely to deliver in the time left, cheapest
// among those; a per-route token bucket caps how many hedges are sent.
import type { CandidateTable } from "./candidates.js";
import type { CatalogModel, RoutePolicy } from "./types.js";

/** Why no hedge was sent when one was due. */
export type HedgeRefusal = "over_budget" | "no_candidate";

export type HedgeChoice = { readonly model: CatalogModel } | { readonly refused: HedgeRefusal };

/** Whole hedges the bucket holds at most: maxRatio × 100, at least one (a burst of a brownout's start). */
export function hedgeCapacity(route: RoutePolicy): number {
  return Math.max(1, route.hedging.maxRatio * 100);
}

/**
 * When to hedge plan[0] (row `first`), in ms from its start; undefined for no hedge. The delay is the
 * latest moment at which the fastest other candidate, at its predicted latency plus the margin, still
 * meets the target (target − prediction − margin): a hedge sent later could not keep the promise. A probe
 * is always hedged then: a probe never costs the target. Any other first attempt is hedged only when its
 * own slow tail, its predicted latency at `hedgeTailPercentile` (`firstTailMs`), comes before that
 * moment: otherwise most requests would be due a hedge, and the budget would go to chance rather than
 * to slow ones. A model whose tail reaches past the rescue point is left to its first-token deadline.
 */
export function hedgeDelayMs(table: CandidateTable, route: RoutePolicy, first: number, probe: boolean, firstTailMs: number): number | undefined {
  const { ms: targetMs } = route.target;
  const marginMs = route.hedging.marginMs;
  let fastestMs = Number.POSITIVE_INFINITY;
  for (let k = 0; k < table.eligible; k++) {
    const index = table.at(k);
    const row = table.row(index);
    if (index === first || row.halfOpen) continue;
    if (row.speedMs < fastestMs) fastestMs = row.speedMs;
  }
  if (fastestMs === Number.POSITIVE_INFINITY) return undefined;
  const rescueMs = Math.max(0, targetMs - fastestMs - marginMs);
  return probe || firstTailMs <= rescueMs ? rescueMs : undefined;
}

/**
 * The percentile of plan[0]'s latency past which a hedge is due: 100 × (1 − maxRatio / 2), 50..99.5.
 * In a steady state about half the budget goes to slow first attempts; the rest is left for probes
 * and for the start of a brownout, before the statistics catch up.
 */
export function hedgeTailPercentile(route: RoutePolicy): number {
  return Math.min(99.5, Math.max(50, 100 * (1 - route.hedging.maxRatio / 2)));
}

/**
 * The hedge for a request whose first attempt has run `elapsedMs`: among eligible rows not yet tried
 * (and not half-open), the cheapest predicted to deliver within the time left, else the fastest.
 * `table` holds this request's evaluation.
 */
export function chooseHedge(table: CandidateTable, route: RoutePolicy, tried: ReadonlySet<string>, elapsedMs: number): number {
  const leftMs = route.target.ms - elapsedMs - route.hedging.marginMs;
  let cheapest = -1;
  let fastest = -1;
  for (let k = 0; k < table.eligible; k++) {
    const index = table.at(k);
    const row = table.row(index);
    if (row.halfOpen || tried.has(row.model.id)) continue;
    if (fastest < 0 || row.speedMs < table.row(fastest).speedMs) fastest = index;
    if (row.speedMs <= leftMs && (cheapest < 0 || row.costUsd < table.row(cheapest).costUsd)) cheapest = index;
  }
  return cheapest >= 0 ? cheapest : fastest;
}
