// One streaming attempt: sends the request, scans the SSE answer, holds events until the first content,
// then relays to the client through its SseWriter, under a first-token deadline, an idle deadline, a total
// deadline and, while the client does not read, the slow-reader grace.
import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { GatewayError } from "../errors.js";
import type { RequestOutcome } from "../metrics/metrics.js";
import { failedAttempt, type AttemptFailed, type AttemptServed, type AttemptSpec, type StreamCut } from "./attempt.js";
import { SseWriter } from "./client-sse.js";
import { failureFromStatus, transportFailure, upstreamFailure, type AttemptFailure } from "./failures.js";
import type { Scrubber } from "./scrubber.js";
import { SHUTDOWN_ERROR, ShutdownError, SlowReaderError } from "./protections.js";
import { SseScanner, type SseEvent, type Usage } from "./sse.js";
import {
  BodyCollector,
  ClientGoneError,
  DeadlineError,
  ERROR_BODY_LIMIT,
  SupersededError,
  UpstreamCall,
  classifyTransportError,
  type UpstreamHeaders,
  type UpstreamListener,
} from "./upstream.js";

/** Largest amount of stream held back before the first content chunk, in bytes. */
const HELD_LIMIT = 1024 * 1024;

/** A non-2xx answer, whose body is the provider's error. */
interface ErrorAnswer {
  readonly status: number;
  readonly headers: UpstreamHeaders;
  readonly body: BodyCollector;
}

export interface StreamSpec extends AttemptSpec {
  /** The client's response, written from the first content on. */
  readonly outgoing: ServerResponse;
  readonly firstTokenMs: number;
  readonly idleMs: number;
  /** When the first content is still missing this long after the start, the attempt reports it late (`events.late`). */
  readonly lateAfterMs: number | undefined;
  /** Longest the whole stream may take (`deadlines.streamTotalMs`). */
  readonly streamTotalMs: number;
  /** Largest SSE event read (`server.eventLimitBytes`); a larger one fails the attempt. */
  readonly eventLimitBytes: number;
  /** How long the client may leave its stream unread (`server.slowReaderGraceMs`). */
  readonly slowReaderGraceMs: number;
  /** The client asked for the usage chunk (`stream_options.include_usage`). */
  readonly clientWantsUsage: boolean;
  /** Scrubs an in-band error event relayed after content. */
  readonly scrubber: Scrubber;
}

export type StreamResult = AttemptFailed | AttemptServed;

/** Run it once; `call` is exposed so the request can abort it when the client leaves. */
export class StreamAttempt implements UpstreamListener {
  readonly call = new UpstreamCall();
  readonly #scanner: SseScanner;
  readonly #writer: SseWriter;
  #resolve!: (result: StreamResult) => void;
  #timer: NodeJS.Timeout | undefined;
  #totalTimer: NodeJS.Timeout | undefined;
  #settled = false;
  #startedAt = 0;
  #committedAt = 0;
  #ttftMs: number | undefined;
  #usage: Usage | undefined;
  #sawFinish = false;
  /** The finishing chunks' `finish_reason`s and the `model` they name, for the trace. */
  #finishReasons: string[] | undefined;
  #responseModel: string | undefined;
  #sawDone = false;
  /** Why the stream ends after content, from an in-band error or a malformed event. */
  #endedInBand: string | undefined;
  #failureBeforeContent: AttemptFailure | undefined;
  /** The first token was reported (at first content, or late): the brain has learnt it. */
  #ttftLearned = false;
  /** Another attempt of the request answers the client: this one stops. */
  #lost = false;
  /** A non-2xx answer: its body is the provider's error, collected rather than streamed. */
  #failed: ErrorAnswer | undefined;
  /** What the client received, for a continuation: the content text, and whether anything else came. */
  #text = "";
  #structured = false;
  #firstContent: Buffer | undefined;
  /** An in-band error event after content, held back: a continuation may replace it. */
  #upstreamErrorEvent: Buffer | undefined;
  /** Set when the stream failed after content: the client's response is left open for the request to end. */
  #cut: StreamCut | undefined;

  constructor(private readonly spec: StreamSpec) {
    this.#writer = new SseWriter(spec.outgoing, this.#flow, spec.slowReaderGraceMs);
    this.#scanner = new SseScanner(spec.eventLimitBytes);
  }

