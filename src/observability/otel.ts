// The Tracing interface on OpenTelemetry, with the event loop doing as little as it can. Per request it
// keeps plain records: ids drawn from a random pool, `traceparent` headers written by hand, and the
// sampling decision of the SDK's own samplers (OTEL_TRACES_SAMPLER, as the SDK reads it). Finished spans
// go in batches to a worker thread (trace-worker.ts), which makes them SDK spans and exports them as
// OTLP/HTTP JSON. Attributes follow the GenAI semantic conventions (gen_ai.*, spec v1.37+) and
// `subsecond.*`. Imported by tracing.ts only when traces are wanted.
//
// Why a worker: on the event loop, the SDK's spans (attribute checks, context objects, a span kept per
// request until its batch is exported) and the export's JSON cost a request at c=1 about 0.1 ms p50
// and a fifth of the throughput; a record costs a few µs.
import { randomFillSync } from "node:crypto";
import { once } from "node:events";
import type { IncomingHttpHeaders } from "node:http";
import { Worker } from "node:worker_threads";
import { ROOT_CONTEXT, SpanKind, defaultTextMapGetter, trace, type AttributeValue } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, SamplingDecision, TraceIdRatioBasedSampler, type Sampler } from "@opentelemetry/sdk-trace-base";
import { ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE } from "@opentelemetry/semantic-conventions";
import { NO_MODEL } from "../metrics/metrics.js";
import type { CatalogModel } from "../router/types.js";
import type { FromTraceWorker, SpanRecord, ToTraceWorker } from "./span-records.js";
import type { AttemptEnd, AttemptStart, RequestEnd, RequestTrace, Tracing, TracingProblem } from "./tracing.js";

// GenAI attributes are still "development" in the semantic conventions: their package asks
// instrumentations to copy them rather than import its `incubating` entry point, which may break in a minor.
const GEN_AI_OPERATION_NAME = "gen_ai.operation.name";
const GEN_AI_PROVIDER_NAME = "gen_ai.provider.name";
const GEN_AI_REQUEST_MODEL = "gen_ai.request.model";
const GEN_AI_RESPONSE_MODEL = "gen_ai.response.model";
const GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens";
const GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens";
const GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons";

/** The chat route's path, as `http.route`. */
const CHAT_ROUTE = "/v1/chat/completions";
/** The server span's name until the route is known (a request refused before routing keeps it). */
const UNROUTED = "chat";
/** Attempt outcomes that are not errors of the attempt: it served, or it was stopped. */
const NOT_ERRORS = new Set(["ok", "superseded", "cancelled"]);

/** Spans sent to the worker at once; a smaller batch waits at most BATCH_WAIT_MS. */
const BATCH_SPANS = 256;
const BATCH_WAIT_MS = 50;
/** Batches the worker has not yet taken in; past this, new spans are dropped rather than queued without bound. */
const MAX_BATCHES_IN_FLIGHT = 64;

/**
 * The sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG name, from the SDK's samplers, with the
 * SDK's default (parentbased_always_on) for a value it does not know.
 */
export function samplerFromEnv(env: Readonly<Record<string, string | undefined>>): Sampler {
  const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const parsed = arg ? Number(arg) : Number.NaN;
  const ratio = parsed >= 0 && parsed <= 1 ? parsed : 1;
  switch (env.OTEL_TRACES_SAMPLER?.trim().toLowerCase()) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio);
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** Random ids as lowercase hex, cut from a pool refilled by the CSPRNG (one system call per 4 KiB). */
class IdPool {
  readonly #pool = Buffer.allocUnsafe(4096);
  #offset = this.#pool.length;

