// A time-decayed latency histogram over log-spaced buckets: fixed memory, O(1) insert, cached quantiles.
//
// Buckets grow geometrically, so the relative error of a quantile is bounded by the bucket width
// (≈ 6 % by default) whatever the scale, from 1 ms to 10 minutes. Weights use forward decay (see
// forward-decay.ts): old samples fade with the half-life as new ones arrive, but time passing alone
// never changes a quantile — a model that is not called keeps the shape it was last seen with, and only
// its effective sample count shrinks.
import { decayRatePerMs, RENORMALISE_EXPONENT } from "./forward-decay.js";

/** Bucket layout and decay of a histogram. */
export interface DecayingHistogramOptions {
  /** Half-life of a sample's weight, in ms. */
  readonly halfLifeMs: number;
  /** Lower edge of the first bucket, in the value's unit (default 1, i.e. 1 ms). Smaller values land in the first bucket. */
  readonly minValue?: number;
  /** Values at or above this land in the last bucket (default 600 000, i.e. 10 minutes in ms). */
  readonly maxValue?: number;
  /** Relative width of a bucket: each upper edge is `1 + relativeWidth` times its lower edge (default 0.06). */
  readonly relativeWidth?: number;
}

export interface DecayingHistogram {
  /** Number of buckets; fixed at creation, whatever the traffic. */
  readonly bucketCount: number;
  /** Records a sample `value` observed at `nowMs` (ms), with an optional weight (default 1). Non-finite values are ignored. */
  add(value: number, nowMs: number, weight?: number): void;
  /**
   * Records a censored sample: the true value is at least `value` (a timeout at a deadline says the
   * latency was *at least* the deadline; a hedged attempt cancelled at 700 ms, at least 700 ms). Its weight
   * is spread over the samples already past `value`, in proportion to theirs: Kaplan–Meier's
   * redistribution to the right, so "at least 700 ms" from a model whose late answers take 2.5 s counts
   * as 2.5 s, not as 700 ms under an 800 ms target. With no sample past `value`, it goes to the first bucket
   * whose lower edge is ≥ `value`, so quantiles that reach it never come out below the bound. O(buckets).
   */
  addAtLeast(value: number, nowMs: number, weight?: number): void;
  /** Quantile `p` in [0, 1], in the value's unit; NaN when empty. Cached until the next add. O(buckets). */
  quantile(p: number): number;
  /** Total decayed weight at `nowMs` (ms): how many "fresh" samples the histogram amounts to. */
  effectiveCount(nowMs: number): number;
  /**
   * How many equally weighted samples its quantiles are as certain as, at `nowMs` (ms): Kish's effective
   * sample size (Σw)²/Σw² as of the last sample, fading since then with the half-life. The variance of a
   * weighted share is p(1−p)·Σw²/(Σw)², so under a steady stream of decayed samples this is twice
   * `effectiveCount`: the many older, lighter samples still narrow the estimate. Samples added in a burst
   * weigh alike, and then it equals `effectiveCount`.
   */
  effectiveSampleSize(nowMs: number): number;
  /** Rescales every weight so that `effectiveCount(nowMs)` and `effectiveSampleSize(nowMs)` become `count`; quantiles do not change. */
  scaleTo(count: number, nowMs: number): void;
  /** Forgets every sample. */
  clear(): void;
  /** Applies a new half-life (ms) from `nowMs` on; samples so far keep their current weight. */
  setHalfLife(halfLifeMs: number, nowMs: number): void;
}

/** Quantiles remembered between adds; a route asks for one or two percentiles, the admin view for two more. */
const QUANTILE_CACHE_SIZE = 4;

class Histogram implements DecayingHistogram {
  readonly bucketCount: number;
  private readonly weights: Float64Array;
  /** Lower edge of bucket i is edges[i]; edges[bucketCount] is the upper edge of the last bucket. */
  private readonly edges: Float64Array;
  private readonly minValue: number;
  private readonly logGrowth: number;
  private lambda: number;
  private landmarkMs = 0;
  private total = 0;
  /** Σ of the squared weights, in the landmark's units squared (for `effectiveSampleSize`). */
  private totalSquares = 0;
  private lastAddMs = Number.NEGATIVE_INFINITY;
  private readonly cachedP = new Float64Array(QUANTILE_CACHE_SIZE).fill(Number.NaN);
  private readonly cachedValue = new Float64Array(QUANTILE_CACHE_SIZE);
  private cacheNext = 0;

