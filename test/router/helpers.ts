// Builders for router tests: catalog entries, routes and requests with the config's defaults, plus a
// driver that feeds the brain scripted attempt outcomes on a fake clock.
import {
  DeadlinesSchema,
  ExplorationSchema,
  HedgingSchema,
  ContinuationSchema,
  type Capability,
  type HealthConfig,
  type StatsConfig,
} from "../../src/config/schema.js";
import { createBrain, type Brain } from "../../src/router/brain.js";
import { createFakeClock, type FakeClock } from "../../src/router/clock.js";
import { createSeededRng } from "../../src/router/rng.js";
import type { CatalogModel, Decision, RequestProfile, RoutePolicy } from "../../src/router/types.js";

import { defaultHealth, defaultStats } from "./settings.js";

export { defaultHealth, defaultStats };

export interface ModelSpec {
  readonly input?: number;
  readonly output?: number;
  readonly rank?: number;
  readonly score?: number;
  readonly contextTokens?: number;
  readonly capabilities?: readonly Capability[];
  readonly prior?: { ttftMs: number; tokensPerSecond: number };
}

export function model(id: string, spec: ModelSpec = {}): CatalogModel {
  const input = spec.input ?? 0.1;
  const output = spec.output ?? 0.4;
  return {
    id,
    provider: "test",
    upstreamModel: id,
    rank: spec.rank ?? 1,
    score: spec.score ?? 100,
    pricePerMTok: { input, output },
    contextTokens: spec.contextTokens ?? 128_000,
    capabilities: new Set(spec.capabilities ?? ["tools", "json"]),
    prior: spec.prior,
    free: input === 0 && output === 0,
  };
}

export function route(candidates: readonly CatalogModel[], overrides: Partial<RoutePolicy> = {}): RoutePolicy {
  return {
    name: "test-route",
    candidates,
    target: { metric: "ttft", percentile: 95, ms: 800 },
    strategy: "cheapest-within-target",
    deadlines: DeadlinesSchema.parse({}),
    exploration: { ...ExplorationSchema.parse({}), ratio: 0, newModelRatio: 0 },
    hedging: { ...HedgingSchema.parse({}), enabled: false },
    continuation: ContinuationSchema.parse({}),
    maxAttempts: 3,
    nearTieRatio: 0.05,
    ...overrides,
  };
}

export function request(overrides: Partial<RequestProfile> = {}): RequestProfile {
  return { promptTokens: 500, maxOutputTokens: undefined, needs: new Set(), stream: true, ...overrides };
}

export interface Harness {
  readonly brain: Brain;
  readonly clock: FakeClock;
  /** A config change: the brain syncs with `models` (those it did not have are newcomers). */
  readonly sync: (models: readonly CatalogModel[]) => void;
}

export function harness(
  models: readonly CatalogModel[],
  options: { seed?: number; stats?: Partial<StatsConfig>; health?: Partial<HealthConfig> } = {},
): Harness {
  const clock = createFakeClock(1_000_000);
  const stats = defaultStats(options.stats);
  const health = defaultHealth(options.health);
  const brain = createBrain({ clock, rng: createSeededRng(options.seed ?? 7), stats, health });
  brain.sync(models, stats, health);
  return { brain, clock, sync: (next) => brain.sync(next, stats, health) };
}

/** Records `count` successful streamed attempts of `ttftMs` on `modelId`, `spacingMs` apart. */
export function warm({ brain, clock }: Harness, modelId: string, ttftMs: number, count = 50, spacingMs = 10): void {
  for (let i = 0; i < count; i++) {
    brain.attemptStarted(modelId, false);
    brain.attemptFinished({ modelId, route: "test-route", outcome: "ok", ttftMs, totalMs: ttftMs + 500, promptTokens: 500, outputTokens: 100 });
    clock.advance(spacingMs);
  }
}

/** Runs one decided request to an `ok` answer of `ttftMs` on its first model (reporting the probe flag). */
export function serve({ brain }: Harness, decision: Decision, ttftMs: number): string | undefined {
  const first = decision.plan[0];
  if (first === undefined) return undefined;
  brain.attemptStarted(first.id, decision.probe);
  brain.attemptFinished({
    modelId: first.id,
    route: decision.route,
    outcome: "ok",
    ttftMs,
    totalMs: ttftMs + 400,
    promptTokens: 500,
    outputTokens: 100,
    probe: decision.probe,
  });
  return first.id;
}

export const ids = (decision: Decision): string[] => decision.plan.map((m) => m.id);
