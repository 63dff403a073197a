// The zod schema of the gateway config: the single source of truth for keys, types, defaults and docs.
import * as z from "zod";

const inlineSecret = (envKey: string) => `inline secrets are not accepted: put the key in an environment variable and name that variable in ${envKey}`;

const positiveMs = (what: string) => z.number().int().positive().describe(`${what}, in milliseconds`);

/**
 * What a model supports. A request needing tools, vision or json goes only to models that list it;
 * `prefill` marks a model that continues a trailing assistant message, so it may finish a cut stream.
 */
export const CapabilitySchema = z.enum(["tools", "vision", "json", "prefill"]);

export const ProviderSchema = z
  .strictObject({
    baseUrl: z.url({ protocol: /^https?$/ }).describe("OpenAI-compatible base URL, up to and including the version path (e.g. https://openrouter.ai/api/v1)"),
    apiKeyEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name")
      .optional()
      .describe("Name of the environment variable holding this provider's API key; omit for keyless local servers"),
    apiKey: z
      .never({ error: inlineSecret("apiKeyEnv") })
      .optional()
      .describe("Not accepted: use apiKeyEnv"),
    headers: z.record(z.string(), z.string()).default({}).describe("Extra request headers sent to this provider (e.g. HTTP-Referer, X-Title for OpenRouter)"),
    maxConnections: z.number().int().positive().default(128).describe("Connection pool size for this provider"),
    timeouts: z
      .strictObject({
        connectMs: positiveMs("TCP+TLS connect timeout").default(3000),
        headersMs: positiveMs("Safety-net limit on waiting for response headers (route deadlines usually fire first)").default(60000),
        bodyIdleMs: positiveMs("Safety-net limit on silence between body chunks (route deadlines usually fire first)").default(60000),
      })
      .prefault({})
      .describe("Transport timeouts of the connection pool; undici's 300 s defaults are never used"),
  })
  .describe("An OpenAI-compatible upstream");

export const PriceSchema = z
  .strictObject({
    input: z.number().nonnegative().describe("USD per 1M prompt tokens"),
    output: z.number().nonnegative().describe("USD per 1M completion tokens"),
  })
  .describe("Price in USD per million tokens");

export const PriorSchema = z
  .strictObject({
    ttftMs: z.number().positive().describe("Expected time to first token, in milliseconds"),
    tokensPerSecond: z.number().positive().describe("Expected output tokens per second once streaming"),
  })
  .describe("What to expect of a model before live samples exist");

export const ModelSchema = z
  .strictObject({
    id: z.string().min(1).describe("Unique catalog id; what clients put in `model` and what headers and metrics name"),
    provider: z.string().min(1).describe("Key of the provider (under `providers`) serving this entry"),
    upstreamModel: z.string().min(1).optional().describe("Model name the provider expects; defaults to `id`"),
    rank: z.number().int().positive().describe("Position in the ranking (1 = best); breaks cost ties"),
    score: z.number().nonnegative().describe("Ranking score; routes may filter on it with minScore"),
    pricePerMTok: PriceSchema,
    contextTokens: z.number().int().positive().describe("Context window in tokens (prompt + completion)"),
    capabilities: z
      .array(CapabilitySchema)
      .default(["tools", "json"])
      .describe(
        "What the model supports: tools, vision, json, and prefill (it continues a trailing assistant message, so it may finish another model's cut stream)",
      ),
    prior: PriorSchema.optional(),
  })
  .describe("One model served by one provider");

export const TargetSchema = z
  .strictObject({
    metric: z.enum(["ttft", "total"]).describe("ttft: time to first content token; total: whole response"),
    percentile: z.number().int().min(50).max(99).describe("Percentile of the latency distribution that must meet `ms`"),
    ms: z.number().positive().describe("Latency target, in milliseconds"),
  })
  .describe("Latency objective of a route");

export const StrategySchema = z.enum(["cheapest-within-target", "fastest", "cheapest", "ordered"]).describe("How a candidate is chosen");

