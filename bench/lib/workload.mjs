// What the bench sends and for how long: the stream shapes, the phase table and its durations, the
// request bodies, and the bearer key.
import { chatBody } from "../load.mjs";

/** The key every client sends; the gateway accepts it (SUBSECOND_API_KEYS), the floor and the mock ignore it. */
export const BENCH_KEY = "bench-key";
/** Long streams: the mock's default shape, 64 content chunks 20 ms apart. */
export const STREAM = { chunks: 64, chunkMs: 20 };
/** Short streams, for time to first chunk: 4 chunks 5 ms apart, asked for with a marker in the prompt. */
export const SHORT = { chunks: 4, chunkMs: 5 };
/** Idle time after each measured phase, in ms. */
export const PAUSE_BETWEEN_PHASES_MS = 150;

/** Durations in ms. `warm` is discarded at the start of each phase; `win` is the measured window. */
export function durations(quick) {
  return quick
    ? { cancelWarmup: 500, warmup: 1200, jsonWarm: 300, jsonWin: 1500, streamWarm: 300, streamWin: 1500, ttfcWin: 1500, ttfc16Win: 1000 }
    : { cancelWarmup: 1000, warmup: 3000, jsonWarm: 500, jsonWin: 5000, streamWarm: 500, streamWin: 7000, ttfcWin: 10000, ttfc16Win: 3000 };
}

/**
 * Every phase, in the order a run measures them. At c=16 on streams, `stagger` spreads the first requests
 * over one stream's length and `think` waits a random 0 to one chunk interval before each next request
 * (see load.mjs). `abortAtEnd` cuts the streams still running when the window closes; `cpu` and `rss`
 * mark the phases whose CPU per request and peak RSS are reported.
 */
export function phaseTable(T) {
  return [
    {
      key: "ttfc_c1",
      what: `TTFC, short streams ${SHORT.chunks}x${SHORT.chunkMs}ms`,
      concurrency: 1,
      body: "short",
      stream: true,
      warm: T.streamWarm,
      win: T.ttfcWin,
    },
    {
      key: "ttfc_c16",
      what: `TTFC, short streams ${SHORT.chunks}x${SHORT.chunkMs}ms`,
      concurrency: 16,
      body: "short",
      stream: true,
      warm: T.streamWarm,
      win: T.ttfc16Win,
      stagger: SHORT.chunks * SHORT.chunkMs + SHORT.chunkMs,
      think: SHORT.chunkMs,
    },
    {
      key: "stream_c1",
      what: `stream ${STREAM.chunks}x${STREAM.chunkMs}ms`,
      concurrency: 1,
      body: "stream",
      stream: true,
      warm: T.streamWarm,
      win: T.streamWin,
      abortAtEnd: true,
    },
    {
      key: "stream_c16",
      what: `stream ${STREAM.chunks}x${STREAM.chunkMs}ms`,
      concurrency: 16,
      body: "stream",
      stream: true,
      warm: T.streamWarm,
      win: T.streamWin,
      abortAtEnd: true,
      stagger: STREAM.chunks * STREAM.chunkMs + STREAM.chunkMs,
      think: STREAM.chunkMs,
    },
    { key: "c1", what: "latency, JSON", concurrency: 1, body: "json", warm: T.jsonWarm, win: T.jsonWin },
    { key: "c16", what: "latency + max req/s, JSON", concurrency: 16, body: "json", warm: T.jsonWarm, win: T.jsonWin, cpu: true },
    { key: "c64", what: "latency + max req/s + RSS, JSON", concurrency: 64, body: "json", warm: T.jsonWarm, win: T.jsonWin, cpu: true, rss: true },
  ];
}

/** The keys of every phase, in run order. */
export const PHASE_KEYS = phaseTable(durations(false)).map((p) => p.key);

/** Request bodies by name: JSON, long streams, and short streams (the mock reads the marker). */
export const BODIES = {
  json: chatBody(),
  stream: chatBody({ stream: true }),
  short: chatBody({ stream: true, marker: `[mock chunks=${SHORT.chunks} ms=${SHORT.chunkMs}] ` }),
};

/** The kind of work of a phase, as warm-ups know it. */
export const kindOf = (spec) => (spec.stream ? "stream" : "json");

/** The kinds of work the given phases do, that of the first phases last: for the mock's and the driver's warm-up. */
export const kindsOf = (phases) => [...new Set(phases.map(kindOf))].reverse();
