// Runs one chat completion on its plan: tries the candidates in order within the attempt limit and one
// budget, and returns how the request ended. The first attempt may be hedged (race.ts); the others run
// one after another. What attempts teach goes through the request's AttemptRecorder.
import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { GatewayError } from "../errors.js";
import type { LoadedConfig } from "../config/load.js";
import { NO_MODEL } from "../metrics/metrics.js";
import type { RequestTrace } from "../observability/tracing.js";
import type { CatalogModel, RequestProfile } from "../router/types.js";
import type { ChatRequest } from "./chat-request.js";
import { windowToBeat } from "./context-limit.js";
import { finishCut } from "./continuation.js";
import { emptyPlanError, failedRequestOutcome, finalError, type AttemptFailure } from "./failures.js";
import type { RequestPlan } from "./plan.js";
import { SHUTDOWN_ERROR, attemptLimits, type BufferedAnswers, type ShutdownSignal } from "./protections.js";
import { Race } from "./race.js";
import { AttemptRecorder, type RecorderDeps, type RequestSummary, type UsageMeter } from "./recorder.js";
import type { Scrubber } from "./scrubber.js";
import type { UpstreamProvider, Upstreams } from "./upstream.js";

/** The config and connections a request runs on; swapped atomically on reload. */
export interface Runtime {
  readonly config: LoadedConfig;
  readonly upstreams: Upstreams;
  /** Keeps this config's secrets out of what is relayed from upstreams. */
  readonly scrubber: Scrubber;
}

export interface ExecutorDeps extends RecorderDeps {
  /** Bytes of non-streaming answers held, gateway-wide. */
  readonly buffered: BufferedAnswers;
  /** Fires when a drain runs out of time. */
  readonly shutdown: ShutdownSignal;
}

/** One client request, read and profiled, with the response to write. */
export interface ChatExchange {
  readonly outgoing: ServerResponse;
  readonly requestId: string;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  /** Client headers passed to the provider (x-request-id, traceparent, ...). */
  readonly passHeaders: Readonly<Record<string, string>>;
  /** The client's body as received: what goes upstream, with the few members the gateway rewrites. */
  readonly body: Buffer;
  readonly request: ChatRequest;
  readonly profile: RequestProfile;
  /** The request's trace; undefined when tracing is off. */
  readonly trace: RequestTrace | undefined;
  /** The runtime's scrubber, for upstream text relayed as it arrives (in-band error events). */
  readonly scrubber: Scrubber;
  /** The calling client's share of the usage metering. */
  readonly meter?: UsageMeter;
}

/** How a request ended: `error` is for the caller to send; without it the response has been written. */
export interface ChatOutcome {
  readonly summary: RequestSummary;
  readonly error: GatewayError | undefined;
}

/** Serves one chat completion on `plan`. */
export async function executeChat(deps: ExecutorDeps, runtime: Runtime, exchange: ChatExchange, plan: RequestPlan): Promise<ChatOutcome> {
  const recorder = new AttemptRecorder(deps, plan, exchange.profile, exchange.startedAt, exchange.trace, exchange.meter);
  const limits = attemptLimits(runtime.config.config.server, deps.buffered);
  const race = new Race(deps.brain, recorder, exchange, plan, (model) => usableProvider(runtime, model), limits);
  const { outgoing } = exchange;
  // `on`, not `once`: the finally below removes it, and `once` would wrap it in another closure.
  outgoing.on("close", race.onClientClose);
  const shutdownSubscription = deps.shutdown.on(race.onShutdown);
  if (deps.shutdown.cut) race.onShutdown();
  try {
    return await runPlan(deps, race, recorder, exchange, plan, runtime.config.config.server.eventLimitBytes);
  } finally {
    outgoing.off("close", race.onClientClose);
    deps.shutdown.off(shutdownSubscription);
    recorder.countDecision();
  }
}

/** `order` with `model` moved to `index`, if it comes later in it; else `order` itself. */
function promote(order: readonly CatalogModel[], index: number, model: CatalogModel | undefined): readonly CatalogModel[] {
  const at = model === undefined ? -1 : order.indexOf(model);
  if (at <= index) return order;
  const moved = order.slice();
  moved.splice(at, 1);
  moved.splice(index, 0, model as CatalogModel);
  return moved;
}