  hex(bytes: number): string {
    for (;;) {
      if (this.#offset + bytes > this.#pool.length) {
        randomFillSync(this.#pool);
        this.#offset = 0;
      }
      const start = this.#offset;
      this.#offset += bytes;
      // All zeros is an invalid id (W3C Trace Context): draw again.
      for (let k = start; k < start + bytes; k++) if (this.#pool[k] !== 0) return this.#pool.toString("hex", start, start + bytes);
    }
  }
}

/** Ships finished spans to the worker in batches, and stops it. */
class SpanShipper {
  #pending: SpanRecord[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #dropped = 0;
  #failed = false;
  #shut: ((error: Error | undefined) => void) | undefined;

  constructor(
    private readonly worker: Worker,
    private readonly problem: TracingProblem,
  ) {
    worker.on("message", (message: FromTraceWorker) => {
      if (message.type === "done") this.#inFlight--;
      else this.#shut?.(message.error === undefined ? undefined : new Error(message.error));
    });
    worker.on("error", (error) => this.#fail("the trace worker failed: spans are no longer exported", error));
    worker.on("exit", (code) => this.#fail(`the trace worker exited (code ${code}): spans are no longer exported`));
  }

  ship(spans: readonly SpanRecord[]): void {
    if (this.#failed) return;
    if (this.#inFlight >= MAX_BATCHES_IN_FLIGHT) {
      if (this.#dropped++ === 0) this.problem("the trace worker is behind: spans are dropped until it catches up");
      return;
    }
    this.#dropped = 0;
    for (const span of spans) this.#pending.push(span);
    if (this.#pending.length >= BATCH_SPANS) this.#flush();
    else this.#timer ??= setTimeout(this.#flush, BATCH_WAIT_MS).unref();
  }

  readonly #flush = (): void => {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0 || this.#failed) return;
    this.#send({ type: "spans", spans: this.#pending });
    this.#pending = [];
    this.#inFlight++;
  };

  /** Sends what is pending, then lets the worker export every span it holds and stop. */
  async shutdown(): Promise<void> {
    this.#flush();
    if (this.#failed) throw new Error("the trace worker had stopped: spans were lost");
    this.worker.ref();
    const shut = new Promise<Error | undefined>((resolve) => (this.#shut = resolve));
    this.#send({ type: "shutdown" });
    const error = await shut;
    this.#failed = true;
    await this.worker.terminate();
    if (error !== undefined) throw error;
  }

  #send(message: ToTraceWorker): void {
    this.worker.postMessage(message);
  }

  #fail(message: string, error?: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.problem(message, error);
    this.#shut?.(new Error(message));
  }
}

/**
 * Starts the trace worker and returns the Tracing that feeds it. `env` gives the sampler; the worker's
 * SDK reads the rest of the OTEL_* settings itself.
 */
export async function createOtelTracing(env: Readonly<Record<string, string | undefined>>, problem: TracingProblem): Promise<Tracing> {
  const worker = new Worker(new URL("./trace-worker.js", import.meta.url));
  await once(worker, "online");
  // A running worker must not keep a finished process alive; shutdown() refers to it again while it flushes.
  worker.unref();
  const shipper = new SpanShipper(worker, problem);
  const context = { sampler: samplerFromEnv(env), propagator: new W3CTraceContextPropagator(), ids: new IdPool(), shipper };
  return {
    startRequest: (headers, startedAt) => new RecordedRequestTrace(context, headers, startedAt),
    shutdown: () => shipper.shutdown(),
  };
}

interface TraceContext {
  readonly sampler: Sampler;
  readonly propagator: W3CTraceContextPropagator;
  readonly ids: IdPool;
  readonly shipper: SpanShipper;
}

const TIME_ORIGIN_MS = performance.timeOrigin;
/** Epoch ms of a performance.now() reading. */
const epochMs = (now: number): number => TIME_ORIGIN_MS + now;
/** The attributes of an attempt whose trace is not sampled: never read. */
const UNRECORDED: Record<string, AttributeValue> = Object.freeze({});

/** A client span in flight. */
interface OpenAttempt {
  readonly spanId: string;
  readonly name: string;
  readonly startMs: number;
  readonly attributes: Record<string, AttributeValue>;
}

class RecordedRequestTrace implements RequestTrace {
  readonly #context: TraceContext;
  readonly #traceId: string;
  readonly #spanId: string;
  readonly #parentSpanId: string | undefined;
  readonly #traceState: string | undefined;
  readonly #sampled: boolean;
  readonly #startMs: number;
  #name = UNROUTED;
  readonly #attributes: Record<string, AttributeValue>;
  /** Client spans in flight, by catalog id (a request tries a model once). */
  readonly #attempts = new Map<string, OpenAttempt>();
  /** Client spans that ended while the request went on: shipped with the server span. */
  readonly #finished: SpanRecord[] = [];
  /** The `model` each answered attempt's provider named, by catalog id, for the server span. */
  #answered: Map<string, string> | undefined;
  #hedged = false;
  #ended = false;

  constructor(context: TraceContext, headers: IncomingHttpHeaders, startedAt: number) {
    this.#context = context;
    const parentContext = headers.traceparent === undefined ? ROOT_CONTEXT : context.propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
    const parent = trace.getSpanContext(parentContext);
    this.#traceId = parent?.traceId ?? context.ids.hex(16);
    this.#spanId = context.ids.hex(8);
    this.#parentSpanId = parent?.spanId;
    this.#traceState = parent?.traceState?.serialize() || undefined;
    this.#startMs = epochMs(startedAt);
    this.#attributes = { [GEN_AI_OPERATION_NAME]: "chat", [ATTR_HTTP_REQUEST_METHOD]: "POST", [ATTR_HTTP_ROUTE]: CHAT_ROUTE };
    const decision = context.sampler.shouldSample(parentContext, this.#traceId, UNROUTED, SpanKind.SERVER, this.#attributes, []);
    this.#sampled = decision.decision === SamplingDecision.RECORD_AND_SAMPLED;
  }

  planned(route: string, requestedModel: string): void {
    this.#name = `chat ${route}`;
    this.#attributes["subsecond.route"] = route;
    this.#attributes[GEN_AI_REQUEST_MODEL] = requestedModel;
  }

  attemptStarted(model: CatalogModel, start: AttemptStart): void {
    if (start.hedge) this.#hedged = true;
    const spanId = this.#context.ids.hex(8);
    if (!this.#sampled) {
      this.#attempts.set(model.id, { spanId, name: "", startMs: 0, attributes: UNRECORDED });
      return;
    }
    this.#attempts.set(model.id, {
      spanId,
      name: `chat ${model.upstreamModel}`,
      startMs: epochMs(performance.now()),
      attributes: {
        [GEN_AI_OPERATION_NAME]: "chat",
        [GEN_AI_PROVIDER_NAME]: model.provider,
        [GEN_AI_REQUEST_MODEL]: model.upstreamModel,
        "subsecond.model": model.id,
        "subsecond.attempt": start.attempt,
        "subsecond.reason": start.reason,
        "subsecond.hedge": start.hedge,
        "subsecond.probe": start.probe,
        "subsecond.continuation": start.continuation,
        "subsecond.predicted_ms": Math.round(start.predictedMs),
      },
    });
  }

  upstreamHeaders(model: CatalogModel, base: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
    const attempt = this.#attempts.get(model.id);
    if (attempt === undefined) return base;
    const headers: Record<string, string> = { ...base, traceparent: `00-${this.#traceId}-${attempt.spanId}-${this.#sampled ? "01" : "00"}` };
    if (this.#traceState !== undefined) headers.tracestate = this.#traceState;
    return headers;
  }

  attemptEnded(end: AttemptEnd): void {
    const attempt = this.#attempts.get(end.model.id);
    if (attempt === undefined) return;
    this.#attempts.delete(end.model.id);
    if (!this.#sampled) return;
    const attributes = attempt.attributes;
    attributes["subsecond.outcome"] = end.outcome;
    if (end.responseModel !== undefined) {
      attributes[GEN_AI_RESPONSE_MODEL] = end.responseModel;
      (this.#answered ??= new Map()).set(end.model.id, end.responseModel);
    }
    if (end.usage !== undefined) {
      attributes[GEN_AI_USAGE_INPUT_TOKENS] = end.usage.promptTokens;
      attributes[GEN_AI_USAGE_OUTPUT_TOKENS] = end.usage.completionTokens;
    }
    if (end.finishReasons !== undefined && end.finishReasons.length > 0) attributes[GEN_AI_RESPONSE_FINISH_REASONS] = [...end.finishReasons];
    const error = !NOT_ERRORS.has(end.outcome);
    if (error) attributes[ATTR_ERROR_TYPE] = end.outcome;
    const record = this.#record(attempt.name, "client", attempt.spanId, this.#spanId, false, attempt.startMs, epochMs(performance.now()), attributes, error);
    // A loser cancelled after the answer ends after the request: it goes on its own.
    if (this.#ended) this.#context.shipper.ship([record]);
    else this.#finished.push(record);
  }

  ended(end: RequestEnd, endedAt: number): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!this.#sampled) return;
    const attributes = this.#attributes;
    attributes["subsecond.reason"] = end.reason;
    attributes["subsecond.attempts"] = end.attempts;
    attributes["subsecond.hedge"] = this.#hedged;
    attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = end.status;
    if (end.model !== NO_MODEL) attributes["subsecond.model"] = end.model;
    const responseModel = this.#answered?.get(end.model);
    if (responseModel !== undefined) attributes[GEN_AI_RESPONSE_MODEL] = responseModel;
    if (end.outcome !== "ok") attributes[ATTR_ERROR_TYPE] = end.outcome;
    // A server span is an error for 5xx only (OpenTelemetry HTTP semantic conventions).
    const server = this.#record(this.#name, "server", this.#spanId, this.#parentSpanId, true, this.#startMs, epochMs(endedAt), attributes, end.status >= 500);
    this.#finished.push(server);
    this.#context.shipper.ship(this.#finished);
    this.#finished.length = 0;
  }

  #record(
    name: string,
    kind: SpanRecord["kind"],
    spanId: string,
    parentSpanId: string | undefined,
    remoteParent: boolean,
    startMs: number,
    endMs: number,
    attributes: Record<string, AttributeValue>,
    error: boolean,
  ): SpanRecord {
    return { name, kind, traceId: this.#traceId, spanId, parentSpanId, remoteParent, traceState: this.#traceState, startMs, endMs, attributes, error };
  }
}