  constructor(options: DecayingHistogramOptions) {
    const minValue = options.minValue ?? 1;
    const maxValue = options.maxValue ?? 600_000;
    const relativeWidth = options.relativeWidth ?? 0.06;
    if (!(minValue > 0) || !(maxValue > minValue)) throw new RangeError(`need 0 < minValue < maxValue, got ${minValue}, ${maxValue}`);
    if (!(relativeWidth > 0)) throw new RangeError(`relativeWidth must be positive, got ${relativeWidth}`);
    this.lambda = decayRatePerMs(options.halfLifeMs);
    this.minValue = minValue;
    this.logGrowth = Math.log1p(relativeWidth);
    this.bucketCount = Math.ceil(Math.log(maxValue / minValue) / this.logGrowth);
    this.weights = new Float64Array(this.bucketCount);
    this.edges = new Float64Array(this.bucketCount + 1);
    for (let i = 0; i <= this.bucketCount; i++) this.edges[i] = minValue * Math.exp(i * this.logGrowth);
  }

  add(value: number, nowMs: number, weight = 1): void {
    if (!Number.isFinite(value)) return;
    this.addToBucket(this.bucketOf(value), nowMs, weight);
  }

  addAtLeast(value: number, nowMs: number, weight = 1): void {
    if (!Number.isFinite(value)) return;
    let index = this.bucketOf(value);
    if (this.edge(index) < value && index < this.bucketCount - 1) index++;
    const scaled = this.scaled(weight, nowMs);
    if (!(scaled > 0)) return;
    const weights = this.weights;
    let beyond = 0;
    for (let i = index; i < this.bucketCount; i++) beyond += weights[i] ?? 0;
    if (beyond > 0) {
      const factor = 1 + scaled / beyond;
      for (let i = index; i < this.bucketCount; i++) weights[i] = (weights[i] ?? 0) * factor;
    } else {
      weights[index] = scaled;
    }
    this.counted(scaled, nowMs);
  }

  quantile(p: number): number {
    if (this.total <= 0) return Number.NaN;
    const q = p <= 0 ? 0 : p >= 1 ? 1 : p;
    for (let i = 0; i < QUANTILE_CACHE_SIZE; i++) if (this.cachedP[i] === q) return this.cachedValue[i] ?? Number.NaN;
    const value = this.computeQuantile(q);
    const slot = this.cacheNext;
    this.cachedP[slot] = q;
    this.cachedValue[slot] = value;
    this.cacheNext = (slot + 1) % QUANTILE_CACHE_SIZE;
    return value;
  }

  effectiveCount(nowMs: number): number {
    return this.total <= 0 ? 0 : this.total * Math.exp(-this.lambda * (nowMs - this.landmarkMs));
  }

  effectiveSampleSize(nowMs: number): number {
    // Squares of weights faded by a long idle spell can underflow to 0 before the weights do.
    if (this.total <= 0 || !(this.totalSquares > 0)) return 0;
    const kish = (this.total * this.total) / this.totalSquares;
    return nowMs > this.lastAddMs ? kish * Math.exp(-this.lambda * (nowMs - this.lastAddMs)) : kish;
  }

  scaleTo(count: number, nowMs: number): void {
    const current = this.effectiveCount(nowMs);
    if (current <= 0 || !(count > 0)) return;
    const factor = count / current;
    for (let i = 0; i < this.bucketCount; i++) this.weights[i] = (this.weights[i] ?? 0) * factor;
    this.total *= factor;
    this.totalSquares = (this.total * this.total) / count;
    this.lastAddMs = nowMs;
  }

  clear(): void {
    this.weights.fill(0);
    this.total = 0;
    this.totalSquares = 0;
    this.lastAddMs = Number.NEGATIVE_INFINITY;
    this.invalidate();
  }

