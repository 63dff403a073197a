// Health of one model entry: a circuit breaker for failures and a cooldown for rate limits (429).
//
// States (exported as subsecond_model_state): ok; open (rejecting, for `openMs` after it tripped);
// half-open (open time over: exactly one probe attempt may test it); cooling (answered 429: not tried
// again before its Retry-After, or an exponential backoff with jitter when the provider sent none).
//
// What counts as a failure: connection errors, 5xx and in-band stream errors. Not client errors (4xx:
// the request's fault, not the model's), not 429s (rate limits have their own cooldown), and not
// timeouts of ordinary attempts: a slow model is handled by the latency prediction, which steers
// traffic away from it, never by a circuit that could leave a route with nothing to serve (a merely
// slow route must not answer 503). A half-open probe, however, must prove the model answers: a probe
// that times out reopens the circuit.
import type { HealthConfig } from "../config/schema.js";
import { createDecayingTotals, type DecayingTotals } from "./forward-decay.js";
import type { ModelState, Rng } from "./types.js";

/** Why a new attempt may not start now; `null` when it may (for half-open: as the one probe). */
export type HealthExclusion = "open" | "cooling" | null;

/**
 * A change of health as it happens: the circuit opened (or reopened after a failed probe), closed, or a
 * cooldown began (`forMs`, in ms). Half-open is not announced: it comes from the passage of time alone.
 */
export interface HealthChange {
  readonly change: "opened" | "closed" | "cooling";
  readonly reason: string;
  readonly forMs?: number;
}

/** Hears of health changes; called only when one happens. */
export type HealthListener = (change: HealthChange) => void;

export interface ModelHealth {
  /** State at `nowMs` (ms). Open takes precedence over cooling, cooling over half-open. */
  state(nowMs: number): ModelState;
  /**
   * Whether a new attempt may start at `nowMs`: "open" while the circuit rejects (including half-open
   * with its probe already out), "cooling" after a 429, null otherwise.
   */
  exclusion(nowMs: number): HealthExclusion;
  /** The circuit waits for a probe: a new attempt must be sent, and reported, as a probe. */
  isHalfOpen(nowMs: number): boolean;
  /** A probe (exploration or half-open) is out or reserved: no second one may be sent. */
  probeBusy(nowMs: number): boolean;
  /** Holds the probe slot from a decision until its attempt starts, or until `untilMs` (ms) if it never does. */
  reserveProbe(untilMs: number): void;
  /** A probe attempt started (turns a reservation into an in-flight probe). */
  probeStarted(): void;
  /** A probe attempt finished, whatever its outcome, or delivered the first token that judges it. */
  probeFinished(): void;
  /** Remaining cooldown after a 429 at `nowMs`, in ms (0 when not cooling). */
  cooldownRemainingMs(nowMs: number): number;
  /** When the circuit last opened, in ms on the brain's clock; NaN while closed. */
  readonly openedAtMs: number;
  /** Lets an open circuit be probed now (used when every candidate is open). */
  forceHalfOpen(nowMs: number): void;
  /** A successful attempt. A probe success closes the circuit; so does any success once it is half-open. */
  recordSuccess(nowMs: number, probe: boolean): void;
  /** A failed attempt: counts towards opening; a failed probe reopens. */
  recordFailure(nowMs: number, probe: boolean): void;
  /** A timed-out attempt: neutral, except that a timed-out probe reopens the circuit. */
  recordTimeout(nowMs: number, probe: boolean): void;
  /**
   * A 429. Cools down for `retryAfterMs` (ms) when the provider said; otherwise for
   * `cooldownBaseMs · 2^(n−1)` for the n-th 429 in a row, with "equal jitter" (a uniform draw in [½, 1]
   * of that) so that replicas and models do not retry in lockstep. Either way at most `cooldownMaxMs`.
   */
  recordRateLimited(nowMs: number, retryAfterMs: number | undefined, rng: Rng): void;
  /** Another replica saw a 429: cooling until `untilMs` (ms), or longer if already cooling longer. */
  coolUntil(untilMs: number): void;
  /** Another replica opened (or reopened) the circuit at `atMs` (ms). */
  openAt(atMs: number): void;
  /** Another replica's probe closed the circuit. */
  closeCircuit(): void;
  /** Another replica probes this model: no probe here before `untilMs` (ms) or `releaseRemoteProbe`. */
  holdRemoteProbe(untilMs: number): void;
  releaseRemoteProbe(): void;
  /** Applies new settings; `halfLifeMs` (ms) is the decay of the error-rate window (the stats half-life). */
  configure(config: HealthConfig, halfLifeMs: number, nowMs: number): void;
}

const OK = 0;
const ERROR = 1;

class Health implements ModelHealth {
  openedAtMs = Number.NaN;
  private config: HealthConfig;
  private readonly outcomes: DecayingTotals;
  private failureStreak = 0;
  private rateLimitStreak = 0;
  private coolUntilMs = Number.NEGATIVE_INFINITY;
  private probesInFlight = 0;
  private probeReservedUntilMs = Number.NEGATIVE_INFINITY;
  private remoteProbeUntilMs = Number.NEGATIVE_INFINITY;

  constructor(
    config: HealthConfig,
    halfLifeMs: number,
    private readonly onChange: HealthListener | undefined,
  ) {
    this.config = config;
    this.outcomes = createDecayingTotals(2, halfLifeMs);
  }

  state(nowMs: number): ModelState {
    if (this.isOpenTimer(nowMs)) return "open";
    if (nowMs < this.coolUntilMs) return "cooling";
    return Number.isNaN(this.openedAtMs) ? "ok" : "half-open";
  }

