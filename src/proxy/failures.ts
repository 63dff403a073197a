// Why an attempt failed and what the request answers when every attempt did: pure classification of
// upstream statuses, transport errors and in-band stream errors (DESIGN.md "Attempts, timeouts and fallback").
import { GatewayError, normalizeUpstreamError } from "../errors.js";
import type { FallbackReason, RequestOutcome } from "../metrics/metrics.js";
import type { AttemptOutcome, Decision, RequestProfile } from "../router/types.js";

/** Why one attempt did not produce the answer. */
export interface AttemptFailure {
  /** `cancelled`: the gateway's own limit stopped it; nothing is learnt about the model. */
  readonly outcome: AttemptOutcome | "cancelled";
  /** Why the next candidate is tried; undefined when the failure goes back to the client as is. */
  readonly fallback: FallbackReason | undefined;
  readonly error: GatewayError;
  readonly retryAfterMs: number | undefined;
}

/** How a transport error is counted: `timeout` for deadlines and undici's own timeouts. */
export type TransportErrorKind = "timeout" | "error";

const CONTEXT_LENGTH = /context[ _-]?length|maximum context|context window|too many tokens|prompt is too long/i;

/** Retry-After as seconds or an HTTP-date (RFC 9110 §10.2.3), in ms. */
export function parseRetryAfter(value: string | string[] | undefined, nowEpochMs: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === "") return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowEpochMs);
}

/** An upstream error that falls back to the next candidate (a 5xx, a broken stream, ...). */
export function upstreamFailure(message: string, code = "upstream_error"): AttemptFailure {
  return { outcome: "error", fallback: "error", error: new GatewayError(502, message, { code }), retryAfterMs: undefined };
}

/**
 * Classifies an upstream non-2xx answer (or a 200 whose body is an error, passed as 502).
 * `retryAfter` is the answer's Retry-After header; `nowEpochMs` resolves its HTTP-date form.
 */
export function failureFromStatus(status: number, text: string, retryAfter: string | string[] | undefined, nowEpochMs: number): AttemptFailure {
  const error = normalizeUpstreamError(status, text);
  if (status === 429) {
    return { outcome: "rate_limited", fallback: "rate_limited", error, retryAfterMs: parseRetryAfter(retryAfter, nowEpochMs) };
  }
  if (status >= 500 || status === 408) return upstreamFailure(`upstream error ${status}: ${error.message}`);
  // The provider rejected the gateway's own key: not the client's fault, and another provider may work.
  if (status === 401 || status === 403) return upstreamFailure(`the provider rejected the gateway's credentials (${status})`, "upstream_auth");
  if (error.code === "context_length_exceeded" || (status === 400 && CONTEXT_LENGTH.test(error.message))) {
    return { outcome: "client_error", fallback: "context_length", error, retryAfterMs: undefined };
  }
  return { outcome: "client_error", fallback: undefined, error, retryAfterMs: undefined };
}

/**
 * Errors of the gateway's own machine when it opens a connection: no file descriptor (EMFILE, ENFILE),
 * no local port (EADDRNOTAVAIL), no buffer or memory. Not the model's fault, and no other candidate
 * would fare better.
 */
const LOCAL_RESOURCE_ERRORS: ReadonlySet<string> = new Set(["EMFILE", "ENFILE", "EADDRNOTAVAIL", "ENOBUFS", "ENOMEM"]);

/** The gateway-wide budget of buffered answers was spent: the next candidate may find room. */
export function bufferFullFailure(limitBytes: number): AttemptFailure {
  return {
    outcome: "cancelled",
    fallback: "buffer_full",
    error: new GatewayError(503, `The gateway holds its limit of ${limitBytes} bytes of answers; retry shortly.`, { code: "gateway_overloaded" }),
    retryAfterMs: undefined,
  };
}

/**
 * A transport failure: a deadline or undici timeout (504), a connection error (502, with its code), or
 * a local resource error (503 `gateway_overloaded`, the gateway's own, returned without a fallback).
 */
export function transportFailure(error: Error, kind: TransportErrorKind): AttemptFailure {
  if (kind === "timeout") {
    return {
      outcome: "timeout",
      fallback: "timeout",
      error: new GatewayError(504, `upstream timed out: ${error.message}`, { code: "upstream_timeout" }),
      retryAfterMs: undefined,
    };
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && LOCAL_RESOURCE_ERRORS.has(code)) {
    return {
      outcome: "gateway_error",
      fallback: undefined,
      error: new GatewayError(503, `The gateway is out of local resources (${code}); retry shortly.`, { type: "server_error", code: "gateway_overloaded" }),
      retryAfterMs: undefined,
    };
  }
  return upstreamFailure(`upstream connection failed${typeof code === "string" ? ` (${code})` : ""}`, "upstream_unavailable");
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
  if (failures.every((f) => f.fallback === "buffer_full")) return (failures[0] as AttemptFailure).error;
  const last = failures[failures.length - 1] as AttemptFailure;
  if (last.fallback === "context_length") return last.error;
  return new GatewayError(502, `Every attempt failed; last: ${last.error.message}`, { code: "upstream_error", shouldRetry: false });
}

/** The `outcome` label of a request that ends with `error` after `failures`. */
export function failedRequestOutcome(error: GatewayError, failures: readonly AttemptFailure[]): RequestOutcome {
  if (failures.length === 0 || error.status === 429 || failures.every((f) => f.fallback === "buffer_full")) return "unavailable";
  if (error.status === 504) return "timeout";
  return error.status < 500 ? "client_error" : "upstream_error";
}

/**
 * The answer to a request whose plan was empty from the start, when the decision says why: no window or
 * capability fits (400), or every candidate is cooling after 429s (429). Undefined otherwise (503 then).
 */
export function emptyPlanError(decision: Decision, profile: RequestProfile): GatewayError | undefined {
  if (decision.plan.length > 0) return undefined;
  if (decision.excludedBy === "context") {
    return new GatewayError(
      400,
      `The request (about ${profile.promptTokens} prompt tokens plus max tokens) does not fit the context window of any candidate.`,
      {
        code: "context_length_exceeded",
        param: "messages",
      },
    );
  }
  if (decision.excludedBy === "capability") {
    return new GatewayError(400, `No candidate supports what the request needs (${[...profile.needs].join(", ")}).`, { code: "unsupported_capability" });
  }
  if (decision.retryAfterMs !== undefined) {
    return new GatewayError(429, "Every candidate model is cooling down after rate limits; retry later.", {
      code: "rate_limited",
      headers: { "retry-after": String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))) },
    });
  }
  return undefined;
}
