// Closed-loop load driver: C keep-alive connections, each sending the next request as soon as the last
// one finished, or after a random wait (`thinkMs`). Uses undici's low-level dispatch() with one reused
// handler per connection slot, so the driver allocates almost nothing per request and timestamps every
// body chunk as it arrives.
//
// As a module: `runLoad(options)`; as a CLI (for ad-hoc checks):
//   node bench/load.mjs --url http://127.0.0.1:PORT [-c 16] [--seconds 5] [--stream] [--key bench-key]
import { parseArgs } from "node:util";
import { Pool } from "undici";

/** A Float64Array that doubles when full. */
class Samples {
  constructor(capacity = 1024) {
    this.a = new Float64Array(capacity);
    this.n = 0;
  }
  push(v) {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  /** Sorted copy of the values (ascending). */
  sorted() {
    return this.a.slice(0, this.n).sort();
  }
}

/** Percentile (0..100) of an ascending Float64Array, nearest-rank; NaN when empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** p50/p90/p99/p99.9/max/mean/n of an ascending Float64Array, in its unit. */
export function summarize(sorted) {
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i];
  return {
    n: sorted.length,
    mean: sorted.length ? sum / sorted.length : NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}

const CONTENT = Buffer.from('"content":"');
const FP = Buffer.from('"system_fingerprint":"fp_');

/** Microseconds on the system-wide monotonic clock (the mock stamps chunks with the same clock). */
const nowUs = () => {
  const t = process.hrtime();
  return t[0] * 1e6 + t[1] / 1e3;
};

/** Pushes (now − send time) in ms for every stamped chunk in buf (see mock-upstream.mjs). */
function chunkDelays(buf, recvUs, out) {
  let i = buf.indexOf(FP);
  while (i !== -1) {
    let j = i + FP.length;
    let k = j;
    while (k < buf.length && buf[k] !== QUOTE) k++;
    const sent = Number(buf.toString("latin1", j, k));
    if (Number.isFinite(sent)) out.push((recvUs - sent) / 1000);
    i = buf.indexOf(FP, k);
  }
}
const DONE = Buffer.from("[DONE]");
const QUOTE = 0x22;

/** True when the chunk carries a delta with non-empty content (a role-only or empty delta does not count). */
function hasContent(buf) {
  let i = buf.indexOf(CONTENT);
  while (i !== -1) {
    const j = i + CONTENT.length;
    if (j < buf.length && buf[j] !== QUOTE) return true;
    i = buf.indexOf(CONTENT, j);
  }
  return false;
}

/**
 * Runs one closed-loop phase and resolves with its samples (milliseconds).
 * @param {object} o
 * @param {string} o.url origin, e.g. http://127.0.0.1:8080
 * @param {string} [o.path] default /v1/chat/completions
 * @param {Buffer} o.body request body
 * @param {string} [o.key] bearer key (sent to every target; the floor and the mock ignore it)
 * @param {number} o.concurrency connections = requests in flight
 * @param {number} o.durationMs time during which new requests are started
 * @param {number} [o.warmMs] leading part of the phase whose samples are discarded (default 0)
 * @param {boolean} [o.stream] record time to first content chunk and inter-chunk gaps
 * @param {number} [o.drainTimeoutMs] bound on waiting for in-flight requests after durationMs (default 10 s)
 * @param {number} [o.staggerMs] spread the first requests of the C slots over this long, so that long
 *   streams do not all start (and tick) together; the window then opens no earlier than this
 * @param {number} [o.thinkMs] before each request after a slot's first, wait a random 0 to thinkMs ms (at
 *   least the timer's 1 ms). Without it, slots whose streams all last the same lock their phases: each
 *   new stream then meets the other streams' chunks at the same offsets for the whole window, and the
 *   TTFC median depends on where the stagger happened to put them
 * @param {boolean} [o.abortAtEnd] cut in-flight requests when the window closes instead of draining them
 *   (long streams); cut requests are not errors
 * @param {{completed: number}} [o.live] incremented on every successful response, for live sampling
 * @param {() => void} [o.onWindowStart] called when the measured window opens (after warmMs)
 * @param {() => void} [o.onWindowEnd] called when it closes (at durationMs)
 */
export async function runLoad(o) {
  const concurrency = o.concurrency;
  const staggerMs = o.staggerMs ?? 0;
  const thinkMs = o.thinkMs ?? 0;
  const warmMs = Math.max(o.warmMs ?? 0, staggerMs);
  const live = o.live ?? { completed: 0 };
  const stream = Boolean(o.stream);
  const headers = ["content-type", "application/json", "authorization", `Bearer ${o.key ?? "bench-key"}`];
  const dispatchOpts = { origin: o.url, path: o.path ?? "/v1/chat/completions", method: "POST", headers, body: o.body };
  const pool = new Pool(o.url, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });

