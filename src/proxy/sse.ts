// Splits an upstream SSE byte stream into events and classifies each one, without re-encoding bytes.

/** Token usage as OpenAI reports it. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/**
 * What one SSE event is, for the gateway's purposes (WHATWG HTML "Server-sent events" framing,
 * OpenAI chat.completion.chunk payloads).
 * - `comment`: `: keep-alive` lines and events without data.
 * - `preamble`: a chunk with no content yet (role-only delta, empty content).
 * - `content`: carries content, reasoning content, a refusal or tool calls.
 * - `usage`: the usage-only chunk (`choices: []`) sent because of `stream_options.include_usage`.
 * - `done`: `data: [DONE]`.
 * - `error`: an in-band error (`{"error":…}`, `finish_reason: "error"`, or `event: error`).
 * - `malformed`: data that is not JSON, or an event longer than the scanner's limit.
 */
export type SseEventKind = "comment" | "preamble" | "content" | "usage" | "done" | "error" | "malformed";

export interface SseEvent {
  readonly kind: SseEventKind;
  /** The chunk carries a non-null `finish_reason` (other than "error"). */
  readonly finished: boolean;
  /** Usage carried by this chunk, when present. */
  readonly usage: Usage | undefined;
  /** Error message of an in-band error. */
  readonly errorMessage: string | undefined;
  /** The last `finish_reason` of a finishing chunk, and the `model` it names (for traces). */
  readonly finishReason: string | undefined;
  readonly responseModel: string | undefined;
  /** The `delta.content` text of a content chunk (what a continuation prefills); "" when it has none. */
  readonly text: string;
  /** A content chunk carries tool calls, a function call or a refusal: parts a prefill cannot carry. */
  readonly structured: boolean;
}

/** Called per complete event with its byte range in `buffer` (end exclusive, separator included). */
export type SseEventHandler = (buffer: Buffer, start: number, end: number, event: SseEvent) => void;

const LF = 10;
const CR = 13;
const DATA_PREFIX = Buffer.from("data:");
const EVENT_PREFIX = Buffer.from("event:");

const nonEmpty = (value: unknown): boolean => (typeof value === "string" && value.length > 0) || (Array.isArray(value) && value.length > 0);

/** Token counts of an OpenAI `usage` object; undefined when it has neither count. */
export function readUsage(value: unknown): Usage | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const usage = value as Record<string, unknown>;
  const prompt = usage.prompt_tokens;
  const completion = usage.completion_tokens;
  if (typeof prompt !== "number" && typeof completion !== "number") return undefined;
  return { promptTokens: typeof prompt === "number" ? prompt : 0, completionTokens: typeof completion === "number" ? completion : 0 };
}

function errorMessageOf(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null && typeof (value as { message?: unknown }).message === "string") {
    return (value as { message: string }).message;
  }
  return "upstream sent an error event";
}

/** An event without content: its kind, and the usage or error message it carried. */
const plain = (kind: SseEvent["kind"], usage?: Usage, errorMessage?: string): SseEvent => ({
  kind,
  finished: false,
  usage,
  errorMessage,
  text: "",
  structured: false,
  finishReason: undefined,
  responseModel: undefined,
});

// The events most chunks are, shared rather than allocated per chunk.
const COMMENT = plain("comment");
const DONE = plain("done");
const PREAMBLE = plain("preamble");
const MALFORMED = plain("malformed", undefined, "upstream sent a malformed stream chunk");