export const DeadlinesSchema = z
  .strictObject({
    firstTokenMs: positiveMs("Streaming: per-attempt limit to the first content chunk").default(1600),
    idleMs: positiveMs("Streaming: per-attempt limit on silence between chunks").default(10000),
    totalMs: positiveMs("Non-streaming: per-attempt limit on the whole response").default(30000),
    budgetMs: positiveMs("Limit across all attempts of one request").default(30000),
    streamTotalMs: positiveMs(
      "Streaming: per-attempt limit on the whole stream; past it the stream ends with an error event (before any content, the next candidate takes over)",
    ).default(600000),
  })
  .describe("Per-attempt deadlines and the request-wide budget");

export const ExplorationSchema = z
  .strictObject({
    ratio: z.number().min(0).max(0.5).default(0.02).describe("Share of requests that may probe a stale, cheaper candidate"),
    staleAfterMs: positiveMs(
      "A candidate whose newest sample is older than this may be probed; a long shot (not chosen within target in the last 10 minutes, prior missing the target) after 8 times this, and the long shots of a route one at a time at that pace",
    ).default(2000),
    newModelRatio: z
      .number()
      .min(0)
      .max(0.5)
      .default(0.25)
      .describe(
        "Share of requests that may probe a cheaper candidate that a config change or catalog refresh brought in or repriced after start and that was measured fewer than stats.minSamples times, so it is measured within seconds; each such probe is protected by a hedge",
      ),
  })
  .describe("Bounded exploration of cheaper candidates whose statistics are stale or missing");

export const HedgingSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Send a second attempt when the first has not delivered by the hedge delay"),
    maxRatio: z
      .number()
      .min(0)
      .max(0.5)
      .default(0.05)
      .describe(
        "Budget: at most this many extra attempts (hedges, and fallbacks while tokens last) per request, over a sliding window (0.05 = 5 per 100 requests)",
      ),
    marginMs: z
      .number()
      .nonnegative()
      .default(50)
      .describe("Safety margin, in ms: the hedge fires at target − the hedge candidate's predicted latency − this margin"),
  })
  .describe("Hedged attempts: keep the target per request when the first attempt is slow");

export const ContinuationSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe(
        "Finish a stream that failed after content reached the client on another candidate with the prefill capability, continuing the text already sent",
      ),
    max: z.number().int().min(1).max(5).default(1).describe("Most continuation attempts per request"),
  })
  .describe("Continuation of streams cut after content (text-only answers, n absent or 1)");

const RouteSettings = {
  target: TargetSchema,
  strategy: StrategySchema,
  allowFree: z.boolean().describe("Admit `:free` model variants (tiny quotas, prompt logging)"),
  deadlines: DeadlinesSchema,
  exploration: ExplorationSchema,
  hedging: HedgingSchema,
  continuation: ContinuationSchema,
  maxAttempts: z.number().int().min(1).max(10).describe("Upper bound on upstream attempts per request"),
  nearTieRatio: z.number().min(0).max(1).describe("Candidates whose cost is within this fraction of the cheapest share load (power of two choices)"),
};

export const DefaultsSchema = z
  .strictObject({
    target: RouteSettings.target.prefault({ metric: "ttft", percentile: 95, ms: 800 }),
    strategy: RouteSettings.strategy.default("cheapest-within-target"),
    allowFree: RouteSettings.allowFree.default(false),
    deadlines: RouteSettings.deadlines.prefault({}),
    exploration: RouteSettings.exploration.prefault({}),
    hedging: RouteSettings.hedging.prefault({}),
    continuation: RouteSettings.continuation.prefault({}),
    maxAttempts: RouteSettings.maxAttempts.default(3),
    nearTieRatio: RouteSettings.nearTieRatio.default(0.05),
  })
  .describe("Settings every route inherits; a route may override any of them");

