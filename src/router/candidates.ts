// The candidate table of one decision: each candidate's exclusion, prediction and cost for this request,
// and the eligible ones sorted by the route's strategy. Rows are scratch objects reused across
// decisions, so a decision allocates only its result.
import { contextWindow, type Entry } from "./entry.js";
import { isCold, normalQuantile, predictMs } from "./predict.js";
import type { StatsConfig } from "../config/schema.js";
import type { CatalogModel, Exclusion, RequestProfile, Rng, RoutePolicy } from "./types.js";

export interface Row {
  model: CatalogModel;
  entry: Entry;
  /** Position in route.candidates. */
  index: number;
  exclusion: Exclusion | null;
  /** Eligible only as the circuit's single probe. */
  halfOpen: boolean;
  predictedMs: number;
  /** Predicted latency for ranking on speed: a cold row ranks no faster than the best measured one within target. */
  speedMs: number;
  costUsd: number;
  cold: boolean;
  /** Predicted within target: at the bound of `predictedMs`, or in a decision at a drawn one (`evaluate`). */
  within: boolean;
}

/** Dollars for a request of `promptTokens` in and `outputTokens` out at the model's catalog prices. */
export function costUsd(model: CatalogModel, promptTokens: number, outputTokens: number): number {
  return (promptTokens * model.pricePerMTok.input + outputTokens * model.pricePerMTok.output) / 1e6;
}

/**
 * Whether `row` is within target at a bound drawn at z = `config.confidenceZ` + Φ⁻¹(`u`), from its
 * verdict at `config.confidenceZ` (`row.within`). A draw only moves the bound toward the cap (u > ½) or
 * the plain percentile (u < ½): one that moves it away from the target keeps the verdict, and so does
 * one whose extreme (the cap for a row within, the plain percentile for a row out) keeps it. Those two
 * levels are the same for every decision, and their quantiles are cached: only a row near the target
 * reads its histogram at the drawn level.
 */
function withinAtDraw(row: Row, route: RoutePolicy, request: RequestProfile, outputTokens: number, config: StatsConfig, nowMs: number, u: number): boolean {
  const within = row.within;
  if (within ? u <= 0.5 : u >= 0.5) return within;
  const { metric, percentile, ms: targetMs } = route.target;
  const { stats } = row.entry;
  const prior = row.model.prior;
  const extremeMs = predictMs(stats, prior, metric, percentile, request.promptTokens, outputTokens, config, nowMs, within ? Number.POSITIVE_INFINITY : 0);
  if (within === extremeMs <= targetMs) return within;
  const z = config.confidenceZ + normalQuantile(u);
  return predictMs(stats, prior, metric, percentile, request.promptTokens, outputTokens, config, nowMs, z) <= targetMs;
}

function lacksCapability(model: CatalogModel, needs: RequestProfile["needs"]): boolean {
  if (needs.size === 0) return false;
  for (const need of needs) if (!model.capabilities.has(need)) return true;
  return false;
}

function compareCost(a: Row, b: Row): number {
  return a.costUsd - b.costUsd || a.model.rank - b.model.rank || b.model.score - a.model.score || a.predictedMs - b.predictedMs || a.index - b.index;
}

function compareSpeed(a: Row, b: Row): number {
  return (
    a.speedMs - b.speedMs ||
    Number(a.cold) - Number(b.cold) ||
    a.costUsd - b.costUsd ||
    a.model.rank - b.model.rank ||
    b.model.score - a.model.score ||
    a.index - b.index
  );
}

/** cheapest-within-target: within target by cost first, then the rest by predicted latency. */
function compareWithinTarget(a: Row, b: Row): number {
  if (a.within !== b.within) return a.within ? -1 : 1;
  return a.within ? compareCost(a, b) : compareSpeed(a, b);
}

function compareOrdered(a: Row, b: Row): number {
  return a.index - b.index;
}

const COMPARATORS = {
  "cheapest-within-target": compareWithinTarget,
  fastest: compareSpeed,
  cheapest: compareCost,
  ordered: compareOrdered,
} as const;

export class CandidateTable {
  readonly rows: Row[] = [];
  /** Indices into `rows` of the eligible candidates, in the strategy's order. */
  readonly order: number[] = [];
  /** Rows filled by the last `evaluate`. */
  count = 0;
  /** Eligible rows sorted by the last `sortEligible`. */
  eligible = 0;

  constructor(private readonly entryFor: (model: CatalogModel) => Entry) {}

  /** The row at `position` of the strategy's order. */
  at(position: number): number {
    return this.order[position] ?? 0;
  }

  row(index: number): Row {
    return this.rows[index] as Row;
  }

