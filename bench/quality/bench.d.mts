// Types of bench/quality/bench.mjs, for TypeScript callers (the smoke test); the shapes are those the JSON holds.

export interface BenchOptions {
  readonly scenarios: string[];
  readonly seeds: number[];
  readonly durationMs: number;
  readonly ratePerSecond: number;
  readonly quick: boolean;
  /** Path of the JSON written. */
  readonly out: string;
  readonly help: boolean;
}

export interface PolicyFigures<T> {
  readonly gateway: T;
  readonly fastest: T;
  readonly cheapest: T;
}

export interface Degradation {
  readonly episode: string;
  readonly model: string;
  readonly fromSeconds: number;
  readonly toSeconds: number;
  /** null: the share never stayed below 20% before the degradation ended. */
  readonly leaveSeconds: number | null;
  /** null: the share was not above 50% again before the run ended. */
  readonly returnSeconds: number | null;
  readonly shareBefore: number | null;
  readonly shareDuring: number | null;
  /** Every 500 ms bin with a decision: [start, s after the story start; decisions on the model; all decisions]. */
  readonly bins: [number, number, number][];
}

export interface RunFigures {
  readonly seed: number;
  readonly requests: { readonly planned: number; readonly sent: number; readonly ok: number; readonly failed: number };
  /** Shares 0..1: the gateway's measured client-side, the policies' expected. */
  readonly attainment: PolicyFigures<number | null> & { readonly oracle: number | null };
  /** Cost ÷ the oracle's expected cost, on the requests that completed with usage. */
  readonly costRatio: PolicyFigures<number | null>;
  readonly costUsd: { readonly gateway: number; readonly oracle: number; readonly pricedRequests: number };
  readonly extraAttemptsPer100: number | null;
  readonly upstreamAttempts: number;
  readonly gatewayRequests: number;
  readonly hedgesMetric: boolean;
  readonly hedges: Readonly<Record<"won" | "lost" | "failed" | "over_budget", number>>;
  readonly clientTtftMs: { readonly p50: number | null; readonly p95: number | null };
  readonly degradation: Degradation | null;
  readonly servedBy: Readonly<Record<string, number>>;
  readonly oracleChoices: Readonly<Record<string, number>>;
  readonly errors: Readonly<Record<string, number>>;
  readonly binMs: number;
  readonly wallSeconds: number;
  readonly host: { readonly loadBefore: number; readonly loadAfter: number; readonly loopDelayP99Ms: number; readonly loopDelayMaxMs: number };
}

export interface MedianFigures {
  readonly attainment: PolicyFigures<number | null> & { readonly oracle: number | null };
  readonly costRatio: PolicyFigures<number | null>;
  readonly extraAttemptsPer100: number | null;
  readonly hedgesMetric: boolean;
  readonly hedges: Readonly<Record<string, number | null>>;
  readonly failedShare: number | null;
  readonly clientTtftMs: { readonly p50: number | null; readonly p95: number | null };
  readonly degradation: {
    readonly leaveSeconds: number | null;
    readonly returnSeconds: number | null;
    readonly shareBefore: number | null;
    readonly shareDuring: number | null;
  } | null;
}

export interface ScenarioResult {
  readonly name: string;
  readonly about: string;
  readonly profile: string;
  readonly seeds: number[];
  readonly median: MedianFigures;
  readonly runs: RunFigures[];
}

export interface BenchResult {
  readonly bench: "quality";
  readonly startedAt: string;
  readonly runSeconds: number;
  readonly source: { readonly commit: string | null; readonly dirty: boolean | null };
  readonly node: string;
  readonly options: Omit<BenchOptions, "out" | "help">;
  readonly route: string;
  readonly target: { readonly metric: "ttft"; readonly percentile: number; readonly ms: number };
  readonly scenarios: ScenarioResult[];
}

export const ROOT: string;
export const USAGE: string;
export function parseBenchArgs(argv: readonly string[], context: { root: string; now?: Date }): BenchOptions;
export function renderTable(scenarios: readonly { name: string; seeds: number[]; median: MedianFigures }[], target: { percentile: number; ms: number }): string;
export function runQualityBench(
  options: BenchOptions,
  context?: { root?: string; log?: (line: string) => void; signal?: AbortSignal },
): Promise<{ result: BenchResult; outPath: string; table: string }>;
