// The command line of bench/run.mjs: its flags, their defaults and checks, and the usage text.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BODIES, PHASE_KEYS, durations, phaseTable } from "./workload.mjs";

export const USAGE = `Usage: npm run bench [-- FLAGS]    (or node bench/run.mjs [FLAGS] after npm run build)

Subsecond against the physical floor (a bare Node proxy) and the direct path, interleaved within one
run, over several fresh process pairs. See bench/README.md.

Comparison (the default mode):
  --quick                 2 repeats, short phases, no re-measuring: under 2 minutes
  --repeats N             fresh process pairs (default 3, quick 2)
  --phases a,b            a subset of ${PHASE_KEYS.join(",")}, run in that order
  --out FILE              the JSON result (default bench/results/latest.json)
  --soak                  then a soak at c=64 through a fresh gateway, RSS every 5 s
  --soak-seconds S        the soak's length (default 300)
  --strict                exit 1 when an acceptance check fails
Fault soak (bench/soak-faults.mjs, also npm run bench:soak):
  --soak-faults           a healthy and a faulty model, slow readers, secrets and RSS checked;
                          its flags: --seconds S (180), --concurrency N (32), --slow-readers N (4),
                          --fault-share F (0.3), --out FILE, --keep-logs
Profile mode:
  --profile               CPU-profile the gateway and the floor, each alone at c=16, and print
                          their top self-time functions and packages
  --profile-seconds S     measured seconds per proxy, here and with --gc (default 10)
  --profile-body B        ${Object.keys(BODIES).join(", ")} (default json)
GC mode:
  --gc                    each proxy alone at c=16 JSON under --trace-gc, --repeats fresh pairs: scavenges
                          per 1k requests, bytes promoted per request, full GCs (with --baseline-dist too)
Targets:
  --node-flags="..."      extra Node flags for both proxies
  --gateway-log-level L   the gateway's server.logLevel (default info)
  --redis-url URL         the gateway shares state through this Redis (sharedState), to measure its cost
  --gateway-as-floor      the "subsecond" target is a second floor: checks the harness itself
  --floor-pipeline        the floor forwards with stream.pipeline() instead of pipe()
  --otel                  the gateway exports traces (OTLP/HTTP) to a local sink, bench/otlp-sink.mjs
  --baseline-dist DIR     the floor's place is taken by the gateway of another build (DIR/main.js, inside
                          this checkout so it finds node_modules), without tracing: sub-floor is what
                          this build (and, with --otel, its tracing) adds; checked at c=1, ≤ 0.05 ms p50
Host:
  --nice=N                the nice value of the bench and its children (default -10; needs root)
  --pm-qos                idle CPUs poll instead of halting while the run lasts (needs root)
  --no-freeze             do not SIGSTOP the proxy that is not being measured
  --keep-logs             keep the children's stdout and stderr (the directory is printed)
  --wait-lock S           wait this long for another run of this checkout to end (default 600)
  -h, --help              this text
`;

/** A command line that cannot run; run.mjs prints its message and exits 2. */
export class UsageError extends Error {}

const FLAGS = {
  quick: { type: "boolean", default: false },
  soak: { type: "boolean", default: false },
  "soak-seconds": { type: "string", default: "300" },
  repeats: { type: "string" },
  "node-flags": { type: "string", default: "" },
  "gateway-as-floor": { type: "boolean", default: false },
  "floor-pipeline": { type: "boolean", default: false },
  otel: { type: "boolean", default: false },
  "baseline-dist": { type: "string" },
  "gateway-log-level": { type: "string", default: "info" },
  "redis-url": { type: "string" },
  "keep-logs": { type: "boolean", default: false },
  "no-freeze": { type: "boolean", default: false },
  "pm-qos": { type: "boolean", default: false },
  strict: { type: "boolean", default: false },
  nice: { type: "string", default: "-10" },
  "wait-lock": { type: "string", default: "600" },
  phases: { type: "string" },
  profile: { type: "boolean", default: false },
  "profile-seconds": { type: "string", default: "10" },
  gc: { type: "boolean", default: false },
  "profile-body": { type: "string", default: "json" },
  help: { type: "boolean", short: "h", default: false },
};

/** The value of a numeric flag, or a UsageError that says what it takes. */
function numberFlag(values, name, { integer = false, min, max = Infinity }) {
  const v = Number(values[name]);
  if (values[name].trim() === "" || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    const range = max === Infinity ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} takes ${integer ? "an integer" : "a number"} ${range}, not "${values[name]}"`);
  }
  return v;
}

/**
 * The options of a run, from its arguments (without node and the script). `root` is the repository's,
 * for the default --out. Throws UsageError on an unknown flag, a bad value or an unknown phase.
 */
export function parseOptions(argv, root) {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { ...FLAGS, out: { type: "string", default: join(root, "bench/results/latest.json") } } }));
  } catch (error) {
    throw new UsageError(`${error.message}\n(node bench/run.mjs --help lists the flags)`);
  }
  if (values.help) return { help: true };

  const quick = values.quick;
  const T = durations(quick);
  let phases = phaseTable(T);
  if (values.phases) {
    const want = values.phases.split(",").map((x) => x.trim());
    const bad = want.filter((k) => !PHASE_KEYS.includes(k));
    if (bad.length) throw new UsageError(`unknown phase(s) ${bad.join(", ")}; known: ${PHASE_KEYS.join(", ")}`);
    phases = phases.filter((p) => want.includes(p.key));
  }
  const baselineDist = values["baseline-dist"] === undefined ? undefined : resolve(values["baseline-dist"]);
  if (baselineDist !== undefined && !existsSync(join(baselineDist, "main.js"))) throw new UsageError(`--baseline-dist: ${baselineDist}/main.js not found`);
  if (baselineDist !== undefined && !["debug", "info"].includes(values["gateway-log-level"]))
    throw new UsageError("--baseline-dist runs two gateways, which find their ports in their listening lines: keep --gateway-log-level at info or debug");
  if (baselineDist !== undefined && values["gateway-as-floor"])
    throw new UsageError("--baseline-dist and --gateway-as-floor both take the floor's place: pick one");
  if (values.gc && values.profile) throw new UsageError("--gc and --profile are runs of their own: pick one");
  if (!BODIES[values["profile-body"]]) throw new UsageError(`--profile-body must be one of ${Object.keys(BODIES).join(", ")}`);

  return {
    help: false,
    quick,
    repeats: values.repeats === undefined ? (quick ? 2 : 3) : numberFlag(values, "repeats", { integer: true, min: 1 }),
    phases,
    durations: T,
    out: values.out,
    soak: values.soak,
    soakSeconds: numberFlag(values, "soak-seconds", { min: 1 }),
    strict: values.strict,
    profile: values.profile,
    profileSeconds: numberFlag(values, "profile-seconds", { min: 1 }),
    profileBody: values["profile-body"],
    gc: values.gc,
    nodeFlags: values["node-flags"].split(/\s+/).filter(Boolean),
    gatewayLogLevel: values["gateway-log-level"],
    redisUrl: values["redis-url"],
    gatewayAsFloor: values["gateway-as-floor"],
    floorPipeline: values["floor-pipeline"],
    otel: values.otel,
    baselineDist,
    nice: numberFlag(values, "nice", { integer: true, min: -20, max: 19 }),
    pmQos: values["pm-qos"],
    freeze: !values["no-freeze"],
    keepLogs: values["keep-logs"],
    waitLockSeconds: numberFlag(values, "wait-lock", { min: 0 }),
  };
}
