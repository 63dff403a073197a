// Runs one chat completion: asks the brain for a plan, tries candidates within deadlines and one budget,
// forwards the answer (JSON or SSE) and reports every attempt to the brain and the metrics.
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { GatewayError, normalizeUpstreamError } from "../http/errors.js";
import type { GatewayMetrics, FallbackReason, RequestOutcome } from "../metrics/metrics.js";
import { NO_MODEL, PINNED_ROUTE, REQUEST_LIST_ROUTE } from "../metrics/metrics.js";
import { costUsd, type Brain } from "../router/brain.js";
import type { AttemptOutcome, CatalogModel, Decision, RequestProfile } from "../router/types.js";
import type { Target } from "../config/schema.js";
import type { LoadedConfig } from "../config/load.js";
import { SseScanner, readUsage, type SseEvent, type Usage } from "./sse.js";
import { upstreamBody, type ChatRequest } from "./chat-request.js";
import type { Bookkeeping } from "./bookkeeping.js";
import {
  ClientGoneError,
  DeadlineError,
  UpstreamCall,
  classifyTransportError,
  type UpstreamHeaders,
  type UpstreamProvider,
  type Upstreams,
} from "./upstream.js";

/** The config and connections a request runs on; swapped atomically on reload. */
export interface Runtime {
  readonly config: LoadedConfig;
  readonly upstreams: Upstreams;
}

export interface RequestLog {
  route: string;
  model: string;
  attempts: number;
  reason: string;
  outcome: RequestOutcome;
  status: number;
  ttftMs: number | undefined;
}

export interface ExecutorDeps {
  readonly brain: Brain;
  readonly metrics: GatewayMetrics;
  /** Where a served request's metrics go, a moment after its response ended. */
  readonly bookkeeping: Bookkeeping;
}

export interface ChatExchange {
  readonly incoming: IncomingMessage;
  readonly outgoing: ServerResponse;
  readonly requestId: string;
  /** performance.now() when the handler received the request. */
  readonly startedAt: number;
  /** Client headers passed to the provider (x-request-id, traceparent, ...). */
  readonly passHeaders: Record<string, string>;
  /** The client's body as received: what goes upstream, with the few members the gateway rewrites. */
  readonly body: Buffer;
  readonly request: ChatRequest;
  readonly profile: RequestProfile;
  /** Filled in for the access log. */
  readonly log: RequestLog;
}

/** Largest upstream error body read, in bytes (provider error bodies are small). */
const ERROR_BODY_LIMIT = 64 * 1024;
/** Largest non-streaming upstream answer buffered, in bytes. */
const JSON_BODY_LIMIT = 64 * 1024 * 1024;
/** Largest amount of stream held back before the first content chunk, in bytes. */
const HELD_LIMIT = 1024 * 1024;

const DONE_EVENT = Buffer.from("data: [DONE]\n\n");

function errorEvent(message: string, code: string): Buffer {
  return Buffer.from(`data: ${JSON.stringify({ error: { message, type: "server_error", param: null, code } })}\n\n`);
}

const CONTEXT_LENGTH = /context[ _-]?length|maximum context|context window|too many tokens|prompt is too long/i;

/** Why one attempt did not produce the answer. */
interface AttemptFailure {
  readonly outcome: AttemptOutcome;
  readonly fallback: FallbackReason | undefined;
  readonly error: GatewayError;
  readonly retryAfterMs: number | undefined;
}

type AttemptResult = { readonly kind: "served" } | { readonly kind: "failed"; readonly failure: AttemptFailure };

const SERVED: AttemptResult = { kind: "served" };

/** Retry-After as seconds or an HTTP-date (RFC 9110 §10.2.3), in ms. */
export function parseRetryAfter(value: string | string[] | undefined, nowEpochMs: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === "") return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowEpochMs);
}

function routeLabelOf(decision: Decision): string {
  return decision.reason === "pinned" ? PINNED_ROUTE : decision.reason === "request-list" ? REQUEST_LIST_ROUTE : decision.route;
}

/** Collects a body's chunks up to `limit` bytes; what comes after is counted, not kept. */
class BodyCollector {
  private readonly chunks: Buffer[] = [];
  size = 0;

  constructor(readonly limit: number) {}

