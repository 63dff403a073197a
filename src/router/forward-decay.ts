// Forward exponential decay: time-weighted sums whose ratios (means, rates, quantiles) only change
// when a sample is added, never through the mere passage of time.
//
// Cormode, Shkapenyuk, Srivastava, Xu, "Forward Decay: A Practical Time Decay Model for Streaming
// Systems" (ICDE 2009). A sample added at time t gets weight e^{λ(t − L)} for a fixed landmark L, so
// newer samples weigh more; the decayed weight "now" is that times e^{−λ(now − L)}. The landmark is
// moved forward (all weights rescaled) before the exponent grows large enough to lose precision.

/** Exponent λ·(t − landmark) beyond which weights are rescaled: e^40 ≈ 2·10^17 stays far from overflow. */
export const RENORMALISE_EXPONENT = 40;

/** Decay rate λ, per ms, of a half-life in ms. */
export function decayRatePerMs(halfLifeMs: number): number {
  if (!(halfLifeMs > 0) || !Number.isFinite(halfLifeMs)) {
    throw new RangeError(`halfLifeMs must be a positive, finite number of milliseconds, got ${halfLifeMs}`);
  }
  return Math.LN2 / halfLifeMs;
}

/** A fixed set of decayed sums that share one landmark (e.g. ok/error counters, weighted means). */
export interface DecayingTotals {
  /** Adds `amount` (in the total's own unit) to total `index`, as of `nowMs`. */
  add(index: number, amount: number, nowMs: number): void;
  /** Total `index` decayed to `nowMs`: each past addition counts `2^{-age/halfLife}` of itself. */
  valueAt(index: number, nowMs: number): number;
  /** `total[numerator] / total[denominator]`; independent of time because both decay alike. NaN when the denominator is 0. */
  ratio(numerator: number, denominator: number): number;
  /** Forgets everything. */
  reset(): void;
  /** Applies a new half-life (ms) from `nowMs` on; what was accumulated so far keeps its weight. */
  setHalfLife(halfLifeMs: number, nowMs: number): void;
}

class Totals implements DecayingTotals {
  private readonly sums: Float64Array;
  private lambda: number;
  private landmarkMs = 0;
  private empty = true;

  constructor(size: number, halfLifeMs: number) {
    this.sums = new Float64Array(size);
    this.lambda = decayRatePerMs(halfLifeMs);
  }

  add(index: number, amount: number, nowMs: number): void {
    if (this.empty) {
      // A fresh start needs no history: putting the landmark at the first sample keeps weights near 1.
      this.landmarkMs = nowMs;
      this.empty = false;
    }
    let exponent = this.lambda * (nowMs - this.landmarkMs);
    if (exponent > RENORMALISE_EXPONENT) {
      this.renormalise(nowMs);
      exponent = 0;
    }
    this.sums[index] = (this.sums[index] ?? 0) + amount * Math.exp(exponent);
  }

  valueAt(index: number, nowMs: number): number {
    const sum = this.sums[index] ?? 0;
    return sum === 0 ? 0 : sum * Math.exp(-this.lambda * (nowMs - this.landmarkMs));
  }

  ratio(numerator: number, denominator: number): number {
    const den = this.sums[denominator] ?? 0;
    return den > 0 ? (this.sums[numerator] ?? 0) / den : Number.NaN;
  }

  reset(): void {
    this.sums.fill(0);
    this.empty = true;
  }

  setHalfLife(halfLifeMs: number, nowMs: number): void {
    const lambda = decayRatePerMs(halfLifeMs);
    if (lambda === this.lambda) return;
    if (!this.empty) this.renormalise(nowMs);
    this.lambda = lambda;
  }

  private renormalise(nowMs: number): void {
    const factor = Math.exp(-this.lambda * (nowMs - this.landmarkMs));
    for (let i = 0; i < this.sums.length; i++) this.sums[i] = (this.sums[i] ?? 0) * factor;
    this.landmarkMs = nowMs;
  }
}

/** `size` decayed sums, all starting at 0, decaying with `halfLifeMs` (ms). */
export function createDecayingTotals(size: number, halfLifeMs: number): DecayingTotals {
  return new Totals(size, halfLifeMs);
}
