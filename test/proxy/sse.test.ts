import { describe, expect, it } from "vitest";
import { SseScanner, classifyPayload, type SseEventKind } from "../../src/proxy/sse.js";

interface Seen {
  readonly text: string;
  readonly kind: SseEventKind;
  readonly errorMessage: string | undefined;
}

/** Feeds `chunks` to a scanner with `limitBytes`; the events it reported and its largest holding. */
function scan(chunks: readonly Buffer[], limitBytes = 1024 * 1024): { events: Seen[]; mostHeld: number } {
  const scanner = new SseScanner(limitBytes);
  const events: Seen[] = [];
  let mostHeld = 0;
  for (const chunk of chunks) {
    scanner.push(chunk, (buffer, start, end, event) =>
      events.push({ text: buffer.toString("utf8", start, end), kind: event.kind, errorMessage: event.errorMessage }),
    );
    mostHeld = Math.max(mostHeld, scanner.pendingBytes);
  }
  return { events, mostHeld };
}

/** `data: {content}` as one chat.completion.chunk event. */
const contentEvent = (content: string) => `data: {"choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}}}]}\n\n`;

function chunked(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
}

describe("SseScanner", () => {
  // LF and CRLF separators, a comment, a multi-line data field, an error event, [DONE].
  const stream = Buffer.from(
    `: keep-alive\n\n${contentEvent("a")}data: {"choices":[{"index":0,\r\ndata: "delta":{"content":"b"}}]}\r\n\r\n` +
      `event: error\ndata: {"error":{"message":"late"}}\n\n${contentEvent("é")}data: [DONE]\n\n`,
  );

  it("finds the same events wherever the chunks are cut", () => {
    const whole = scan([stream]).events;
    expect(whole.map((event) => event.kind)).toEqual(["comment", "content", "content", "error", "content", "done"]);
    expect(whole.map((event) => event.text).join("")).toBe(stream.toString("utf8"));
    for (let cut = 1; cut < stream.length; cut++) {
      expect(scan([stream.subarray(0, cut), stream.subarray(cut)]).events, `cut at ${cut}`).toEqual(whole);
    }
    for (const size of [1, 2, 3, 7]) expect(scan(chunked(stream, size)).events, `${size}-byte chunks`).toEqual(whole);
    const empty = Buffer.alloc(0);
    expect(scan(chunked(stream, 1).flatMap((chunk) => [chunk, empty])).events, "empty chunks between bytes").toEqual(whole);
  });

  it("scans one long event in time linear in its length", () => {
    // 32 MB in 64 KiB chunks: rejoining the partial event on every chunk took seconds; a linear scan takes
    // tens of milliseconds. The bound leaves room for a busy machine.
    const event = Buffer.from(contentEvent("x".repeat(32 * 1024 * 1024)));
    const chunks = chunked(event, 64 * 1024);
    const scanner = new SseScanner(64 * 1024 * 1024);
    const events: [SseEventKind, number][] = [];
    const started = performance.now();
    for (const chunk of chunks) scanner.push(chunk, (_buffer, start, end, seen) => events.push([seen.kind, end - start]));
    const elapsedMs = performance.now() - started;
    expect(events).toEqual([["content", event.length]]);
    expect(elapsedMs).toBeLessThan(1500);
  });

  it("reports an event over its limit once, as malformed, holds no more than the limit, and goes on after it", () => {
    const limitBytes = 64 * 1024;
    const long = contentEvent("x".repeat(1024 * 1024));
    for (const chunkSize of [4096, 64 * 1024, 2 * 1024 * 1024]) {
      const { events, mostHeld } = scan(chunked(Buffer.from(`${contentEvent("before")}${long}${contentEvent("after")}`), chunkSize), limitBytes);
      expect(
        events.map((event) => event.kind),
        `${chunkSize}-byte chunks`,
      ).toEqual(["content", "malformed", "content"]);
      expect(events[1]?.text).toBe("");
      expect(events[1]?.errorMessage).toBe(`upstream sent a stream event larger than ${limitBytes} bytes`);
      expect(events[2]?.text).toBe(contentEvent("after"));
      expect(mostHeld).toBeLessThanOrEqual(limitBytes);
    }
    // The dropped event's end found across small reads, "\r\n" line ends included.
    const small = Buffer.from(`${contentEvent("before")}${contentEvent("y".repeat(300)).replace("\n\n", "\r\n\r\n")}${contentEvent("after")}`);
    for (const chunkSize of [1, 2, 3, 5]) {
      const { events, mostHeld } = scan(chunked(small, chunkSize), 100);
      expect(
        events.map((event) => event.kind),
        `${chunkSize}-byte chunks`,
      ).toEqual(["content", "malformed", "content"]);
      expect(events[2]?.text).toBe(contentEvent("after"));
      expect(mostHeld).toBeLessThanOrEqual(100);
    }
  });
});

describe("classifyPayload", () => {
  const delta = (value: Record<string, unknown>, finishReason: string | null = null) =>
    JSON.stringify({ id: "c", choices: [{ index: 0, delta: value, finish_reason: finishReason }] });

  it("reads the text a continuation repeats, and whether the chunk holds parts a prefill cannot carry", () => {
    expect(classifyPayload(delta({ content: "Hello, wor" }))).toMatchObject({ kind: "content", text: "Hello, wor", structured: false });
    expect(classifyPayload(delta({ reasoning: "hmm" }))).toMatchObject({ kind: "content", text: "", structured: false });
    expect(classifyPayload(delta({ tool_calls: [{ index: 0, function: { arguments: "{" } }] }))).toMatchObject({ kind: "content", structured: true });
    expect(classifyPayload(delta({ refusal: "I can't" }))).toMatchObject({ kind: "content", structured: true });
    expect(classifyPayload(delta({ role: "assistant", content: "" }))).toMatchObject({ kind: "preamble", text: "" });
    expect(classifyPayload(delta({ content: "end" }, "stop"))).toMatchObject({ kind: "content", text: "end", finished: true });
  });
});
