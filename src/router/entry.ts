// What the brain keeps per model entry: its live statistics, its health, and the state of the
// recovery rule (predict.ts) and of new-model probing.
import type { HealthConfig, StatsConfig } from "../config/schema.js";
import { createModelHealth, type ModelHealth } from "./health.js";
import { createModelStats, type ModelStats } from "./model-stats.js";
import type { LatencyMetric } from "./predict.js";
import type { CatalogModel } from "./types.js";

export interface Entry {
  model: CatalogModel | undefined;
  readonly stats: ModelStats;
  readonly health: ModelHealth;
  /** Latency samples since the entry was created (not decayed): under stats.minSamples, it is new. */
  lifetimeSamples: number;
  /** Consecutive probes under the recovery bar while predicted to miss. */
  recoveryStreak: number;
  /** When the first of those probes reported, in ms. */
  recoverySinceMs: number;
  /** What the decision that sent the current probe expected (undefined: no probe expectation). */
  probeMetric: LatencyMetric | undefined;
  /** A probe under this latency, in ms, extends the recovery streak. */
  probeBarMs: number;
  probePredictedMiss: boolean;
}

export function createEntry(model: CatalogModel, stats: StatsConfig, health: HealthConfig): Entry {
  return {
    model,
    stats: createModelStats(stats.halfLifeMs),
    health: createModelHealth(health, stats.halfLifeMs),
    lifetimeSamples: 0,
    recoveryStreak: 0,
    recoverySinceMs: 0,
    probeMetric: undefined,
    probeBarMs: 0,
    probePredictedMiss: false,
  };
}
