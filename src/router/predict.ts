// Latency prediction for one request: the live quantile at the route's percentile, shifted for the
// request's size, blended with a deliberately pessimistic prior while live samples are few.
//
// Time to first token: quantile(TTFT) + (promptTokens − mean sampled prompt) / prefillTokensPerSecond,
// never below a quarter of the quantile (queueing and network time do not shrink with the prompt).
// Total: that + expectedOutputTokens × quantile(ms per output token), the slow side of decode speed.
// Adding two p-quantiles over-estimates the p-quantile of the sum, which errs on the safe side.
//
// Blending: with n effective (decayed) samples, live weight w = min(1, n / minSamples); the rest goes to
// the prior (the catalog prior, else stats.defaultPrior) times coldPenalty. This is the shape the
// `minSamples` setting documents ("after which live statistics fully replace the prior"). The softer
// w = n / (n + minSamples) was rejected: with the shipped default prior (2 s × 1.5) and an 800 ms
// target it needs ~22 effective samples before a fast model counts as within target, more than
// exploration (one probe per `staleAfterMs`, 30 s half-life) can ever accumulate, so a cheaper model
// that recovered would never be re-admitted.
//
// Honest uncertainty: the live quantile is read at an upper confidence bound of the percentile, not at
// the percentile itself. The p-quantile estimated from n samples has a standard error of sqrt(p(1−p)/n)
// in probability (the binomial count of samples under it), so the prediction reads the histogram at
// p + confidenceZ × sqrt(p(1−p)/n), capped halfway to 1: for a p95 target, from 5 samples nearly their
// maximum (p97.5), from 300 the p97, from 3000 the p95.6. n is the samples' effective sample size
// (decaying-histogram.ts): decayed samples weigh unequally, and a weighted share varies as from
// (Σw)²/Σw² equal samples, which a steady stream makes twice its decayed weight. A model measured from a
// handful of samples is not trusted like one measured from hundreds, and the chosen model's true p95
// keeps a margin under the target that shrinks with evidence.
//
// A fixed margin locks a model out after bad luck: when a chance run of slow answers pushes the bound of
// a favourite past the target (a 2% tail read at the p97.5, say), it gets no more traffic, and its samples
// fade together, so the run's share of them, and the bound, stay put until probes, one every few seconds,
// outnumber it. So each decision draws the margin (Thompson sampling): a candidate is judged within target
// at z = confidenceZ + a standard normal draw (candidates.ts; upperP reads the plain percentile for z ≤ 0).
// A model just past its bound wins a share of decisions that grows with its chance of meeting the
// target, and its statistics keep up; one whose plain percentile misses never wins a draw.
//
// Cold models never win on speed alone: the brain ranks a model whose prediction still leans on its
// prior (n < minSamples) no faster than the best well-measured candidate (see brain.ts), so a rosy
// prior cannot displace measured good latency; it can only win on price, within the target.
//
// Recovery rule (change detection). The decay window forgets a bad episode only slowly: after a model
// was slow, its history keeps predicting "slow" for several half-lives even when it is fast again. So
// when `recoverySamples` consecutive probes of a model met the route's target while its prediction said
// it would miss, the samples older than the first of those probes are forgotten: the histograms are
// rebuilt from the model's recent samples (a ring of 8), which count as `minSamples` samples so that
// they are trusted at once. A recovered model is then re-admitted after a few probes — seconds — rather
// than after the bad samples fade. The same rule admits a cheaper, never-measured model whose pessimistic
// prior said "too slow" once probes prove otherwise. The brain applies it (brain.ts, attemptFinished).
import type { StatsConfig } from "../config/schema.js";
import type { ModelStats } from "./model-stats.js";
import type { CatalogModel } from "./types.js";

/** Which latency a target bounds. */
export type LatencyMetric = "ttft" | "total";

/** A model's own prior (`CatalogModel.prior`), or undefined to use `stats.defaultPrior`. */
export type Prior = CatalogModel["prior"];

/** Standard normal quantile for p in [0, 1) (Abramowitz & Stegun 26.2.23; error under 5e-4). */
export function normalQuantile(p: number): number {
  if (p < 0.5) return -normalQuantile(1 - p);
  const t = Math.sqrt(-2 * Math.log(Math.max(1 - p, Number.MIN_VALUE)));
  return t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
}