  /** Starts the call; resolves once, when the attempt failed before content or the client's stream ended. */
  run(): Promise<StreamResult> {
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#startedAt = performance.now();
      this.call.start(this.spec.provider, this.spec.body, this.spec.passHeaders, this);
      this.spec.events.addOverhead(performance.now() - this.#startedAt);
      if (this.#settled) return;
      const { firstTokenMs, lateAfterMs } = this.spec;
      this.#totalTimer = setTimeout(this.#onStreamTotal, this.spec.streamTotalMs);
      this.#timer =
        lateAfterMs !== undefined && lateAfterMs < firstTokenMs ? setTimeout(this.#onLate, lateAfterMs) : setTimeout(this.#onFirstTokenDeadline, firstTokenMs);
    });
  }

  /** The writer's flow listener: a blocked client pauses the upstream read, and has the slow-reader grace instead of the idle deadline. */
  readonly #flow = {
    onBlocked: (): void => {
      this.call.pause();
      clearTimeout(this.#timer);
      this.#timer = setTimeout(this.#onSlowReader, this.spec.slowReaderGraceMs);
    },
    onDrain: (): void => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(this.#onIdle, this.spec.idleMs);
      this.call.resume();
    },
  };

  onStart(statusCode: number, headers: UpstreamHeaders): void {
    if (statusCode < 200 || statusCode >= 300) this.#failed = { status: statusCode, headers, body: new BodyCollector(ERROR_BODY_LIMIT) };
  }

  onData(chunk: Buffer): void {
    if (this.#settled) return;
    if (this.#failed) {
      this.#failed.body.add(chunk);
      return;
    }
    const processStart = performance.now();
    const writer = this.#writer;
    const wasCommitted = writer.committed;
    // Everything one upstream read produces leaves in one write: at the first content the headers, held
    // events and content; at the end the last events and the end of the chunked body.
    writer.cork();
    this.#scanner.push(chunk, this.#onEvent);
    writer.flush();
    if (this.#lost) {
      this.#settle(this.#failedBeforeContent(transportFailure(new SupersededError(), "error")));
      this.call.abort(new SupersededError());
    } else if (this.#failureBeforeContent || this.#endedInBand !== undefined) this.#abandon();
    else if (this.#sawDone) this.onEnd();
    else if (!writer.committed && writer.heldBytes + this.#scanner.pendingBytes > HELD_LIMIT) {
      this.#failureBeforeContent = upstreamFailure("upstream sent too much without content");
      this.#abandon();
    }
    writer.uncork();
    if (!this.#settled) {
      if (!wasCommitted && writer.committed) this.#afterCommit();
      else if (writer.committed && !this.call.paused) this.#timer?.refresh();
    }
    this.spec.events.addOverhead(performance.now() - processStart);
  }

  onEnd(): void {
    if (this.#settled) return;
    if (this.#failed) {
      this.#settle(this.#providerFailure(this.#failed));
      return;
    }
    const totalMs = performance.now() - this.#startedAt;
    const writer = this.#writer;
    if (!writer.committed) {
      if (this.#failureBeforeContent) {
        this.#settle(this.#failedBeforeContent(this.#failureBeforeContent));
        return;
      }
      if (!this.#sawDone && !this.#sawFinish) {
        this.#settle(this.#failedBeforeContent(upstreamFailure("upstream stream ended before any content")));
        return;
      }
      // A complete answer without content (e.g. an empty completion): deliver it, unless another
      // attempt of the request answers the client.
      writer.flush();
      if (!this.#claim()) {
        this.#settle(this.#failedBeforeContent(transportFailure(new SupersededError(), "error")));
        return;
      }
    }
    const outcome = this.#finishClientStream();
    if (this.#cut === undefined) writer.end();
    this.#afterCommit();
    const usage = this.#usage;
    this.#settle({
      kind: "served",
      outcome,
      status: 200,
      endedAt: performance.now(),
      ...(this.#cut ? { cut: this.#cut } : {}),
      record: {
        model: this.spec.model,
        probe: this.spec.probe,
        outcome: outcome === "ok" ? "ok" : "error",
        ...(this.#ttftMs !== undefined ? { ttftMs: this.#ttftMs } : {}),
        ...(outcome === "ok" ? { totalMs } : {}),
        ...(usage ? { usage } : {}),
        ttftRecorded: this.#ttftLearned,
        finishReasons: this.#finishReasons,
        responseModel: this.#responseModel,
      },
    });
  }

  onError(reason: Error): void {
    if (this.#settled) return;
    if (this.#failed && !(reason instanceof DeadlineError) && !(reason instanceof ClientGoneError)) {
      // The error status is known even when its body was cut.
      this.#settle(this.#providerFailure(this.#failed));
      return;
    }
    if (!this.#writer.committed) {
      const deadlineMs = reason instanceof DeadlineError ? reason.afterMs : undefined;
      this.#settle(this.#failedBeforeContent(transportFailure(reason, classifyTransportError(reason)), deadlineMs));
      return;
    }
    if (reason instanceof ClientGoneError) this.#settle(this.#cancelled());
    else if (reason instanceof SlowReaderError || reason instanceof ShutdownError) this.#settle(this.#endedByGateway(reason));
    else this.#settle(this.#cutAfterContent(reason));
  }

  /** Ends the attempt on what the stream said so far, and stops reading the rest. */
  #abandon(): void {
    this.onEnd();
    this.call.abort(new Error("stream abandoned"));
  }

  /** Ends the client's stream after content with [DONE] when the answer finished; else it is cut. */
  #finishClientStream(): RequestOutcome {
    const writer = this.#writer;
    if (this.#endedInBand !== undefined) {
      // Nothing is read after an error event, so no [DONE] came before it.
      this.#cutWith(new GatewayError(502, `The upstream stream failed: ${this.#endedInBand}`, { code: "upstream_error" }));
      return "upstream_error";
    }
    if (this.#sawDone) return "ok";
    if (this.#sawFinish) {
      writer.writeDone();
      return "ok";
    }
    this.#cutWith(new GatewayError(502, "The upstream stream was cut before it finished.", { code: "stream_cut" }));
    return "upstream_error";
  }

  /** The stream failed after content: what the client got so far, its response left open. */
  #cutWith(error: GatewayError): void {
    this.#cut = {
      error,
      upstreamEvent: this.#upstreamErrorEvent,
      text: this.#text,
      structured: this.#structured,
      firstContent: this.#firstContent,
      usage: this.#usage,
    };
  }

  /** The client left mid-stream: the model did its part; nothing more to send. */
  #cancelled(): AttemptServed {
    return {
      kind: "served",
      outcome: "cancelled",
      status: 499,
      endedAt: performance.now(),
      record: { model: this.spec.model, probe: this.spec.probe, outcome: "cancelled" },
    };
  }

  /**
   * The gateway ended the stream, the model did nothing wrong: the client left it unread for the whole
   * grace (the upstream connection goes back to the pool), or a drain ran out of time. An error event
   * ends it; a client that still does not read is disconnected after the grace.
   */
  #endedByGateway(reason: SlowReaderError | ShutdownError): AttemptServed {
    const slow = reason instanceof SlowReaderError;
    this.#writer.writeError(
      slow
        ? new GatewayError(408, `The client did not read its stream for ${reason.graceMs} ms; the gateway ended it.`, { code: "slow_reader" })
        : SHUTDOWN_ERROR,
    );
    this.#writer.end();
    return {
      kind: "served",
      outcome: slow ? "slow_reader" : "unavailable",
      status: 200,
      endedAt: performance.now(),
      record: { model: this.spec.model, probe: this.spec.probe, outcome: "cancelled" },
    };
  }

  /** The upstream broke, stalled or ran past the total deadline after content reached the client: the stream is cut. */
  #cutAfterContent(reason: Error): AttemptServed {
    const deadline = reason instanceof DeadlineError ? reason : undefined;
    const stalled = deadline !== undefined;
    this.#cutWith(
      deadline?.deadline === "total"
        ? new GatewayError(504, `The stream ran past its total deadline of ${Math.round(deadline.afterMs)} ms.`, { code: "stream_timeout" })
        : deadline
          ? new GatewayError(502, `The upstream stream stalled for ${Math.round(deadline.afterMs)} ms.`, { code: "stream_stalled" })
          : new GatewayError(502, `The upstream stream failed: ${reason.message}`, { code: "stream_cut" }),
    );
    return {
      kind: "served",
      outcome: stalled ? "timeout" : "upstream_error",
      status: 200,
      endedAt: performance.now(),
      cut: this.#cut as StreamCut,
      record: {
        model: this.spec.model,
        probe: this.spec.probe,
        outcome: stalled ? "timeout" : "error",
        ...(this.#ttftMs !== undefined ? { ttftMs: this.#ttftMs } : {}),
        ...(stalled ? { deadlineMs: deadline.afterMs, timeoutMetric: "total" as const } : {}),
        ttftRecorded: this.#ttftLearned,
      },
    };
  }

