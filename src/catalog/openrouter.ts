// OpenRouter's published catalog formats, validated with zod: the models list (GET /api/v1/models) and a
// model's endpoints (GET /api/v1/models/{author}/{slug}/endpoints); and what the gateway reads from them.
//
// Only the fields the gateway reads are checked; every other field passes (the formats grow over time).
// Prices are strings of USD per token and are checked where a catalog entry uses them (decimal.ts):
// entries the config does not name may carry values such as "-1" (openrouter/auto's variable price).
//
// Units of the endpoint statistics. OpenRouter's API reference describes `latency_last_30m` as
// "Latency percentiles in milliseconds over the last 30 minutes. Latency measures time to first token"
// (schema PercentileStats), and raw responses carry values such as {"p50": 3446, "p90": 7986}. The
// example of the list-endpoints operation shows {"p50": 0.25, "p90": 0.48}, which reads like seconds;
// values that small are refused below rather than taken as a sub-millisecond first token.
// `throughput_last_30m` is output tokens per second (the unit of the provider-routing throughput
// cutoffs); whether its p90 is the fast or the slow side is not documented consistently (the reference's
// example falls from p50 to p99, raw responses rise), so the slower of p50 and p90 is taken.
import * as z from "zod";
import type { Capability } from "../config/schema.js";
import { zodIssues, type FileIssue } from "../config/yaml-file.js";

/** Below this a published first-token latency is not plausible in milliseconds (it looks like seconds). */
const MIN_PLAUSIBLE_LATENCY_MS = 10;

const tokens = z.number().int().positive();

export const OpenRouterModelSchema = z.looseObject({
  id: z.string().min(1),
  context_length: tokens.nullish(),
  pricing: z.looseObject({ prompt: z.string().optional(), completion: z.string().optional() }).nullish(),
  top_provider: z.looseObject({ context_length: tokens.nullish(), max_completion_tokens: tokens.nullish() }).nullish(),
  supported_parameters: z.array(z.string()).nullish(),
  architecture: z.looseObject({ input_modalities: z.array(z.string()).nullish() }).nullish(),
});

/** GET /api/v1/models: `{ data: [model, …] }`. */
export const ModelsListSchema = z.looseObject({ data: z.array(OpenRouterModelSchema) });

const latencyMs = z
  .number()
  .min(MIN_PLAUSIBLE_LATENCY_MS, `below ${MIN_PLAUSIBLE_LATENCY_MS}: OpenRouter publishes first-token latency in milliseconds, and this looks like seconds`)
  .nullish();
const tokensPerSecond = z.number().positive().nullish();

export const EndpointSchema = z.looseObject({
  provider_name: z.string().nullish(),
  tag: z.string().nullish(),
  status: z.union([z.number(), z.string()]).nullish(),
  pricing: z.looseObject({ prompt: z.string().optional(), completion: z.string().optional() }).nullish(),
  uptime_last_30m: z.number().min(0).max(100).nullish(),
  latency_last_30m: z.looseObject({ p50: latencyMs, p75: latencyMs, p90: latencyMs, p99: latencyMs }).nullish(),
  throughput_last_30m: z.looseObject({ p50: tokensPerSecond, p75: tokensPerSecond, p90: tokensPerSecond, p99: tokensPerSecond }).nullish(),
});

/** GET /api/v1/models/{author}/{slug}/endpoints: `{ data: { id, endpoints: [endpoint, …] } }`. */
export const EndpointsSchema = z.looseObject({ data: z.looseObject({ id: z.string().min(1), endpoints: z.array(EndpointSchema) }) });

export type OpenRouterModel = z.infer<typeof OpenRouterModelSchema>;
export type ModelsList = z.infer<typeof ModelsListSchema>;
export type Endpoint = z.infer<typeof EndpointSchema>;
export type ModelEndpoints = z.infer<typeof EndpointsSchema>["data"];

/** Parses JSON text against `schema`; problems come back as issues with field paths (`data[3] (id).pricing.prompt`). */
function parseJson<T>(schema: z.ZodType<T>, text: string): { value: T | undefined; issues: FileIssue[] } {
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    return { value: undefined, issues: [{ path: "(json)", message: error instanceof Error ? error.message : String(error) }] };
  }
  const parsed = schema.safeParse(input);
  return parsed.success ? { value: parsed.data, issues: [] } : { value: undefined, issues: zodIssues(parsed.error, input) };
}