/** A provider that can be called: a provider whose key is missing would only answer 401s. */
function usableProvider(runtime: Runtime, model: CatalogModel): UpstreamProvider | undefined {
  const provider = runtime.upstreams.get(model.provider);
  return provider && provider.missingKeyEnv === undefined ? provider : undefined;
}

async function runPlan(
  deps: ExecutorDeps,
  race: Race,
  recorder: AttemptRecorder,
  exchange: ChatExchange,
  plan: RequestPlan,
  eventLimitBytes: number,
): Promise<ChatOutcome> {
  const { decision, maxAttempts } = plan;
  const budgetEnd = exchange.startedAt + plan.deadlines.budgetMs;
  /** Models whose (configured or learned) window is at most this are skipped: the request did not fit it. */
  let contextLimit = 0;
  let budgetSpent = false;
  let order: readonly CatalogModel[] = decision.plan;
  for (let index = 0; index < order.length && recorder.attempts < maxAttempts && !race.stopped; index++) {
    // After a failure, while the target can still be met, the next model is the one predicted to meet it.
    if (index > 0 && plan.policy !== undefined)
      order = promote(order, index, deps.brain.fallback(plan.policy, exchange.profile, race.tried, performance.now() - exchange.startedAt));
    const model = order[index] as CatalogModel;
    if (race.tried.has(model.id) || (contextLimit > 0 && deps.brain.contextWindow(model) <= contextLimit)) continue;
    const provider = race.provider(model);
    if (provider === undefined) continue;
    if (index > 0) {
      const state = deps.brain.state(model.id);
      if (state === "open" || state === "cooling") {
        recorder.fallback(model, "circuit_open");
        continue;
      }
    }
    const remainingMs = budgetEnd - performance.now();
    if (remainingMs <= 0) {
      budgetSpent = true;
      break;
    }
    const first = index === 0;
    if (!first && plan.policy !== undefined) deps.brain.fallbackStarted(plan.policy);
    const round = await race.run(model, provider, first && decision.probe, budgetEnd, first ? decision.hedgeAfterMs : undefined);
    if (round.served !== undefined) {
      const { cut } = round.served;
      // A stream cut after content is still open: continued on another model, or ended with its error.
      const served =
        cut === undefined ? round.served : await finishCut({ deps, exchange, plan, race, recorder, budgetEnd, eventLimitBytes }, round.served, cut);
      return { summary: recorder.finish(served.record.model.id, served.outcome, served.status, served.endedAt), error: undefined };
    }
    if (race.stopped) break;
    // A non-retryable 4xx goes straight back with the provider's status, message and code; so does the
    // gateway's own failure to connect (out of file descriptors), which no other candidate would escape.
    const final = round.failed.find(({ failure }) => failure.fallback === undefined);
    if (final !== undefined) {
      const outcome = final.failure.outcome === "gateway_error" ? "gateway_error" : "client_error";
      return { summary: recorder.finish(final.model.id, outcome, final.failure.error.status), error: final.failure.error };
    }
    for (const { model: failed, failure } of round.failed) {
      if (failure.fallback === "context_length") contextLimit = Math.max(contextLimit, windowToBeat(deps.brain, failed, failure));
      if (failure.fallback !== undefined) recorder.fallback(failed, failure.fallback);
    }
  }
  if (race.clientGone) return { summary: recorder.finish(NO_MODEL, "cancelled", 499), error: undefined };
  if (race.shutDown) return { summary: recorder.finish(NO_MODEL, "unavailable", SHUTDOWN_ERROR.status), error: SHUTDOWN_ERROR };
  const early = emptyPlanError(decision, exchange.profile);
  if (early !== undefined) return { summary: recorder.finish(NO_MODEL, early.status === 429 ? "unavailable" : "client_error", early.status), error: early };
  const failures: readonly AttemptFailure[] = race.failures;
  const error = finalError(failures, budgetSpent || budgetEnd - performance.now() <= 0);
  return { summary: recorder.finish(NO_MODEL, failedRequestOutcome(error, failures), error.status), error };
}
