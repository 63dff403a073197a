// The client's side of a streamed answer: events held until the first content, the headers sent with it
// (commit), byte ranges of upstream reads forwarded without copying, backpressure, [DONE] and error events.
import type { ServerResponse } from "node:http";
import { renderErrorEvent, type GatewayError } from "../errors.js";

const DONE_EVENT = Buffer.from("data: [DONE]\n\n");

/** What the writer tells the attempt that feeds it about the client's buffer. */
export interface FlowListener {
  /** A write did not fit the client's buffer: stop reading upstream until `onDrain`. */
  onBlocked(): void;
  onDrain(): void;
}

/** Writes one attempt's events to the client; nothing reaches the client before `commit`. */
export class SseWriter {
  committed = false;
  /** Bytes held back before the commit. */
  heldBytes = 0;
  readonly #held: Buffer[] = [];
  #blocked = false;
  // The queued range [start, end) of one upstream read, written at `flush` or held before the commit.
  #buffer: Buffer | undefined;
  #start = 0;
  #end = 0;

  constructor(
    private readonly outgoing: ServerResponse,
    private readonly flow: FlowListener,
    /** A client that has not read the end of its stream this long after `end` is disconnected. */
    private readonly dropAfterMs: number,
  ) {}

  /** Queues `buffer[start, end)`; ranges that continue the queued one merge into a single write. */
  forward(buffer: Buffer, start: number, end: number): void {
    if (this.#buffer === buffer && this.#end === start) {
      this.#end = end;
      return;
    }
    this.flush();
    this.#buffer = buffer;
    this.#start = start;
    this.#end = end;
  }

  /** Writes the queued range, or holds it before the commit. */
  flush(): void {
    if (this.#buffer === undefined) return;
    const slice = this.#buffer.subarray(this.#start, this.#end);
    this.#buffer = undefined;
    if (!this.committed) {
      this.#held.push(slice);
      this.heldBytes += slice.length;
    } else if (!this.outgoing.write(slice) && !this.#blocked) {
      // Backpressure: a slow client slows the upstream read; its wait is not upstream idleness.
      this.#blocked = true;
      this.outgoing.once("drain", this.#onDrain);
      this.flow.onBlocked();
    }
  }

  /** Sends the headers and the held events; the queued range stays queued, to leave with what follows it. */
  commit(headers: Readonly<Record<string, string>>): void {
    this.committed = true;
    this.outgoing.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
      ...headers,
    });
    for (const chunk of this.#held) this.outgoing.write(chunk);
    this.#held.length = 0;
  }

  /** Holds writes until `uncork`, so one upstream read leaves in one write. */
  cork(): void {
    this.outgoing.cork();
  }

  uncork(): void {
    this.outgoing.uncork();
  }

  /** Adds the `[DONE]` the upstream left out after a finished answer. */
  writeDone(): void {
    this.outgoing.write(DONE_EVENT);
  }

  /** Ends the stream with an in-band error event, no `[DONE]`: a cut answer never looks complete. */
  writeError(error: GatewayError): void {
    this.outgoing.write(renderErrorEvent(error));
  }

  /** Ends the stream; a client that is not reading gets `dropAfterMs` more, then its connection is closed. */
  end(): void {
    this.outgoing.end();
    if (!this.#blocked) return;
    const { outgoing } = this;
    const drop = setTimeout(() => outgoing.destroy(), this.dropAfterMs);
    outgoing.once("close", () => clearTimeout(drop));
  }

  /** Stops listening to the client's buffer; the attempt is over. */
  release(): void {
    this.outgoing.off("drain", this.#onDrain);
  }

  readonly #onDrain = (): void => {
    this.#blocked = false;
    this.flow.onDrain();
  };
}

/** Sends a whole JSON answer with the routing headers. */
export function writeJsonAnswer(outgoing: ServerResponse, bytes: Buffer, contentType: string, headers: Readonly<Record<string, string>>): void {
  outgoing.writeHead(200, { "content-type": contentType, "content-length": bytes.length, ...headers });
  outgoing.end(bytes);
}