/** A models list (GET /api/v1/models) from its JSON text. */
export function parseModelsList(text: string): { value: ModelsList | undefined; issues: FileIssue[] } {
  return parseJson(ModelsListSchema, text);
}

/** One model's endpoints (GET /api/v1/models/{author}/{slug}/endpoints) from its JSON text. */
export function parseModelEndpoints(text: string): { value: ModelEndpoints | undefined; issues: FileIssue[] } {
  const { value, issues } = parseJson(EndpointsSchema, text);
  return { value: value?.data, issues };
}

/** The context window: the smaller of the model's and its top provider's, in tokens; undefined when neither is published. */
export function contextTokensOf(model: OpenRouterModel): number | undefined {
  const windows = [model.context_length, model.top_provider?.context_length].filter((value): value is number => typeof value === "number");
  return windows.length > 0 ? Math.min(...windows) : undefined;
}

const DERIVED: readonly Capability[] = ["tools", "json", "vision"];

/**
 * `current` with tools, json and vision set from what the model publishes: tools when its supported
 * parameters include `tools`, json when they include `response_format` (or `structured_outputs`), vision
 * when its input modalities include `image`. What is not published is kept; other capabilities are kept.
 * Kept ones stay in their order, new ones are appended.
 */
export function capabilitiesOf(model: OpenRouterModel, current: readonly Capability[]): Capability[] {
  const parameters = model.supported_parameters;
  const modalities = model.architecture?.input_modalities;
  const has: Partial<Record<Capability, boolean>> = {};
  if (parameters) {
    has.tools = parameters.includes("tools");
    has.json = parameters.includes("response_format") || parameters.includes("structured_outputs");
  }
  if (modalities) has.vision = modalities.includes("image");
  const kept = current.filter((capability) => has[capability] !== false);
  return [...kept, ...DERIVED.filter((capability) => has[capability] === true && !kept.includes(capability))];
}

const pricePerToken = (text: string | undefined): number => (text !== undefined && /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.POSITIVE_INFINITY);

/**
 * The endpoint that serves a request sent to OpenRouter without provider preferences: OpenRouter's default
 * routing prefers the cheapest provider that is up (docs: Provider Routing). Endpoints with a negative
 * `status` (OpenRouter's marks for degraded or unavailable ones) or without published latency are skipped;
 * among the cheapest, the one with the slower p90 latency, since either may serve.
 */
export function servingEndpoint(endpoints: readonly Endpoint[]): Endpoint | undefined {
  const up = endpoints.filter((endpoint) => !(Number(endpoint.status) < 0) && latencyOf(endpoint) !== undefined);
  const cost = (endpoint: Endpoint) => pricePerToken(endpoint.pricing?.prompt) + pricePerToken(endpoint.pricing?.completion);
  return up.sort((a, b) => cost(a) - cost(b) || (latencyOf(b) ?? 0) - (latencyOf(a) ?? 0))[0];
}

/** The endpoint's p90 first-token latency (p50 when no p90 is published), in ms. */
function latencyOf(endpoint: Endpoint): number | undefined {
  return endpoint.latency_last_30m?.p90 ?? endpoint.latency_last_30m?.p50 ?? undefined;
}

/**
 * A prior from an endpoint's statistics of the last 30 minutes: `ttftMs` its p90 first-token latency
 * (the published percentile nearest the p95 targets routes use; p50 when p90 is missing), rounded to the
 * millisecond; `tokensPerSecond` the slower of its p50 and p90 throughput, rounded, at least 1 (undefined
 * when no throughput is published). The brain still multiplies priors by `stats.coldPenalty`.
 */
export function publishedPrior(endpoint: Endpoint): { ttftMs: number; tokensPerSecond: number | undefined } | undefined {
  const ttftMs = latencyOf(endpoint);
  if (ttftMs === undefined) return undefined;
  const throughput = [endpoint.throughput_last_30m?.p50, endpoint.throughput_last_30m?.p90].filter((value): value is number => typeof value === "number");
  return { ttftMs: Math.round(ttftMs), tokensPerSecond: throughput.length > 0 ? Math.max(1, Math.round(Math.min(...throughput))) : undefined };
}

/** How an endpoint is named in notes: its tag, else its provider. */
export function endpointName(endpoint: Endpoint): string {
  return endpoint.tag ?? endpoint.provider_name ?? "unnamed endpoint";
}
