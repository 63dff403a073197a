// Types of bench/quality/oracle.mjs, for TypeScript callers (its unit test).

export interface TtftDistribution {
  readonly medianMs: number;
  readonly sigma: number;
  readonly tailProbability: number;
  readonly tailMultiplier: number;
  readonly tailAddMs: number;
  readonly prefillMs: number;
  readonly driftMultiplier: number;
}

/** The parts of a simulator model profile the oracle reads. */
export interface ProfileLike {
  readonly ttft: {
    readonly medianMs: number;
    readonly sigma: number;
    readonly tail: { readonly probability: number; readonly multiplier: number; readonly addMs?: number };
  };
  readonly prefillTokensPerSecond: number;
  readonly outputTokens: { readonly median: number; readonly sigma: number; readonly max: number };
}

/** The parts of a simulator phase the oracle reads. */
export interface PhaseLike {
  readonly ttftMultiplier: number;
  readonly faults: {
    readonly rateLimit: { readonly probability: number };
    readonly serverError: { readonly probability: number };
    readonly hang: { readonly probability: number };
  };
}

export interface Candidate {
  readonly id: string;
  readonly pricePerMTok: { readonly input: number; readonly output: number };
}

export interface Choice {
  readonly id: string;
  readonly attainment: number;
  readonly costUsd: number;
}

export interface Option extends Choice {
  readonly p95Ms: number;
  readonly rateLimited: boolean;
}

export function normalCdf(z: number): number;
export function ttftDistribution(profile: ProfileLike, phase: PhaseLike, promptTokens: number): TtftDistribution;
export function ttftCdf(dist: TtftDistribution, ms: number): number;
export function ttftQuantile(dist: TtftDistribution, q: number): number;
export function faultBeforeFirstToken(phase: PhaseLike): number;
export function expectedCompletionTokens(outputTokens: ProfileLike["outputTokens"], maxTokens: number | undefined): number;
export function chooseAnalytically(input: {
  readonly candidates: readonly Candidate[];
  readonly profileOf: (id: string) => ProfileLike;
  readonly phaseOf: (id: string) => PhaseLike;
  readonly target: { readonly percentile: number; readonly ms: number };
  readonly promptTokens: number;
  readonly maxTokens: number | undefined;
  readonly completionTokensOf: (id: string, maxTokens: number | undefined) => number;
}): { oracle: Choice; fastest: Choice; cheapest: Choice; options: Option[] };
export function oracleAtPercentiles(input: {
  readonly candidates: readonly Candidate[];
  readonly profileOf: (id: string) => ProfileLike;
  readonly phaseAt: (id: string, fraction: number) => PhaseLike;
  readonly target: { readonly ms: number };
  readonly requests: readonly { readonly fraction: number; readonly promptTokens: number; readonly maxTokens: number | undefined }[];
  readonly percentiles: readonly number[];
  readonly completionTokensOf: (id: string, maxTokens: number | undefined) => number;
}): { percentile: number; attainment: number; costUsd: number }[];