  /** False once the body is over the limit. */
  add(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > this.limit) return false;
    this.chunks.push(chunk);
    return true;
  }

  bytes(): Buffer {
    return this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
  }
}

/** Classifies an upstream non-2xx answer. */
function failureFromStatus(status: number, text: string, headers: UpstreamHeaders): AttemptFailure {
  const error = normalizeUpstreamError(status, text);
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(headers["retry-after"], Date.now());
    return { outcome: "rate_limited", fallback: "rate_limited", error, retryAfterMs };
  }
  if (status >= 500 || status === 408) {
    return { outcome: "error", fallback: "error", error: new GatewayError(502, `upstream error ${status}: ${error.message}`, { code: "upstream_error" }), retryAfterMs: undefined };
  }
  if (status === 401 || status === 403) {
    // The provider rejected the gateway's own key: not the client's fault, and another provider may work.
    return {
      outcome: "error",
      fallback: "error",
      error: new GatewayError(502, `the provider rejected the gateway's credentials (${status})`, { code: "upstream_auth" }),
      retryAfterMs: undefined,
    };
  }
  if (error.code === "context_length_exceeded" || (status === 400 && CONTEXT_LENGTH.test(error.message))) {
    return { outcome: "client_error", fallback: "context_length", error, retryAfterMs: undefined };
  }
  return { outcome: "client_error", fallback: undefined, error, retryAfterMs: undefined };
}

function transportFailure(error: unknown): AttemptFailure {
  const kind = classifyTransportError(error);
  if (kind === "timeout") {
    const message = error instanceof Error ? error.message : "upstream timed out";
    return { outcome: "timeout", fallback: "timeout", error: new GatewayError(504, `upstream timed out: ${message}`, { code: "upstream_timeout" }), retryAfterMs: undefined };
  }
  const code = (error as { code?: unknown }).code;
  return {
    outcome: "error",
    fallback: "error",
    error: new GatewayError(502, `upstream connection failed${typeof code === "string" ? ` (${code})` : ""}`, { code: "upstream_unavailable" }),
    retryAfterMs: undefined,
  };
}

/** The final answer when every attempt failed (DESIGN.md "The final status"). */
export function finalError(failures: readonly AttemptFailure[], budgetSpent: boolean): GatewayError {
  if (failures.length === 0) {
    return new GatewayError(503, "No candidate model is usable right now.", { code: "no_candidate", shouldRetry: false });
  }
  if (failures.every((f) => f.outcome === "rate_limited")) {
    const waits = failures.map((f) => f.retryAfterMs).filter((ms): ms is number => ms !== undefined);
    const seconds = waits.length > 0 ? Math.max(1, Math.ceil(Math.min(...waits) / 1000)) : 1;
    return new GatewayError(429, "Every candidate model is rate limited; retry later.", {
      code: "rate_limited",
      headers: { "retry-after": String(seconds) },
    });
  }
  if (failures.every((f) => f.outcome === "timeout") || (budgetSpent && failures.some((f) => f.outcome === "timeout"))) {
    return new GatewayError(504, `Every attempt timed out (${failures.length} attempt${failures.length === 1 ? "" : "s"}).`, {
      code: "upstream_timeout",
      shouldRetry: false,
    });
  }
  const last = failures[failures.length - 1] as AttemptFailure;
  if (last.fallback === "context_length") return last.error;
  return new GatewayError(502, `Every attempt failed; last: ${last.error.message}`, { code: "upstream_error", shouldRetry: false });
}

function routingHeaders(exchange: ChatExchange, route: string, model: string, attempts: number, reason: string): Record<string, string> {
  return {
    "x-request-id": exchange.requestId,
    "x-subsecond-route": route,
    "x-subsecond-model": model,
    "x-subsecond-attempts": String(attempts),
    "x-subsecond-reason": reason,
  };
}

/**
 * Serves one chat completion with the given decision. Returns a GatewayError to send when nothing was
 * sent to the client; returns undefined once the response has been written (success or in-band error).
 */
