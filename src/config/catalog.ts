// The catalog and routes as the router runs on them: compiled from the config, immutable.
import type { Capability, Continuation, Deadlines, Exploration, Hedging, Strategy, Target } from "./schema.js";

/** A catalog entry as the router sees it (compiled from config; immutable). */
export interface CatalogModel {
  readonly id: string;
  readonly provider: string;
  readonly upstreamModel: string;
  readonly rank: number;
  readonly score: number;
  /** USD per 1M tokens. */
  readonly pricePerMTok: { readonly input: number; readonly output: number };
  readonly contextTokens: number;
  readonly capabilities: ReadonlySet<Capability>;
  readonly prior: { readonly ttftMs: number; readonly tokensPerSecond: number } | undefined;
  /** Costs nothing (a `:free` variant); routes skip it unless `allowFree`. */
  readonly free: boolean;
}

/** A route with its inherited settings resolved and its static filters (score, price, free) applied. */
export interface RoutePolicy {
  readonly name: string;
  /** Eligible models in configured order (catalog order for "*"). Never empty. */
  readonly candidates: readonly CatalogModel[];
  readonly target: Target;
  readonly strategy: Strategy;
  readonly deadlines: Deadlines;
  readonly exploration: Exploration;
  readonly hedging: Hedging;
  readonly continuation: Continuation;
  readonly maxAttempts: number;
  readonly nearTieRatio: number;
}
