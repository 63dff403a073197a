// Keeps a request's garbage in the young generation, where it is free to collect.
import { setFlagsFromString } from "node:v8";

/**
 * Turns off V8's allocation-site pretenuring for this process. V8 allocates an object literal directly
 * in the old generation once most objects from its site survived one scavenge. A gateway's per-request
 * objects live for milliseconds, but one scavenge that finds many of them alive (at start-up, while
 * the first requests overlap compilation) tenures dozens of request-path sites for good. From then on
 * every request leaves dead objects in the old generation, those keep its young objects alive through
 * scavenges, and the process promotes ~7 KB per request and runs mark-compacts under steady load:
 * measured on the bench's JSON path, 6.5–7 KB promoted per request and 15–40% more CPU per request
 * with pretenuring, 0.24 KB without (docs/performance-log.md). Objects that do live long (the
 * catalog, statistics, pools) are made once and promoted once either way.
 */
export function keepRequestGarbageYoung(): void {
  setFlagsFromString("--no-allocation-site-pretenuring");
}
