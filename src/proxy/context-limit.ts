// Context windows learned from providers' own words: the limit a context_length_exceeded states, and the
// window a request's fallback must beat after one (DESIGN.md "Context windows are learned").
import type { Brain } from "../router/brain.js";
import type { CatalogModel } from "../router/types.js";
import type { AttemptFailure } from "./failures.js";

/** A number as providers print it: digits, maybe grouped with commas ("131,072"). */
const TOKENS = String.raw`(\d{1,3}(?:,\d{3})+|\d+)`;

/**
 * How providers state a model's window, the limit in the first group:
 * OpenAI, vLLM, OpenRouter, Groq: "maximum context length is 8192 tokens";
 * Anthropic: "prompt is too long: 210000 tokens > 200000 maximum";
 * Mistral: "too large for model with 32768 maximum context length";
 * llama.cpp: "exceeds the available context size (4096 tokens)";
 * Gemini: "exceeds the maximum number of tokens allowed (1048576)";
 * others: "context window of 8192 tokens", "context limit: 8192 tokens" ("context length of N" is left
 * out: some providers say it of the request, not of the model).
 */
const STATED_LIMITS: readonly RegExp[] = [
  new RegExp(String.raw`maximum context length (?:is|of)\s*${TOKENS}`, "i"),
  new RegExp(String.raw`\d+ tokens? > ${TOKENS} maximum`, "i"),
  new RegExp(String.raw`${TOKENS} maximum context length`, "i"),
  new RegExp(String.raw`available context size \(${TOKENS} tokens?\)`, "i"),
  new RegExp(String.raw`maximum number of tokens allowed \(${TOKENS}\)`, "i"),
  new RegExp(String.raw`context (?:window|limit|size)(?: is| of|:)\s*${TOKENS}`, "i"),
];

/** The context window a provider's error message states, in tokens; undefined when it states none. */
export function statedContextLimit(message: string): number | undefined {
  for (const pattern of STATED_LIMITS) {
    const match = pattern.exec(message);
    if (match?.[1] === undefined) continue;
    const tokens = Number(match[1].replaceAll(",", ""));
    if (Number.isSafeInteger(tokens) && tokens > 0) return tokens;
  }
  return undefined;
}

/**
 * After `failure` on `model` (a context_length fallback): the window a later candidate must exceed, in
 * tokens. A stated limit is learnt for the model entry; without one, the window the router trusted for
 * it counts.
 */
export function windowToBeat(brain: Brain, model: CatalogModel, failure: AttemptFailure): number {
  const stated = statedContextLimit(failure.error.message);
  if (stated === undefined) return brain.contextWindow(model);
  brain.learnContextWindow(model.id, stated);
  return stated;
}
