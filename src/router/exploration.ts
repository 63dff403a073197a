// Exploration: which candidate a decision probes instead of its choice (a stale cheaper one, a new one
// never measured enough, a recovering one), and the recovery rule that lets probes re-admit a model.
import type { StatsConfig } from "../config/schema.js";
import type { CandidateTable, Row } from "./candidates.js";
import type { Entry } from "./entry.js";
import type { Target } from "../config/schema.js";
import type { AttemptReport, RoutePolicy } from "./types.js";

/** Spread of ln(latency) assumed by the recovery bar: a typical LLM first token, p95 ≈ 1.6 × median. */
const RECOVERY_SIGMA = 0.3;

/** Standard normal quantile for p in (0.5, 1) (Abramowitz & Stegun 26.2.23; error under 5e-4). */
function normalQuantile(p: number): number {
  if (p <= 0.5) return 0;
  const t = Math.sqrt(-2 * Math.log(1 - p));
  return t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
}

/**
 * The latency a probe must beat to extend a recovery streak: the target scaled from the route's
 * percentile down to the median (of a lognormal of spread RECOVERY_SIGMA). A model whose percentile
 * misses the target beats it with probability under one half, so `recoverySamples` probes in a row
 * re-admit it by chance with probability under 2^-recoverySamples; meeting the target itself would let a
 * model whose p95 is 1 s pass three p95 probes at 800 ms about half the time.
 */
export function recoveryBarMs(target: Target): number {
  return target.ms * Math.exp(-normalQuantile(target.percentile / 100) * RECOVERY_SIGMA);
}

/** The stalest eligible row worth probing instead of `chosen`, or -1. */
export function staleTarget(table: CandidateTable, route: RoutePolicy, chosen: number, atRisk: boolean, nowMs: number): number {
  const chosenCost = table.row(chosen).costUsd;
  const anyPrice = atRisk || route.strategy === "fastest";
  const staleBeforeMs = nowMs - route.exploration.staleAfterMs;
  let best = -1;
  let bestAtMs = Number.POSITIVE_INFINITY;
  let bestCost = Number.POSITIVE_INFINITY;
  for (let k = 0; k < table.eligible; k++) {
    const index = table.at(k);
    if (index === chosen) continue;
    const row = table.row(index);
    if (!anyPrice && !(row.costUsd < chosenCost)) continue;
    if (row.entry.health.probeBusy(nowMs)) continue;
    // A model in the middle of a recovery streak is probed next, stale or not, so that a recovered
    // model completes its streak within a few probes instead of waiting its turn among stale ones.
    if (row.entry.recoveryStreak > 0) return index;
    // A probe cancelled by its hedge may leave no sample: it still counts, or it would be sent again and again.
    const newestMs = Math.max(row.entry.stats.newestSampleAtMs, row.entry.probedAtMs);
    if (newestMs > staleBeforeMs) continue;
    if (newestMs < bestAtMs || (newestMs === bestAtMs && row.costUsd < bestCost)) {
      best = index;
      bestAtMs = newestMs;
      bestCost = row.costUsd;
    }
  }
  return best;
}

/**
 * The cheapest eligible row cheaper than `chosen` that has not been measured `minSamples` times in its
 * life (a new model, or one a config change brought in), with fewer than that many attempts in flight;
 * or -1. Probed at `exploration.newModelRatio`, under a hedge, it is measured within seconds.
 */
export function newModelTarget(table: CandidateTable, chosen: number, minSamples: number): number {
  const chosenCost = table.row(chosen).costUsd;
  let best = -1;
  for (let k = 0; k < table.eligible; k++) {
    const index = table.at(k);
    const row = table.row(index);
    if (index === chosen || row.halfOpen || !(row.costUsd < chosenCost)) continue;
    if (row.entry.lifetimeAttempts + row.entry.stats.inFlight >= minSamples) continue;
    if (best < 0 || row.costUsd < table.row(best).costUsd) best = index;
  }
  return best;
}

/** Holds `row`'s probe slot and notes what the decision expected of the probe, for the recovery rule. */
export function reserveProbe(row: Row, route: RoutePolicy, nowMs: number): void {
  const entry = row.entry;
  // Long enough to bridge decide → attemptStarted; short, so a probe that never started blocks little.
  entry.health.reserveProbe(nowMs + route.deadlines.firstTokenMs);
  entry.probedAtMs = nowMs;
  entry.probeMetric = route.target.metric;
  entry.probeBarMs = recoveryBarMs(route.target);
  entry.probePredictedMiss = !row.within;
}

/**
 * Recovery rule (predict.ts): a probe under the recovery bar while its prediction said the model would
 * miss extends the streak; `recoverySamples` in a row forget the history before the first of them. Any
 * other probe result that says something about latency ends the streak. `ttftMs`: the probe's first
 * token, measured (streams) or derived from its total (non-streams). Returns whether the history was forgotten.
 */
export function applyRecoveryRule(entry: Entry, report: AttemptReport, ttftMs: number | undefined, config: StatsConfig, nowMs: number): boolean {
  const metric = entry.probeMetric;
  if (metric === undefined) return false;
  entry.probeMetric = undefined;
  if (report.outcome === "client_error" || report.outcome === "rate_limited" || report.outcome === "superseded") return false;
  const measuredMs = metric === "ttft" ? ttftMs : report.totalMs;
  if (report.outcome === "ok" && measuredMs === undefined) return false;
  // The bar is for a tiny prompt: the probe's own prompt is read first (prefillTokensPerSecond).
  const valueMs = measuredMs === undefined ? undefined : measuredMs - ((report.promptTokens ?? 0) * 1000) / config.prefillTokensPerSecond;
  if (report.outcome !== "ok" || valueMs === undefined || valueMs > entry.probeBarMs || !entry.probePredictedMiss) {
    entry.recoveryStreak = 0;
    return false;
  }
  if (entry.recoveryStreak === 0) entry.recoverySinceMs = nowMs;
  entry.recoveryStreak++;
  if (entry.recoveryStreak >= config.recoverySamples) {
    entry.stats.forgetBefore(entry.recoverySinceMs, nowMs, config.minSamples);
    entry.recoveryStreak = 0;
    return true;
  }
  return false;
}
