// Benchmark trace sink: accepts OTLP/HTTP exports (POST /v1/traces) and drops them, so `--otel` measures
// what tracing costs the gateway, not what a collector does with the spans.
//
//   node bench/otlp-sink.mjs [--port 0]
//
// Prints one JSON line {"msg":"listening","url":"http://127.0.0.1:PORT"} on stdout when ready.
// GET /sink/stats returns {exports, bytes} counted since start.
import http from "node:http";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({ options: { host: { type: "string", default: "127.0.0.1" }, port: { type: "string", default: "0" } } });

let exports = 0;
let bytes = 0;
const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/sink/stats") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ exports, bytes }));
    return;
  }
  req.on("data", (chunk) => (bytes += chunk.length));
  req.on("end", () => {
    if (req.method === "POST" && req.url === "/v1/traces") exports++;
    res.writeHead(req.method === "POST" && req.url === "/v1/traces" ? 200 : 404, { "content-type": "application/json" }).end("{}");
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(opts.port), opts.host, () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ msg: "listening", url: `http://${opts.host}:${port}` })}\n`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
