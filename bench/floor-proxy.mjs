// The physical floor: a bare Node pass-through proxy (node:http in, an undici Pool out, bodies piped both
// ways untouched). No JSON parsing, auth, routing, metrics or AbortController: what any Node proxy pays.
//
//   node bench/floor-proxy.mjs --upstream http://127.0.0.1:PORT [--port 0] [--connections 128] [--pipeline]
//
// --pipeline forwards the response with stream.pipeline() instead of pipe(): the variant whose figures
// match the floor measurements the issue's limits were set against (docs/performance-log.md), kept to
// show what that one call costs.
// Prints one JSON line {"msg":"listening","url":"http://127.0.0.1:PORT"} on stdout when ready.
import http from "node:http";
import { pipeline } from "node:stream";
import { parseArgs } from "node:util";
import { Pool } from "undici";

const { values: opts } = parseArgs({
  options: {
    upstream: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    connections: { type: "string", default: "128" },
    pipeline: { type: "boolean", default: false },
  },
});
if (!opts.upstream) {
  process.stderr.write("floor-proxy: --upstream http://host:port is required\n");
  process.exit(2);
}

// RFC 9110 §7.6.1 hop-by-hop fields, plus host (undici sets the upstream's).
const HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

const usePipeline = opts.pipeline;
const noop = () => {};
const pool = new Pool(opts.upstream, { connections: Number(opts.connections), keepAliveTimeout: 60_000 });

const server = http.createServer({ noDelay: true, keepAliveTimeout: 120_000 }, (req, res) => {
  const raw = req.rawHeaders;
  const headers = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1]);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  pool.request({ path: req.url, method: req.method, headers, body: hasBody ? req : null }, (err, up) => {
    if (err) {
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "application/json" });
        res.end('{"error":{"message":"upstream error","type":"upstream_error","param":null,"code":"bad_gateway"}}');
      } else res.destroy();
      return;
    }
    const out = {};
    for (const name in up.headers) if (!HOP.has(name)) out[name] = up.headers[name];
    res.writeHead(up.statusCode, out);
    if (usePipeline) {
      pipeline(up.body, res, noop);
      return;
    }
    // pipe(), not stream.pipeline(): on Node 20 pipeline() creates an AbortController per call and a
    // DOMException when it ends, which cost about 40 µs per request here (docs/performance-log.md). The one
    // listeners below are the cheapest correct cleanup: a client that leaves releases the upstream, and
    // an upstream that fails mid-body cuts the client (pipe() does not forward errors).
    const body = up.body;
    body.on("error", () => res.destroy());
    body.pipe(res);
    res.on("close", () => {
      if (!res.writableFinished) body.destroy();
    });
  });
});
server.headersTimeout = 60_000;
server.requestTimeout = 0;
server.listen(Number(opts.port), opts.host, () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ msg: "listening", url: `http://${opts.host}:${port}` })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
