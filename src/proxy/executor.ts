// Runs one chat completion on its plan: tries the candidates in order within the attempt limit and one
// budget, and returns how the request ended. Each attempt is a JsonAttempt or a StreamAttempt; what they
// teach goes through the request's AttemptRecorder.
import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { GatewayError } from "../errors.js";
import type { LoadedConfig } from "../config/load.js";
import { NO_MODEL } from "../metrics/metrics.js";
import type { CatalogModel, RequestProfile } from "../router/types.js";
import type { AttemptServed, AttemptSpec } from "./attempt.js";
import { upstreamBody, type ChatRequest } from "./chat-request.js";
import { writeJsonAnswer } from "./client-sse.js";
import { emptyPlanError, failedRequestOutcome, finalError, type AttemptFailure } from "./failures.js";
import { JsonAttempt, type JsonResult } from "./json-attempt.js";
import type { RequestPlan } from "./plan.js";
import { AttemptRecorder, type RecorderDeps, type RequestSummary } from "./recorder.js";
import { StreamAttempt } from "./stream-attempt.js";
import { ClientGoneError, type UpstreamCall, type UpstreamProvider, type Upstreams } from "./upstream.js";

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
}

/** How a request ended: `error` is for the caller to send; without it the response has been written. */
export interface ChatOutcome {
  readonly summary: RequestSummary;
  readonly error: GatewayError | undefined;
}

/** Serves one chat completion on `plan`. */
export function executeChat(deps: ExecutorDeps, runtime: Runtime, exchange: ChatExchange, plan: RequestPlan): Promise<ChatOutcome> {
  return new ChatExecution(deps, runtime, exchange, plan).run();
}

class ChatExecution {
  readonly #recorder: AttemptRecorder;
  readonly #failures: AttemptFailure[] = [];
  readonly #tried = new Set<string>();
  readonly #budgetEnd: number;
  /** Models whose window is at most this are skipped: a larger one failed on context length. */
  #contextLimit = 0;
  #budgetSpent = false;
  #clientGone = false;
  /** The call in flight: attempts run one after another. */
  #current: UpstreamCall | undefined;

  constructor(
    private readonly deps: ExecutorDeps,
    private readonly runtime: Runtime,
    private readonly exchange: ChatExchange,
    private readonly plan: RequestPlan,
  ) {
    this.#recorder = new AttemptRecorder(deps, plan, exchange.profile, exchange.startedAt);
    this.#budgetEnd = exchange.startedAt + plan.deadlines.budgetMs;
  }