export const RouteSchema = z
  .strictObject({
    candidates: z
      .union([z.literal("*"), z.array(z.string().min(1)).min(1)])
      .describe('"*" for every catalog model, or a list of model ids (in fallback order for `ordered`)'),
    minScore: z.number().nonnegative().optional().describe("Drop candidates whose score is below this"),
    maxPricePerMTok: z
      .strictObject({
        input: z.number().nonnegative().optional().describe("USD per 1M prompt tokens"),
        output: z.number().nonnegative().optional().describe("USD per 1M completion tokens"),
      })
      .optional()
      .describe("Drop candidates priced above these"),
    target: RouteSettings.target.optional(),
    strategy: RouteSettings.strategy.optional(),
    allowFree: RouteSettings.allowFree.optional(),
    deadlines: DeadlinesSchema.partial().optional(),
    exploration: ExplorationSchema.partial().optional(),
    hedging: HedgingSchema.partial().optional(),
    continuation: ContinuationSchema.partial().optional(),
    maxAttempts: RouteSettings.maxAttempts.optional(),
    nearTieRatio: RouteSettings.nearTieRatio.optional(),
  })
  .describe("A virtual model name clients can ask for");

export const StatsSchema = z
  .strictObject({
    halfLifeMs: positiveMs("Half-life of the decaying window over latency samples").default(30000),
    minSamples: z.number().positive().default(5).describe("Samples after which live statistics fully replace the prior (blended before that)"),
    recoverySamples: z
      .number()
      .int()
      .min(1)
      .default(4)
      .describe(
        "Consecutive probes under the recovery bar (the target scaled from the route's percentile to the median) after which a model's older, slower history is forgotten",
      ),
    confidenceZ: z
      .number()
      .min(0)
      .max(5)
      .default(1.645)
      .describe(
        "Standard errors added to the percentile read from live samples (an upper confidence bound on the quantile): a model measured from few samples keeps a margin that shrinks as samples grow; each decision draws its margin around this (z plus a standard normal, never under the plain percentile); 0 reads the plain percentile",
      ),
    coldPenalty: z.number().min(1).default(1.5).describe("Multiplier applied to priors, so unmeasured models are predicted pessimistically"),
    defaultPrior: PriorSchema.prefault({ ttftMs: 2000, tokensPerSecond: 30 }).describe("Prior for models without one (deliberately slow)"),
    prefillTokensPerSecond: z.number().positive().default(20000).describe("Prompt tokens processed per second, to scale first-token latency with prompt size"),
    defaultOutputTokens: z
      .number()
      .int()
      .positive()
      .default(256)
      .describe(
        "Completion length assumed, in tokens, for cost and total-latency prediction when a request sets no max_tokens and its route has no observed average yet",
      ),
  })
  .describe("Live latency statistics and prediction");

export const HealthSchema = z
  .strictObject({
    consecutiveFailures: z.number().int().min(1).default(5).describe("Failures in a row that open a model's circuit"),
    errorRate: z.number().gt(0).max(1).default(0.5).describe("Decayed error rate that opens the circuit"),
    errorRateMinSamples: z.number().positive().default(10).describe("Samples needed before errorRate applies"),
    openMs: positiveMs("How long an open circuit rejects traffic before a half-open probe").default(10000),
    cooldownBaseMs: positiveMs("First cooldown after a 429 without Retry-After (doubles, with jitter)").default(1000),
    cooldownMaxMs: positiveMs("Longest cooldown after 429s, a provider's Retry-After included").default(60000),
  })
  .describe("Circuit breaker and rate-limit cooldown, per model entry");

