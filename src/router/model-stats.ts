// Live statistics of one model entry over a decaying window: latency histograms, outcome rates,
// in-flight attempts and the few most recent samples (for the recovery rule in predict.ts).
import { createDecayingHistogram, type DecayingHistogram } from "./decaying-histogram.js";
import { createDecayingTotals, type DecayingTotals } from "./forward-decay.js";

/** Samples kept verbatim for the recovery rule; enough for `recoverySamples` probes plus stragglers. */
export const RECENT_SAMPLE_CAPACITY = 8;

export interface ModelStats {
  /** Time to first content token, in ms (timeouts recorded as "at least the deadline"). */
  readonly ttftMs: DecayingHistogram;
  /** Whole attempt, in ms. */
  readonly totalMs: DecayingHistogram;
  /** Time per output token after the first, in ms per token (the decode speed, slow side high). */
  readonly perTokenMs: DecayingHistogram;
  /** Attempts started and not yet finished. Kept by the brain. */
  inFlight: number;
  /** When the newest latency sample (success or timeout) arrived, in ms on the brain's clock; -Infinity before any. */
  readonly newestSampleAtMs: number;
  /**
   * Records a successful attempt; returns the first-token time recorded, in ms (NaN if none).
   * Undefined or non-finite fields are simply not recorded. A non-streamed attempt reports no `ttftMs`:
   * its first-token time is then derived as `totalMs − (outputTokens − 1) × ms per token`, the per-token
   * time being the live median, else `priorPerTokenMs`; never below a tenth of `totalMs`. Derived, so
   * coarse — but without it a route served only without streaming would never measure its target.
   */
  recordSuccess(
    nowMs: number,
    ttftMs?: number,
    totalMs?: number,
    promptTokens?: number,
    outputTokens?: number,
    priorPerTokenMs?: number,
    ttftRecorded?: boolean,
  ): number;
  /** Records a first token when it happens, in ms; the attempt's end then reports `ttftRecorded`. */
  recordFirstToken(nowMs: number, ttftMs: number): void;
  /**
   * Records a lower bound without an outcome: an attempt still waiting past the target, or cancelled
   * because a hedge delivered first, took at least `atLeastMs` on `metric` (a first-token bound also
   * bounds the total).
   */
  recordAtLeast(nowMs: number, metric: "ttft" | "total", atLeastMs: number): void;
  /**
   * Records a timeout as a censored sample: the deadline `deadlineMs` fired on `metric`, so that latency
   * was at least the deadline. A first-token timeout also bounds the total; a total timeout after a
   * first token (`ttftMs`) records that first token and bounds the decode time of the `outputTokens` so
   * far. A total timeout without a first token says nothing sure about it (a non-streamed answer may have
   * started generating long before), so the first-token histogram is left alone.
   */
  recordTimeout(
    nowMs: number,
    metric: "ttft" | "total",
    deadlineMs?: number,
    ttftMs?: number,
    promptTokens?: number,
    outputTokens?: number,
    ttftRecorded?: boolean,
  ): void;
  /** Records a failed attempt (connection error, 5xx, in-band error). No latency is learnt from it. */
  recordError(nowMs: number): void;
  /** Decayed share of attempts that failed with an error (0..1); NaN before any attempt. */
  errorRate(): number;
  /** Decayed share of attempts that timed out (0..1); NaN before any attempt. */
  timeoutRate(): number;
  /** Decayed number of finished attempts (ok, error or timeout) at `nowMs`. */
  attempts(nowMs: number): number;
  /** Decayed mean prompt size of the latency samples, in tokens; NaN when no sample reported one. */
  meanPromptTokens(): number;
  /** Median of the recent samples still held (at most RECENT_SAMPLE_CAPACITY) of `metric`, in ms; NaN without any. */
  recentMedianMs(metric: "ttft" | "total"): number;
  /**
   * Change detection: forgets every latency sample older than `sinceMs` and rebuilds the histograms from
   * the recent ones still held, counting them as at least `minEffectiveCount` samples (see predict.ts).
   */
  forgetBefore(sinceMs: number, nowMs: number, minEffectiveCount: number): void;
  /** Applies a new half-life (ms) from `nowMs` on. */
  setHalfLife(halfLifeMs: number, nowMs: number): void;
}

const OK = 0;
const ERROR = 1;
const TIMEOUT = 2;
const ATTEMPTS = 3;
const PROMPT_SUM = 4;
const PROMPT_WEIGHT = 5;

/** Layout of one recent sample in the ring: time, three values, and which of them are lower bounds. */
const FIELDS = 5;
const AT = 0;
const TTFT = 1;
const TOTAL = 2;
const PER_TOKEN = 3;
const FLAGS = 4;
const TTFT_AT_LEAST = 1;
const TOTAL_AT_LEAST = 2;
const PER_TOKEN_AT_LEAST = 4;