  const lat = new Samples(1 << 16);
  const ttfc = new Samples(stream ? 4096 : 16);
  const gaps = new Samples(stream ? 1 << 16 : 16);
  const delays = new Samples(stream ? 1 << 16 : 16);
  let errors = 0;
  const errorKinds = new Map();
  let completedInWindow = 0;
  let inFlight = 0;
  let stopping = false;
  let windowOpen = false;
  let windowStart = 0;
  let windowEnd = Infinity;
  let cpu0 = null;
  let cpu1 = null;
  let resolveDrained;
  const drained = new Promise((r) => (resolveDrained = r));

  const noteError = (kind) => {
    errors++;
    errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
  };

  const makeSlot = () => {
    const h = {
      t0: 0,
      status: 0,
      record: false,
      first: true,
      last: 0,
      done: false,
      onConnect() {},
      onHeaders(status) {
        h.status = status;
        return true;
      },
      onData(chunk) {
        if (!stream) return true;
        const t = performance.now();
        if (h.first) {
          if (hasContent(chunk)) {
            h.first = false;
            h.last = t;
            if (h.record) ttfc.push(t - h.t0);
          }
        } else {
          if (windowOpen && !stopping) {
            gaps.push(t - h.last);
            chunkDelays(chunk, nowUs(), delays);
          }
          h.last = t;
        }
        if (!h.done && chunk.indexOf(DONE) !== -1) h.done = true;
        return true;
      },
      onComplete() {
        const t = performance.now();
        if (h.status !== 200) noteError(`status ${h.status}`);
        else if (stream && !h.done) noteError("stream without [DONE]");
        else {
          live.completed++;
          if (h.record) lat.push(t - h.t0);
          if (t >= windowStart && t <= windowEnd && windowOpen) completedInWindow++;
        }
        next(h);
      },
      onError(err) {
        if (stopping) {
          next(h);
          return;
        }
        noteError(err.code ?? err.name ?? "error");
        // Back off a little so a dead target does not spin the loop.
        setTimeout(next, 10, h);
      },
    };
    return h;
  };

  const send = (h) => {
    h.status = 0;
    h.first = true;
    h.done = false;
    h.t0 = performance.now();
    h.record = windowOpen;
    pool.dispatch(dispatchOpts, h);
  };
  const next = (h) => {
    if (stopping) {
      if (--inFlight === 0) resolveDrained();
      return;
    }
    if (thinkMs > 0) setTimeout(sendAfterThinking, Math.random() * thinkMs, h);
    // A microtask, not a nested call, so undici finishes its own bookkeeping first.
    else queueMicrotask(() => send(h));
  };
  /** The window may have closed while the slot waited. */
  const sendAfterThinking = (h) => (stopping ? next(h) : send(h));

