// Every Prometheus metric the gateway exports: names, units, buckets, and where each timer starts and stops.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The registry a gateway's metrics are built against: one per gateway, never prom-client's global. */
export { Registry };
import type { AttemptOutcome, DecisionReason, ModelState } from "../router/types.js";
import type { HedgeOutcome } from "../router/route-state.js";

const HEDGE_OUTCOMES: readonly HedgeOutcome[] = ["won", "lost", "failed", "over_budget"];

/**
 * Final outcome of a client request (label `outcome` of subsecond_requests_total). `gateway_error` is an
 * unexpected error of the gateway's own (a 500): neither the client's fault nor a provider's.
 */
export type RequestOutcome = "ok" | "client_error" | "upstream_error" | "gateway_error" | "timeout" | "unavailable" | "cancelled" | "slow_reader";
/** Why an attempt was abandoned for the next candidate (label `reason` of subsecond_fallbacks_total). */
export type FallbackReason = "timeout" | "error" | "rate_limited" | "context_length" | "circuit_open" | "buffer_full";
export type ConfigReloadResult = "success" | "failure";
/**
 * What became of a stream cut after content (label `outcome` of subsecond_continuations_total): per
 * continuation attempt `completed`, `failed` or `refused` (a 400 about prefill); per cut stream that got
 * no attempt, `no_candidate` (no model left that may continue, or the budget is spent) or `ineligible`
 * (tool calls or a refusal were sent, or `n` > 1).
 */
export type ContinuationOutcome = "completed" | "failed" | "refused" | "no_candidate" | "ineligible";
const CONTINUATION_OUTCOMES: readonly ContinuationOutcome[] = ["completed", "failed", "refused", "no_candidate", "ineligible"];

/** Label value for requests that named a concrete catalog id. */
export const PINNED_ROUTE = "pinned";
/** Label value for requests that carried a `models: [...]` list. */
export const REQUEST_LIST_ROUTE = "request";
/** Label value of `model` when no model served (nothing usable, or rejected before routing). */
export const NO_MODEL = "none";

/**
 * Latency buckets for sub-second chat, in seconds: dense from 50 ms to 2 s (every 50–100 ms up to
 * 1 s, so targets such as 800 ms fall on a boundary), then sparse to one minute.
 */
export const LATENCY_BUCKETS_SECONDS = [
  0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 7.5, 10, 15, 20, 30, 60,
];
/** Gateway overhead buckets, in seconds: 50 µs to 100 ms. */
export const OVERHEAD_BUCKETS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1];

const STATE_VALUE: Record<ModelState, number> = { ok: 0, "half-open": 1, cooling: 2, open: 3 };

/** What the gauges read at scrape time (the router's live view). */
export interface MetricsSource {
  /** Model ids currently in the catalog. */
  modelIds(): readonly string[];
  modelState(modelId: string): ModelState;
  /** The router's current p-th percentile prediction for a typical request, in seconds. */
  latencyEstimateSeconds(modelId: string, metric: "ttft" | "total"): number;
  /** Hash of the loaded config. */
  configHash(): string;
  /** Route names with how many of their candidates are usable now (state ok or half-open). */
  healthyCandidates(): ReadonlyArray<readonly [route: string, count: number]>;
  /** Clients with a daily budget: the budget and what is spent today (UTC), in USD. */
  clientBudgets?(): ReadonlyArray<{ readonly client: string; readonly budgetUsd: number; readonly spentUsd: number }>;
}

/** Outcome of a client's request (label `outcome` of subsecond_client_requests_total): a request outcome, or refused by a limit. */
export type ClientOutcome = RequestOutcome | "limited";
/** The limit that refused a request (label `limit` of subsecond_client_limited_total). */
export type ClientLimit = "requests" | "tokens" | "budget";

type Labels<T extends string> = Record<T, string>;

/** Caches prom-client children per label tuple so the hot path allocates no label objects. */
function childCache<C>(make: (values: readonly string[]) => C): (a: string, b?: string, c?: string) => C {
  const root = new Map<string, Map<string, Map<string, C>>>();
  return (a, b = "", c = "") => {
    let level1 = root.get(a);
    if (level1 === undefined) root.set(a, (level1 = new Map()));
    let level2 = level1.get(b);
    if (level2 === undefined) level1.set(b, (level2 = new Map()));
    let child = level2.get(c);
    if (child === undefined) {
      child = make([a, b, c]);
      level2.set(c, child);
    }
    return child;
  };
}

