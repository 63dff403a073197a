// Scores one observed run: the gateway as the client measured it, against the oracle and the reference
// policies computed analytically from the simulator's profile at each request's send time.
import { chooseAnalytically, expectedCompletionTokens } from "./oracle.mjs";
import { sumBy, total } from "./prometheus.mjs";
import { BIN_MS } from "./scenario-run.mjs";

/** Share of the route's decisions below which a degraded model counts as left. */
export const LEAVE_BELOW = 0.2;
/** Share of the route's decisions above which a recovered model counts as back. */
export const RETURN_ABOVE = 0.5;
/** Window before the degradation over which `shareBefore` is measured, in ms. */
const BEFORE_MS = 5000;
/** Outcomes of subsecond_hedges_total, reported as 0 when the metric does not exist. */
const HEDGE_OUTCOMES = ["won", "lost", "failed", "over_budget"];

const ratio = (a, b) => (b > 0 ? a / b : null);

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** How often each key occurs, largest first; as shares of all keys when `asShares`. */
function tally(keys, asShares) {
  const counts = new Map();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).map(([key, count]) => [key, asShares ? count / keys.length : count]));
}

/**
 * Bins of the route's decisions between consecutive /metrics reads: start and end (ms after the story
 * start), decisions on `model`, and all decisions.
 */
function decisionBins(ticks, model) {
  const bins = [];
  for (let i = 1; i < ticks.length; i++) {
    const before = ticks[i - 1];
    const after = ticks[i];
    let all = 0;
    for (const [id, count] of after.decisions) all += count - (before.decisions.get(id) ?? 0);
    const onModel = (after.decisions.get(model) ?? 0) - (before.decisions.get(model) ?? 0);
    bins.push({ startMs: before.atMs, endMs: after.atMs, onModel, all });
  }
  return bins;
}

/**
 * How fast the router left a degraded model and came back, from the route's first choices per bin:
 * - leaveSeconds: from the degradation's start to the start of the first bin from which the model's
 *   share stays below LEAVE_BELOW until the degradation ends (null: it never did);
 * - returnSeconds: from the degradation's end to the start of the first later bin in which its share
 *   is above RETURN_ABOVE (null: not before the run ended);
 * - shareBefore / shareDuring: its share of decisions in the 5 s before, and during, the degradation;
 * - bins: every bin as [start s, decisions on the model, all decisions], for plots.
 * Bins with no decision carry no information and are skipped.
 */
export function leaveAndReturn(ticks, { model, fromMs, toMs }) {
  const bins = decisionBins(ticks, model).filter((bin) => bin.all > 0);
  const midpoint = (bin) => (bin.startMs + bin.endMs) / 2;
  const during = bins.filter((bin) => midpoint(bin) >= fromMs && midpoint(bin) < toMs);
  let left = null;
  for (let i = during.length - 1; i >= 0 && during[i].onModel / during[i].all < LEAVE_BELOW; i--) left = during[i];
  const back = bins.find((bin) => midpoint(bin) >= toMs && bin.onModel / bin.all > RETURN_ABOVE);
  const shareOf = (list) =>
    ratio(
      list.reduce((sum, bin) => sum + bin.onModel, 0),
      list.reduce((sum, bin) => sum + bin.all, 0),
    );
  return {
    model,
    fromSeconds: fromMs / 1000,
    toSeconds: toMs / 1000,
    leaveSeconds: left === null ? null : Math.max(0, left.startMs - fromMs) / 1000,
    returnSeconds: back === undefined ? null : Math.max(0, back.startMs - toMs) / 1000,
    shareBefore: shareOf(bins.filter((bin) => midpoint(bin) >= fromMs - BEFORE_MS && midpoint(bin) < fromMs)),
    shareDuring: shareOf(during),
    bins: bins.map((bin) => [Math.round(bin.startMs) / 1000, bin.onModel, bin.all]),
  };
}

/**
 * The figures of one run (see README.md for their definitions).
 * @param {import("./scenario-run.mjs").ObservedRun} run
 * @param {{ scenario: import("./scenarios.mjs").Scenario, seed: number, durationMs: number, target: { percentile: number, ms: number } }} context
 */
