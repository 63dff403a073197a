// The trace worker thread: turns the span records the event loop sends (otel.ts) into OpenTelemetry SDK
// spans and exports them, batched, as OTLP/HTTP JSON. The SDK's span objects, their batching and the
// export's serialisation all run here, off the event loop that serves requests. The SDK reads its
// settings (endpoint, headers, timeout, batch sizes, resource) from the OTEL_* environment, which a
// worker shares with its process; sampling was decided on the event loop, so every record is exported.
import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import { parentPort } from "node:worker_threads";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, createTraceState, trace, type Context } from "@opentelemetry/api";
import { millisToHrTime } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, type IdGenerator } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { FromTraceWorker, SpanRecord, ToTraceWorker } from "./span-records.js";

/** Hands the SDK the ids a record's span already has (the traceparent sent upstream named them). */
class RecordedIds implements IdGenerator {
  traceId = "";
  spanId = "";
  generateTraceId(): string {
    return this.traceId;
  }
  generateSpanId(): string {
    return this.spanId;
  }
}

function parentOf(record: SpanRecord): Context {
  if (record.parentSpanId === undefined) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: record.traceId,
    spanId: record.parentSpanId,
    traceFlags: TraceFlags.SAMPLED,
    isRemote: record.remoteParent,
    ...(record.traceState !== undefined ? { traceState: createTraceState(record.traceState) } : {}),
  });
}

const port = parentPort;
if (port === null) throw new Error("trace-worker.js runs as a worker thread (otel.ts starts it)");

// The lowest CPU priority for this thread (Linux, where /proc/thread-self names it): on a core it shares
// with the event loop, a request comes first and the export runs in what is left.
try {
  const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
  if (tid > 0) setPriority(tid, 19);
} catch {
  // Not Linux: the thread keeps its priority.
}

const ids = new RecordedIds();
const resource = defaultResource()
  .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: "subsecond" }))
  .merge(detectResources({ detectors: [envDetector] }));
const provider = new BasicTracerProvider({
  resource,
  sampler: new AlwaysOnSampler(),
  idGenerator: ids,
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
});
const tracer = provider.getTracer("subsecond");

function replay(record: SpanRecord): void {
  ids.traceId = record.traceId;
  ids.spanId = record.spanId;
  const kind = record.kind === "server" ? SpanKind.SERVER : SpanKind.CLIENT;
  const span = tracer.startSpan(record.name, { kind, startTime: millisToHrTime(record.startMs), attributes: record.attributes }, parentOf(record));
  if (record.error) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end(millisToHrTime(record.endMs));
}

const answer = (message: FromTraceWorker): void => port.postMessage(message);

port.on("message", (message: ToTraceWorker) => {
  if (message.type === "spans") {
    for (const record of message.spans) replay(record);
    answer({ type: "done" });
    return;
  }
  provider.shutdown().then(
    () => answer({ type: "shut" }),
    (error: unknown) => answer({ type: "shut", error: error instanceof Error ? error.message : String(error) }),
  );
});