  const tStart = performance.now();
  for (let i = 0; i < concurrency; i++) {
    inFlight++;
    if (staggerMs > 0 && i > 0) setTimeout(send, (i * staggerMs) / concurrency, makeSlot());
    else send(makeSlot());
  }
  const openWindow = () => {
    windowOpen = true;
    windowStart = performance.now();
    cpu0 = process.cpuUsage();
    o.onWindowStart?.();
  };
  if (warmMs > 0) await new Promise((r) => setTimeout(r, warmMs));
  openWindow();
  await new Promise((r) => setTimeout(r, Math.max(0, o.durationMs - (performance.now() - tStart))));
  windowEnd = performance.now();
  cpu1 = process.cpuUsage(cpu0);
  o.onWindowEnd?.();
  stopping = true;
  if (o.abortAtEnd) pool.destroy().catch(() => {});

  let timer;
  const timedOut = await Promise.race([drained.then(() => false), new Promise((r) => (timer = setTimeout(r, o.drainTimeoutMs ?? 10_000, true)))]);
  clearTimeout(timer);
  if (timedOut) {
    noteError("drain timeout");
    await pool.destroy().catch(() => {});
  } else if (!o.abortAtEnd) {
    await pool.close().catch(() => {});
  }

  const windowMs = windowEnd - windowStart;
  return {
    concurrency,
    windowMs,
    completed: completedInWindow,
    rps: (completedInWindow * 1000) / windowMs,
    errors,
    errorKinds: Object.fromEntries(errorKinds),
    lat: lat.sorted(),
    ttfc: ttfc.sorted(),
    gaps: gaps.sorted(),
    chunkDelays: delays.sorted(),
    driverCpuMs: (cpu1.user + cpu1.system) / 1000,
    timedOut,
  };
}

/** The request body the benchmark sends: small and realistic. */
export function chatBody({ model = "realtime-chat", stream = false, marker = "" } = {}) {
  const content = `${marker}In one short sentence, what is the capital of France and why is it famous?`;
  const body = { model, messages: [{ role: "user", content }], max_tokens: 64 };
  if (stream) body.stream = true;
  return Buffer.from(JSON.stringify(body));
}

const fmt = (v) => (Number.isFinite(v) ? v.toFixed(3) : "-");

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values: a } = parseArgs({
    options: {
      url: { type: "string" },
      c: { type: "string", short: "c", default: "16" },
      seconds: { type: "string", default: "5" },
      stream: { type: "boolean", default: false },
      key: { type: "string", default: "bench-key" },
      model: { type: "string", default: "realtime-chat" },
    },
  });
  if (!a.url) {
    process.stderr.write("usage: node bench/load.mjs --url http://127.0.0.1:PORT [-c 16] [--seconds 5] [--stream]\n");
    process.exit(2);
  }
  const r = await runLoad({
    url: a.url,
    body: chatBody({ model: a.model, stream: a.stream }),
    key: a.key,
    concurrency: Number(a.c),
    durationMs: Number(a.seconds) * 1000,
    warmMs: 500,
    stream: a.stream,
    drainTimeoutMs: 30_000,
  });
  const l = summarize(r.lat);
  console.log(`c=${r.concurrency} ${r.rps.toFixed(0)} req/s, errors ${r.errors} ${JSON.stringify(r.errorKinds)}`);
  console.log(`latency ms: p50 ${fmt(l.p50)} p90 ${fmt(l.p90)} p99 ${fmt(l.p99)} max ${fmt(l.max)} (n=${l.n})`);
  console.log(`driver CPU: ${((r.driverCpuMs / Math.max(1, r.completed)) * 1000).toFixed(1)} µs/request`);
  if (a.stream) {
    const t = summarize(r.ttfc);
    const g = summarize(r.gaps);
    const d = summarize(r.chunkDelays);
    console.log(`ttfc ms: p50 ${fmt(t.p50)} p99 ${fmt(t.p99)}; gaps ms: p50 ${fmt(g.p50)} p99 ${fmt(g.p99)} (n=${g.n})`);
    console.log(`chunk delay (mock write -> driver read) ms: p50 ${fmt(d.p50)} p99 ${fmt(d.p99)} (n=${d.n})`);
  }
}