/** Classifies the JSON payload of one `data:` field. */
export function classifyPayload(data: string): SseEvent {
  if (data === "[DONE]") return DONE;
  let payload: unknown;
  try {
    payload = JSON.parse(data);
  } catch {
    return MALFORMED;
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return MALFORMED;
  const chunk = payload as Record<string, unknown>;
  const usage = readUsage(chunk.usage);
  if (chunk.error !== undefined && chunk.error !== null) {
    return plain("error", usage, errorMessageOf(chunk.error));
  }
  const choices = chunk.choices;
  if (!Array.isArray(choices) || choices.length === 0) {
    return usage ? plain("usage", usage) : PREAMBLE;
  }
  let content = false;
  let finishReason: string | undefined;
  let text = "";
  let structured = false;
  for (const choice of choices as unknown[]) {
    if (typeof choice !== "object" || choice === null) continue;
    const { delta, finish_reason: reason } = choice as { delta?: Record<string, unknown>; finish_reason?: unknown };
    if (reason === "error") return plain("error", usage, 'upstream ended the stream with finish_reason "error"');
    if (typeof reason === "string") finishReason = reason;
    if (!delta) continue;
    const deltaContent = delta.content;
    if (typeof deltaContent === "string") text += deltaContent;
    // Content as an array of parts is not text a prefill can repeat exactly.
    if (Array.isArray(deltaContent) || nonEmpty(delta.refusal) || nonEmpty(delta.tool_calls) || delta.function_call) structured = true;
    if (nonEmpty(deltaContent) || structured || nonEmpty(delta.reasoning_content) || nonEmpty(delta.reasoning)) content = true;
  }
  if (!content && finishReason === undefined && usage === undefined) return PREAMBLE;
  const responseModel = finishReason !== undefined && typeof chunk.model === "string" ? chunk.model : undefined;
  return {
    kind: content ? "content" : "preamble",
    finished: finishReason !== undefined,
    usage,
    errorMessage: undefined,
    text,
    structured,
    finishReason,
    responseModel,
  };
}

function startsWith(buffer: Buffer, at: number, end: number, prefix: Buffer): boolean {
  if (end - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buffer[at + i] !== prefix[i]) return false;
  return true;
}

/** Parses the fields of one event (lines in [start, end)) and classifies it. */
function parseEvent(buffer: Buffer, start: number, end: number): SseEvent {
  let data: string | undefined;
  let errorEvent = false;
  let line = start;
  while (line < end) {
    let lineEnd = buffer.indexOf(LF, line);
    if (lineEnd === -1 || lineEnd > end) lineEnd = end;
    const contentEnd = lineEnd > line && buffer[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
    if (startsWith(buffer, line, contentEnd, DATA_PREFIX)) {
      let valueStart = line + DATA_PREFIX.length;
      if (buffer[valueStart] === 32) valueStart++;
      const value = buffer.toString("utf8", valueStart, contentEnd);
      data = data === undefined ? value : `${data}\n${value}`;
    } else if (startsWith(buffer, line, contentEnd, EVENT_PREFIX)) {
      errorEvent = buffer.toString("utf8", line + EVENT_PREFIX.length, contentEnd).trim() === "error";
    }
    line = lineEnd + 1;
  }
  if (data === undefined) return COMMENT;
  const event = classifyPayload(data);
  if (errorEvent && event.kind !== "error") {
    return plain("error", event.usage, "upstream sent an error event");
  }
  return event;
}

/** Index just past the first event separator ("\n\n" or "\n\r\n") at or after `from`; -1 when there is none. */
function separatorEnd(buffer: Buffer, from: number): number {
  for (;;) {
    const lf = buffer.indexOf(LF, from);
    if (lf === -1) return -1;
    const next = buffer[lf + 1];
    if (next === LF) return lf + 2;
    if (next === CR && buffer[lf + 2] === LF) return lf + 3;
    from = lf + 1;
  }
}

/** The end of held bytes that may begin a separator straddling two chunks. */
type Ending = "" | "\n" | "\n\r";

/**
 * Incremental SSE splitter. Feed it upstream chunks; it calls `onEvent` for each complete event with
 * the byte range to forward, and keeps an incomplete trailing event until its end arrives.
 *
 * Each byte is searched once: an incomplete event is kept as the list of its pieces, and joined only
 * when its end arrives. An event longer than `limitBytes` (separator included) is reported once, as
 * `malformed` with an empty range, as soon as it is known to be too long; its bytes are dropped up to
 * its end, so the scanner never holds more than `limitBytes`.
 */
export class SseScanner {
  /** The incomplete event's first piece, and its later ones when it spans more than two chunks. */
  private heldFirst: Buffer | undefined;
  private heldMore: Buffer[] | undefined;
  private heldBytes = 0;
  private heldEnding: Ending = "";
  /** The incomplete event went over the limit: its bytes are dropped until it ends. */
  private dropping = false;

  /** @param limitBytes the longest event accepted, in bytes */
  constructor(private readonly limitBytes: number) {}

  /** Bytes of an incomplete event held back (for bounded buffering checks). */
  get pendingBytes(): number {
    return this.heldBytes;
  }

  push(chunk: Buffer, onEvent: SseEventHandler): void {
    // Nothing to scan, and holding it would lose how the held bytes end.
    if (chunk.length === 0) return;
    let buffer = chunk;
    let eventStart = 0;
    if (this.heldBytes > 0 || this.dropping) {
      const end = this.heldEventEnd(chunk);
      if (end === -1) {
        this.hold(chunk, onEvent);
        return;
      }
      if (this.dropping) {
        this.dropping = false;
        eventStart = end;
      } else {
        // An array literal for the usual two pieces, as cheap as the join it replaces.
        const first = this.heldFirst as Buffer;
        const pieces = this.heldMore === undefined ? [first, chunk] : [first, ...this.heldMore, chunk];
        buffer = Buffer.concat(pieces, this.heldBytes + chunk.length);
        eventStart = this.heldBytes + end;
        this.release();
        this.emit(buffer, 0, eventStart, onEvent);
      }
      this.heldEnding = "";
    }
    for (let end = separatorEnd(buffer, eventStart); end !== -1; end = separatorEnd(buffer, eventStart)) {
      this.emit(buffer, eventStart, end, onEvent);
      eventStart = end;
    }
    if (eventStart < buffer.length) this.hold(eventStart === 0 ? buffer : buffer.subarray(eventStart), onEvent);
  }

  private emit(buffer: Buffer, start: number, end: number, onEvent: SseEventHandler): void {
    if (end - start > this.limitBytes) onEvent(buffer, start, start, this.oversize());
    else onEvent(buffer, start, end, parseEvent(buffer, start, end));
  }

  /** Index in `chunk` just past the separator that ends the held event (it may begin in the held bytes); -1 when none does. */
  private heldEventEnd(chunk: Buffer): number {
    if (this.heldEnding === "\n") {
      if (chunk[0] === LF) return 1;
      if (chunk[0] === CR && chunk[1] === LF) return 2;
    } else if (this.heldEnding === "\n\r" && chunk[0] === LF) return 1;
    return separatorEnd(chunk, 0);
  }

  /** Keeps `piece` as the next part of the incomplete event, or drops it once the event is over the limit. */
  private hold(piece: Buffer, onEvent: SseEventHandler): void {
    const last = piece[piece.length - 1];
    const beforeLast = piece.length > 1 ? piece[piece.length - 2] === LF : this.heldEnding === "\n";
    this.heldEnding = last === LF ? "\n" : last === CR && beforeLast ? "\n\r" : "";
    if (this.dropping) return;
    if (this.heldBytes + piece.length > this.limitBytes) {
      this.release();
      this.dropping = true;
      onEvent(piece, 0, 0, this.oversize());
      return;
    }
    if (this.heldFirst === undefined) this.heldFirst = piece;
    else (this.heldMore ??= []).push(piece);
    this.heldBytes += piece.length;
  }

  private release(): void {
    this.heldFirst = undefined;
    this.heldMore = undefined;
    this.heldBytes = 0;
  }

  /** Made when needed, so a stream of ordinary events allocates nothing for it. */
  private oversize(): SseEvent {
    return plain("malformed", undefined, `upstream sent a stream event larger than ${this.limitBytes} bytes`);
  }
}
