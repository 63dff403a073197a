// Exploration: which candidate a decision probes instead of its choice (a stale cheaper one, a new one
// never measured enough, a recovering one), and the recovery rule that lets probes re-admit a model.
import type { StatsConfig } from "../config/schema.js";
import type { CandidateTable, Row } from "./candidates.js";
import type { Entry } from "./entry.js";
import type { Target } from "../config/schema.js";
import { normalQuantile } from "./predict.js";
import type { AttemptReport, RoutePolicy } from "./types.js";

/** Spread of ln(latency) assumed by the recovery bar: a typical LLM first token, p95 ≈ 1.6 × median. */
const RECOVERY_SIGMA = 0.3;

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

/** How many times `exploration.staleAfterMs` the route waits between probes of long shots. */
const LONG_SHOT_STALENESS = 8;
/** How long a model chosen within target stays worth probing at the route's rate, in ms: a long brownout. */
const PROMISE_MEMORY_MS = 10 * 60_000;

/**
 * A candidate worth probing at the route's rate: one chosen within target in the last PROMISE_MEMORY_MS
 * (a browned-out favourite, whose return is what probes are for), or one whose prior, read as the router
 * reads an unmeasured model (× `stats.coldPenalty`, which turns a typical latency into its slow side),
 * meets the target. The others are long shots: a model that has never looked able to meet the target is
 * probed LONG_SHOT_STALENESS times less often, and the long shots share one probe per that long between
 * them, so that the probes (each one hedged, from the hedge budget) go where a return is likely instead
 * of rotating through every slow cheap model: four long shots, each probed at that pace, took half of the
 * demo route's probes. A prior's median under the target is not enough: a model with a 650 ms median
 * misses an 800 ms p95.
 */
function promising(row: Row, route: RoutePolicy, outputTokens: number, config: StatsConfig, nowMs: number): boolean {
  if (nowMs - row.entry.withinAtMs < PROMISE_MEMORY_MS) return true;
  const prior = row.model.prior ?? config.defaultPrior;
  const typicalMs = prior.ttftMs + (route.target.metric === "total" ? (outputTokens * 1000) / prior.tokensPerSecond : 0);
  return typicalMs * config.coldPenalty <= route.target.ms;
}

/** A row `staleTarget` may probe instead of `chosen`: cheaper (or any price), its probe slot free. */
function probeable(row: Row, chosenCost: number, anyPrice: boolean, nowMs: number): boolean {
  return (anyPrice || row.costUsd < chosenCost) && !row.entry.health.probeBusy(nowMs);
}

/** Probes of a recovery streak, after its first, that need no exploration token. */
const FREE_STREAK_PROBES = 3;

/**
 * An eligible row in the middle of a recovery streak, or -1. It is probed next, stale or not, and
 * without waiting for an exploration token (up to FREE_STREAK_PROBES probes, one at a time): a
 * recovered model completes its streak within a few answers instead of one probe per
 * 1 / `exploration.ratio` requests, which at 2% and 20 requests a second would keep it out for ten
 * seconds. The first probe of a streak is paid for, and any streak ends at the first probe that fails.
 */
export function recoveringTarget(table: CandidateTable, route: RoutePolicy, chosen: number, atRisk: boolean, nowMs: number): number {
  const chosenCost = table.row(chosen).costUsd;
  const anyPrice = atRisk || route.strategy === "fastest";
  for (let k = 0; k < table.eligible; k++) {
    const index = table.at(k);
    const row = table.row(index);
    const streak = row.entry.recoveryStreak;
    if (index !== chosen && streak > 0 && streak <= FREE_STREAK_PROBES && probeable(row, chosenCost, anyPrice, nowMs)) return index;
  }
  return -1;
}

