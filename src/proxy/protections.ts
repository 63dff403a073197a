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

/** A listener registered with `ShutdownSignal.on`; hand it back to `off`. */
export interface ShutdownSubscription {
  readonly listener: () => void;
  /** Its index in the signal's list while registered; -1 after `off`. */
  slot: number;
}

/**
 * Tells the requests in flight that the drain ran out of time: each ends at once, with an error.
 *
 * Every request registers and leaves, so the list is an array with swap-removal, not a Set. A long-lived
 * Set that takes and drops a closure per request made the gateway promote ~8 KB per request on the bench's
 * JSON path (0.8–1.1 KB with this array), with mark-compacts under steady load: most likely its rehashed
 * tables, already in the old generation, still pointed at the requests of the moment, and scavenges kept
 * those alive (docs/performance-log.md, "A Set per request").
 */
export class ShutdownSignal {
  readonly #subscriptions: ShutdownSubscription[] = [];
  #cut = false;

  get cut(): boolean {
    return this.#cut;
  }

  on(listener: () => void): ShutdownSubscription {
    const subscription = { listener, slot: this.#subscriptions.length };
    this.#subscriptions.push(subscription);
    return subscription;
  }

  /** Unregisters in O(1): the last subscription takes its slot. Once per subscription; later calls do nothing. */
  off(subscription: ShutdownSubscription): void {
    const { slot } = subscription;
    const list = this.#subscriptions;
    if (slot < 0 || list[slot] !== subscription) return;
    subscription.slot = -1;
    const last = list.pop() as ShutdownSubscription;
    if (last === subscription) return;
    list[slot] = last;
    last.slot = slot;
  }

  /** Cuts every request in flight now; later ones see `cut`. */
  cutAll(): void {
    this.#cut = true;
    for (const { listener } of [...this.#subscriptions]) listener();
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
