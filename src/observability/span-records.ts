// What the event loop hands the trace worker (trace-worker.ts): finished spans as plain data, which
// structured cloning copies cheaply, and the worker's answers.
import type { AttributeValue } from "@opentelemetry/api";

/** One finished span, sampled, with the ids its traceparent headers already carried. */
export interface SpanRecord {
  readonly name: string;
  readonly kind: "server" | "client";
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** 16 lowercase hex digits. */
  readonly spanId: string;
  /** The parent's span id; undefined for a root span. */
  readonly parentSpanId: string | undefined;
  /** The parent is the caller's span (from its `traceparent`), not one of this process. */
  readonly remoteParent: boolean;
  /** The caller's W3C `tracestate`, serialized, when it sent one. */
  readonly traceState: string | undefined;
  /** Start and end, in ms since the Unix epoch (performance.timeOrigin + performance.now()). */
  readonly startMs: number;
  readonly endMs: number;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  /** The span's status is ERROR. */
  readonly error: boolean;
}

export type ToTraceWorker = { readonly type: "spans"; readonly spans: readonly SpanRecord[] } | { readonly type: "shutdown" };

/** `done` answers one `spans` message; `shut` answers `shutdown`, with the reason when spans could not be exported. */
export type FromTraceWorker = { readonly type: "done" } | { readonly type: "shut"; readonly error?: string };
