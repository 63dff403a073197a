// Micro-benchmark of the SSE scanner (dist/proxy/sse.js) on one long event: a single `data:` line of
// 1, 5, 10, 20 and 50 MB, fed in 64 KiB chunks as a socket delivers them. Pure CPU, no I/O.
//
//   npm run build && node bench/sse-scan.mjs [--sizes 1,5,10,20,50] [--chunk 65536] [--dist DIR]
//
// Prints one line per size: the time of all push() calls (the event's classification, a JSON.parse
// of the whole line, included) and that time per MB, which stays flat when the scan is linear.
// The scanner is built with an event limit above the line, so the line is scanned, not rejected.
// --dist points at another build, e.g. one of an older commit, to compare before and after.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    sizes: { type: "string", default: "1,5,10,20,50" },
    chunk: { type: "string", default: String(64 * 1024) },
    dist: { type: "string", default: new URL("../dist", import.meta.url).pathname },
  },
});
const sizesMb = args.sizes.split(",").map(Number);
const chunkBytes = Number(args.chunk);
const { SseScanner } = await import(pathToFileURL(resolve(args.dist, "proxy/sse.js")).href);

/** One chat.completion.chunk event whose content makes the whole event `bytes` long. */
function longEvent(bytes) {
  const head = 'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"';
  const tail = '"},"finish_reason":null}]}\n\n';
  return Buffer.from(head + "a".repeat(bytes - head.length - tail.length) + tail);
}

console.log(`SSE scan of one long event, ${chunkBytes}-byte chunks, ${args.dist}`);
for (const mb of sizesMb) {
  const event = longEvent(mb * 1024 * 1024);
  const chunks = [];
  for (let at = 0; at < event.length; at += chunkBytes) chunks.push(event.subarray(at, at + chunkBytes));
  const scanner = new SseScanner(event.length + 1);
  let seen;
  const started = performance.now();
  for (const chunk of chunks) scanner.push(chunk, (_buffer, start, end, parsed) => (seen = { bytes: end - start, kind: parsed.kind }));
  const ms = performance.now() - started;
  if (seen?.bytes !== event.length || seen.kind !== "content")
    throw new Error(`scanner saw ${JSON.stringify(seen)}, expected one ${event.length}-byte content event`);
  console.log(`${String(mb).padStart(4)} MB  ${ms.toFixed(1).padStart(9)} ms  ${(ms / mb).toFixed(2).padStart(8)} ms/MB`);
}
