// POST /v1/chat/completions: reads and checks the request, resolves its plan, hands it to the executor,
// and answers with the executor's error when nothing was sent yet.
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { ClientGate } from "../clients/gate.js";
import { GatewayError } from "../errors.js";
import { NO_MODEL, type ClientOutcome, type RequestOutcome } from "../metrics/metrics.js";
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
  readonly clients: ClientGate;
  /** Any error as a GatewayError to answer with (unknown ones are logged, never echoed). */
  readonly toGatewayError: (error: unknown, requestId: string) => GatewayError;
  /** Starts each request's trace; undefined when tracing is off. */
  readonly tracing?: Tracing | undefined;
}

/** The chat route's handler, and what answers a request refused before it ran (e.g. by auth). */
export function createChatHandlers(deps: ChatDeps): Pick<Route, "handle" | "rejected"> {
  const { brain, metrics, bookkeeping, events, logger, buffered, shutdown } = deps;
  const accessLog = (
    requestId: string,
    startedAt: number,
    summary: Partial<RequestSummary> & { status: number; client: string | undefined },
    endedAt = performance.now(),
  ) => {
    logger.info({ reqId: requestId, method: "POST", path: CHAT_PATH, durationMs: Math.round((endedAt - startedAt) * 100) / 100, ...summary }, "request");
  };

  const handle = async (context: RequestContext): Promise<void> => {
    const { incoming, outgoing, requestId, startedAt } = context;
    const runtime = deps.runtime();
    const trace = deps.tracing?.startRequest(incoming.headers, startedAt);
    let stream = false;
    try {
      const body = await readRequestBody(incoming, runtime.config.config.server.bodyLimitBytes);
      const request = parseChatRequest(body, runtime.config.config.server.jsonDepthLimit);
      stream = request.stream === true;
      const profile = profileRequest(request, deps.estimateTokens);
      const pass = deps.clients.admit(context.client, runtime.config, request, profile);
      if (!pass.admitted) {
        rejected(context, pass.error, stream, "limited", trace);
        return;
      }
      // The request's token estimate gives way to its usage however it ends: answered, refused by routing, or a bug.
      try {
        // Set now, so every response of the request carries them: the answer, a stream, an error.
        for (const name in pass.headers) outgoing.setHeader(name, pass.headers[name] as string);
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
          { outgoing, requestId, startedAt, passHeaders, body, request, profile, trace, scrubber: runtime.scrubber, meter: pass.meter },
          plan,
        );
        const endedAt = performance.now();
        // Queued after the executor's own bookkeeping.
        bookkeeping.later(() => {
          metrics.clientRequest(pass.client, summary.outcome);
          accessLog(requestId, startedAt, { ...summary, client: pass.client }, endedAt);
        });
        // An error may carry a provider's words: they may echo a key the gateway sent.
        if (error !== undefined) sendError(outgoing, runtime.scrubber.error(error), requestId);
      } finally {
        pass.release();
      }
    } catch (thrown) {
      if (thrown instanceof UploadAbortedError) count(context, "cancelled", 499, stream, trace);
      else rejected(context, deps.toGatewayError(thrown, requestId), stream, undefined, trace);
    }
  };

  /**
   * Answers a request refused before routing (by auth, validation or the client's limits), or a bug (the
   * executor returns upstream failures, it does not throw them): counted without a route or model
   * (labels never take request values), and for its client when auth named one.
   */
  function rejected(context: RequestContext, error: GatewayError, stream = false, clientOutcome?: ClientOutcome, trace?: RequestTrace): void {
    sendError(context.outgoing, error, context.requestId);
    const outcome = error.status >= 500 && clientOutcome === undefined ? "gateway_error" : "client_error";
    count(context, outcome, error.status, stream, trace, clientOutcome);
  }

  /** One request that ended before routing, in the metrics (its client's too), its trace and the access log alike. */
  function count(
    { requestId, startedAt, client }: RequestContext,
    outcome: RequestOutcome,
    status: number,
    stream: boolean,
    trace?: RequestTrace,
    clientOutcome?: ClientOutcome,
  ): void {
    const endedAt = performance.now();
    metrics.request("none", NO_MODEL, outcome, stream, (endedAt - startedAt) / 1000);
    if (client !== undefined) metrics.clientRequest(client, clientOutcome ?? outcome);
    const summary = { route: "none", model: NO_MODEL, attempts: 0, reason: "", outcome, status, ttftMs: undefined };
    trace?.ended(summary, endedAt);
    accessLog(requestId, startedAt, { ...summary, client }, endedAt);
  }

  return { handle, rejected };
}
