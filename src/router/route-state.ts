// What the brain keeps per route: its exploration and hedge budgets (token buckets), decayed averages
// of request sizes, and decayed counts of decisions and hedges for the hedge rate and win rate.
import { createDecayingTotals, type DecayingTotals } from "./forward-decay.js";
import { hedgeCapacity } from "./hedging.js";
import type { RequestProfile, RoutePolicy } from "./types.js";

/** How a hedge ended; `over_budget`: one was due and the budget said no. */
export type HedgeOutcome = "won" | "lost" | "failed" | "over_budget";

/** A route's hedging and target attainment, decayed like the latency statistics. */
export interface RouteStats {
  /** Hedges sent per decision (0..1); null before any decision. */
  readonly hedgeRate: number | null;
  /** Share of finished hedges that delivered first (0..1); null before any. */
  readonly hedgeWinRate: number | null;
  /** Share of measured successful requests that met the target (0..1); null before any. */
  readonly attainment: number | null;
}

const OUTPUT_SUM = 0;
const OUTPUT_WEIGHT = 1;
const PROMPT_SUM = 2;
const PROMPT_WEIGHT = 3;
const DECISIONS = 4;
const HEDGES = 5;
const HEDGES_FINISHED = 6;
const HEDGES_WON = 7;
const TARGET_MEASURED = 8;
const TARGET_MET = 9;
const SERVED = 10;

export interface RouteState {
  noteDecision(promptTokens: number, route: RoutePolicy, nowMs: number): void;
  noteOutput(outputTokens: number | undefined, nowMs: number): void;
  /** max_tokens when the client set it; else the route's decayed mean of observed output; else `fallback`. */
  expectedOutputTokens(request: RequestProfile, fallback: number): number;
  meanPromptTokens(): number;
  /** Adds `ratio` to the exploration bucket (capped at one token); returns the tokens held. */
  earnExploreToken(ratio: number): number;
  spendExploreToken(): void;
  earnNewModelToken(ratio: number): number;
  spendNewModelToken(): void;
  /** The bucket holds a whole token beyond `reserve` (ordinary hedges leave one token for probes). */
  hasHedgeToken(reserve: number): boolean;
  /** Spends a hedge token; a probe's hedge, sent even when probes decided together emptied the bucket, overdraws it. */
  takeHedgeToken(): void;
  /** A fallback attempt spends a hedge token, as far as the bucket holds one beyond `reserve`. */
  spendForFallback(reserve: number): void;
  noteHedge(event: HedgeOutcome | "sent", nowMs: number): void;
  /** A request served by `modelId`; `met`: whether it met the target (undefined: not measured against it). */
  noteServed(modelId: string, met: boolean | undefined, nowMs: number): void;
  /** The share (0..1) of the route's served requests that `modelId` served; null before any. */
  servedShare(modelId: string, nowMs: number): number | null;
  stats(nowMs: number): RouteStats;
  setHalfLife(halfLifeMs: number, nowMs: number): void;
}

class State implements RouteState {
  private exploreTokens = 0;
  private newModelTokens = 0;
  /** The hedge bucket starts with a token for a hedge and one for a probe's: a brownout at start-up is rescued. */
  private hedgeTokens = 2;
  /** The hedge bucket's size, from the route's maxRatio at the last decision. */
  private capacity = 1;
  private readonly totals: DecayingTotals;
  /** Requests served per model, decayed; bounded by the catalog. */
  private readonly served = new Map<string, DecayingTotals>();
  private halfLifeMs: number;

  constructor(halfLifeMs: number) {
    this.halfLifeMs = halfLifeMs;
    this.totals = createDecayingTotals(11, halfLifeMs);
  }

  noteDecision(promptTokens: number, route: RoutePolicy, nowMs: number): void {
    this.totals.add(PROMPT_SUM, promptTokens, nowMs);
    this.totals.add(PROMPT_WEIGHT, 1, nowMs);
    this.totals.add(DECISIONS, 1, nowMs);
    this.capacity = hedgeCapacity(route);
    if (route.hedging.enabled) this.hedgeTokens = Math.min(this.capacity, this.hedgeTokens + route.hedging.maxRatio);
  }

