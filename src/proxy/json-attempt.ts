// One non-streaming attempt: sends the request and collects the whole answer under the total deadline,
// within its own size limit and the gateway-wide budget of buffered answers. It writes nothing to the
// client: the race sends the answer it returns, and releases its bytes once sent.
import { performance } from "node:perf_hooks";
import { GatewayError } from "../errors.js";
import { failedAttempt, type AttemptFailed, type AttemptSpec } from "./attempt.js";
import { bufferFullFailure, failureFromStatus, transportFailure, upstreamFailure, type AttemptFailure } from "./failures.js";
import type { AttemptLimits } from "./protections.js";
import { readUsage, type Usage } from "./sse.js";
import {
  BodyCollector,
  ClientGoneError,
  DeadlineError,
  ERROR_BODY_LIMIT,
  UpstreamCall,
  classifyTransportError,
  type UpstreamHeaders,
  type UpstreamListener,
} from "./upstream.js";

export interface JsonSpec extends AttemptSpec {
  readonly totalMs: number;
  readonly limits: AttemptLimits;
}

/** The gateway-wide budget of buffered answers is spent. */
class BufferFullError extends Error {
  constructor(readonly limit: number) {
    super(`buffered answers at their limit of ${limit} bytes`);
    this.name = "BufferFullError";
  }
}

/** A complete, valid answer, not yet sent. */
export interface JsonAnswer {
  readonly kind: "answer";
  readonly bytes: Buffer;
  readonly contentType: string;
  readonly usage: Usage | undefined;
  /** From the attempt's start to the whole answer, in ms. */
  readonly totalMs: number;
  /** performance.now() when the answer was complete: the gateway's time from there on is overhead. */
  readonly receivedAt: number;
  /** The choices' `finish_reason`s and the answer's `model`, for the trace. */
  readonly finishReasons: readonly string[] | undefined;
  readonly responseModel: string | undefined;
  /** Returns its bytes to the gateway-wide budget; call it once the answer is sent or dropped. */
  readonly release: () => void;
}

export type JsonResult = JsonAnswer | AttemptFailed;

/** Run it once; `call` is exposed so the request can abort it when the client leaves. */
export class JsonAttempt implements UpstreamListener {
  readonly call = new UpstreamCall();
  #resolve!: (result: JsonResult) => void;
  #timer: NodeJS.Timeout | undefined;
  #settled = false;
  #startedAt = 0;
  #status = 0;
  #headers: UpstreamHeaders = {};
  #body: BodyCollector;
  /** Bytes of the answer taken from the gateway-wide budget. */
  #reserved = 0;

  constructor(private readonly spec: JsonSpec) {
    this.#body = new BodyCollector(spec.limits.answerLimitBytes);
  }

  /** Starts the call; resolves once, with the answer or the failure. */
  run(): Promise<JsonResult> {
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#startedAt = performance.now();
      this.call.start(this.spec.provider, this.spec.body, this.spec.passHeaders, this);
      this.spec.events.addOverhead(performance.now() - this.#startedAt);
      if (!this.#settled) this.#timer = setTimeout(this.#onDeadline, this.spec.totalMs);
    });
  }

  onStart(statusCode: number, headers: UpstreamHeaders): void {
    this.#status = statusCode;
    this.#headers = headers;
    if (!this.#ok()) this.#body = new BodyCollector(ERROR_BODY_LIMIT);
  }

  onData(chunk: Buffer): void {
    if (this.#settled) return;
    // An error body past its limit is cut short in the message; an answer past its limit fails.
    const fits = this.#body.add(chunk);
    if (!this.#ok()) return;
    const { limits } = this.spec;
    if (!fits) {
      this.call.abort(new GatewayError(502, `upstream answer larger than ${limits.answerLimitBytes} bytes`, { code: "upstream_too_large" }));
    } else if (limits.buffered.reserve(chunk.length, limits.bufferedAnswersLimitBytes)) {
      this.#reserved += chunk.length;
    } else {
      this.call.abort(new BufferFullError(limits.bufferedAnswersLimitBytes));
    }
  }

  onEnd(): void {
    this.#settle(this.#ok() ? this.#answer(this.#body.bytes()) : this.#failed(this.#providerFailure()));
  }

  onError(error: Error): void {
    if (error instanceof BufferFullError) this.#settle(this.#failed(bufferFullFailure(error.limit)));
    else if (error instanceof GatewayError) this.#settle(this.#failed({ outcome: "error", fallback: "error", error, retryAfterMs: undefined }));
    else if (this.#status !== 0 && !this.#ok() && !(error instanceof DeadlineError) && !(error instanceof ClientGoneError)) {
      // The error status is known even when its body was cut.
      this.#settle(this.#failed(this.#providerFailure()));
    } else {
      const deadlineMs = error instanceof DeadlineError ? this.spec.totalMs : undefined;
      this.#settle(this.#failed(transportFailure(error, classifyTransportError(error)), deadlineMs));
    }
  }

  #answer(bytes: Buffer): JsonResult {
    const receivedAt = performance.now();
    let usage: Usage | undefined;
    let finishReasons: string[] | undefined;
    let responseModel: string | undefined;
    try {
      const parsed = JSON.parse(bytes.toString("utf8")) as { usage?: unknown; error?: unknown; model?: unknown; choices?: unknown };
      // A 200 whose body is an error (some providers do that) is an upstream error.
      if (parsed.error !== undefined && parsed.error !== null) return this.#failed(failureFromStatus(502, bytes.toString("utf8"), undefined, Date.now()));
      usage = readUsage(parsed.usage);
      if (typeof parsed.model === "string") responseModel = parsed.model;
      if (Array.isArray(parsed.choices)) finishReasons = finishReasonsOf(parsed.choices);
    } catch {
      return this.#failed(upstreamFailure("upstream sent invalid JSON", "upstream_invalid"));
    }
    const contentType = this.#headers["content-type"];
    return {
      kind: "answer",
      bytes,
      contentType: typeof contentType === "string" ? contentType : "application/json",
      usage,
      totalMs: receivedAt - this.#startedAt,
      receivedAt,
      finishReasons,
      responseModel,
      release: this.#release,
    };
  }

  #ok(): boolean {
    return this.#status >= 200 && this.#status < 300;
  }

  #providerFailure(): AttemptFailure {
    return failureFromStatus(this.#status, this.#body.text(), this.#headers["retry-after"], Date.now());
  }

  #failed(failure: AttemptFailure, deadlineMs?: number): AttemptFailed {
    return failedAttempt(this.spec, failure, performance.now() - this.#startedAt, "total", deadlineMs);
  }

  #settle(result: JsonResult): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    if (result.kind !== "answer") this.#release();
    this.#resolve(result);
  }

  readonly #release = (): void => {
    this.spec.limits.buffered.release(this.#reserved);
    this.#reserved = 0;
  };

  readonly #onDeadline = (): void => {
    this.call.abort(new DeadlineError("total", this.spec.totalMs));
  };
}

/** The `finish_reason` of each choice that has one. */
function finishReasonsOf(choices: readonly unknown[]): string[] {
  const reasons: string[] = [];
  for (const choice of choices) {
    const reason = typeof choice === "object" && choice !== null ? (choice as { finish_reason?: unknown }).finish_reason : undefined;
    if (typeof reason === "string") reasons.push(reason);
  }
  return reasons;
}