/**
 * The cheapest eligible row worth probing instead of `chosen` (the stalest among equals), or -1. Each is
 * probed at most once per `staleAfterMs` (a long shot once per LONG_SHOT_STALENESS times that, and the
 * long shots together as often), so the cheapest go first and the budget goes where a return saves
 * most: at a 2% ratio and 20 requests a second, stalest-first rotates through every cheaper candidate
 * and leaves a recovered favourite unprobed for tens of seconds. But the model probed last comes last:
 * when probes come less often than `staleAfterMs`, every candidate is always stale, and the cheapest
 * would take every probe; a cheaper model that is always slow would keep a recovered favourite out for
 * good.
 */
export function staleTarget(
  table: CandidateTable,
  route: RoutePolicy,
  chosen: number,
  atRisk: boolean,
  outputTokens: number,
  config: StatsConfig,
  nowMs: number,
): number {
  const chosenCost = table.row(chosen).costUsd;
  const anyPrice = atRisk || route.strategy === "fastest";
  const staleAfterMs = route.exploration.staleAfterMs;
  let best = -1;
  let bestAtMs = Number.POSITIVE_INFINITY;
  let bestCost = Number.POSITIVE_INFINITY;
  let lastProbedMs = Number.NEGATIVE_INFINITY;
  let lastLongShotMs = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < table.eligible; k++) {
    const row = table.row(table.at(k));
    lastProbedMs = Math.max(lastProbedMs, row.entry.probedAtMs);
    if (row.entry.probedAtMs > lastLongShotMs && !promising(row, route, outputTokens, config, nowMs)) lastLongShotMs = row.entry.probedAtMs;
  }
  const longShotDue = lastLongShotMs <= nowMs - staleAfterMs * LONG_SHOT_STALENESS;
  let last = -1;
  for (let k = 0; k < table.eligible; k++) {
    const index = table.at(k);
    const row = table.row(index);
    if (index === chosen || !probeable(row, chosenCost, anyPrice, nowMs)) continue;
    // A streak longer than its free probes still goes first, stale or not.
    if (row.entry.recoveryStreak > 0) return index;
    // A probe cancelled by its hedge may leave no sample: it still counts, or it would be sent again and again.
    const newestMs = Math.max(row.entry.stats.newestSampleAtMs, row.entry.probedAtMs);
    if (newestMs > nowMs - staleAfterMs) continue;
    const longShotWaits = !longShotDue || newestMs > nowMs - staleAfterMs * LONG_SHOT_STALENESS;
    if (longShotWaits && !promising(row, route, outputTokens, config, nowMs)) continue;
    if (row.entry.probedAtMs === lastProbedMs && lastProbedMs > Number.NEGATIVE_INFINITY) {
      last = index;
      continue;
    }
    if (row.costUsd < bestCost || (row.costUsd === bestCost && newestMs < bestAtMs)) {
      best = index;
      bestAtMs = newestMs;
      bestCost = row.costUsd;
    }
  }
  return best >= 0 ? best : last;
}

/**
 * The cheapest eligible row cheaper than `chosen` that a config change brought in or repriced
 * (`Entry.newcomer`) and that has not been measured `minSamples` times in its life, with fewer than that
 * many attempts in flight; or -1. Probed at `exploration.newModelRatio`, under a hedge, it is measured
 * within seconds. The catalog the gateway starts with is not new: its cheaper models are there because
 * their priors miss the target, and stale probing (above) measures them at its own pace.
 */
export function newModelTarget(table: CandidateTable, chosen: number, minSamples: number): number {
  const chosenCost = table.row(chosen).costUsd;
  let best = -1;
  for (let k = 0; k < table.eligible; k++) {
    const index = table.at(k);
    const row = table.row(index);
    if (index === chosen || row.halfOpen || !row.entry.newcomer || !(row.costUsd < chosenCost)) continue;
    if (row.entry.lifetimeAttempts + row.entry.stats.inFlight >= minSamples) continue;
    if (best < 0 || row.costUsd < table.row(best).costUsd) best = index;
  }
  return best;
}