  setHalfLife(halfLifeMs: number, nowMs: number): void {
    const lambda = decayRatePerMs(halfLifeMs);
    if (lambda === this.lambda) return;
    if (this.total > 0) this.renormalise(nowMs);
    this.lambda = lambda;
  }

  private edge(index: number): number {
    return this.edges[index] ?? Number.NaN;
  }

  private bucketOf(value: number): number {
    if (!(value > this.minValue)) return 0;
    const index = Math.floor(Math.log(value / this.minValue) / this.logGrowth);
    return index >= this.bucketCount ? this.bucketCount - 1 : index;
  }

  private addToBucket(index: number, nowMs: number, weight: number): void {
    const scaled = this.scaled(weight, nowMs);
    if (!(scaled > 0)) return;
    this.weights[index] = (this.weights[index] ?? 0) + scaled;
    this.counted(scaled, nowMs);
  }

  /** Counts a sample of landmark-scaled weight `scaled`, added at `nowMs`, in the totals. */
  private counted(scaled: number, nowMs: number): void {
    this.total += scaled;
    this.totalSquares += scaled * scaled;
    if (nowMs > this.lastAddMs) this.lastAddMs = nowMs;
    this.invalidate();
  }

  /** `weight` as added at `nowMs`, in the units of the current landmark (renormalising first when due); 0 for none. */
  private scaled(weight: number, nowMs: number): number {
    if (!(weight > 0)) return 0;
    // An empty histogram restarts its landmark at the first sample, keeping weights near 1.
    if (this.total <= 0) this.landmarkMs = nowMs;
    let exponent = this.lambda * (nowMs - this.landmarkMs);
    if (exponent > RENORMALISE_EXPONENT) {
      this.renormalise(nowMs);
      exponent = 0;
    }
    return weight * Math.exp(exponent);
  }

  /** Moves the landmark to `nowMs`; every weight shrinks by the same factor, so quantiles stay put. */
  private renormalise(nowMs: number): void {
    const factor = Math.exp(-this.lambda * (nowMs - this.landmarkMs));
    let total = 0;
    for (let i = 0; i < this.bucketCount; i++) {
      const w = (this.weights[i] ?? 0) * factor;
      this.weights[i] = w;
      total += w;
    }
    this.total = total;
    this.totalSquares *= factor * factor;
    this.landmarkMs = nowMs;
  }

  private invalidate(): void {
    this.cachedP.fill(Number.NaN);
  }

  /**
   * Walks the buckets from the nearer end (high percentiles from the top), then interpolates
   * geometrically inside the bucket, which matches the log spacing of the edges.
   */
  private computeQuantile(q: number): number {
    const weights = this.weights;
    if (q <= 0.5) {
      const target = q * this.total;
      let cumulative = 0;
      for (let i = 0; i < this.bucketCount; i++) {
        const w = weights[i] ?? 0;
        if (w > 0 && cumulative + w >= target) {
          return this.edge(i) * Math.exp(((target - cumulative) / w) * this.logGrowth);
        }
        cumulative += w;
      }
    } else {
      const above = (1 - q) * this.total;
      let cumulative = 0;
      for (let i = this.bucketCount - 1; i >= 0; i--) {
        const w = weights[i] ?? 0;
        if (w > 0 && cumulative + w >= above) {
          return this.edge(i + 1) * Math.exp(-((above - cumulative) / w) * this.logGrowth);
        }
        cumulative += w;
      }
    }
    // Rounding can leave the target a hair past the outermost non-empty bucket: answer with its far edge.
    if (q <= 0.5) {
      for (let i = this.bucketCount - 1; i >= 0; i--) if ((weights[i] ?? 0) > 0) return this.edge(i + 1);
    } else {
      for (let i = 0; i < this.bucketCount; i++) if ((weights[i] ?? 0) > 0) return this.edge(i);
    }
    return Number.NaN;
  }
}

/** A decaying histogram with `options` (defaults: 1 ms .. 10 min, 6 % buckets → 229 buckets). */
export function createDecayingHistogram(options: DecayingHistogramOptions): DecayingHistogram {
  return new Histogram(options);
}
