// Pure planning of one simulated answer: its latencies, length, chunks and fault, drawn from a seeded RNG.
import type { HangMode, ModelProfile } from "./profiles.js";
import type { SimRng } from "./random.js";
import type { ModelPhase } from "./story.js";

/** What the simulator needs to know about a request. */
export interface PlanRequest {
  /** Estimated prompt size, in tokens. */
  readonly promptTokens: number;
  /** `max_completion_tokens` or `max_tokens`, when given. */
  readonly maxTokens: number | undefined;
}

/** Knobs shared by every request of one simulator. */
export interface PlanOptions {
  /** Multiplies every simulated delay (1 = as profiled; tests use e.g. 0.1). */
  readonly latencyScale: number;
  /** Content tokens per streamed chunk (the last chunk may hold fewer). */
  readonly tokensPerChunk: number;
}

/** One content chunk: how many tokens it carries and how long after the previous event it is sent. */
export interface ChunkPlan {
  readonly tokens: number;
  /** For the first chunk: since the request arrived (= TTFT). Afterwards: since the previous chunk. Milliseconds. */
  readonly delayMs: number;
}

/** A scripted failure of one request. */
export type PlannedFault =
  | { readonly kind: "rate-limit"; readonly afterMs: number; readonly retryAfterSeconds: number }
  | { readonly kind: "server-error"; readonly afterMs: number; readonly status: number }
  | { readonly kind: "hang"; readonly mode: HangMode }
  /** Destroy the connection when content chunk number `afterChunks` (0-based) is due; 0 = before any content. */
  | { readonly kind: "cut"; readonly afterChunks: number };

/** Everything about one simulated answer, decided when the request arrives. */
export interface ResponsePlan {
  /** Time to the first content token, prefill and drift included, scaled; milliseconds. */
  readonly ttftMs: number;
  /** True when this request fell in the slow TTFT tail. */
  readonly tail: boolean;
  /** Decode speed of this request (drift included, before latencyScale). */
  readonly tokensPerSecond: number;
  /** Tokens the full answer has; `usage.completion_tokens` when it completes. */
  readonly completionTokens: number;
  readonly finishReason: "stop" | "length";
  /** Content chunks; their `tokens` sum to `completionTokens`. */
  readonly chunks: readonly ChunkPlan[];
  readonly fault: PlannedFault | null;
}

/**
 * Draws one answer. Latency draws come first and always in the same order, so with the same RNG state a
 * request gets the same latencies whether faults are on or off.
 */
export function planResponse(profile: ModelProfile, phase: ModelPhase, request: PlanRequest, rng: SimRng, options: PlanOptions): ResponsePlan {
  const scale = options.latencyScale;
  const tail = rng.next() < profile.ttft.tail.probability;
  const drawnMs = rng.lognormal(profile.ttft.medianMs, profile.ttft.sigma);
  const queueMs = tail ? drawnMs * profile.ttft.tail.multiplier + profile.ttft.tail.addMs : drawnMs;
  const prefillMs = (request.promptTokens / profile.prefillTokensPerSecond) * 1000;
  const ttftMs = (queueMs + prefillMs) * phase.ttftMultiplier * scale;

  const jitter = profile.tokensPerSecond.jitter;
  const tokensPerSecond = profile.tokensPerSecond.mean * phase.tokensPerSecondMultiplier * Math.max(0.25, 1 + jitter * rng.normal());

  const sampled = Math.min(profile.outputTokens.max, Math.max(1, Math.round(rng.lognormal(profile.outputTokens.median, profile.outputTokens.sigma))));
  const limited = request.maxTokens !== undefined && request.maxTokens < sampled;
  const completionTokens = limited && request.maxTokens !== undefined ? request.maxTokens : sampled;

  const chunks: ChunkPlan[] = [];
  for (let sent = 0; sent < completionTokens;) {
    const tokens = Math.min(options.tokensPerChunk, completionTokens - sent);
    const delayMs = sent === 0 ? ttftMs : (tokens / tokensPerSecond) * 1000 * Math.max(0.2, 1 + jitter * rng.normal()) * scale;
    chunks.push({ tokens, delayMs });
    sent += tokens;
  }

  const faults = phase.faults;
  const draws = [rng.next(), rng.next(), rng.next(), rng.next(), rng.next(), rng.next()] as const;
  let fault: PlannedFault | null = null;
  if (draws[0] < faults.rateLimit.probability) {
    fault = { kind: "rate-limit", afterMs: (15 + 45 * draws[4]) * scale, retryAfterSeconds: faults.rateLimit.retryAfterSeconds };
  } else if (draws[1] < faults.serverError.probability) {
    const statuses = faults.serverError.statuses;
    const status = statuses[Math.floor(draws[5] * statuses.length)] ?? 500;
    fault = { kind: "server-error", afterMs: ttftMs * (0.2 + 0.8 * draws[4]), status };
  } else if (draws[2] < faults.hang.probability) {
    const modes = faults.hang.modes;
    fault = { kind: "hang", mode: modes[Math.floor(draws[5] * modes.length)] ?? "no-headers" };
  } else if (draws[3] < faults.cut.probability) {
    const afterChunks = chunks.length < 2 ? 0 : Math.min(chunks.length - 1, Math.max(1, Math.floor(chunks.length * (0.2 + 0.6 * draws[4]))));
    fault = { kind: "cut", afterChunks };
  }

  return { ttftMs, tail, tokensPerSecond, completionTokens, finishReason: limited ? "length" : "stop", chunks, fault };
}

const WORDS = [
  "Simulated",
  "answer",
  "from",
  "Subsecond:",
  "each",
  "word",
  "here",
  "counts",
  "as",
  "one",
  "token,",
  "streamed",
  "at",
  "the",
  "pace",
  "this",
  "model",
  "is",
  "profiled",
  "for,",
  "so",
  "the",
  "router",
  "has",
  "something",
  "real",
  "to",
  "measure.",
] as const;

/**
 * Filler content: `count` words starting at word number `start` of an endless cycle; one word is one
 * token. Concatenating consecutive slices gives the same text as one slice over the whole range.
 */
export function fillerText(start: number, count: number): string {
  let text = "";
  for (let i = start; i < start + count; i++) text += (i === 0 ? "" : " ") + WORDS[i % WORDS.length];
  return text;
}

/** Text of one message `content`: a string, or an array of parts whose `text` fields count. */
function contentChars(content: unknown): number {
  if (typeof content === "string") return content.length;
  if (!Array.isArray(content)) return 0;
  let chars = 0;
  for (const part of content) {
    if (typeof part === "object" && part !== null && "text" in part && typeof part.text === "string") chars += part.text.length;
  }
  return chars;
}

/** Prompt size, in tokens: about one per four characters of message contents; at least 1. */
export function estimatePromptTokens(messages: unknown): number {
  if (!Array.isArray(messages)) return 1;
  let chars = 0;
  for (const message of messages) {
    if (typeof message === "object" && message !== null && "content" in message) chars += contentChars(message.content);
  }
  return Math.max(1, Math.ceil(chars / 4));
}