/**
 * The probability at which to read a histogram for the `p` quantile (0..1), given its effective sample
 * size `sampleSize` (`DecayingHistogram.effectiveSampleSize`): `p` raised by `z` standard errors, at
 * most halfway to 1, rounded to 0.001 so that quantile caches stay useful. The cap keeps a small tail
 * past the target percentile (2% of first tokens ×4, say) from shutting a model out whenever its
 * samples thin out: p95 reads at most p97.5.
 */
export function upperP(p: number, sampleSize: number, z: number): number {
  if (z <= 0 || !(sampleSize > 0)) return p;
  const cap = p + (1 - p) / 2;
  const raised = p + z * Math.sqrt((p * (1 - p)) / sampleSize);
  return raised >= cap ? cap : Math.round(raised * 1000) / 1000;
}

/** Share of the prediction given to live statistics backed by `effectiveCount` samples: 0..1. */
export function liveWeight(effectiveCount: number, minSamples: number): number {
  if (!(effectiveCount > 0)) return 0;
  return effectiveCount >= minSamples ? 1 : effectiveCount / minSamples;
}

/** Effective (decayed) samples behind a `metric` prediction at `nowMs`; for totals, the scarcer of TTFT and decode samples. */
export function evidence(stats: ModelStats, metric: LatencyMetric, nowMs: number): number {
  const ttft = stats.ttftMs.effectiveCount(nowMs);
  if (metric === "ttft") return ttft;
  const perToken = stats.perTokenMs.effectiveCount(nowMs);
  return perToken < ttft ? perToken : ttft;
}

/** The prediction still leans on the prior: fewer than `minSamples` effective samples. */
export function isCold(stats: ModelStats, metric: LatencyMetric, config: StatsConfig, nowMs: number): boolean {
  return evidence(stats, metric, nowMs) < config.minSamples;
}

/** Predicted time to first token at `percentile` (50..99) for a prompt of `promptTokens`, in ms. */
export function predictTtftMs(
  stats: ModelStats,
  prior: Prior,
  promptTokens: number,
  percentile: number,
  config: StatsConfig,
  nowMs: number,
  z = config.confidenceZ,
): number {
  const prefillMsPerToken = 1000 / config.prefillTokensPerSecond;
  const priorMs = (prior ?? config.defaultPrior).ttftMs * config.coldPenalty + promptTokens * prefillMsPerToken;
  const count = stats.ttftMs.effectiveCount(nowMs);
  const w = liveWeight(count, config.minSamples);
  if (w === 0) return priorMs;
  const quantile = stats.ttftMs.quantile(upperP(percentile / 100, stats.ttftMs.effectiveSampleSize(nowMs), z));
  const meanPrompt = stats.meanPromptTokens();
  const shifted = quantile + (promptTokens - (meanPrompt >= 0 ? meanPrompt : 0)) * prefillMsPerToken;
  const liveMs = shifted > quantile * 0.25 ? shifted : quantile * 0.25;
  return w === 1 ? liveMs : w * liveMs + (1 - w) * priorMs;
}

/** Predicted time per output token at `percentile` (50..99, slow side), in ms per token. */
export function predictPerTokenMs(stats: ModelStats, prior: Prior, percentile: number, config: StatsConfig, nowMs: number, z = config.confidenceZ): number {
  const priorMs = (1000 / (prior ?? config.defaultPrior).tokensPerSecond) * config.coldPenalty;
  const count = stats.perTokenMs.effectiveCount(nowMs);
  const w = liveWeight(count, config.minSamples);
  if (w === 0) return priorMs;
  const liveMs = stats.perTokenMs.quantile(upperP(percentile / 100, stats.perTokenMs.effectiveSampleSize(nowMs), z));
  return w === 1 ? liveMs : w * liveMs + (1 - w) * priorMs;
}

/**
 * Predicted `metric` latency at `percentile` (50..99) of a request with `promptTokens` prompt tokens
 * and `outputTokens` expected output tokens, in ms, read at `z` standard errors over the percentile
 * (upperP; `stats.confidenceZ` unless a decision drew another).
 */
export function predictMs(
  stats: ModelStats,
  prior: Prior,
  metric: LatencyMetric,
  percentile: number,
  promptTokens: number,
  outputTokens: number,
  config: StatsConfig,
  nowMs: number,
  z = config.confidenceZ,
): number {
  const ttftMs = predictTtftMs(stats, prior, promptTokens, percentile, config, nowMs, z);
  if (metric === "ttft") return ttftMs;
  return ttftMs + outputTokens * predictPerTokenMs(stats, prior, percentile, config, nowMs, z);
}