/** Builds every metric against `registry` (a new one per app; never the global). */
export function createMetrics(registry: Registry, source: MetricsSource) {
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  // Timer: from the request reaching the handler to the last byte handed to the client (or the error).
  const requests = new Counter<"route" | "model" | "outcome">({
    name: "subsecond_requests_total",
    help: "Client requests by route, serving model and final outcome (ok, client_error, upstream_error, gateway_error, timeout, unavailable, cancelled, slow_reader: the client left its stream unread past server.slowReaderGraceMs).",
    labelNames: ["route", "model", "outcome"],
    registers,
  });
  const duration = new Histogram<"route" | "model" | "stream">({
    name: "subsecond_request_duration_seconds",
    help: "Whole request as the client sees it: from the handler receiving the request to the last byte sent, all attempts included.",
    labelNames: ["route", "model", "stream"],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers,
  });
  // Timer: from the handler receiving the request to the first content chunk forwarded (streams), or to the
  // response headers being sent (non-streams, where the whole body is the first token). Fallbacks included.
  const ttft = new Histogram<"route" | "model">({
    name: "subsecond_time_to_first_token_seconds",
    help: "Time to first token as the client sees it: from request receipt to the first content chunk forwarded (fallbacks included).",
    labelNames: ["route", "model"],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers,
  });
  const attempts = new Counter<"model" | "outcome">({
    name: "subsecond_upstream_attempts_total",
    help: "Upstream attempts by model entry and outcome (ok, timeout, error, rate_limited, client_error, superseded: cancelled because another attempt of the request delivered first, gateway_error: the gateway could not connect for lack of local resources).",
    labelNames: ["model", "outcome"],
    registers,
  });
  const fallbacks = new Counter<"route" | "from_model" | "reason">({
    name: "subsecond_fallbacks_total",
    help: "Moves from one candidate to the next within a request, by the model left and why (timeout, error, rate_limited, context_length, circuit_open, buffer_full: the gateway-wide budget of buffered answers was spent).",
    labelNames: ["route", "from_model", "reason"],
    registers,
  });
  const hedges = new Counter<"route" | "outcome">({
    name: "subsecond_hedges_total",
    help: "Hedges by route and outcome: won (the hedge delivered first), lost (the first attempt did), failed, over_budget (a hedge was due but the route's budget said no).",
    labelNames: ["route", "outcome"],
    registers,
  });
  const continuations = new Counter<"route" | "outcome">({
    name: "subsecond_continuations_total",
    help: "Streams cut after content, by route and what became of them: completed, failed or refused (per continuation attempt), no_candidate, ineligible (per cut stream not continued).",
    labelNames: ["route", "outcome"],
    registers,
  });
  const decisions = new Counter<"route" | "model" | "reason">({
    name: "subsecond_route_decisions_total",
    help: "Routing decisions by first-choice model and reason (within-target, best-effort, explore, pinned, request-list).",
    labelNames: ["route", "model", "reason"],
    registers,
  });
  const target = new Counter<"route" | "result">({
    name: "subsecond_route_target_total",
    help: "Successful requests whose measured latency (the route's target metric) met or missed the route's target.",
    labelNames: ["route", "result"],
    registers,
  });
  const tokens = new Counter<"model" | "kind">({
    name: "subsecond_tokens_total",
    help: "Tokens metered from upstream usage, by model entry and kind (prompt, completion).",
    labelNames: ["model", "kind"],
    registers,
  });
  const cost = new Counter<"route" | "model">({
    name: "subsecond_cost_usd_total",
    help: "Spend in USD computed from metered tokens and catalog prices.",
    labelNames: ["route", "model"],
    registers,
  });
  const clientRequests = new Counter<"client" | "outcome">({
    name: "subsecond_client_requests_total",
    help: "Chat requests by client (from config; `default` for auth.apiKeysEnv keys and open gateways) and outcome (a request outcome, or limited).",
    labelNames: ["client", "outcome"],
    registers,
  });
  const clientCost = new Counter<"client">({
    name: "subsecond_client_cost_usd_total",
    help: "Spend in USD by client, from metered tokens and catalog prices.",
    labelNames: ["client"],
    registers,
  });
  const clientLimited = new Counter<"client" | "limit">({
    name: "subsecond_client_limited_total",
    help: "Requests refused with a 429 by client and limit (requests, tokens per minute; budget per UTC day).",
    labelNames: ["client", "limit"],
    registers,
  });
  const budgetGauge = (name: string, help: string, read: (entry: { budgetUsd: number; spentUsd: number }) => number) =>
    new Gauge<"client">({
      name,
      help,
      labelNames: ["client"],
      registers,
      collect() {
        this.reset();
        for (const entry of source.clientBudgets?.() ?? []) this.set({ client: entry.client }, read(entry));
      },
    });
  budgetGauge("subsecond_client_budget_usd", "Daily budget of each client with one (limits.usdPerDay), in USD.", (entry) => entry.budgetUsd);
  budgetGauge(
    "subsecond_client_spent_today_usd",
    "Spend of each client with a budget since 00:00 UTC, in USD: across replicas when shared state is up, this replica's otherwise.",
    (entry) => entry.spentUsd,
  );
  const overhead = new Histogram({
    name: "subsecond_gateway_overhead_seconds",
    help: "Time spent inside the gateway per request, excluding waits on the upstream: parsing, auth, routing, and forwarding work.",
    buckets: OVERHEAD_BUCKETS_SECONDS,
    registers,
  });
  const reloads = new Counter<"result">({
    name: "subsecond_config_reloads_total",
    help: "Config reloads, file edits and catalog refreshes alike, by result (success, failure).",
    labelNames: ["result"],
    registers,
  });
  // Both results exist from start-up at 0, so the first failure is an increase() that alerts can see
  // (Prometheus instrumentation practice: avoid missing series).
  reloads.inc({ result: "success" }, 0);
  reloads.inc({ result: "failure" }, 0);
  new Gauge<"route">({
    name: "subsecond_route_healthy_candidates",
    help: "Candidates of each route that may be tried now (circuit closed or half-open, not cooling after 429).",
    labelNames: ["route"],
    registers,
    collect() {
      this.reset();
      for (const [route, count] of source.healthyCandidates()) this.set({ route }, count);
    },
  });
  new Gauge<"model" | "metric">({
    name: "subsecond_model_latency_estimate_seconds",
    help: "The router's own prediction of each model's latency at the default route's target percentile, for a typical request (metric ttft or total).",
    labelNames: ["model", "metric"],
    registers,
    collect() {
      this.reset();
      for (const id of source.modelIds()) {
        this.set({ model: id, metric: "ttft" }, source.latencyEstimateSeconds(id, "ttft"));
        this.set({ model: id, metric: "total" }, source.latencyEstimateSeconds(id, "total"));
      }
    },
  });
  new Gauge<"model">({
    name: "subsecond_model_state",
    help: "Health of each model entry: 0 ok, 1 half-open, 2 cooling (after 429), 3 open (circuit breaker).",
    labelNames: ["model"],
    registers,
    collect() {
      this.reset();
      for (const id of source.modelIds()) this.set({ model: id }, STATE_VALUE[source.modelState(id)]);
    },
  });
  new Gauge<"hash">({
    name: "subsecond_config_info",
    help: "1 for the hash of the loaded config file, so each replica's config version is visible.",
    labelNames: ["hash"],
    registers,
    collect() {
      this.reset();
      this.set({ hash: source.configHash() }, 1);
    },
  });

  const labels2 = <T extends string>(names: readonly [T, T], v: readonly string[]): Labels<T> => ({ [names[0]]: v[0], [names[1]]: v[1] }) as Labels<T>;
  const labels3 = <T extends string>(names: readonly [T, T, T], v: readonly string[]): Labels<T> =>
    ({ [names[0]]: v[0], [names[1]]: v[1], [names[2]]: v[2] }) as Labels<T>;

  const requestChild = childCache((v) => requests.labels(labels3(["route", "model", "outcome"], v)));
  const durationChild = childCache((v) => duration.labels(labels3(["route", "model", "stream"], v)));
  const ttftChild = childCache((v) => ttft.labels(labels2(["route", "model"], v)));
  const attemptChild = childCache((v) => attempts.labels(labels2(["model", "outcome"], v)));
  const fallbackChild = childCache((v) => fallbacks.labels(labels3(["route", "from_model", "reason"], v)));
  const hedgeChild = childCache((v) => hedges.labels(labels2(["route", "outcome"], v)));
  const continuationChild = childCache((v) => continuations.labels(labels2(["route", "outcome"], v)));
  const decisionChild = childCache((v) => decisions.labels(labels3(["route", "model", "reason"], v)));
  const targetChild = childCache((v) => target.labels(labels2(["route", "result"], v)));
  const tokenChild = childCache((v) => tokens.labels(labels2(["model", "kind"], v)));
  const costChild = childCache((v) => cost.labels(labels2(["route", "model"], v)));
  const clientRequestChild = childCache((v) => clientRequests.labels(labels2(["client", "outcome"], v)));
  const clientCostChild = childCache((v) => clientCost.labels({ client: v[0] as string }));
  const clientLimitedChild = childCache((v) => clientLimited.labels(labels2(["client", "limit"], v)));

  // Created on the first report, so a gateway without sharedState exports no misleading 0.
  let sharedStateUp: Gauge | undefined;
  let sharedStateEvents: Counter<"direction"> | undefined;

  return {
    registry,
    /** Whether the Redis connection of `sharedState` is up (1) or down (0). */
    sharedStateUp(up: boolean): void {
      sharedStateUp ??= new Gauge({
        name: "subsecond_shared_state_up",
        help: "1 while the shared-state connection (Redis) is up, 0 while the replica serves on local state alone. Absent without sharedState.",
        registers,
      });
      sharedStateUp.set(up ? 1 : 0);
    },
    /** Brain events shared with other replicas: sent, received (merged here) or dropped (Redis away or slow). */
    sharedStateEvents(direction: "sent" | "received" | "dropped", events: number): void {
      if (sharedStateEvents === undefined) {
        sharedStateEvents = new Counter<"direction">({
          name: "subsecond_shared_state_events_total",
          help: "Observations, health changes and probe leases shared through Redis: sent to, received from (merged), or dropped for lack of, the other replicas.",
          labelNames: ["direction"],
          registers,
        });
        for (const name of ["sent", "received", "dropped"] as const) sharedStateEvents.inc({ direction: name }, 0);
      }
      sharedStateEvents.inc({ direction }, events);
    },
    /** A finished client request. `durationSeconds` spans receipt to last byte. */
    request(route: string, model: string, outcome: RequestOutcome, stream: boolean, durationSeconds: number): void {
      requestChild(route, model, outcome).inc();
      durationChild(route, model, stream ? "true" : "false").observe(durationSeconds);
    },
    timeToFirstToken(route: string, model: string, seconds: number): void {
      ttftChild(route, model).observe(seconds);
    },
    attempt(model: string, outcome: AttemptOutcome): void {
      attemptChild(model, outcome).inc();
    },
    fallback(route: string, fromModel: string, reason: FallbackReason): void {
      fallbackChild(route, fromModel, reason).inc();
    },
    hedge(route: string, outcome: HedgeOutcome): void {
      hedgeChild(route, outcome).inc();
    },
    continuation(route: string, outcome: ContinuationOutcome): void {
      continuationChild(route, outcome).inc();
    },
    decision(route: string, model: string, reason: DecisionReason): void {
      decisionChild(route, model, reason).inc();
    },
    targetResult(route: string, met: boolean): void {
      targetChild(route, met ? "met" : "missed").inc();
    },
    usage(route: string, model: string, promptTokens: number, completionTokens: number, usd: number): void {
      if (promptTokens > 0) tokenChild(model, "prompt").inc(promptTokens);
      if (completionTokens > 0) tokenChild(model, "completion").inc(completionTokens);
      if (usd > 0) costChild(route, model).inc(usd);
    },
    overhead(seconds: number): void {
      overhead.observe(seconds);
    },
    clientRequest(client: string, outcome: ClientOutcome): void {
      clientRequestChild(client, outcome).inc();
    },
    clientCost(client: string, usd: number): void {
      if (usd > 0) clientCostChild(client).inc(usd);
    },
    clientLimited(client: string, limit: ClientLimit): void {
      clientLimitedChild(client, limit).inc();
    },
    /** Creates each client's series at 0: requests served, spend, and a refusal count per limit it has. */
    registerClients(clients: Iterable<{ readonly name: string; readonly limits: readonly ClientLimit[] }>): void {
      for (const { name, limits } of clients) {
        clientRequestChild(name, "ok").inc(0);
        clientCostChild(name).inc(0);
        for (const limit of limits) clientLimitedChild(name, limit).inc(0);
      }
    },
    configReload(result: ConfigReloadResult): void {
      reloads.labels({ result }).inc();
    },
    /** Creates each route's target, hedge and continuation series at 0, so their rates read 0 rather than nothing. */
    registerRoutes(routes: Iterable<string>): void {
      for (const route of routes) {
        targetChild(route, "met").inc(0);
        targetChild(route, "missed").inc(0);
        for (const outcome of HEDGE_OUTCOMES) hedgeChild(route, outcome).inc(0);
        for (const outcome of CONTINUATION_OUTCOMES) continuationChild(route, outcome).inc(0);
      }
    },
  };
}

export type GatewayMetrics = ReturnType<typeof createMetrics>;