  readonly #onEvent = (buffer: Buffer, start: number, end: number, event: SseEvent): void => {
    // Nothing follows an error or [DONE] to the client, even within the same read.
    if (this.#lost || this.#endedInBand !== undefined || this.#sawDone) return;
    if (event.usage) this.#usage = event.usage;
    const writer = this.#writer;
    switch (event.kind) {
      case "content":
        // Earlier reads' events go out with the headers; this read's events before the content stay
        // queued, so the first write carries them and the content as one chunk.
        if (!writer.committed && !this.#claim()) return;
        writer.forward(buffer, start, end);
        this.#firstContent ??= buffer.subarray(start, end);
        this.#text += event.text;
        if (event.structured) this.#structured = true;
        break;
      case "usage":
        if (this.spec.clientWantsUsage) writer.forward(buffer, start, end);
        break;
      case "done":
        this.#sawDone = true;
        writer.forward(buffer, start, end);
        break;
      case "error":
      case "malformed":
        if (!writer.committed) this.#failureBeforeContent = upstreamFailure(event.errorMessage ?? "upstream stream error");
        else if (event.kind === "error") {
          // Held, not forwarded: a continuation may finish the answer instead. Scrubbed now, since it
          // may echo a key the gateway sent.
          const scrubbed = this.spec.scrubber.bytes(buffer, start, end);
          this.#upstreamErrorEvent = scrubbed ?? Buffer.from(buffer.subarray(start, end));
          this.#endedInBand = this.spec.scrubber.text(event.errorMessage ?? "upstream error");
        } else this.#endedInBand = event.errorMessage ?? "malformed chunk";
        break;
      default:
        writer.forward(buffer, start, end);
    }
    if (event.finishReason !== undefined) {
      this.#sawFinish = true;
      (this.#finishReasons ??= []).push(event.finishReason);
      if (event.responseModel !== undefined) this.#responseModel = event.responseModel;
    }
  };

  /** The first content: the brain learns it, and the attempt commits unless another one answers the client. */
  #claim(): boolean {
    const ttftMs = performance.now() - this.#startedAt;
    const won = this.spec.events.firstContent(ttftMs, !this.#ttftLearned);
    this.#ttftLearned = true;
    if (won) this.#commit();
    else this.#lost = true;
    return won;
  }

  /** The headers and the held events go out. */
  #commit(): void {
    this.#committedAt = performance.now();
    this.#writer.commit(this.spec.responseHeaders());
  }

  /** Runs once the first content has left (or, when the same read ends the stream, at its end). */
  #afterCommit(): void {
    if (this.#ttftMs !== undefined) return;
    this.#ttftMs = this.#committedAt - this.#startedAt;
    clearTimeout(this.#timer);
    // A paused upstream waits for the client, not the other way round: the client has the slow-reader
    // grace, and its drain arms the idle timer.
    this.#timer = this.call.paused ? setTimeout(this.#onSlowReader, this.spec.slowReaderGraceMs) : setTimeout(this.#onIdle, this.spec.idleMs);
    this.spec.events.committed(this.#committedAt);
  }

  #providerFailure(answer: ErrorAnswer): AttemptFailed {
    return this.#failedBeforeContent(failureFromStatus(answer.status, answer.body.text(), answer.headers["retry-after"], Date.now()));
  }

  #failedBeforeContent(failure: AttemptFailure, deadlineMs?: number): AttemptFailed {
    return failedAttempt(this.spec, failure, performance.now() - this.#startedAt, "ttft", deadlineMs, this.#ttftLearned);
  }

  // Once settled, undici may still deliver the rest of the body (after [DONE], the end of the chunked
  // body, so the connection returns to the pool) or the error of an abort: both are ignored.
  #settle(result: StreamResult): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#totalTimer);
    this.#writer.release();
    this.#resolve(result);
  }

  /** Past the target without a first token: the brain learns "at least this long" now, and the deadline goes on. */
  readonly #onLate = (): void => {
    const elapsedMs = performance.now() - this.#startedAt;
    this.spec.events.late(elapsedMs);
    this.#ttftLearned = true;
    this.#timer = setTimeout(this.#onFirstTokenDeadline, Math.max(0, this.spec.firstTokenMs - elapsedMs));
  };

  readonly #onFirstTokenDeadline = (): void => {
    this.call.abort(new DeadlineError("first-token", this.spec.firstTokenMs));
  };

  readonly #onIdle = (): void => {
    this.call.abort(new DeadlineError("idle", this.spec.idleMs));
  };

  readonly #onStreamTotal = (): void => {
    this.call.abort(new DeadlineError("total", this.spec.streamTotalMs));
  };

  readonly #onSlowReader = (): void => {
    this.call.abort(new SlowReaderError(this.spec.slowReaderGraceMs));
  };
}