export const ServerSchema = z
  .strictObject({
    host: z.string().min(1).default("127.0.0.1").describe("Address to bind; env HOST overrides"),
    port: z.number().int().min(0).max(65535).default(8080).describe("Port to listen on; env PORT overrides"),
    bodyLimitBytes: z
      .number()
      .int()
      .positive()
      .default(4 * 1024 * 1024)
      .describe("Largest accepted request body, in bytes"),
    eventLimitBytes: z
      .number()
      .int()
      .positive()
      .default(1024 * 1024)
      .describe(
        "Longest single SSE event accepted from an upstream stream, in bytes; a longer one fails the attempt (a fallback before any content, an error event after it) and is never held whole",
      ),
    jsonDepthLimit: z
      .number()
      .int()
      .min(8)
      .max(1000)
      .default(128)
      .describe(
        "Deepest nesting of arrays and objects accepted in a request body (the body's object is level 1); a deeper body is refused with a 400 before it is parsed. At least 8, which ordinary requests (content parts, tool schemas) need; at most 1000, well within what re-serialising a body can recurse",
      ),
    headersTimeoutMs: positiveMs(
      "How long a client may take to send a request's headers (from its first byte, or from connecting); a slower one gets a 408 and its connection is closed",
    ).default(10000),
    requestTimeoutMs: positiveMs(
      "How long a client may take to send a whole request, headers and body; a slower upload gets a 408 and its connection is closed. Responses are not bounded by it, however long they stream",
    ).default(30000),
    keepAliveTimeoutMs: positiveMs(
      "How long an idle keep-alive connection is kept; longer than a load balancer's idle timeout (60 s on AWS ALB), so that the balancer closes first",
    ).default(65000),
    maxConnections: z
      .number()
      .int()
      .positive()
      .default(1024)
      .describe(
        "Client connections held at once; a connection beyond it gets a 503 to its request and is closed, or is closed after 1 s without one. Raise it with the process's file-descriptor limit (ulimit -n)",
      ),
    answerLimitBytes: z
      .number()
      .int()
      .positive()
      .default(64 * 1024 * 1024)
      .describe("Largest non-streaming upstream answer buffered, in bytes; a larger one fails the attempt (the next candidate takes over)"),
    bufferedAnswersLimitBytes: z
      .number()
      .int()
      .positive()
      .default(256 * 1024 * 1024)
      .describe(
        "Bytes of non-streaming answers the whole gateway may hold at once (read from upstreams, not yet sent to their clients); an attempt that would go beyond it fails without blame on its model (fallback reason buffer_full)",
      ),
    slowReaderGraceMs: positiveMs(
      "How long a client may leave its stream unread (its buffer full, the upstream read paused) before the gateway ends the stream and releases the upstream connection",
    ).default(5000),
    drainTimeoutMs: positiveMs("On SIGTERM, how long in-flight requests may take to finish; streams still running then end with an error event").default(10000),
    logLevel: z.enum(["debug", "info", "warn", "error", "silent"]).default("info").describe("Log verbosity"),
    helperThreadNice: z
      .number()
      .int()
      .min(0)
      .max(19)
      .default(10)
      .describe(
        "Linux: how many nice levels below the event loop the helper threads (V8's compiler and GC, libuv's pool) run, so a core they share serves requests first (0: the same level); read at start-up",
      ),
  })
  .refine((server) => server.headersTimeoutMs <= server.requestTimeoutMs, {
    path: ["headersTimeoutMs"],
    message: "must not exceed server.requestTimeoutMs (the headers are part of the request)",
  })
  .describe("HTTP listener, and what one request or upstream stream may cost it");

export const AuthSchema = z
  .strictObject({
    apiKeysEnv: z.string().min(1).optional().describe("Env var holding accepted client keys, comma-separated"),
    adminKeysEnv: z.string().min(1).optional().describe("Env var holding admin keys (for /admin), comma-separated"),
    allowOpen: z.boolean().default(false).describe("Allow binding a non-loopback address while no client keys are configured"),
    apiKeys: z
      .never({ error: inlineSecret("apiKeysEnv") })
      .optional()
      .describe("Not accepted: use apiKeysEnv"),
    adminKeys: z
      .never({ error: inlineSecret("adminKeysEnv") })
      .optional()
      .describe("Not accepted: use adminKeysEnv"),
  })
  .describe("Client authentication");

