// Runs one chat completion on its plan: tries the candidates in order within the attempt limit and one
// budget, and returns how the request ended. The first attempt may be hedged (race.ts); the others run
// one after another. What attempts teach goes through the request's AttemptRecorder.
import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { GatewayError } from "../errors.js";
import type { LoadedConfig } from "../config/load.js";
import { NO_MODEL } from "../metrics/metrics.js";
import type { CatalogModel, RequestProfile } from "../router/types.js";
import type { ChatRequest } from "./chat-request.js";
import { emptyPlanError, failedRequestOutcome, finalError, type AttemptFailure } from "./failures.js";
import type { RequestPlan } from "./plan.js";
import { Race } from "./race.js";
import { AttemptRecorder, type RecorderDeps, type RequestSummary, type UsageMeter } from "./recorder.js";
import type { UpstreamProvider, Upstreams } from "./upstream.js";

/** The config and connections a request runs on; swapped atomically on reload. */
export interface Runtime {
  readonly config: LoadedConfig;
  readonly upstreams: Upstreams;
}

export type ExecutorDeps = RecorderDeps;

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
  const recorder = new AttemptRecorder(deps, plan, exchange.profile, exchange.startedAt, exchange.meter);
  const race = new Race(deps.brain, recorder, exchange, plan, (model) => usableProvider(runtime, model), runtime.config.config.server.eventLimitBytes);
  const { outgoing } = exchange;
  // `on`, not `once`: the finally below removes it, and `once` would wrap it in another closure.
  outgoing.on("close", race.onClientClose);
  try {
    return await runPlan(deps, race, recorder, exchange, plan);
  } finally {
    outgoing.off("close", race.onClientClose);
    recorder.countDecision();
  }
}

/** A provider that can be called: a provider whose key is missing would only answer 401s. */
function usableProvider(runtime: Runtime, model: CatalogModel): UpstreamProvider | undefined {
  const provider = runtime.upstreams.get(model.provider);
  return provider && provider.missingKeyEnv === undefined ? provider : undefined;
}

async function runPlan(deps: ExecutorDeps, race: Race, recorder: AttemptRecorder, exchange: ChatExchange, plan: RequestPlan): Promise<ChatOutcome> {
  const { decision, maxAttempts } = plan;
  const budgetEnd = exchange.startedAt + plan.deadlines.budgetMs;
  /** Models whose window is at most this are skipped: a larger one failed on context length. */
  let contextLimit = 0;
  let budgetSpent = false;
  for (let index = 0; index < decision.plan.length && recorder.attempts < maxAttempts && !race.clientGone; index++) {
    const model = decision.plan[index] as CatalogModel;
    if (race.tried.has(model.id) || (contextLimit > 0 && model.contextTokens <= contextLimit)) continue;
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
    const round = await race.run(model, provider, first && decision.probe, budgetEnd, first ? decision.hedgeAfterMs : undefined);
    if (round.served !== undefined) {
      const { served } = round;
      return { summary: recorder.finish(served.record.model.id, served.outcome, served.status, served.endedAt), error: undefined };
    }
    if (race.clientGone) break;
    // A non-retryable 4xx goes straight back with the provider's status, message and code.
    const final = round.failed.find(({ failure }) => failure.fallback === undefined);
    if (final !== undefined) return { summary: recorder.finish(final.model.id, "client_error", final.failure.error.status), error: final.failure.error };
    for (const { model: failed, failure } of round.failed) {
      if (failure.fallback === "context_length") contextLimit = Math.max(contextLimit, failed.contextTokens);
      if (failure.fallback !== undefined) recorder.fallback(failed, failure.fallback);
    }
  }
  if (race.clientGone) return { summary: recorder.finish(NO_MODEL, "cancelled", 499), error: undefined };
  const early = emptyPlanError(decision, exchange.profile);
  if (early !== undefined) return { summary: recorder.finish(NO_MODEL, early.status === 429 ? "unavailable" : "client_error", early.status), error: early };
  const failures: readonly AttemptFailure[] = race.failures;
  const error = finalError(failures, budgetSpent || budgetEnd - performance.now() <= 0);
  return { summary: recorder.finish(NO_MODEL, failedRequestOutcome(error, failures), error.status), error };
}
