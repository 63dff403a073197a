// The scripted story, as pure functions: where we are in it, and how each model behaves at that point.
import type { Episode, Faults, HangMode, SimProfiles } from "./profiles.js";

/** Fault probabilities in force for one model at one moment; every kind present (probability 0 = never). */
export interface ResolvedFaults {
  readonly rateLimit: { readonly probability: number; readonly retryAfterSeconds: number };
  readonly serverError: { readonly probability: number; readonly statuses: readonly number[] };
  readonly hang: { readonly probability: number; readonly modes: readonly HangMode[] };
  readonly cut: { readonly probability: number };
}

/** How one model behaves at one point of the story. */
export interface ModelPhase {
  readonly modelId: string;
  /** Position in the story, 0..1. */
  readonly fraction: number;
  /** Multiplies the model's time to first token (1 = healthy). */
  readonly ttftMultiplier: number;
  /** Multiplies the model's decode speed (1 = healthy). */
  readonly tokensPerSecondMultiplier: number;
  readonly faults: ResolvedFaults;
  /** Names of the episodes touching this model now, in file order. */
  readonly episodes: readonly string[];
}

const NO_FAULTS: ResolvedFaults = {
  rateLimit: { probability: 0, retryAfterSeconds: 1 },
  serverError: { probability: 0, statuses: [500, 502, 503] },
  hang: { probability: 0, modes: ["no-headers", "no-first-token"] },
  cut: { probability: 0 },
};

/**
 * Position in the story for a time since its origin.
 * @param elapsedMs time since the story origin, in milliseconds (may be negative).
 * @param durationMs story length, in milliseconds.
 * @param loop true: the story repeats; false: it stops at 1 (after which no episode is active).
 * @returns a fraction in [0, 1).
 */
export function storyFraction(elapsedMs: number, durationMs: number, loop: boolean): number {
  if (!(durationMs > 0)) throw new RangeError("durationMs must be positive");
  const raw = elapsedMs / durationMs;
  if (loop) return raw - Math.floor(raw);
  return Math.min(Math.max(raw, 0), 1);
}

/**
 * How strongly an episode applies at a fraction of the story: 0 outside [from, to), 1 on its plateau,
 * linear in between when it has a ramp.
 */
export function episodeIntensity(episode: Pick<Episode, "from" | "to" | "ramp">, fraction: number): number {
  if (fraction < episode.from || fraction >= episode.to) return 0;
  if (episode.ramp <= 0) return 1;
  return Math.min(1, (fraction - episode.from) / episode.ramp, (episode.to - fraction) / episode.ramp);
}

function appliesTo(episode: Episode, modelId: string): boolean {
  return episode.models === "*" || episode.models.includes(modelId);
}

function baseFaults(own: Faults, defaults: Faults): ResolvedFaults {
  return {
    rateLimit: own.rateLimit ?? defaults.rateLimit ?? NO_FAULTS.rateLimit,
    serverError: own.serverError ?? defaults.serverError ?? NO_FAULTS.serverError,
    hang: own.hang ?? defaults.hang ?? NO_FAULTS.hang,
    cut: own.cut ?? defaults.cut ?? NO_FAULTS.cut,
  };
}

/** The stronger of two fault settings of one kind, the episode's scaled by its intensity. */
function raise<T extends { readonly probability: number }>(current: T, episode: T | undefined, intensity: number): T {
  if (episode === undefined) return current;
  const probability = episode.probability * intensity;
  return probability > current.probability ? { ...episode, probability } : current;
}

/**
 * How a model behaves at a point of the story: drift multipliers multiply over active episodes; each
 * fault kind takes the model's background rate (or the file's default), raised by any active episode.
 * Pure: the same inputs always give the same phase.
 * @param fraction position in the story, 0..1 (see `storyFraction`).
 * @param options.faults false: every fault probability is 0 (drift still applies). Default true.
 * @throws RangeError for a model id the profiles do not know.
 */
export function phaseAt(profiles: SimProfiles, modelId: string, fraction: number, options: { faults?: boolean } = {}): ModelPhase {
  const model = profiles.models.find((m) => m.id === modelId);
  if (model === undefined) throw new RangeError(`unknown simulated model "${modelId}"`);
  let ttftMultiplier = 1;
  let tokensPerSecondMultiplier = 1;
  let faults = baseFaults(model.faults, profiles.faults);
  const episodes: string[] = [];
  for (const episode of profiles.timeline) {
    if (!appliesTo(episode, modelId)) continue;
    const intensity = episodeIntensity(episode, fraction);
    if (intensity <= 0) continue;
    episodes.push(episode.name);
    ttftMultiplier *= 1 + (episode.ttftMultiplier - 1) * intensity;
    tokensPerSecondMultiplier *= 1 + (episode.tokensPerSecondMultiplier - 1) * intensity;
    faults = {
      rateLimit: raise(faults.rateLimit, episode.faults.rateLimit, intensity),
      serverError: raise(faults.serverError, episode.faults.serverError, intensity),
      hang: raise(faults.hang, episode.faults.hang, intensity),
      cut: raise(faults.cut, episode.faults.cut, intensity),
    };
  }
  if (options.faults === false) faults = NO_FAULTS;
  return { modelId, fraction, ttftMultiplier, tokensPerSecondMultiplier, faults, episodes };
}