export async function executeChat(deps: ExecutorDeps, runtime: Runtime, exchange: ChatExchange, decision: Decision): Promise<GatewayError | undefined> {
  const { brain, metrics, bookkeeping } = deps;
  const { outgoing, profile, request } = exchange;
  const routeLabel = routeLabelOf(decision);
  const policy = decision.reason === "pinned" || decision.reason === "request-list" ? undefined : runtime.config.routes.get(decision.route);
  const defaults = runtime.config.config.defaults;
  const deadlines = policy?.deadlines ?? defaults.deadlines;
  const target: Target = policy?.target ?? defaults.target;
  const maxAttempts = policy?.maxAttempts ?? Math.max(defaults.maxAttempts, decision.plan.length);
  const budgetEnd = exchange.startedAt + deadlines.budgetMs;
  const clientWantsUsage = request.stream_options?.include_usage === true;
  const log = exchange.log;
  log.route = routeLabel;

  let clientGone = false;
  /** The attempt in flight: attempts run one after another. */
  let current: UpstreamCall | undefined;
  const onClose = () => {
    if (outgoing.writableFinished) return;
    clientGone = true;
    current?.abort(new ClientGoneError());
  };
  // `on`, not `once`: the finally below removes it, and `once` would wrap it in another closure.
  outgoing.on("close", onClose);

  const failures: AttemptFailure[] = [];
  const tried = new Set<string>();
  let contextLimit = 0;
  let overheadMs = performance.now() - exchange.startedAt;
  let attempts = 0;
  let budgetSpent = false;
  let decisionCounted = false;

  /** Counted once the first request is on its way: kept off the request's critical path. */
  const countDecision = () => {
    if (decisionCounted || !decision.plan[0]) return;
    decisionCounted = true;
    metrics.decision(routeLabel, decision.plan[0].id, decision.reason);
  };

  /** Records the request's outcome; `endedAt` (performance.now()) when it ended before this call. */
  const finish = (model: string, outcome: RequestOutcome, status: number, endedAt = performance.now()) => {
    const durationSeconds = (endedAt - exchange.startedAt) / 1000;
    log.model = model;
    log.outcome = outcome;
    log.status = status;
    log.attempts = attempts;
    metrics.request(routeLabel, model, outcome, profile.stream, durationSeconds);
    metrics.overhead(overheadMs / 1000);
    if (outcome === "ok" && (target.metric === "total" || profile.stream)) {
      const measuredMs = target.metric === "total" ? durationSeconds * 1000 : log.ttftMs;
      if (measuredMs !== undefined) metrics.targetResult(routeLabel, measuredMs <= target.ms);
    }
  };

  try {
    for (let index = 0; index < decision.plan.length && attempts < maxAttempts && !clientGone; index++) {
      const model = decision.plan[index] as CatalogModel;
      if (tried.has(model.id)) continue;
      if (contextLimit > 0 && model.contextTokens <= contextLimit) continue;
      const provider = runtime.upstreams.get(model.provider);
      // A provider whose key is missing would only answer 401s: it is unusable, not tried keyless.
      if (!provider || provider.missingKeyEnv !== undefined) continue;
      if (index > 0) {
        const state = brain.state(model.id);
        if (state === "open" || state === "cooling") {
          metrics.fallback(routeLabel, model.id, "circuit_open");
          continue;
        }
      }
      const remainingMs = budgetEnd - performance.now();
      if (remainingMs <= 0) {
        budgetSpent = true;
        break;
      }
      tried.add(model.id);
      attempts++;
      const probe = index === 0 && decision.probe;
      log.reason = attempts > 1 ? "fallback" : decision.reason;
      const headers = () => routingHeaders(exchange, routeLabel, model.id, attempts, log.reason);
      const call = new UpstreamCall();
      current = call;
      brain.attemptStarted(model.id, probe);
      const result = profile.stream
        ? await streamAttempt(model, provider, call, Math.min(deadlines.firstTokenMs, remainingMs), deadlines.idleMs, headers, probe)
        : await jsonAttempt(model, provider, call, Math.min(deadlines.totalMs, remainingMs), headers, probe);
      current = undefined;
      if (result.kind === "served") return undefined;
      const { failure } = result;
      if (clientGone) break;
      failures.push(failure);
      if (failure.fallback === undefined) {
        // A non-retryable 4xx goes straight back with the provider's status, message and code.
        finish(model.id, "client_error", failure.error.status);
        return failure.error;
      }
      if (failure.fallback === "context_length") contextLimit = Math.max(contextLimit, model.contextTokens);
      metrics.fallback(routeLabel, model.id, failure.fallback);
    }
  } finally {
    outgoing.off("close", onClose);
    countDecision();
  }

  if (clientGone) {
    finish(NO_MODEL, "cancelled", 499);
    return undefined;
  }
  if (decision.plan.length === 0 && (decision.excludedBy === "context" || decision.excludedBy === "capability")) {
    const error =
      decision.excludedBy === "context"
        ? new GatewayError(400, `The request (about ${profile.promptTokens} prompt tokens plus max tokens) does not fit the context window of any candidate.`, { code: "context_length_exceeded", param: "messages" })
        : new GatewayError(400, `No candidate supports what the request needs (${[...profile.needs].join(", ")}).`, { code: "unsupported_capability" });
    finish(NO_MODEL, "client_error", 400);
    return error;
  }
  if (decision.plan.length === 0 && decision.retryAfterMs !== undefined) {
    const error = new GatewayError(429, "Every candidate model is cooling down after rate limits; retry later.", {
      code: "rate_limited",
      headers: { "retry-after": String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))) },
    });
    finish(NO_MODEL, "unavailable", 429);
    return error;
  }
  const error = finalError(failures, budgetSpent || budgetEnd - performance.now() <= 0);
  const outcome: RequestOutcome =
    failures.length === 0 ? "unavailable" : error.status === 504 ? "timeout" : error.status === 429 ? "unavailable" : error.status < 500 ? "client_error" : "upstream_error";
  finish(NO_MODEL, outcome, error.status);
  return error;

  // ---- one non-streaming attempt -------------------------------------------------------------
  function jsonAttempt(
    model: CatalogModel,
    provider: UpstreamProvider,
    call: UpstreamCall,
    deadlineMs: number,
    headers: () => Record<string, string>,
    probe: boolean,
  ): Promise<AttemptResult> {
    return new Promise((resolve) => {
      const attemptStart = performance.now();
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      let status = 0;
      let responseHeaders: UpstreamHeaders = {};
      let body = new BodyCollector(JSON_BODY_LIMIT);
      const settle = (result: AttemptResult) => {
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const ok = () => status >= 200 && status < 300;
      call.start(provider, upstreamBody(exchange.body, request, model.upstreamModel), exchange.passHeaders, {
        onStart(statusCode, upstreamHeaders) {
          status = statusCode;
          responseHeaders = upstreamHeaders;
          if (!ok()) body = new BodyCollector(ERROR_BODY_LIMIT);
        },
        onData(chunk) {
          // An error body past its limit is cut short in the message; an answer past its limit fails.
          if (!body.add(chunk) && ok()) {
            call.abort(new GatewayError(502, `upstream answer larger than ${JSON_BODY_LIMIT} bytes`, { code: "upstream_too_large" }));
          }
        },
        onEnd() {
          settle(ok() ? answer(body.bytes()) : fail(model, probe, failureFromStatus(status, body.bytes().toString("utf8"), responseHeaders), attemptStart));
        },
        onError(error) {
          if (error instanceof GatewayError) settle(fail(model, probe, { outcome: "error", fallback: "error", error, retryAfterMs: undefined }, attemptStart));
          else if (status !== 0 && !ok() && !(error instanceof DeadlineError) && !(error instanceof ClientGoneError)) {
            // The error status is known even when its body was cut.
            settle(fail(model, probe, failureFromStatus(status, body.bytes().toString("utf8"), responseHeaders), attemptStart));
          } else settle(fail(model, probe, transportFailure(error), attemptStart, error instanceof DeadlineError ? deadlineMs : undefined));
        },
      });
      overheadMs += performance.now() - attemptStart;
      if (!settled) timer = setTimeout(() => call.abort(new DeadlineError("total", deadlineMs)), deadlineMs);
      countDecision();

      function answer(bytes: Buffer): AttemptResult {
        const processStart = performance.now();
        const totalMs = processStart - attemptStart;
        let usage: Usage | undefined;
        try {
          const parsed = JSON.parse(bytes.toString("utf8")) as { usage?: unknown; error?: unknown };
          if (parsed.error !== undefined && parsed.error !== null) {
            return fail(model, probe, failureFromStatus(502, bytes.toString("utf8"), responseHeaders), attemptStart);
          }
          usage = readUsage(parsed.usage);
        } catch {
          return fail(model, probe, { outcome: "error", fallback: "error", error: new GatewayError(502, "upstream sent invalid JSON", { code: "upstream_invalid" }), retryAfterMs: undefined }, attemptStart);
        }
        const contentType = responseHeaders["content-type"];
        outgoing.writeHead(200, {
          "content-type": typeof contentType === "string" ? contentType : "application/json",
          "content-length": bytes.length,
          ...headers(),
        });
        outgoing.end(bytes);
        brain.attemptFinished({
          modelId: model.id,
          route: decision.route,
          outcome: "ok",
          totalMs,
          promptTokens: usage?.promptTokens ?? profile.promptTokens,
          ...(usage ? { outputTokens: usage.completionTokens } : {}),
          probe,
        });
        const endedAt = performance.now();
        overheadMs += endedAt - processStart;
        bookkeeping.later(() => {
          metrics.attempt(model.id, "ok");
          if (usage) metrics.usage(routeLabel, model.id, usage.promptTokens, usage.completionTokens, costUsd(model, usage.promptTokens, usage.completionTokens));
          finish(model.id, "ok", 200, endedAt);
        });
        return SERVED;
      }
    });
  }

  // ---- one streaming attempt ------------------------------------------------------------------
  function streamAttempt(
    model: CatalogModel,
    provider: UpstreamProvider,
    call: UpstreamCall,
    firstTokenMs: number,
    idleMs: number,
    headers: () => Record<string, string>,
    probe: boolean,
  ): Promise<AttemptResult> {
    const scanner = new SseScanner(runtime.config.config.server.eventLimitBytes);
    const held: Buffer[] = [];
    let heldBytes = 0;
    let committed = false;
    let sawFinish = false;
    let sawDone = false;
    let usage: Usage | undefined;
    let ttftMs: number | undefined;
    let endedInBand: string | undefined;
    let failureBeforeContent: AttemptFailure | undefined;

    return new Promise<AttemptResult>((resolve) => {
      const attemptStart = performance.now();
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      // Once settled, undici may still deliver the rest of the body (after [DONE], the end of the chunked
      // body, so the connection returns to the pool) or the error of an abort: both are ignored.
      const settle = (result: AttemptResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        outgoing.off("drain", onDrain);
        resolve(result);
      };

      // The first content: the headers and the held events go out. The bookkeeping waits for `afterCommit`,
      // which runs once they have left (or, when the same read ends the stream, in `onEnd`).
      let committedAt = 0;
      const commit = () => {
        committed = true;
        committedAt = performance.now();
        outgoing.writeHead(200, {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache",
          "x-accel-buffering": "no",
          ...headers(),
        });
        for (const chunk of held) outgoing.write(chunk);
        held.length = 0;
      };
      const afterCommit = () => {
        if (ttftMs !== undefined) return;
        ttftMs = committedAt - attemptStart;
        log.ttftMs = committedAt - exchange.startedAt;
        clearTimeout(timer);
        // A paused upstream waits for the client, not the other way round: onDrain arms the idle timer.
        if (!call.paused) timer = setTimeout(onIdle, idleMs);
        metrics.timeToFirstToken(routeLabel, model.id, log.ttftMs / 1000);
      };

      // Writes [start, end) of `buffer` to the client, or holds it until the first content chunk.
      let pendingStart = -1;
      let pendingEnd = -1;
      let pendingBuffer: Buffer | undefined;
      const flushRange = () => {
        if (pendingBuffer === undefined) return;
        const slice = pendingBuffer.subarray(pendingStart, pendingEnd);
        if (committed) {
          if (!outgoing.write(slice)) {
            // Backpressure: a slow client slows the upstream read; its wait is not upstream idleness.
            call.pause();
            clearTimeout(timer);
            outgoing.once("drain", onDrain);
          }
        } else {
          held.push(slice);
          heldBytes += slice.length;
        }
        pendingBuffer = undefined;
      };
      const forward = (buffer: Buffer, start: number, end: number) => {
        if (pendingBuffer === buffer && pendingEnd === start) {
          pendingEnd = end;
          return;
        }
        flushRange();
        pendingBuffer = buffer;
        pendingStart = start;
        pendingEnd = end;
      };

      const onEvent = (buffer: Buffer, start: number, end: number, event: SseEvent) => {
        if (event.usage) usage = event.usage;
        switch (event.kind) {
          case "content":
            // Earlier reads' events go out with the headers; this read's events before the content stay in
            // the pending range, so the first write carries them and the content as one chunk.
            if (!committed) commit();
            forward(buffer, start, end);
            break;
          case "usage":
            if (clientWantsUsage) forward(buffer, start, end);
            break;
          case "done":
            sawDone = true;
            forward(buffer, start, end);
            break;
          case "error":
          case "malformed":
            if (!committed) {
              failureBeforeContent = {
                outcome: "error",
                fallback: "error",
                error: new GatewayError(502, event.errorMessage ?? "upstream stream error", { code: "upstream_error" }),
                retryAfterMs: undefined,
              };
            } else if (event.kind === "error") {
              forward(buffer, start, end);
              endedInBand = event.errorMessage ?? "upstream error";
            } else {
              endedInBand = event.errorMessage ?? "malformed chunk";
            }
            break;
          default:
            forward(buffer, start, end);
        }
        if (event.finished) sawFinish = true;
      };

      function onData(chunk: Buffer) {
        const processStart = performance.now();
        const wasCommitted = committed;
        // Everything one upstream read produces leaves in one write: at the first content the headers,
        // held events and content; at the end the last events and the end of the chunked body.
        outgoing.cork();
        scanner.push(chunk, onEvent);
        flushRange();
        if (failureBeforeContent || endedInBand !== undefined) {
          onEnd();
          call.abort(new Error("stream abandoned"));
        } else if (sawDone) {
          onEnd();
        } else if (!committed && heldBytes + scanner.pendingBytes > HELD_LIMIT) {
          failureBeforeContent = { outcome: "error", fallback: "error", error: new GatewayError(502, "upstream sent too much without content", { code: "upstream_error" }), retryAfterMs: undefined };
          onEnd();
          call.abort(new Error("stream abandoned"));
        }
        outgoing.uncork();
        if (!settled) {
          if (!wasCommitted && committed) afterCommit();
          else if (committed && !call.paused) timer?.refresh();
        }
        overheadMs += performance.now() - processStart;
      }

      function onDrain() {
        timer = setTimeout(onIdle, idleMs);
        call.resume();
      }

      function onIdle() {
        call.abort(new DeadlineError("idle", idleMs));
      }

      function onEnd() {
        if (settled) return;
        const totalMs = performance.now() - attemptStart;
        if (!committed) {
          if (failureBeforeContent) {
            settle(fail(model, probe, failureBeforeContent, attemptStart));
            return;
          }
          if (sawDone || sawFinish) {
            // A complete answer without content (e.g. an empty completion): deliver it.
            flushRange();
            commit();
          } else {
            settle(fail(model, probe, { outcome: "error", fallback: "error", error: new GatewayError(502, "upstream stream ended before any content", { code: "upstream_error" }), retryAfterMs: undefined }, attemptStart));
            return;
          }
        }
        // Committed: the client has content. Finish cleanly, or end with an in-band error and no [DONE].
        let outcome: RequestOutcome = "ok";
        if (endedInBand !== undefined) {
          if (!sawDone) outgoing.write(errorEvent(`The upstream stream failed: ${endedInBand}`, "upstream_error"));
          outcome = "upstream_error";
        } else if (!sawDone) {
          if (sawFinish) outgoing.write(DONE_EVENT);
          else {
            outgoing.write(errorEvent("The upstream stream was cut before it finished.", "stream_cut"));
            outcome = "upstream_error";
          }
        }
        outgoing.end();
        afterCommit();
        const attemptOutcome: AttemptOutcome = outcome === "ok" ? "ok" : "error";
        brain.attemptFinished({
          modelId: model.id,
          route: decision.route,
          outcome: attemptOutcome,
          ...(ttftMs !== undefined ? { ttftMs } : {}),
          ...(outcome === "ok" ? { totalMs } : {}),
          promptTokens: usage?.promptTokens ?? profile.promptTokens,
          ...(usage ? { outputTokens: usage.completionTokens } : {}),
          probe,
        });
        const endedAt = performance.now();
        const finalUsage = usage;
        bookkeeping.later(() => {
          metrics.attempt(model.id, attemptOutcome);
          if (finalUsage) metrics.usage(routeLabel, model.id, finalUsage.promptTokens, finalUsage.completionTokens, costUsd(model, finalUsage.promptTokens, finalUsage.completionTokens));
          finish(model.id, outcome, 200, endedAt);
        });
        settle(SERVED);
      }

      function onError(reason: Error) {
        if (settled) return;
        if (!committed) {
          settle(fail(model, probe, transportFailure(reason), attemptStart, reason instanceof DeadlineError ? firstTokenMs : undefined));
          return;
        }
        if (reason instanceof ClientGoneError) {
          // The client left mid-stream: the model did its part; nothing more to send.
          brain.attemptFinished({ modelId: model.id, route: decision.route, outcome: "client_error", probe });
          finish(model.id, "cancelled", 499);
          settle(SERVED);
          return;
        }
        const stalled = reason instanceof DeadlineError;
        outgoing.end(errorEvent(stalled ? `The upstream stream stalled for ${idleMs} ms.` : `The upstream stream failed: ${reason.message}`, stalled ? "stream_stalled" : "stream_cut"));
        const outcome: AttemptOutcome = stalled ? "timeout" : "error";
        brain.attemptFinished({
          modelId: model.id,
          route: decision.route,
          outcome,
          ...(ttftMs !== undefined ? { ttftMs } : {}),
          ...(stalled ? { deadlineMs: idleMs, timeoutMetric: "total" as const } : {}),
          probe,
        });
        metrics.attempt(model.id, outcome);
        finish(model.id, stalled ? "timeout" : "upstream_error", 200);
        settle(SERVED);
      }

      // A non-2xx answer: its body is the provider's error, collected rather than streamed.
      let failed: { readonly status: number; readonly headers: UpstreamHeaders; readonly body: BodyCollector } | undefined;
      const providerFailure = (answer: NonNullable<typeof failed>) =>
        fail(model, probe, failureFromStatus(answer.status, answer.body.bytes().toString("utf8"), answer.headers), attemptStart);
      call.start(provider, upstreamBody(exchange.body, request, model.upstreamModel), exchange.passHeaders, {
        onStart(statusCode, upstreamHeaders) {
          if (statusCode < 200 || statusCode >= 300) failed = { status: statusCode, headers: upstreamHeaders, body: new BodyCollector(ERROR_BODY_LIMIT) };
        },
        onData(chunk) {
          if (settled) return;
          if (failed) failed.body.add(chunk);
          else onData(chunk);
        },
        onEnd() {
          if (settled) return;
          if (failed) settle(providerFailure(failed));
          else onEnd();
        },
        onError(error) {
          if (settled) return;
          if (failed && !(error instanceof DeadlineError) && !(error instanceof ClientGoneError)) {
            // The error status is known even when its body was cut.
            settle(providerFailure(failed));
          } else onError(error);
        },
      });
      overheadMs += performance.now() - attemptStart;
      if (!settled) timer = setTimeout(() => call.abort(new DeadlineError("first-token", firstTokenMs)), firstTokenMs);
      countDecision();
    });
  }

  /** Records a failed attempt (before anything reached the client) and returns it. */
  function fail(model: CatalogModel, probe: boolean, failure: AttemptFailure, attemptStart: number, deadlineMs?: number): AttemptResult {
    if (clientGone) {
      brain.attemptFinished({ modelId: model.id, route: decision.route, outcome: "client_error", probe });
      return { kind: "failed", failure };
    }
    const elapsed = performance.now() - attemptStart;
    brain.attemptFinished({
      modelId: model.id,
      route: decision.route,
      outcome: failure.outcome,
      ...(failure.outcome === "timeout" ? { deadlineMs: deadlineMs ?? elapsed, timeoutMetric: profile.stream ? ("ttft" as const) : ("total" as const) } : {}),
      ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
      probe,
    });
    metrics.attempt(model.id, failure.outcome);
    return { kind: "failed", failure };
  }
}
