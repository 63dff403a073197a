// Benchmark upstream: an OpenAI-like POST /v1/chat/completions that answers at once (or after --delay-ms),
// as JSON or, when the body has "stream":true, as paced SSE. It scans the body; it never parses it.
//
//   node bench/mock-upstream.mjs [--port 0] [--delay-ms 0] [--chunks 64] [--chunk-ms 20]
//
// Prints one JSON line {"msg":"listening","url":"http://127.0.0.1:PORT"} on stdout when ready.
// GET /mock/stats returns {connections, requests, streams} counted since start.
// A request may override the stream shape with a marker in its text, `[mock chunks=N ms=P]`, which
// the gateway forwards untouched inside message content (used for short streams that measure TTFC).
import http from "node:http";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "delay-ms": { type: "string", default: "0" },
    chunks: { type: "string", default: "64" },
    "chunk-ms": { type: "string", default: "20" },
  },
});
const delayMs = Number(opts["delay-ms"]);
const defaultChunks = Number(opts.chunks);
const defaultChunkMs = Number(opts["chunk-ms"]);

const CREATED = 1764000000;
const MODEL = "mock-model";
const COMPLETION_TOKENS = 64;

const jsonBody = Buffer.from(
  JSON.stringify({
    id: "chatcmpl-mock",
    object: "chat.completion",
    created: CREATED,
    model: MODEL,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: "Hello! This is a short answer from the benchmark upstream." },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: { prompt_tokens: 24, completion_tokens: 12, total_tokens: 36 },
  }),
);
const jsonHeaders = { "content-type": "application/json", "content-length": String(jsonBody.length) };
const sseHeaders = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" };

/** Microseconds on the system-wide monotonic clock: comparable across processes of this machine. */
const nowUs = () => {
  const t = process.hrtime();
  return t[0] * 1e6 + t[1] / 1e3;
};

const chunk = (delta, finishReason) =>
  `data: ${JSON.stringify({
    id: "chatcmpl-mock",
    object: "chat.completion.chunk",
    created: CREATED,
    model: MODEL,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  })}\n\n`;

// OpenAI opens with a role-only delta (empty content), then content deltas; both go in the first write.
const firstChunk = Buffer.from(chunk({ role: "assistant", content: "" }, null) + chunk({ content: "Hello" }, null));
// Content chunks carry their send time in system_fingerprint ("fp_<µs>"), so the driver can measure
// how late each chunk arrives through a proxy, not only the gaps between chunks.
const [contentHead, contentTail] = chunk({ content: " token" }, null).split('"choices"');
const contentPrefix = `${contentHead.slice(0, -1)},"system_fingerprint":"fp_`;
const contentSuffix = `","choices"${contentTail}`;
const contentChunk = () => Buffer.from(contentPrefix + nowUs().toFixed(1) + contentSuffix, "latin1");
const finishChunk = chunk({}, "stop");
const usageChunk = (n) =>
  `data: ${JSON.stringify({
    id: "chatcmpl-mock",
    object: "chat.completion.chunk",
    created: CREATED,
    model: MODEL,
    choices: [],
    usage: { prompt_tokens: 24, completion_tokens: n, total_tokens: 24 + n },
  })}\n\n`;
const tailPlain = Buffer.from(`${finishChunk}data: [DONE]\n\n`);
const tailWithUsage = new Map(); // chunks -> Buffer

const STREAM_RE = /"stream"\s*:\s*true/;
const USAGE_RE = /"include_usage"\s*:\s*true/;
const MARK_RE = /\[mock chunks=(\d+) ms=(\d+)\]/;

const notFound = Buffer.from(JSON.stringify({ error: { message: "not found", type: "invalid_request_error", param: null, code: "not_found" } }));

function answerJson(res) {
  res.writeHead(200, jsonHeaders);
  res.end(jsonBody);
}

/** Writes chunk k at start + k*ms (absolute schedule, so timer lateness does not accumulate). */
function answerStream(res, chunks, ms, usage) {
  res.writeHead(200, sseHeaders);
  res.write(firstChunk);
  const start = performance.now();
  let k = 1;
  let timer = null;
  const tick = () => {
    timer = null;
    if (k < chunks) {
      res.write(contentChunk());
      k++;
      schedule();
      return;
    }
    let tail = tailPlain;
    if (usage) {
      tail = tailWithUsage.get(chunks);
      if (!tail) tailWithUsage.set(chunks, (tail = Buffer.from(`${finishChunk}${usageChunk(chunks)}data: [DONE]\n\n`)));
    }
    res.end(tail);
  };
  const schedule = () => {
    timer = setTimeout(tick, Math.max(0, start + k * ms - performance.now()));
  };
  res.on("close", () => {
    if (timer) clearTimeout(timer);
  });
  schedule();
}

function onBody(req, res, body) {
  const text = body.toString("latin1");
  if (!STREAM_RE.test(text)) {
    if (delayMs > 0) setTimeout(answerJson, delayMs, res);
    else answerJson(res);
    return;
  }
  let chunks = defaultChunks;
  let ms = defaultChunkMs;
  if (text.includes("[mock ")) {
    const m = MARK_RE.exec(text);
    if (m) {
      chunks = Math.max(1, Number(m[1]));
      ms = Number(m[2]);
    }
  }
  const usage = USAGE_RE.test(text);
  stats.streams++;
  if (delayMs > 0) setTimeout(answerStream, delayMs, res, chunks, ms, usage);
  else answerStream(res, chunks, ms, usage);
}

// Counters for GET /mock/stats: a proxy that reuses its upstream connections opens few of them.
const stats = { connections: 0, requests: 0, streams: 0 };

const server = http.createServer({ noDelay: true, keepAliveTimeout: 120_000 }, (req, res) => {
  if (req.method === "POST" && req.url.endsWith("/chat/completions")) {
    stats.requests++;
    let first = null;
    let rest = null;
    req.on("data", (b) => {
      if (first === null) first = b;
      else (rest ??= [first]).push(b);
    });
    req.on("end", () => onBody(req, res, rest ? Buffer.concat(rest) : (first ?? Buffer.alloc(0))));
    return;
  }
  req.resume();
  if (req.url === "/mock/stats") {
    const body = JSON.stringify(stats);
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  res.writeHead(404, { "content-type": "application/json", "content-length": String(notFound.length) });
  res.end(notFound);
});
server.headersTimeout = 60_000;
server.requestTimeout = 0;
server.on("connection", (socket) => {
  stats.connections++;
  socket.setNoDelay(true);
});
server.listen(Number(opts.port), opts.host, () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ msg: "listening", url: `http://${opts.host}:${port}` })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