  exclusion(nowMs: number): HealthExclusion {
    if (this.isOpenTimer(nowMs)) return "open";
    if (nowMs < this.coolUntilMs) return "cooling";
    if (!Number.isNaN(this.openedAtMs) && this.probeBusy(nowMs)) return "open";
    return null;
  }

  isHalfOpen(nowMs: number): boolean {
    return !Number.isNaN(this.openedAtMs) && !this.isOpenTimer(nowMs);
  }

  probeBusy(nowMs: number): boolean {
    return this.probesInFlight > 0 || nowMs < this.probeReservedUntilMs || nowMs < this.remoteProbeUntilMs;
  }

  reserveProbe(untilMs: number): void {
    this.probeReservedUntilMs = untilMs;
  }

  probeStarted(): void {
    this.probesInFlight++;
    this.probeReservedUntilMs = Number.NEGATIVE_INFINITY;
  }

  probeFinished(): void {
    if (this.probesInFlight > 0) this.probesInFlight--;
  }

  cooldownRemainingMs(nowMs: number): number {
    return nowMs < this.coolUntilMs ? this.coolUntilMs - nowMs : 0;
  }

  forceHalfOpen(nowMs: number): void {
    if (this.isOpenTimer(nowMs)) this.openedAtMs = nowMs - this.config.openMs;
  }

  recordSuccess(nowMs: number, probe: boolean): void {
    this.failureStreak = 0;
    this.rateLimitStreak = 0;
    // While the open timer runs, only a probe is evidence: a success may be a straggler sent before the trip.
    if (!Number.isNaN(this.openedAtMs) && (probe || this.isHalfOpen(nowMs))) {
      this.close();
      this.onChange?.({ change: "closed", reason: probe ? "a probe succeeded" : "an attempt succeeded" });
      return;
    }
    this.outcomes.add(OK, 1, nowMs);
  }

  recordFailure(nowMs: number, probe: boolean): void {
    if (!Number.isNaN(this.openedAtMs)) {
      if (probe) this.trip(nowMs, "the probe failed");
      return;
    }
    this.failureStreak++;
    this.outcomes.add(ERROR, 1, nowMs);
    const errors = this.outcomes.valueAt(ERROR, nowMs);
    const samples = this.outcomes.valueAt(OK, nowMs) + errors;
    const rate = samples > 0 ? errors / samples : 0;
    if (this.failureStreak >= this.config.consecutiveFailures) {
      this.trip(nowMs, `${this.failureStreak} failures in a row`);
    } else if (samples >= this.config.errorRateMinSamples && rate >= this.config.errorRate) {
      this.trip(nowMs, `error rate ${Math.round(rate * 100)}%`);
    }
  }

  recordTimeout(nowMs: number, probe: boolean): void {
    if (probe && !Number.isNaN(this.openedAtMs)) this.trip(nowMs, "the probe timed out");
  }

  recordRateLimited(nowMs: number, retryAfterMs: number | undefined, rng: Rng): void {
    this.rateLimitStreak++;
    let coolMs: number;
    if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0) {
      // The provider knows its quota window (RFC 9110 §10.2.3), but one answer must not take the model
      // out for longer than the operator allows: `Retry-After: 99999999` would be three years.
      coolMs = Math.min(retryAfterMs, this.config.cooldownMaxMs);
    } else {
      const exponent = Math.min(this.rateLimitStreak - 1, 52);
      const ceilingMs = Math.min(this.config.cooldownMaxMs, this.config.cooldownBaseMs * 2 ** exponent);
      coolMs = ceilingMs * (0.5 + 0.5 * rng.next());
    }
    const wasCooling = nowMs < this.coolUntilMs;
    this.coolUntilMs = Math.max(this.coolUntilMs, nowMs + coolMs);
    if (!wasCooling) this.onChange?.({ change: "cooling", reason: retryAfterMs === coolMs ? "429 with Retry-After" : "429", forMs: coolMs });
  }

  coolUntil(untilMs: number): void {
    if (untilMs > this.coolUntilMs) this.coolUntilMs = untilMs;
  }

  openAt(atMs: number): void {
    if (Number.isNaN(this.openedAtMs) || atMs > this.openedAtMs) this.openedAtMs = atMs;
  }

  closeCircuit(): void {
    if (!Number.isNaN(this.openedAtMs)) this.close();
  }

  holdRemoteProbe(untilMs: number): void {
    this.remoteProbeUntilMs = untilMs;
  }

  releaseRemoteProbe(): void {
    this.remoteProbeUntilMs = Number.NEGATIVE_INFINITY;
  }

  configure(config: HealthConfig, halfLifeMs: number, nowMs: number): void {
    this.config = config;
    this.outcomes.setHalfLife(halfLifeMs, nowMs);
  }

  /** Opens the circuit from `nowMs`, or restarts its open time. */
  private trip(nowMs: number, reason: string): void {
    this.openedAtMs = nowMs;
    this.onChange?.({ change: "opened", reason, forMs: this.config.openMs });
  }

  private isOpenTimer(nowMs: number): boolean {
    return nowMs < this.openedAtMs + this.config.openMs;
  }

  private close(): void {
    this.openedAtMs = Number.NaN;
    this.failureStreak = 0;
    // The failures that tripped the circuit are history: a recovered model starts with a clean window.
    this.outcomes.reset();
  }
}

/**
 * A model entry's health, starting "ok". `halfLifeMs` (ms) is the decay of its error-rate window;
 * `onChange` hears of each change as it happens.
 */
export function createModelHealth(config: HealthConfig, halfLifeMs: number, onChange?: HealthListener): ModelHealth {
  return new Health(config, halfLifeMs, onChange);
}
