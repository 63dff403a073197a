// One continuation attempt: the cut request sent again with the text already sent as an assistant prefill,
// its chunks relayed into the client's open stream under the same `id`, without a second role delta, under
// a first-token and an idle deadline; the summed usage and [DONE] end the stream when it completes.
import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { failureFromStatus, transportFailure, upstreamFailure, type AttemptFailure } from "./failures.js";
import { SseScanner, type SseEvent, type Usage } from "./sse.js";
import {
  BodyCollector,
  ClientGoneError,
  DeadlineError,
  ERROR_BODY_LIMIT,
  UpstreamCall,
  classifyTransportError,
  type UpstreamHeaders,
  type UpstreamListener,
  type UpstreamProvider,
} from "./upstream.js";

/**
 * How providers refuse a trailing assistant message: Anthropic's "does not support assistant message
 * prefill", and the "must end with a user message" family.
 */
const PREFILL_REFUSAL = /prefill|must end with a (?:user|tool)|(?:last|final) message must|assistant message (?:is )?not (?:supported|allowed)/i;

const DONE_EVENT = Buffer.from("data: [DONE]\n\n");

/** A non-2xx answer, whose body is the provider's error. */
interface ErrorAnswer {
  readonly code: number;
  readonly headers: UpstreamHeaders;
  readonly body: BodyCollector;
}

export interface ContinuationSpec {
  readonly provider: UpstreamProvider;
  readonly body: Buffer;
  readonly passHeaders: Readonly<Record<string, string>>;
  /** The client's stream, open after the cut. */
  readonly outgoing: ServerResponse;
  /** The `id` of the client's stream, given to every chunk relayed; undefined keeps the upstream's. */
  readonly streamId: string | undefined;
  readonly firstTokenMs: number;
  readonly idleMs: number;
  readonly eventLimitBytes: number;
  /** The client asked for usage: the last chunk before [DONE] carries `usageBefore` plus this attempt's. */
  readonly clientWantsUsage: boolean;
  readonly usageBefore: Usage;
}

/**
 * How the attempt ended. `completed`: the client's stream ended with [DONE]. `refused`: a 400 about prefill.
 * `failed`: nothing reached the client. `cut`: more text reached the client, then the attempt failed; the
 * stream is still open. `cancelled`: the client left.
 */
export type ContinuationResult =
  | { readonly kind: "completed"; readonly text: string; readonly usage: Usage | undefined; readonly ttftMs: number; readonly totalMs: number }
  | { readonly kind: "refused"; readonly failure: AttemptFailure }
  | { readonly kind: "failed"; readonly failure: AttemptFailure; readonly deadlineMs: number | undefined }
  | { readonly kind: "cut"; readonly text: string; readonly usage: Usage | undefined; readonly ttftMs: number; readonly deadlineMs: number | undefined }
  | { readonly kind: "cancelled" };