/**
 * Holds `row`'s probe slot and notes what the decision expected of the probe, for the recovery rule: a
 * probe counts when the model is predicted to miss the target, and a streak only starts while its recent
 * samples (their median) are over the recovery bar, or it has none. Fast probes disprove a slow present,
 * as in a brownout, where every recent answer was slow; they cannot disprove a slow tail (10% of first
 * tokens a second late, say), which a handful of probes passes by chance: such a model would be
 * re-admitted, miss, leave and come back again and again.
 */
export function reserveProbe(row: Row, route: RoutePolicy, nowMs: number): void {
  const entry = row.entry;
  // Long enough to bridge decide → attemptStarted; short, so a probe that never started blocks little.
  entry.health.reserveProbe(nowMs + route.deadlines.firstTokenMs);
  entry.probedAtMs = nowMs;
  entry.probeMetric = route.target.metric;
  entry.probeBarMs = recoveryBarMs(route.target);
  entry.probePredictedMiss = !row.within && (entry.recoveryStreak > 0 || !(entry.stats.recentMedianMs(route.target.metric) <= entry.probeBarMs));
}

/**
 * Recovery rule (predict.ts): a probe under the recovery bar while its prediction said the model would
 * miss extends the streak; `recoverySamples` in a row forget the history before the first of them. Any
 * other probe result that says something about latency ends the streak, a probe its hedge beat after
 * the bar included: it was slow. `ttftMs`: the probe's first token, measured (streams) or derived from
 * its total (non-streams). Returns whether the history was forgotten.
 */
export function applyRecoveryRule(entry: Entry, report: AttemptReport, ttftMs: number | undefined, config: StatsConfig, nowMs: number): boolean {
  const metric = entry.probeMetric;
  if (metric === undefined) return false;
  if (
    report.outcome === "superseded" &&
    report.elapsedMs !== undefined &&
    withoutPrefill(report.elapsedMs, report.promptTokens ?? 0, config) > entry.probeBarMs
  ) {
    return judgeProbe(entry, undefined, 0, config, nowMs);
  }
  if (report.outcome === "client_error" || report.outcome === "gateway_error" || report.outcome === "rate_limited" || report.outcome === "superseded") {
    entry.probeMetric = undefined;
    return false;
  }
  const measuredMs = metric === "ttft" ? ttftMs : report.totalMs;
  if (report.outcome === "ok" && measuredMs === undefined) {
    entry.probeMetric = undefined;
    return false;
  }
  return judgeProbe(entry, report.outcome === "ok" ? measuredMs : undefined, report.promptTokens ?? 0, config, nowMs);
}

/**
 * The recovery rule at a probe's first token, for a first-token target: the verdict is known then, a
 * stream's length later than at its end, so a recovered model's streak runs at the pace of first tokens.
 * Returns whether the history was forgotten.
 */
export function applyRecoveryAtFirstToken(entry: Entry, ttftMs: number, promptTokens: number, config: StatsConfig, nowMs: number): boolean {
  if (entry.probeMetric !== "ttft") return false;
  return judgeProbe(entry, ttftMs, promptTokens, config, nowMs);
}

/** A probe's latency for the recovery bar, which is for a tiny prompt: less the time to read its own prompt. */
function withoutPrefill(ms: number, promptTokens: number, config: StatsConfig): number {
  return ms - (promptTokens * 1000) / config.prefillTokensPerSecond;
}

/** Judges the current probe: `measuredMs` undefined for a failed probe. */
function judgeProbe(entry: Entry, measuredMs: number | undefined, promptTokens: number, config: StatsConfig, nowMs: number): boolean {
  entry.probeMetric = undefined;
  const valueMs = measuredMs === undefined ? undefined : withoutPrefill(measuredMs, promptTokens, config);
  if (valueMs === undefined || valueMs > entry.probeBarMs || !entry.probePredictedMiss) {
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
