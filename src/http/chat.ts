// POST /v1/chat/completions: reads and checks the request, resolves its plan, hands it to the executor,
// and answers with the executor's error when nothing was sent yet.
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { GatewayError } from "../errors.js";
import { NO_MODEL, type RequestOutcome } from "../metrics/metrics.js";
import { parseChatRequest, profileRequest, type TokenEstimator } from "../proxy/chat-request.js";
import { executeChat, type ExecutorDeps, type Runtime } from "../proxy/executor.js";
import { resolvePlan } from "../proxy/plan.js";
import type { RequestTrace, Tracing } from "../observability/tracing.js";
import type { RequestSummary } from "../proxy/recorder.js";
import { UploadAbortedError, readRequestBody } from "./request-body.js";
import { sendError } from "./respond.js";
import type { RequestContext, Route } from "./router.js";

export const CHAT_PATH = "/v1/chat/completions";

/** Client headers propagated to providers (DESIGN.md "Headers"); everything else stays here. */
const PROPAGATED = ["traceparent", "tracestate"] as const;

export interface ChatDeps extends ExecutorDeps {
  readonly runtime: () => Runtime;
  readonly logger: Logger;
  readonly estimateTokens: TokenEstimator;
  /** Any error as a GatewayError to answer with (unknown ones are logged, never echoed). */
  readonly toGatewayError: (error: unknown, requestId: string) => GatewayError;
  /** Starts each request's trace; undefined when tracing is off. */
  readonly tracing?: Tracing | undefined;
}

/** The chat route's handler, and what answers a request refused before it ran (e.g. by auth). */
export function createChatHandlers(deps: ChatDeps): Pick<Route, "handle" | "rejected"> {
  const { brain, metrics, bookkeeping, events, logger, buffered, shutdown } = deps;
  const accessLog = (requestId: string, startedAt: number, summary: Partial<RequestSummary> & { status: number }, endedAt = performance.now()) => {
    logger.info({ reqId: requestId, method: "POST", path: CHAT_PATH, durationMs: Math.round((endedAt - startedAt) * 100) / 100, ...summary }, "request");
  };

  const handle = async ({ incoming, outgoing, requestId, startedAt }: RequestContext): Promise<void> => {
    const runtime = deps.runtime();
    const trace = deps.tracing?.startRequest(incoming.headers, startedAt);
    let stream = false;
    try {
      const body = await readRequestBody(incoming, runtime.config.config.server.bodyLimitBytes);
      const request = parseChatRequest(body, runtime.config.config.server.jsonDepthLimit);
      stream = request.stream === true;
      const profile = profileRequest(request, deps.estimateTokens);
      const plan = resolvePlan(runtime.config, brain, request, profile);
      trace?.planned(plan.routeLabel, request.model);
      const passHeaders: Record<string, string> = { "content-type": "application/json", "x-request-id": requestId };
      for (const name of PROPAGATED) {
        const value = incoming.headers[name];
        if (typeof value === "string") passHeaders[name] = value;
      }
      const { summary, error } = await executeChat(
        { brain, metrics, bookkeeping, events, buffered, shutdown },
        runtime,
        { outgoing, requestId, startedAt, passHeaders, body, request, profile, trace, scrubber: runtime.scrubber },
        plan,
      );
      const endedAt = performance.now();
      // Queued after the executor's own bookkeeping.
      bookkeeping.later(() => accessLog(requestId, startedAt, summary, endedAt));
      // An error may carry a provider's words: they may echo a key the gateway sent.
      if (error !== undefined) sendError(outgoing, runtime.scrubber.error(error), requestId);
    } catch (thrown) {
      if (thrown instanceof UploadAbortedError) count(requestId, startedAt, "cancelled", 499, stream, trace);
      else rejected({ incoming, outgoing, requestId, startedAt }, deps.toGatewayError(thrown, requestId), stream, trace);
    }
  };

  /**
   * Answers a request refused before routing, or a bug (the executor returns upstream failures, it does
   * not throw them): counted without a route or model (labels never take request values).
   */
  function rejected({ outgoing, requestId, startedAt }: RequestContext, error: GatewayError, stream = false, trace?: RequestTrace): void {
    sendError(outgoing, error, requestId);
    count(requestId, startedAt, error.status >= 500 ? "gateway_error" : "client_error", error.status, stream, trace);
  }

  /** One request that ended before routing, in the metrics, its trace and the access log alike. */
  function count(requestId: string, startedAt: number, outcome: RequestOutcome, status: number, stream: boolean, trace?: RequestTrace): void {
    const endedAt = performance.now();
    metrics.request("none", NO_MODEL, outcome, stream, (endedAt - startedAt) / 1000);
    const summary = { route: "none", model: NO_MODEL, attempts: 0, reason: "", outcome, status, ttftMs: undefined };
    trace?.ended(summary, endedAt);
    accessLog(requestId, startedAt, summary, endedAt);
  }

  return { handle, rejected };
}