  noteOutput(outputTokens: number | undefined, nowMs: number): void {
    if (outputTokens === undefined || !Number.isFinite(outputTokens) || outputTokens < 0) return;
    this.totals.add(OUTPUT_SUM, outputTokens, nowMs);
    this.totals.add(OUTPUT_WEIGHT, 1, nowMs);
  }

  expectedOutputTokens(request: RequestProfile, fallback: number): number {
    if (request.maxOutputTokens !== undefined && request.maxOutputTokens > 0) return request.maxOutputTokens;
    const mean = this.totals.ratio(OUTPUT_SUM, OUTPUT_WEIGHT);
    return mean >= 0 ? Math.max(1, Math.round(mean)) : fallback;
  }

  meanPromptTokens(): number {
    return this.totals.ratio(PROMPT_SUM, PROMPT_WEIGHT);
  }

  earnExploreToken(ratio: number): number {
    this.exploreTokens = Math.min(1, this.exploreTokens + ratio);
    return this.exploreTokens;
  }

  spendExploreToken(): void {
    this.exploreTokens = Math.max(0, this.exploreTokens - 1);
  }

  earnNewModelToken(ratio: number): number {
    this.newModelTokens = Math.min(1, this.newModelTokens + ratio);
    return this.newModelTokens;
  }

  spendNewModelToken(): void {
    this.newModelTokens = Math.max(0, this.newModelTokens - 1);
  }

  hasHedgeToken(reserve: number): boolean {
    return this.hedgeTokens >= 1 + reserve - 1e-9;
  }

  takeHedgeToken(): void {
    // A probe's hedge goes even when probes decided together emptied the bucket (one probe per model in flight).
    this.hedgeTokens -= 1;
  }

  spendForFallback(reserve: number): void {
    if (this.hedgeTokens > reserve) this.hedgeTokens = Math.max(reserve, this.hedgeTokens - 1);
  }

  noteHedge(event: HedgeOutcome | "sent", nowMs: number): void {
    if (event === "sent") this.totals.add(HEDGES, 1, nowMs);
    else if (event !== "over_budget") {
      this.totals.add(HEDGES_FINISHED, 1, nowMs);
      if (event === "won") this.totals.add(HEDGES_WON, 1, nowMs);
    }
  }

  noteServed(modelId: string, met: boolean | undefined, nowMs: number): void {
    this.totals.add(SERVED, 1, nowMs);
    if (met !== undefined) {
      this.totals.add(TARGET_MEASURED, 1, nowMs);
      if (met) this.totals.add(TARGET_MET, 1, nowMs);
    }
    let model = this.served.get(modelId);
    if (model === undefined) {
      model = createDecayingTotals(1, this.halfLifeMs);
      this.served.set(modelId, model);
    }
    model.add(0, 1, nowMs);
  }

  servedShare(modelId: string, nowMs: number): number | null {
    const all = this.totals.valueAt(SERVED, nowMs);
    if (!(all > 0)) return null;
    return (this.served.get(modelId)?.valueAt(0, nowMs) ?? 0) / all;
  }

  stats(nowMs: number): RouteStats {
    const decisions = this.totals.valueAt(DECISIONS, nowMs);
    const finished = this.totals.valueAt(HEDGES_FINISHED, nowMs);
    const measured = this.totals.valueAt(TARGET_MEASURED, nowMs);
    return {
      hedgeRate: decisions > 0 ? this.totals.valueAt(HEDGES, nowMs) / decisions : null,
      hedgeWinRate: finished > 0 ? this.totals.valueAt(HEDGES_WON, nowMs) / finished : null,
      attainment: measured > 0 ? this.totals.valueAt(TARGET_MET, nowMs) / measured : null,
    };
  }

  setHalfLife(halfLifeMs: number, nowMs: number): void {
    this.halfLifeMs = halfLifeMs;
    this.totals.setHalfLife(halfLifeMs, nowMs);
    for (const model of this.served.values()) model.setHalfLife(halfLifeMs, nowMs);
  }
}

export function createRouteState(halfLifeMs: number): RouteState {
  return new State(halfLifeMs);
}