  async run(): Promise<ChatOutcome> {
    const { outgoing } = this.exchange;
    const { decision, maxAttempts } = this.plan;
    // `on`, not `once`: the finally below removes it, and `once` would wrap it in another closure.
    outgoing.on("close", this.#onClose);
    try {
      for (let index = 0; index < decision.plan.length && this.#recorder.attempts < maxAttempts && !this.#clientGone; index++) {
        const model = decision.plan[index] as CatalogModel;
        const provider = this.#usable(model, index);
        if (provider === undefined) continue;
        const remainingMs = this.#budgetEnd - performance.now();
        if (remainingMs <= 0) {
          this.#budgetSpent = true;
          break;
        }
        const served = await this.#attempt(model, provider, index === 0 && decision.probe, remainingMs);
        if (served !== undefined) return { summary: this.#recorder.finish(model.id, served.outcome, served.status, served.endedAt), error: undefined };
        if (this.#clientGone) break;
        const failure = this.#failures[this.#failures.length - 1] as AttemptFailure;
        // A non-retryable 4xx goes straight back with the provider's status, message and code.
        if (failure.fallback === undefined) return { summary: this.#recorder.finish(model.id, "client_error", failure.error.status), error: failure.error };
        if (failure.fallback === "context_length") this.#contextLimit = Math.max(this.#contextLimit, model.contextTokens);
        this.#recorder.fallback(model, failure.fallback);
      }
    } finally {
      outgoing.off("close", this.#onClose);
      this.#recorder.countDecision();
    }
    return this.#failed();
  }

  /** The model's provider when the model may be tried now; undefined to skip it. */
  #usable(model: CatalogModel, index: number): UpstreamProvider | undefined {
    if (this.#tried.has(model.id)) return undefined;
    if (this.#contextLimit > 0 && model.contextTokens <= this.#contextLimit) return undefined;
    const provider = this.runtime.upstreams.get(model.provider);
    // A provider whose key is missing would only answer 401s: it is unusable, not tried keyless.
    if (!provider || provider.missingKeyEnv !== undefined) return undefined;
    if (index > 0) {
      const state = this.deps.brain.state(model.id);
      if (state === "open" || state === "cooling") {
        this.#recorder.fallback(model, "circuit_open");
        return undefined;
      }
    }
    return provider;
  }

  /** Runs one attempt; the response when it served the client, else undefined (its failure is noted). */
  async #attempt(model: CatalogModel, provider: UpstreamProvider, probe: boolean, remainingMs: number): Promise<AttemptServed | undefined> {
    const { exchange } = this;
    const recorder = this.#recorder;
    this.#tried.add(model.id);
    recorder.started(model, probe);
    const spec: AttemptSpec = {
      model,
      provider,
      body: upstreamBody(exchange.body, exchange.request, model.upstreamModel),
      passHeaders: exchange.passHeaders,
      probe,
      meter: recorder,
      responseHeaders: () => this.#routingHeaders(model),
    };
    const { deadlines } = this.plan;
    const attempt = exchange.profile.stream
      ? new StreamAttempt({
          ...spec,
          outgoing: exchange.outgoing,
          firstTokenMs: Math.min(deadlines.firstTokenMs, remainingMs),
          idleMs: deadlines.idleMs,
          clientWantsUsage: exchange.request.stream_options?.include_usage === true,
        })
      : new JsonAttempt({ ...spec, totalMs: Math.min(deadlines.totalMs, remainingMs) });
    this.#current = attempt.call;
    const running = attempt.run();
    recorder.countDecision();
    const result = await running;
    this.#current = undefined;
    if (result.kind === "answer") return this.#sendJson(model, probe, result);
    recorder.attemptFinished(this.#clientGone && result.kind === "failed" ? { ...result.record, outcome: "cancelled" } : result.record);
    if (result.kind === "served") return result;
    this.#failures.push(result.failure);
    return undefined;
  }

  #sendJson(model: CatalogModel, probe: boolean, answer: Extract<JsonResult, { kind: "answer" }>): AttemptServed {
    writeJsonAnswer(this.exchange.outgoing, answer.bytes, answer.contentType, this.#routingHeaders(model));
    const record = { model, probe, outcome: "ok" as const, totalMs: answer.totalMs, ...(answer.usage ? { usage: answer.usage } : {}) };
    this.#recorder.attemptFinished(record);
    const endedAt = performance.now();
    this.#recorder.addOverhead(endedAt - answer.receivedAt);
    return { kind: "served", outcome: "ok", status: 200, record, endedAt };
  }

  /** Every attempt failed, or none could start: the error to answer with. */
  #failed(): ChatOutcome {
    const recorder = this.#recorder;
    if (this.#clientGone) return { summary: recorder.finish(NO_MODEL, "cancelled", 499), error: undefined };
    const early = emptyPlanError(this.plan.decision, this.exchange.profile);
    if (early !== undefined) return { summary: recorder.finish(NO_MODEL, early.status === 429 ? "unavailable" : "client_error", early.status), error: early };
    const error = finalError(this.#failures, this.#budgetSpent || this.#budgetEnd - performance.now() <= 0);
    return { summary: recorder.finish(NO_MODEL, failedRequestOutcome(error, this.#failures), error.status), error };
  }

  #routingHeaders(model: CatalogModel): Record<string, string> {
    return {
      "x-request-id": this.exchange.requestId,
      "x-subsecond-route": this.plan.routeLabel,
      "x-subsecond-model": model.id,
      "x-subsecond-attempts": String(this.#recorder.attempts),
      "x-subsecond-reason": this.#recorder.reason,
    };
  }

  readonly #onClose = (): void => {
    if (this.exchange.outgoing.writableFinished) return;
    this.#clientGone = true;
    this.#current?.abort(new ClientGoneError());
  };
}
