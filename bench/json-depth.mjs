// Micro-benchmark of reading a pathological request: a body just under the 4 MB body limit that is
// one array nested 2,000,000 deep, in `metadata` (passed through) or in `tools` (which the token
// estimate reads). Times parseChatRequest and profileRequest (dist/proxy/chat-request.js) as the
// handler runs them, while no other request can be served. Pure CPU, no I/O.
//
//   npm run build && node bench/json-depth.mjs [--depth 2000000] [--repeats 3] [--dist DIR]
//
// Prints, per member and repeat, the milliseconds taken and how the request ended: refused (a 400),
// profiled (on its way upstream), or the error that escaped (a 500). --dist points at another build,
// e.g. one of an older commit, to compare before and after.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    depth: { type: "string", default: "2000000" },
    repeats: { type: "string", default: "3" },
    dist: { type: "string", default: new URL("../dist", import.meta.url).pathname },
  },
});
const depth = Number(args.depth);
const { parseChatRequest, profileRequest, estimateTokensByCharacters } = await import(pathToFileURL(resolve(args.dist, "proxy/chat-request.js")).href);
/** server.jsonDepthLimit's default (a build without the setting ignores it). */
const DEPTH_LIMIT = 128;

const nested = `${"[".repeat(depth)}${"]".repeat(depth)}`;
console.log(`a body nested ${depth} deep, ${args.dist}`);
for (const member of ["metadata", "tools"]) {
  const body = Buffer.from(`{"model":"chat","messages":[{"role":"user","content":"hi"}],"${member}":[${nested}]}`);
  for (let repeat = 0; repeat < Number(args.repeats); repeat++) {
    const started = performance.now();
    let ended;
    try {
      profileRequest(parseChatRequest(body, DEPTH_LIMIT), estimateTokensByCharacters);
      ended = "profiled";
    } catch (error) {
      ended = error.status === 400 ? `refused: ${error.message}` : `${error.name}: ${error.message}`;
    }
    const ms = performance.now() - started;
    console.log(`${member.padEnd(8)} ${(body.length / 1e6).toFixed(2)} MB  ${ms.toFixed(2).padStart(9)} ms  ${ended}`);
  }
}