const isCount = (value: number | undefined): value is number => value !== undefined && Number.isFinite(value) && value >= 0;

class Stats implements ModelStats {
  readonly ttftMs: DecayingHistogram;
  readonly totalMs: DecayingHistogram;
  readonly perTokenMs: DecayingHistogram;
  inFlight = 0;
  newestSampleAtMs = Number.NEGATIVE_INFINITY;
  private readonly totals: DecayingTotals;
  private readonly ring = new Float64Array(RECENT_SAMPLE_CAPACITY * FIELDS);
  private ringNext = 0;
  private ringSize = 0;

  constructor(halfLifeMs: number) {
    this.ttftMs = createDecayingHistogram({ halfLifeMs });
    this.totalMs = createDecayingHistogram({ halfLifeMs });
    // Decode speed spans ~0.1 ms/token (fast hardware) to seconds per token (overloaded servers).
    this.perTokenMs = createDecayingHistogram({ halfLifeMs, minValue: 0.01, maxValue: 10_000 });
    this.totals = createDecayingTotals(6, halfLifeMs);
  }

  recordSuccess(
    nowMs: number,
    ttftMs?: number,
    totalMs?: number,
    promptTokens?: number,
    outputTokens?: number,
    priorPerTokenMs?: number,
    ttftRecorded = false,
  ): number {
    this.count(OK, nowMs);
    const total = isCount(totalMs) ? totalMs : Number.NaN;
    let ttft = isCount(ttftMs) ? ttftMs : Number.NaN;
    // Decode time per token needs a measured first token, i.e. a stream.
    const perToken = isCount(outputTokens) && outputTokens >= 2 && total > ttft ? (total - ttft) / (outputTokens - 1) : Number.NaN;
    if (Number.isNaN(ttft) && !Number.isNaN(total)) ttft = this.deriveTtftMs(total, outputTokens, priorPerTokenMs, nowMs);
    if (Number.isNaN(ttft) && Number.isNaN(total)) return Number.NaN;
    if (!ttftRecorded) this.ttftMs.add(ttft, nowMs);
    this.totalMs.add(total, nowMs);
    this.perTokenMs.add(perToken, nowMs);
    this.notePrompt(promptTokens, nowMs);
    this.remember(nowMs, ttft, total, perToken, 0);
    return ttft;
  }

  recordFirstToken(nowMs: number, ttftMs: number): void {
    if (!isCount(ttftMs)) return;
    this.ttftMs.add(ttftMs, nowMs);
    this.newestSampleAtMs = nowMs;
  }

  recordAtLeast(nowMs: number, metric: "ttft" | "total", atLeastMs: number): void {
    if (!isCount(atLeastMs)) return;
    if (metric === "ttft") this.ttftMs.addAtLeast(atLeastMs, nowMs);
    this.totalMs.addAtLeast(atLeastMs, nowMs);
    this.newestSampleAtMs = nowMs;
  }

  recordTimeout(
    nowMs: number,
    metric: "ttft" | "total",
    deadlineMs?: number,
    ttftMs?: number,
    promptTokens?: number,
    outputTokens?: number,
    ttftRecorded = false,
  ): void {
    this.count(TIMEOUT, nowMs);
    if (!isCount(deadlineMs)) return;
    let ttft = Number.NaN;
    let perToken = Number.NaN;
    let flags = TOTAL_AT_LEAST;
    if (metric === "ttft") {
      ttft = deadlineMs;
      flags |= TTFT_AT_LEAST;
    } else if (isCount(ttftMs)) {
      // The first token came, then the total deadline fired: the tokens so far were at least this slow.
      ttft = ttftMs;
      if (isCount(outputTokens) && outputTokens >= 2 && deadlineMs > ttftMs) {
        perToken = (deadlineMs - ttftMs) / (outputTokens - 1);
        flags |= PER_TOKEN_AT_LEAST;
      }
    }
    if (!ttftRecorded) this.addValue(this.ttftMs, ttft, (flags & TTFT_AT_LEAST) !== 0, nowMs);
    this.totalMs.addAtLeast(deadlineMs, nowMs);
    this.perTokenMs.addAtLeast(perToken, nowMs);
    this.notePrompt(promptTokens, nowMs);
    this.remember(nowMs, ttft, deadlineMs, perToken, flags);
  }

  recordError(nowMs: number): void {
    this.count(ERROR, nowMs);
  }

  errorRate(): number {
    return this.totals.ratio(ERROR, ATTEMPTS);
  }

  timeoutRate(): number {
    return this.totals.ratio(TIMEOUT, ATTEMPTS);
  }

