// What bounds one attempt's cost to the gateway as a whole: the bytes of buffered non-streaming answers
// (one budget for every request), the grace of a client that leaves its stream unread, and the signal
// that cuts the requests still running when a drain runs out of time.
import { GatewayError } from "../errors.js";
import type { Config } from "../config/schema.js";

/** Bytes of non-streaming answers held at once, gateway-wide (`server.bufferedAnswersLimitBytes`). */
export class BufferedAnswers {
  /** Bytes held now. */
  bytes = 0;

  /** Takes `size` bytes if the total stays within `limit`; false (and nothing taken) otherwise. */
  reserve(size: number, limit: number): boolean {
    if (this.bytes + size > limit) return false;
    this.bytes += size;
    return true;
  }

  release(size: number): void {
    this.bytes -= size;
  }
}

/** Tells the requests in flight that the drain ran out of time: each ends at once, with an error. */
export class ShutdownSignal {
  readonly #listeners = new Set<() => void>();
  #cut = false;

  get cut(): boolean {
    return this.#cut;
  }

  on(listener: () => void): void {
    this.#listeners.add(listener);
  }

  off(listener: () => void): void {
    this.#listeners.delete(listener);
  }

  /** Cuts every request in flight now; later ones see `cut`. */
  cutAll(): void {
    this.#cut = true;
    for (const listener of [...this.#listeners]) listener();
  }
}

/** What every attempt of a request may cost, from the config the request started with. */
export interface AttemptLimits {
  readonly eventLimitBytes: number;
  readonly answerLimitBytes: number;
  readonly bufferedAnswersLimitBytes: number;
  readonly slowReaderGraceMs: number;
  readonly buffered: BufferedAnswers;
}

export function attemptLimits(server: Config["server"], buffered: BufferedAnswers): AttemptLimits {
  const { eventLimitBytes, answerLimitBytes, bufferedAnswersLimitBytes, slowReaderGraceMs } = server;
  return { eventLimitBytes, answerLimitBytes, bufferedAnswersLimitBytes, slowReaderGraceMs, buffered };
}

/** The client left its stream unread for the whole grace: its attempt is ended. */
export class SlowReaderError extends Error {
  readonly code = "slow_reader";
  constructor(readonly graceMs: number) {
    super(`the client did not read its stream for ${graceMs} ms`);
    this.name = "SlowReaderError";
  }
}

/** The drain ran out of time while the request was running. */
export class ShutdownError extends Error {
  readonly code = "gateway_shutting_down";
  constructor() {
    super("the gateway is shutting down");
    this.name = "ShutdownError";
  }
}

/** What a client gets when the gateway shuts down under its request (a 503 or, mid-stream, an error event). */
export const SHUTDOWN_ERROR = new GatewayError(503, "The gateway is shutting down; retry on another instance.", { code: "gateway_shutting_down" });