/** The JSON object of one SSE event's data, or undefined when it is not one. */
export function chunkOf(event: Buffer): Record<string, unknown> | undefined {
  const data = event
    .toString("utf8")
    .split(/\r?\n/)
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
    .join("\n");
  try {
    const value: unknown = JSON.parse(data);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const sum = (a: Usage, b: Usage | undefined): Usage =>
  b === undefined ? a : { promptTokens: a.promptTokens + b.promptTokens, completionTokens: a.completionTokens + b.completionTokens };

/** Run it once. */
export class ContinuationAttempt implements UpstreamListener {
  readonly call = new UpstreamCall();
  readonly #scanner: SseScanner;
  #resolve!: (result: ContinuationResult) => void;
  #timer: NodeJS.Timeout | undefined;
  #settled = false;
  #startedAt = 0;
  #ttftMs: number | undefined;
  #text = "";
  #usage: Usage | undefined;
  /** The usage chunk the upstream sent, to carry the sum in its place. */
  #usageChunk: Record<string, unknown> | undefined;
  #sawFinish = false;
  #sawDone = false;
  /** Why the stream broke in band (an error event or a malformed chunk). */
  #brokenInBand: string | undefined;
  #status: ErrorAnswer | undefined;

  constructor(private readonly spec: ContinuationSpec) {
    this.#scanner = new SseScanner(spec.eventLimitBytes);
  }

  run(): Promise<ContinuationResult> {
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#startedAt = performance.now();
      this.spec.outgoing.on("close", this.#onClientClose);
      this.call.start(this.spec.provider, this.spec.body, this.spec.passHeaders, this);
      if (!this.#settled) this.#timer = setTimeout(this.#onDeadline, this.spec.firstTokenMs);
    });
  }

  onStart(statusCode: number, headers: UpstreamHeaders): void {
    if (statusCode < 200 || statusCode >= 300) this.#status = { code: statusCode, headers, body: new BodyCollector(ERROR_BODY_LIMIT) };
  }

  onData(chunk: Buffer): void {
    if (this.#settled) return;
    if (this.#status) {
      this.#status.body.add(chunk);
      return;
    }
    const outgoing = this.spec.outgoing;
    outgoing.cork();
    this.#scanner.push(chunk, this.#onEvent);
    outgoing.uncork();
    if (this.#brokenInBand !== undefined) {
      this.#settle(this.#broken(upstreamFailure(this.#brokenInBand), undefined));
      this.call.abort(new Error("stream abandoned"));
    } else if (this.#sawDone) this.onEnd();
    else if (this.#ttftMs !== undefined && !this.call.paused) this.#timer?.refresh();
  }

  onEnd(): void {
    if (this.#settled) return;
    if (this.#status) {
      this.#settle(this.#providerFailure());
      return;
    }
    if (this.#sawDone || this.#sawFinish) {
      this.#complete();
      return;
    }
    this.#settle(this.#broken(upstreamFailure("the continuation ended before it finished"), undefined));
  }

  onError(reason: Error): void {
    if (this.#settled) return;
    if (reason instanceof ClientGoneError) {
      this.#settle({ kind: "cancelled" });
      return;
    }
    if (this.#status && !(reason instanceof DeadlineError)) {
      this.#settle(this.#providerFailure());
      return;
    }
    const deadlineMs = reason instanceof DeadlineError ? reason.afterMs : undefined;
    this.#settle(this.#broken(transportFailure(reason, classifyTransportError(reason)), deadlineMs));
  }

  readonly #onEvent = (buffer: Buffer, start: number, end: number, event: SseEvent): void => {
    if (this.#brokenInBand !== undefined || this.#sawDone) return;
    if (event.usage) this.#usage = event.usage;
    if (event.finished) this.#sawFinish = true;
    switch (event.kind) {
      case "content":
        if (this.#ttftMs === undefined) this.#firstContent();
        this.#text += event.text;
        this.#relay(buffer.subarray(start, end));
        break;
      case "preamble":
        // The role delta was sent once already; a finish_reason still goes out.
        if (event.finished) this.#relay(buffer.subarray(start, end));
        break;
      case "usage":
        this.#usageChunk = chunkOf(buffer.subarray(start, end));
        break;
      case "done":
        this.#sawDone = true;
        break;
      case "error":
      case "malformed":
        this.#brokenInBand = event.errorMessage ?? "upstream stream error";
        break;
      case "comment":
        break;
    }
  };

  #firstContent(): void {
    this.#ttftMs = performance.now() - this.#startedAt;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#onDeadline, this.spec.idleMs);
  }

  /** Writes one upstream chunk under the stream's `id`, without its role and usage (the sum goes last). */
  #relay(event: Buffer): void {
    const chunk = chunkOf(event);
    if (chunk === undefined) return;
    if (this.spec.streamId !== undefined) chunk.id = this.spec.streamId;
    delete chunk.usage;
    if (Array.isArray(chunk.choices)) {
      for (const choice of chunk.choices as unknown[]) {
        const delta = typeof choice === "object" && choice !== null ? (choice as { delta?: unknown }).delta : undefined;
        if (typeof delta === "object" && delta !== null) delete (delta as Record<string, unknown>).role;
      }
    }
    this.#write(Buffer.from(`data: ${JSON.stringify(chunk)}\n\n`));
  }

  #write(bytes: Buffer): void {
    if (this.spec.outgoing.write(bytes) || this.call.paused) return;
    // Backpressure, as for the first attempt: the client's wait is not upstream idleness.
    this.call.pause();
    clearTimeout(this.#timer);
    this.spec.outgoing.once("drain", this.#onDrain);
  }

  readonly #onDrain = (): void => {
    if (this.#settled) return;
    this.#timer = setTimeout(this.#onDeadline, this.#ttftMs === undefined ? this.spec.firstTokenMs : this.spec.idleMs);
    this.call.resume();
  };

  /** The answer finished: the summed usage when asked for, then [DONE], end the client's stream. */
  #complete(): void {
    const { outgoing, clientWantsUsage, usageBefore, streamId } = this.spec;
    if (clientWantsUsage) {
      const total = sum(usageBefore, this.#usage);
      const chunk = this.#usageChunk ?? { object: "chat.completion.chunk", choices: [] };
      if (streamId !== undefined) chunk.id = streamId;
      chunk.usage = { prompt_tokens: total.promptTokens, completion_tokens: total.completionTokens, total_tokens: total.promptTokens + total.completionTokens };
      outgoing.write(`data: ${JSON.stringify(chunk)}\n\n`);
    }
    outgoing.end(DONE_EVENT);
    const totalMs = performance.now() - this.#startedAt;
    this.#settle({ kind: "completed", text: this.#text, usage: this.#usage, ttftMs: this.#ttftMs ?? totalMs, totalMs });
  }

  /** A failure: `failed` when nothing reached the client, else `cut`. */
  #broken(failure: AttemptFailure, deadlineMs: number | undefined): ContinuationResult {
    if (this.#ttftMs === undefined) return { kind: "failed", failure, deadlineMs };
    return { kind: "cut", text: this.#text, usage: this.#usage, ttftMs: this.#ttftMs, deadlineMs };
  }

  #providerFailure(): ContinuationResult {
    const status = this.#status as ErrorAnswer;
    const failure = failureFromStatus(status.code, status.body.text(), status.headers["retry-after"], Date.now());
    if (status.code === 400 && PREFILL_REFUSAL.test(failure.error.message)) return { kind: "refused", failure };
    return { kind: "failed", failure, deadlineMs: undefined };
  }

  #settle(result: ContinuationResult): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    this.spec.outgoing.off("close", this.#onClientClose);
    this.spec.outgoing.off("drain", this.#onDrain);
    this.#resolve(result);
  }

  readonly #onClientClose = (): void => {
    if (!this.spec.outgoing.writableFinished) this.call.abort(new ClientGoneError());
  };

  readonly #onDeadline = (): void => {
    this.call.abort(
      new DeadlineError(this.#ttftMs === undefined ? "first-token" : "idle", this.#ttftMs === undefined ? this.spec.firstTokenMs : this.spec.idleMs),
    );
  };
}