export const CatalogSchema = z
  .strictObject({
    refreshUrl: z
      .url({ protocol: /^https?$/ })
      .describe("Where to fetch the catalog, in OpenRouter's models format (e.g. https://openrouter.ai/api/v1/models)"),
    refreshIntervalMs: z
      .number()
      .int()
      .min(1000, "at least 1000 ms (the unit is milliseconds)")
      .default(3_600_000)
      .describe("Time between refreshes, in milliseconds; the first runs at start-up"),
    refreshKeyEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name")
      .optional()
      .describe("Name of the environment variable holding a key sent as `Authorization: Bearer`; omit when the URL needs none"),
    refreshKey: z
      .never({ error: inlineSecret("refreshKeyEnv") })
      .optional()
      .describe("Not accepted: use refreshKeyEnv"),
  })
  .describe(
    "Periodic refresh of the catalog's prices, context windows and capabilities, applied like an edit of this file (same validation, atomic swap, live statistics kept); a failed refresh keeps the current catalog. Ranks, scores and priors stay as written",
  );

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name");

export const ClientLimitsSchema = z
  .strictObject({
    requestsPerMinute: z.number().int().positive().optional().describe("Requests admitted over any sliding minute"),
    tokensPerMinute: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("Tokens (prompt + completion) over any sliding minute: estimated when a request is admitted, settled with its usage"),
    usdPerDay: z.number().positive().optional().describe("Spend per UTC day, in USD, metered from usage × catalog prices"),
  })
  .describe("Limits of one client; counted across replicas when sharedState is configured, per replica otherwise");

export const ClientSchema = z
  .strictObject({
    keyEnv: envName.describe("Name of the environment variable holding this client's keys, comma-separated"),
    routes: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('Routes this client may call, and "pinned" for concrete catalog ids and `models` lists; default all'),
    limits: ClientLimitsSchema.optional(),
  })
  .describe("A named caller of the gateway; its name is the `client` label of metrics");

export const SharedStateSchema = z
  .strictObject({
    redisUrlEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name")
      .describe("Name of the environment variable holding the Redis (or Valkey) URL, e.g. redis://:password@127.0.0.1:6379/0"),
    redisUrl: z
      .never({ error: inlineSecret("redisUrlEnv") })
      .optional()
      .describe("Not accepted: use redisUrlEnv (the URL may carry a password)"),
    limitsFailClosed: z
      .boolean()
      .default(false)
      .describe("While Redis is unreachable, refuse requests of clients with limits (429) instead of counting them locally"),
    keyPrefix: z.string().min(1).default("subsecond:").describe("Prefix of every Redis key and channel, so several gateway fleets can share one Redis"),
    batchMs: z
      .number()
      .int()
      .min(5)
      .max(100)
      .default(50)
      .describe("Longest time an observation waits before it is published to the other replicas, in milliseconds"),
    commandTimeoutMs: positiveMs("Longest wait for one Redis command before it counts as failed").default(500),
  })
  .describe(
    "Share what replicas learn (observations, 429 cooldowns, circuits, probes) through Redis; never on a request's critical path: while Redis is down each replica serves on its own state",
  );

/** The whole file. Cross-references (providers, routes, ids) are checked in `validateReferences`. */
export const ConfigSchema = z
  .strictObject({
    server: ServerSchema.prefault({}),
    auth: AuthSchema.prefault({}),
    providers: z.record(z.string().min(1), ProviderSchema).describe("Upstreams by name"),
    models: z.array(ModelSchema).min(1).describe("The catalog, in ranking order"),
    defaults: DefaultsSchema.prefault({}),
    routes: z.record(z.string().min(1), RouteSchema).describe("Virtual model names by name"),
    defaultRoute: z.string().min(1).describe("Route used for `model: auto`"),
    stats: StatsSchema.prefault({}),
    health: HealthSchema.prefault({}),
    catalog: CatalogSchema.optional(),
    clients: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "client names are 1 to 64 letters, digits, '.', '_' or '-'"), ClientSchema)
      .default({})
      .describe("Named clients with their own keys, allowed routes and limits; keys of auth.apiKeysEnv belong to the client `default`"),

    sharedState: SharedStateSchema.optional(),
  })
  // `when` makes the reference checks run even when other fields failed, so one pass reports everything.
  .superRefine(validateReferences, { when: () => true })
  .describe("Subsecond gateway configuration");

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type ProviderConfig = z.infer<typeof ProviderSchema>;
export type ModelConfig = z.infer<typeof ModelSchema>;
export type RouteConfig = z.infer<typeof RouteSchema>;
export type Defaults = z.infer<typeof DefaultsSchema>;
export type Target = z.infer<typeof TargetSchema>;
export type Strategy = z.infer<typeof StrategySchema>;
export type Deadlines = z.infer<typeof DeadlinesSchema>;
export type Exploration = z.infer<typeof ExplorationSchema>;
export type Hedging = z.infer<typeof HedgingSchema>;
export type Continuation = z.infer<typeof ContinuationSchema>;
export type StatsConfig = z.infer<typeof StatsSchema>;
export type HealthConfig = z.infer<typeof HealthSchema>;
export type CatalogConfig = z.infer<typeof CatalogSchema>;
export type ClientConfig = z.infer<typeof ClientSchema>;
export type ClientLimits = z.infer<typeof ClientLimitsSchema>;