export function scoreRun(run, { scenario, seed, durationMs, target }) {
  const profiles = new Map(run.profiles.models.map((model) => [model.id, model]));
  const profileOf = (id) => {
    const profile = profiles.get(id);
    if (profile === undefined) throw new Error(`the gateway's candidate ${id} is not in the scenario's profiles`);
    return profile;
  };
  const completionCache = new Map();
  const completionTokensOf = (id, maxTokens) => {
    const key = `${id}\n${maxTokens}`;
    let tokens = completionCache.get(key);
    if (tokens === undefined) completionCache.set(key, (tokens = expectedCompletionTokens(profileOf(id).outputTokens, maxTokens)));
    return tokens;
  };
  const prices = new Map(run.candidates.map((candidate) => [candidate.id, candidate.pricePerMTok]));

  const sent = run.records.filter((record) => Number.isFinite(record.sentAtMs));
  const scored = sent.map((record) => ({
    record,
    analytic: chooseAnalytically({
      candidates: run.candidates,
      profileOf,
      phaseOf: (id) => run.phaseAt(id, record.sentAtMs),
      target,
      promptTokens: record.request.promptTokens,
      maxTokens: record.request.maxTokens,
      completionTokensOf,
    }),
  }));
  const mean = (values) => (values.length === 0 ? null : values.reduce((sum, value) => sum + value, 0) / values.length);
  const met = sent.filter((record) => record.ok && record.ttftMs !== null && record.ttftMs <= target.ms).length;

  // Cost is compared on the requests that completed with usage, the only ones the client can price.
  const priced = scored.filter(({ record }) => record.ok && record.usage !== null && prices.has(record.servedModel));
  const gatewayCostUsd = priced.reduce((sum, { record }) => {
    const price = prices.get(record.servedModel);
    return sum + (record.usage.prompt * price.input + record.usage.completion * price.output) / 1e6;
  }, 0);
  const policyCost = (policy) => priced.reduce((sum, { analytic }) => sum + analytic[policy].costUsd, 0);
  const oracleCostUsd = policyCost("oracle");

  const metrics = run.finalMetrics.samples;
  const upstreamAttempts = total(metrics, "subsecond_upstream_attempts_total");
  const gatewayRequests = total(metrics, "subsecond_requests_total");
  const hedgesByOutcome = sumBy(metrics, "subsecond_hedges_total", { by: "outcome" });
  const ttfts = sent
    .filter((record) => record.ok && record.ttftMs !== null)
    .map((record) => record.ttftMs)
    .sort((a, b) => a - b);

  let degradation = null;
  if (scenario.degradation !== null) {
    const episode = run.profiles.timeline.find((entry) => entry.name === scenario.degradation);
    if (episode === undefined || episode.models === "*") throw new Error(`scenario ${scenario.name}: no episode "${scenario.degradation}" naming its models`);
    degradation = {
      episode: episode.name,
      ...leaveAndReturn(run.ticks, { model: episode.models[0], fromMs: episode.from * durationMs, toMs: episode.to * durationMs }),
    };
  }

  return {
    seed,
    requests: {
      planned: run.records.length,
      sent: sent.length,
      ok: sent.filter((record) => record.ok).length,
      failed: sent.filter((record) => !record.ok).length,
    },
    attainment: {
      gateway: ratio(met, sent.length),
      oracle: mean(scored.map(({ analytic }) => analytic.oracle.attainment)),
      fastest: mean(scored.map(({ analytic }) => analytic.fastest.attainment)),
      cheapest: mean(scored.map(({ analytic }) => analytic.cheapest.attainment)),
    },
    costRatio: {
      gateway: ratio(gatewayCostUsd, oracleCostUsd),
      fastest: ratio(policyCost("fastest"), oracleCostUsd),
      cheapest: ratio(policyCost("cheapest"), oracleCostUsd),
    },
    costUsd: { gateway: gatewayCostUsd, oracle: oracleCostUsd, pricedRequests: priced.length },
    extraAttemptsPer100: gatewayRequests > 0 ? ((upstreamAttempts - gatewayRequests) / gatewayRequests) * 100 : null,
    upstreamAttempts,
    gatewayRequests,
    hedgesMetric: run.finalMetrics.types.has("subsecond_hedges_total"),
    hedges: Object.fromEntries(HEDGE_OUTCOMES.map((outcome) => [outcome, hedgesByOutcome.get(outcome) ?? 0])),
    clientTtftMs: { p50: quantile(ttfts, 0.5), p95: quantile(ttfts, 0.95) },
    degradation,
    servedBy: tally(
      sent.map((record) => record.servedModel ?? "(failed)"),
      true,
    ),
    oracleChoices: tally(
      scored.map(({ analytic }) => analytic.oracle.id),
      true,
    ),
    errors: tally(
      sent.filter((record) => !record.ok).map((record) => record.error),
      false,
    ),
    binMs: BIN_MS,
    wallSeconds: run.wallMs / 1000,
    host: run.host,
  };
}
