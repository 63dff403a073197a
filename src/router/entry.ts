// What the brain keeps per model entry: its live statistics, its health, and the state of the
// recovery rule (predict.ts) and of new-model probing.
import type { HealthConfig, StatsConfig } from "../config/schema.js";
import { createModelHealth, type HealthListener, type ModelHealth } from "./health.js";
import { createModelStats, type ModelStats } from "./model-stats.js";
import type { LatencyMetric } from "./predict.js";
import type { CatalogModel } from "./types.js";

export interface Entry {
  model: CatalogModel | undefined;
  readonly stats: ModelStats;
  /** Replaced by a fresh one when a reload changes the model's entry (`sameEntry`). */
  health: ModelHealth;
  /**
   * Attempts that said something about the model since the entry was created (not decayed; a client's
   * error says nothing): under stats.minSamples, it is new. Attempts, not samples: a probe cancelled by
   * its hedge before its first token counts, or a slow newcomer would stay new for ever.
   */
  lifetimeAttempts: number;
  /** Brought in or repriced by a config change after start: probed as new until measured (exploration.ts). */
  newcomer: boolean;
  /** When a decision last chose the model within its route's target, in ms. */
  withinAtMs: number;
  /** Consecutive probes under the recovery bar while predicted to miss. */
  recoveryStreak: number;
  /** When the first of those probes reported, in ms. */
  recoverySinceMs: number;
  /** When the last probe was decided, in ms: staleness counts from a probe even if it taught nothing. */
  probedAtMs: number;
  /** What the decision that sent the current probe expected (undefined: no probe expectation). */
  probeMetric: LatencyMetric | undefined;
  /** A probe under this latency, in ms, extends the recovery streak. */
  probeBarMs: number;
  probePredictedMiss: boolean;
  /** Probes whose slot was freed at their first token, before their attempt finished. */
  probeSlotsFreedEarly: number;
  /**
   * The window the provider stated in a context_length_exceeded, in tokens, when smaller than the
   * configured one: candidate filters use it instead. Kept across reloads that leave the configured window as it was.
   */
  learnedContextTokens: number | undefined;
  /** The model refused an assistant prefill: it continues no cut stream until the next reload. */
  prefillRefused: boolean;
}

/** The context window the router trusts for the entry, in tokens: the learned one, else the configured one. */
export function contextWindow(entry: Entry, model: CatalogModel): number {
  return entry.learnedContextTokens ?? model.contextTokens;
}

/** A fresh entry for `model`; `onHealthChange` hears of its health changes. */
export function createEntry(model: CatalogModel, stats: StatsConfig, health: HealthConfig, newcomer: boolean, onHealthChange?: HealthListener): Entry {
  return {
    model,
    newcomer,
    withinAtMs: Number.NEGATIVE_INFINITY,
    stats: createModelStats(stats.halfLifeMs),
    health: createModelHealth(health, stats.halfLifeMs, onHealthChange),
    lifetimeAttempts: 0,
    recoveryStreak: 0,
    recoverySinceMs: 0,
    probedAtMs: Number.NEGATIVE_INFINITY,
    probeMetric: undefined,
    probeBarMs: 0,
    probePredictedMiss: false,
    probeSlotsFreedEarly: 0,
    learnedContextTokens: undefined,
    prefillRefused: false,
  };
}

/**
 * Whether a reload left a model's entry as it was. A changed entry (another provider, upstream name,
 * price, window, ...) is a new deal: its health starts afresh, so a fix to a stuck entry takes effect.
 */
export function sameEntry(a: CatalogModel, b: CatalogModel): boolean {
  return (
    a.provider === b.provider &&
    a.upstreamModel === b.upstreamModel &&
    a.rank === b.rank &&
    a.score === b.score &&
    a.pricePerMTok.input === b.pricePerMTok.input &&
    a.pricePerMTok.output === b.pricePerMTok.output &&
    a.contextTokens === b.contextTokens &&
    a.capabilities.size === b.capabilities.size &&
    [...a.capabilities].every((capability) => b.capabilities.has(capability)) &&
    a.prior?.ttftMs === b.prior?.ttftMs &&
    a.prior?.tokensPerSecond === b.prior?.tokensPerSecond
  );
}
