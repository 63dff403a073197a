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
 * - `malformed`: data that is not JSON.
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
}

/** Called per complete event with its byte range in `buffer` (end exclusive, separator included). */
export type SseEventHandler = (buffer: Buffer, start: number, end: number, event: SseEvent) => void;

const LF = 10;
const CR = 13;
const DATA_PREFIX = Buffer.from("data:");
const EVENT_PREFIX = Buffer.from("event:");

const nonEmpty = (value: unknown): boolean =>
  (typeof value === "string" && value.length > 0) || (Array.isArray(value) && value.length > 0);

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

// The events most chunks are, shared rather than allocated per chunk.
const COMMENT: SseEvent = { kind: "comment", finished: false, usage: undefined, errorMessage: undefined };
const DONE: SseEvent = { kind: "done", finished: false, usage: undefined, errorMessage: undefined };
const CONTENT: SseEvent = { kind: "content", finished: false, usage: undefined, errorMessage: undefined };
const PREAMBLE: SseEvent = { kind: "preamble", finished: false, usage: undefined, errorMessage: undefined };
const MALFORMED: SseEvent = { kind: "malformed", finished: false, usage: undefined, errorMessage: "upstream sent a malformed stream chunk" };

/** Classifies the JSON payload of one `data:` field. */
export function classifyPayload(text: string): SseEvent {
  if (text === "[DONE]") return DONE;
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    return MALFORMED;
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return MALFORMED;
  const chunk = payload as Record<string, unknown>;
  const usage = readUsage(chunk.usage);
  if (chunk.error !== undefined && chunk.error !== null) {
    return { kind: "error", finished: false, usage, errorMessage: errorMessageOf(chunk.error) };
  }
  const choices = chunk.choices;
  if (!Array.isArray(choices) || choices.length === 0) {
    return usage ? { kind: "usage", finished: false, usage, errorMessage: undefined } : PREAMBLE;
  }
  let content = false;
  let finished = false;
  for (const choice of choices as unknown[]) {
    if (typeof choice !== "object" || choice === null) continue;
    const { delta, finish_reason: finishReason } = choice as { delta?: Record<string, unknown>; finish_reason?: unknown };
    if (finishReason === "error") {
      return { kind: "error", finished: false, usage, errorMessage: "upstream ended the stream with finish_reason \"error\"" };
    }
    if (typeof finishReason === "string") finished = true;
    if (delta && (nonEmpty(delta.content) || nonEmpty(delta.reasoning_content) || nonEmpty(delta.reasoning) || nonEmpty(delta.refusal) || nonEmpty(delta.tool_calls) || delta.function_call)) {
      content = true;
    }
  }
  if (!finished && usage === undefined) return content ? CONTENT : PREAMBLE;
  return { kind: content ? "content" : "preamble", finished, usage, errorMessage: undefined };
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
    return { kind: "error", finished: false, usage: event.usage, errorMessage: "upstream sent an error event" };
  }
  return event;
}

/**
 * Incremental SSE splitter. Feed it upstream chunks; it calls `onEvent` for each complete event with
 * the byte range to forward, and keeps an incomplete trailing event until its end arrives.
 */
export class SseScanner {
  private tail: Buffer | undefined;
  /** Where to resume looking for a separator in `tail`, which may straddle two chunks. */
  private tailScanFrom = 0;

  /** Bytes of an incomplete event held back (for bounded buffering checks). */
  get pendingBytes(): number {
    return this.tail?.length ?? 0;
  }

  push(chunk: Buffer, onEvent: SseEventHandler): void {
    const buffer = this.tail === undefined ? chunk : Buffer.concat([this.tail, chunk]);
    this.tail = undefined;
    let eventStart = 0;
    let search = this.tailScanFrom;
    this.tailScanFrom = 0;
    for (;;) {
      const lf = buffer.indexOf(LF, search);
      if (lf === -1) break;
      let end = -1;
      if (buffer[lf + 1] === LF) end = lf + 2;
      else if (buffer[lf + 1] === CR && buffer[lf + 2] === LF) end = lf + 3;
      if (end === -1) {
        search = lf + 1;
        continue;
      }
      onEvent(buffer, eventStart, end, parseEvent(buffer, eventStart, end));
      eventStart = end;
      search = end;
    }
    if (eventStart < buffer.length) {
      this.tail = buffer.subarray(eventStart);
      // A separator ("\n\n" or "\n\r\n") may straddle chunks: rescan the last three bytes we hold.
      this.tailScanFrom = Math.max(0, this.tail.length - 3);
    }
  }
}