export type SharedStateConfig = z.infer<typeof SharedStateSchema>;
export type Capability = z.infer<typeof CapabilitySchema>;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Cross-reference checks. They run even when other fields are malformed (so one `check` lists every
 * error), hence the defensive reading of the raw input.
 */
function validateReferences(input: unknown, ctx: z.RefinementCtx): void {
  if (!isRecord(input)) return;
  const providers = isRecord(input.providers) ? input.providers : {};
  const models = Array.isArray(input.models) ? input.models : [];
  const routes = isRecord(input.routes) ? input.routes : {};
  const ids = new Map<string, number>();
  models.forEach((model: unknown, index) => {
    if (!isRecord(model)) return;
    if (typeof model.id === "string") {
      const first = ids.get(model.id);
      if (first !== undefined) {
        ctx.addIssue({ code: "custom", path: ["models", index, "id"], message: `duplicate model id "${model.id}" (first at models[${first}])` });
      } else {
        ids.set(model.id, index);
      }
    }
    if (typeof model.provider === "string" && !(model.provider in providers)) {
      ctx.addIssue({
        code: "custom",
        path: ["models", index, "provider"],
        message: `unknown provider "${model.provider}" (known: ${Object.keys(providers).join(", ") || "none"})`,
      });
    }
  });
  for (const [name, route] of Object.entries(routes)) {
    if (ids.has(name)) {
      ctx.addIssue({ code: "custom", path: ["routes", name], message: `route name "${name}" is also a model id; clients could not tell them apart` });
    }
    if (name === "auto") {
      ctx.addIssue({ code: "custom", path: ["routes", name], message: '"auto" is reserved as the alias of defaultRoute' });
    }
    if (!isRecord(route) || !Array.isArray(route.candidates)) continue;
    route.candidates.forEach((id: unknown, index) => {
      if (typeof id === "string" && !ids.has(id)) {
        ctx.addIssue({ code: "custom", path: ["routes", name, "candidates", index], message: `unknown model "${id}"` });
      }
    });
  }
  const clients = isRecord(input.clients) ? input.clients : {};
  for (const [name, client] of Object.entries(clients)) {
    if (name === "default") {
      ctx.addIssue({ code: "custom", path: ["clients", name], message: '"default" is reserved for the keys of auth.apiKeysEnv' });
    }
    if (!isRecord(client) || !Array.isArray(client.routes)) continue;
    client.routes.forEach((route: unknown, index) => {
      if (typeof route === "string" && route !== "pinned" && !(route in routes)) {
        ctx.addIssue({
          code: "custom",
          path: ["clients", name, "routes", index],
          message: `unknown route "${route}" (known: ${[...Object.keys(routes), "pinned"].join(", ")})`,
        });
      }
    });
  }
  if (typeof input.defaultRoute === "string" && !(input.defaultRoute in routes)) {
    ctx.addIssue({ code: "custom", path: ["defaultRoute"], message: `unknown route "${input.defaultRoute}"` });
  }
}