  /**
   * Fills rows for the route's candidates and sorts the eligible ones; reads state, changes none. With
   * `rng` (a decision), whether an eligible row is within target is judged at a bound whose z is drawn,
   * `confidenceZ` plus a standard normal (Thompson sampling of the margin, predict.ts); its
   * `predictedMs`, which ranks on speed and times hedges, stays the bound at `confidenceZ`.
   */
  evaluate(route: RoutePolicy, request: RequestProfile, outputTokens: number, config: StatsConfig, nowMs: number, rng?: Rng): void {
    const candidates = route.candidates;
    const count = candidates.length;
    const { metric, percentile, ms: targetMs } = route.target;
    const needed = request.promptTokens + (request.maxOutputTokens ?? 0);
    let bestMeasuredMs = Number.POSITIVE_INFINITY;
    for (let i = 0; i < count; i++) {
      const model = candidates[i] as CatalogModel;
      const entry = this.entryFor(model);
      const row = this.rowAt(i, model, entry);
      row.index = i;
      row.exclusion = contextWindow(entry, model) < needed ? "context" : lacksCapability(model, request.needs) ? "capability" : entry.health.exclusion(nowMs);
      row.halfOpen = row.exclusion === null && entry.health.isHalfOpen(nowMs);
      row.costUsd = costUsd(model, request.promptTokens, outputTokens);
      row.predictedMs = predictMs(entry.stats, model.prior, metric, percentile, request.promptTokens, outputTokens, config, nowMs);
      row.cold = isCold(entry.stats, metric, config, nowMs);
      row.within = row.predictedMs <= targetMs;
      if (rng !== undefined && row.exclusion === null && config.confidenceZ > 0)
        row.within = withinAtDraw(row, route, request, outputTokens, config, nowMs, rng.next());
      if (row.exclusion === null && !row.cold && row.predictedMs < bestMeasuredMs) bestMeasuredMs = row.predictedMs;
    }
    // Good measured latency (within target) is protected from rosy priors; a measured model that misses
    // the target anyway is not, or a promising newcomer could never be tried in its place.
    const floorMs = bestMeasuredMs < targetMs ? bestMeasuredMs : targetMs;
    for (let i = 0; i < count; i++) {
      const row = this.rows[i] as Row;
      row.speedMs = row.cold && row.predictedMs < floorMs ? floorMs : row.predictedMs;
    }
    this.count = count;
    this.sortEligible(route);
  }

  /**
   * Power of two choices among within-target rows whose cost is within `nearTieRatio` of the cheapest:
   * two distinct ones at random, the one with fewer attempts in flight wins (a tie keeps the first draw).
   * Always taking the argmin would herd every request onto one model at high rates.
   */
  spreadNearTies(route: RoutePolicy, rng: Rng): number {
    const rows = this.rows;
    const eligible = this.eligible;
    const cheapest = rows[this.at(0)] as Row;
    if (!cheapest.within) return this.at(0);
    const limit = cheapest.costUsd * (1 + route.nearTieRatio);
    let ties = 1;
    while (ties < eligible) {
      const row = rows[this.at(ties)] as Row;
      if (!row.within || row.costUsd > limit) break;
      ties++;
    }
    if (ties < 2) return this.at(0);
    const first = Math.floor(rng.next() * ties);
    let second = Math.floor(rng.next() * (ties - 1));
    if (second >= first) second++;
    const a = this.at(first);
    const b = this.at(second);
    return (rows[b] as Row).entry.stats.inFlight < (rows[a] as Row).entry.stats.inFlight ? b : a;
  }

  /** The plan: `first`, then `chosen`, then the other eligible rows in order; a half-open row only first. */
  plan(first: number, chosen: number): CatalogModel[] {
    const rows = this.rows;
    const plan: CatalogModel[] = [(rows[first] as Row).model];
    const chosenRow = rows[chosen] as Row;
    if (chosen !== first && !chosenRow.halfOpen) plan.push(chosenRow.model);
    for (let k = 0; k < this.eligible; k++) {
      const index = this.at(k);
      if (index === first || index === chosen) continue;
      const row = rows[index] as Row;
      // Only plan[0] may be a half-open model's probe; anywhere else it would be a second one.
      if (!row.halfOpen) plan.push(row.model);
    }
    return plan;
  }

  private rowAt(i: number, model: CatalogModel, entry: Entry): Row {
    let row = this.rows[i];
    if (row === undefined) {
      row = { model, entry, index: i, exclusion: null, halfOpen: false, predictedMs: 0, speedMs: 0, costUsd: 0, cold: true, within: false };
      this.rows[i] = row;
    } else {
      row.model = model;
      row.entry = entry;
    }
    return row;
  }

  /** Puts the eligible rows' indices into `order`, sorted by the strategy (insertion sort: n ≤ ~20). */
  private sortEligible(route: RoutePolicy): void {
    const rows = this.rows;
    const order = this.order;
    const compare = COMPARATORS[route.strategy];
    let eligible = 0;
    for (let i = 0; i < this.count; i++) {
      const row = rows[i] as Row;
      if (row.exclusion !== null) continue;
      let position = eligible++;
      while (position > 0 && compare(rows[order[position - 1] ?? 0] as Row, row) > 0) {
        order[position] = order[position - 1] ?? 0;
        position--;
      }
      order[position] = i;
    }
    this.eligible = eligible;
  }
}
