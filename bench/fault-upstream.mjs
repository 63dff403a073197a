// The fault soak's upstream: an OpenAI-like POST /v1/chat/completions serving three upstream models.
//   healthy  answers every request: JSON, or SSE of 8 content chunks 5 ms apart
//   faulty   answers like healthy, or, on a share of its requests (--fault-share, default 0.3), fails in one
//            of the ways providers do: a 500 or a 200 whose error echoes the request's Authorization header,
//            a stream cut before or after content, an error event echoing the header before or after
//            content, an SSE event over the gateway's event limit, a reset connection, a stalled answer
//   bulk     streams 32 kB events as fast as the connection takes them, until the gateway closes it
//            (for clients that stop reading)
//
//   node bench/fault-upstream.mjs [--port 0] [--fault-share 0.3] [--seed 1]
//
// Prints {"msg":"listening","url":...} on stdout when ready. GET /faults returns the faults served so far.
import http from "node:http";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    "fault-share": { type: "string", default: "0.3" },
    seed: { type: "string", default: "1" },
  },
});
const faultShare = Number(opts["fault-share"]);

/** mulberry32: the same faults in the same order for the same seed. */
let state = Number(opts.seed) >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const FAULTS = [
  "error_500_echo",
  "error_200_echo",
  "cut_before",
  "cut_after",
  "event_echo_before",
  "event_echo_after",
  "oversize_before",
  "oversize_after",
  "reset",
  "stall",
];
const served = Object.fromEntries(FAULTS.map((f) => [f, 0]));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const chunk = (model, delta, finish = null) =>
  `data: ${JSON.stringify({ id: "chatcmpl-soak", object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const completion = (model) =>
  JSON.stringify({
    id: "chatcmpl-soak",
    object: "chat.completion",
    created: 1,
    model,
    choices: [{ index: 0, message: { role: "assistant", content: "An answer from the soak upstream." }, finish_reason: "stop" }],
    usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 },
  });
/** What a misconfigured provider or proxy says: the request's own Authorization header, word for word. */
const echo = (req) => `invalid credentials in header Authorization: ${req.headers.authorization ?? "(none)"}`;
const errorJson = (req) => JSON.stringify({ error: { message: echo(req), type: "server_error", param: null, code: null } });

async function stream(req, res, model, fault) {
  res.writeHead(200, { "content-type": "text/event-stream" });
  res.write(chunk(model, { role: "assistant", content: "" }));
  if (fault === "cut_before") return void setTimeout(() => res.socket?.destroy(), 5);
  if (fault === "event_echo_before") return void res.end(`data: ${errorJson(req)}\n\n`);
  if (fault === "oversize_before") return void res.end(chunk(model, { content: "x".repeat(128 * 1024) }));
  for (let i = 0; i < 8; i++) {
    await sleep(5);
    if (res.destroyed) return;
    res.write(chunk(model, { content: `w${i} ` }));
    if (i < 3) continue;
    if (fault === "cut_after") return void setTimeout(() => res.socket?.destroy(), 5);
    if (fault === "event_echo_after") return void res.end(`data: ${errorJson(req)}\n\n`);
    if (fault === "oversize_after") return void res.end(chunk(model, { content: "x".repeat(128 * 1024) }));
  }
  res.write(chunk(model, {}, "stop"));
  res.end("data: [DONE]\n\n");
}

async function bulk(res, model) {
  res.writeHead(200, { "content-type": "text/event-stream" });
  res.write(chunk(model, { role: "assistant", content: "" }));
  const event = chunk(model, { content: "y".repeat(32 * 1024) });
  while (!res.destroyed) {
    if (res.write(event)) continue;
    await new Promise((resolve) => {
      const go = () => {
        res.off("drain", go).off("close", go);
        resolve();
      };
      res.on("drain", go).on("close", go);
    });
  }
}

async function answer(req, res, body) {
  const model = body.model;
  if (model === "bulk") return bulk(res, model);
  const fault = model === "faulty" && random() < faultShare ? FAULTS[Math.floor(random() * FAULTS.length)] : undefined;
  if (fault) served[fault]++;
  if (fault === "reset") return void req.socket.destroy();
  if (fault === "stall") return; // the gateway's deadline ends it
  if (fault === "error_500_echo") return void res.writeHead(500, { "content-type": "application/json" }).end(errorJson(req));
  if (body.stream === true) return stream(req, res, model, fault);
  await sleep(5);
  if (fault === "error_200_echo") return void res.writeHead(200, { "content-type": "application/json" }).end(errorJson(req));
  if (fault === "cut_before" || fault === "cut_after") {
    res.writeHead(200, { "content-type": "application/json" });
    res.write(completion(model).slice(0, 40));
    return void setTimeout(() => res.socket?.destroy(), 5);
  }
  // Faults of streams only: a JSON answer gets a plain-text 502 that echoes the header instead.
  if (fault) return void res.writeHead(502, { "content-type": "text/plain" }).end(echo(req));
  res.writeHead(200, { "content-type": "application/json" }).end(completion(model));
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/faults") return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(served));
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return void res.writeHead(400, { "content-type": "application/json" }).end('{"error":{"message":"body is not JSON"}}');
    }
    void answer(req, res, body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(opts.port), "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${server.address().port}` })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