  attempts(nowMs: number): number {
    return this.totals.valueAt(ATTEMPTS, nowMs);
  }

  meanPromptTokens(): number {
    return this.totals.ratio(PROMPT_SUM, PROMPT_WEIGHT);
  }

  recentMedianMs(metric: "ttft" | "total"): number {
    const field = metric === "ttft" ? TTFT : TOTAL;
    const values: number[] = [];
    for (let k = 0; k < this.ringSize; k++) {
      const value = this.ring[k * FIELDS + field] ?? Number.NaN;
      if (Number.isFinite(value)) values.push(value);
    }
    if (values.length === 0) return Number.NaN;
    values.sort((a, b) => a - b);
    return values[(values.length - 1) >> 1] as number;
  }

  forgetBefore(sinceMs: number, nowMs: number, minEffectiveCount: number): void {
    this.ttftMs.clear();
    this.totalMs.clear();
    this.perTokenMs.clear();
    const ring = this.ring;
    for (let k = 0; k < this.ringSize; k++) {
      const base = ((this.ringNext - this.ringSize + k + RECENT_SAMPLE_CAPACITY) % RECENT_SAMPLE_CAPACITY) * FIELDS;
      const atMs = ring[base + AT] ?? Number.NaN;
      if (!(atMs >= sinceMs)) continue;
      const flags = ring[base + FLAGS] ?? 0;
      this.addValue(this.ttftMs, ring[base + TTFT] ?? Number.NaN, (flags & TTFT_AT_LEAST) !== 0, atMs);
      this.addValue(this.totalMs, ring[base + TOTAL] ?? Number.NaN, (flags & TOTAL_AT_LEAST) !== 0, atMs);
      this.addValue(this.perTokenMs, ring[base + PER_TOKEN] ?? Number.NaN, (flags & PER_TOKEN_AT_LEAST) !== 0, atMs);
    }
    for (const histogram of [this.ttftMs, this.totalMs, this.perTokenMs]) {
      const count = histogram.effectiveCount(nowMs);
      if (count > 0 && count < minEffectiveCount) histogram.scaleTo(minEffectiveCount, nowMs);
    }
  }

  setHalfLife(halfLifeMs: number, nowMs: number): void {
    this.ttftMs.setHalfLife(halfLifeMs, nowMs);
    this.totalMs.setHalfLife(halfLifeMs, nowMs);
    this.perTokenMs.setHalfLife(halfLifeMs, nowMs);
    this.totals.setHalfLife(halfLifeMs, nowMs);
  }

  private deriveTtftMs(totalMs: number, outputTokens: number | undefined, priorPerTokenMs: number | undefined, nowMs: number): number {
    const tokens = isCount(outputTokens) ? outputTokens : 0;
    const live = this.perTokenMs.effectiveCount(nowMs) > 0 ? this.perTokenMs.quantile(0.5) : Number.NaN;
    const perTokenMs = live >= 0 ? live : isCount(priorPerTokenMs) ? priorPerTokenMs : 0;
    const derived = totalMs - Math.max(0, tokens - 1) * perTokenMs;
    return derived > totalMs * 0.1 ? derived : totalMs * 0.1;
  }

  private count(outcome: number, nowMs: number): void {
    this.totals.add(outcome, 1, nowMs);
    this.totals.add(ATTEMPTS, 1, nowMs);
  }

  private addValue(histogram: DecayingHistogram, value: number, atLeast: boolean, atMs: number): void {
    if (atLeast) histogram.addAtLeast(value, atMs);
    else histogram.add(value, atMs);
  }

  private notePrompt(promptTokens: number | undefined, nowMs: number): void {
    this.newestSampleAtMs = nowMs;
    if (!isCount(promptTokens)) return;
    this.totals.add(PROMPT_SUM, promptTokens, nowMs);
    this.totals.add(PROMPT_WEIGHT, 1, nowMs);
  }

  private remember(atMs: number, ttft: number, total: number, perToken: number, flags: number): void {
    const base = this.ringNext * FIELDS;
    this.ring[base + AT] = atMs;
    this.ring[base + TTFT] = ttft;
    this.ring[base + TOTAL] = total;
    this.ring[base + PER_TOKEN] = perToken;
    this.ring[base + FLAGS] = flags;
    this.ringNext = (this.ringNext + 1) % RECENT_SAMPLE_CAPACITY;
    if (this.ringSize < RECENT_SAMPLE_CAPACITY) this.ringSize++;
  }
}

/** Empty statistics whose samples fade with `halfLifeMs` (ms). */
export function createModelStats(halfLifeMs: number): ModelStats {
  return new Stats(halfLifeMs);
}
