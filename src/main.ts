#!/usr/bin/env node
// The `subsecond` CLI: the only place that reads process.env and argv, loads config and handles signals.
import { constants } from "node:os";
import { parseArgs } from "node:util";
import { pino, type Logger } from "pino";
import { ConfigError, loadConfigFile } from "./config/load.js";
import { InvalidFileError } from "./config/yaml-file.js";
import { catalogImport } from "./cli/catalog.js";
import { describeChanges, policyWarnings } from "./config/diff.js";
import { decisionChanges, decisionTables, hypotheticalRequest, renderTable } from "./cli/explain.js";
import { startGateway, StartupError } from "./gateway.js";
import { createTracing } from "./observability/tracing.js";
import { lowerHelperThreads } from "./cli/helper-threads.js";
import { keepRequestGarbageYoung } from "./cli/young-garbage.js";
import { createSystemClock } from "./router/clock.js";
import { createSeededRng } from "./router/rng.js";
import { createLiveScreen, DurationError, parseDurationMs, PortInUseError, runDemo, type DemoUi, type ScreenSize } from "./demo/index.js";
import { loadSimProfiles, SimProfilesError, startSimulator, type SimProfiles } from "./sim/index.js";

const USAGE = `Usage: subsecond <command> [options]

Commands:
  serve [--config path]                    run the gateway (env SUBSECOND_CONFIG, PORT, HOST override)
  check <config> [--against <old>]         validate a config (every error with its field path); with
                                           --against, say what the change does and what each route would choose
  explain [--config path] [--route name] [--prompt-tokens N] [--max-tokens N]
                                           print the decision table of a hypothetical request (from the priors)
  catalog import <models.json> [--endpoints <dir>] --config <file> [--write] [--add id --score N]
                                           update prices, windows, capabilities (and priors) from OpenRouter's
                                           catalog; says what changes, writes only with --write
  demo [--duration 45] [--rate 10] [--no-ui] [--port 8080] [--sim-port 8181] [--config config/demo.yaml]
       [--profiles config/sim-profiles.yaml] [--seed N]
                                           simulator + gateway + traffic in one process, with a live view
                                           and a summary of what the gateway observed
  simulate [--port 8181] [--host H] [--profiles config/sim-profiles.yaml] [--duration 120s] [--seed N] [--no-faults]
                                           run the provider simulator alone (an OpenAI-compatible server)

Run 'subsecond <command> --help' for details.`;

function createLogger(level: string): Logger {
  // JSON lines on stdout, written asynchronously in batches of at least 4 KiB (flushed every second and
  // on exit): one write per ~20 request lines keeps logging off the request path. No redaction pass:
  // nothing the gateway logs carries a key or message content (redaction cost ~5% of CPU per request).
  return pino({ level, base: { service: "subsecond" } }, pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 1000 }));
}

function fail(message: string): number {
  process.stderr.write(`${message}\n`);
  return 1;
}

async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } }, allowPositionals: false });
  if (values.help) {
    process.stdout.write("subsecond serve [--config path]\n  Env: SUBSECOND_CONFIG (config path), PORT, HOST; secrets from the env vars the config names.\n");
    return 0;
  }
  keepRequestGarbageYoung();
  const configPath = values.config ?? process.env.SUBSECOND_CONFIG ?? "config/gateway.yaml";
  const config = await loadConfigFile(configPath);
  const logger = createLogger(config.config.server.logLevel);
  const { helperThreadNice } = config.config.server;
  if (helperThreadNice > 0) {
    const lowered = lowerHelperThreads(helperThreadNice);
    if (lowered !== undefined) logger.debug({ threads: lowered, niceLevels: helperThreadNice }, "helper threads run at a lower CPU priority");
  }
  const port = process.env.PORT !== undefined && process.env.PORT !== "" ? Number(process.env.PORT) : undefined;
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535))
    return fail(`PORT must be an integer from 0 to 65535, got "${process.env.PORT}"`);
  // Traces only when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set: otherwise the SDK is never loaded.
  const tracing = await createTracing(process.env, (message, error) => logger.error(error === undefined ? {} : { err: error }, message));
  if (tracing) logger.info({ sampler: process.env.OTEL_TRACES_SAMPLER ?? "parentbased_always_on" }, "exporting traces over OTLP/HTTP");
  // A collector that is down costs its spans, never the drain's outcome (each export is bounded by OTEL_EXPORTER_OTLP_TIMEOUT).
  const stopTracing = async (): Promise<void> => {
    await tracing?.shutdown().catch((error: unknown) => logger.warn({ err: error }, "spans still batched could not be exported"));
  };
  const gateway = await startGateway({
    config,
    configPath,
    env: process.env,
    logger,
    clock: createSystemClock(),
    rng: createSeededRng(Date.now() >>> 0),
    ...(process.env.HOST ? { host: process.env.HOST } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(tracing ? { tracing } : {}),
  }).catch(async (error: unknown) => {
    await stopTracing();
    throw error;
  });
  process.on("SIGHUP", () => void gateway.reload());
  return await new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, "draining");
      // The spans of the drained requests are exported before the process exits.
      gateway
        .close()
        .then(stopTracing)
        .then(
          () => {
            logger.flush();
            resolveExit(0);
          },
          (error: unknown) => {
            logger.error({ err: error }, "shutdown failed");
            logger.flush();
            resolveExit(1);
          },
        );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}

/** Parses a non-negative integer flag. */
function intFlag(name: string, value: string | undefined, fallback: number | undefined): number | undefined {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new ConfigError(`--${name}`, [{ path: `--${name}`, message: `must be a non-negative integer, got "${value}"` }]);
  return parsed;
}

async function checkCommand(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    options: { against: { type: "string" }, "prompt-tokens": { type: "string" }, "max-tokens": { type: "string" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  if (values.help || positionals.length !== 1) {
    process.stdout.write(
      "subsecond check <config> [--against <old config>] [--prompt-tokens N] [--max-tokens N]\n  Exits 0 when the file is valid; otherwise lists every error with its field path and exits 1.\n  --against: describe the change and each route's choice before/after (from the priors).\n",
    );
    return values.help ? 0 : 2;
  }
  const file = positionals[0] as string;
  const config = await loadConfigFile(file);
  process.stdout.write(`${file}: valid (${config.models.length} models, ${config.routes.size} routes, hash ${config.hash})\n`);
  for (const warning of policyWarnings(config)) process.stdout.write(`warning: ${warning}\n`);
  if (values.against !== undefined) {
    const before = await loadConfigFile(values.against);
    const request = hypotheticalRequest(intFlag("prompt-tokens", values["prompt-tokens"], 500) ?? 500, intFlag("max-tokens", values["max-tokens"], 256));
    const changes = describeChanges(before, config);
    process.stdout.write(`\nChanges against ${values.against}:\n`);
    for (const line of changes.length > 0 ? changes : ["no change that affects routing"]) process.stdout.write(`  ${line}\n`);
    process.stdout.write(`\nDecisions (${request.promptTokens} prompt tokens, ${request.maxOutputTokens ?? "default"} output tokens, prior statistics):\n`);
    for (const line of decisionChanges(before, config, request)) process.stdout.write(`  ${line}\n`);
  }
  return 0;
}

async function explainCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: "string", short: "c" },
      route: { type: "string" },
      "prompt-tokens": { type: "string" },
      "max-tokens": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(
      "subsecond explain [--config path] [--route name] [--prompt-tokens N] [--max-tokens N]\n  The decision table from the priors; GET /admin/routes shows a running gateway's live one.\n",
    );
    return 0;
  }
  const config = await loadConfigFile(values.config ?? process.env.SUBSECOND_CONFIG ?? "config/gateway.yaml");
  const routeName = values.route === "auto" ? config.defaultRoute : values.route;
  if (routeName !== undefined && !config.routes.has(routeName)) return fail(`unknown route "${routeName}" (routes: ${[...config.routes.keys()].join(", ")})`);
  const request = hypotheticalRequest(intFlag("prompt-tokens", values["prompt-tokens"], 500) ?? 500, intFlag("max-tokens", values["max-tokens"], undefined));
  const tables = decisionTables(config, request, routeName);
  const rendered = [...tables].map(([name, rows]) => renderTable(config.routes.get(name) as NonNullable<ReturnType<typeof config.routes.get>>, rows));
  process.stdout.write(`${rendered.join("\n\n")}\n`);
  return 0;
}

const CATALOG_USAGE = `subsecond catalog import <models.json> [--endpoints <dir>] --config <file> [--write]
                        [--add <id> ... --score N [--provider name]] [--prompt-tokens N] [--max-tokens N]
  Applies OpenRouter's models list (GET https://openrouter.ai/api/v1/models) to the catalog entries of the
  config that it lists (matched by upstreamModel, else id): prices (USD per token -> per 1M tokens), the
  context window (the smaller of the model's and its top provider's), capabilities (tools, json, vision).
  --endpoints: a directory of GET /api/v1/models/{author}/{slug}/endpoints responses (any file names);
    sets each model's prior from the endpoint that serves (p90 first-token latency, throughput).
  --add <id>: add a model from the list after the last rank (repeatable); needs --score, the ranking
    score you give it; --provider when the config has several providers.
  Ranks and scores are never changed. Prints the change as \`check --against\` does; --write writes the
  file (comments and order kept), otherwise nothing is written.
`;

async function catalogCommand(args: string[]): Promise<number> {
  const [subcommand, ...rest] = args;
  const { positionals, values } = parseArgs({
    args: rest,
    options: {
      endpoints: { type: "string" },
      config: { type: "string", short: "c" },
      write: { type: "boolean" },
      add: { type: "string", multiple: true },
      score: { type: "string" },
      provider: { type: "string" },
      "prompt-tokens": { type: "string" },
      "max-tokens": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
  });
  if (subcommand !== "import" || values.help || positionals.length !== 1 || values.config === undefined) {
    process.stdout.write(CATALOG_USAGE);
    return values.help || subcommand === "--help" || subcommand === "-h" ? 0 : 2;
  }
  const score = values.score === undefined ? undefined : Number(values.score);
  if (score !== undefined && !(score >= 0)) return fail(`--score must be a non-negative number, got "${values.score}"`);
  await catalogImport(
    {
      modelsPath: positionals[0] as string,
      ...(values.endpoints !== undefined ? { endpointsDir: values.endpoints } : {}),
      configPath: values.config,
      write: values.write === true,
      ...(values.add ? { add: { ids: values.add, score, ...(values.provider !== undefined ? { provider: values.provider } : {}) } } : {}),
      request: hypotheticalRequest(intFlag("prompt-tokens", values["prompt-tokens"], 500) ?? 500, intFlag("max-tokens", values["max-tokens"], 256)),
    },
    (line) => process.stdout.write(`${line}\n`),
  );
  return 0;
}

/** Resolves with the first of SIGINT/SIGTERM; a second signal gets Node's default (exit at once). */
function nextStopSignal(): { signal: Promise<NodeJS.Signals>; dispose(): void } {
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const signal = new Promise<NodeJS.Signals>((resolveSignal) => (onSignal = resolveSignal));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return {
    signal,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

async function demoCommand(args: string[]): Promise<number> {
  keepRequestGarbageYoung();
  const { values } = parseArgs({
    args,
    options: {
      duration: { type: "string", short: "d" },
      rate: { type: "string", short: "r" },
      "no-ui": { type: "boolean" },
      port: { type: "string", short: "p" },
      "sim-port": { type: "string" },
      config: { type: "string", short: "c" },
      profiles: { type: "string" },
      seed: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(
      [
        "subsecond demo [--duration 45] [--rate 10] [--no-ui] [--port 8080] [--sim-port 8181] [--config config/demo.yaml] [--profiles config/sim-profiles.yaml] [--seed N]",
        "  Starts the provider simulator (its story lasts --duration), the gateway on the demo config pointed at it,",
        "  and --rate requests per second of mixed traffic; shows a live view on the terminal's alternate screen,",
        "  fitted to its size (a log line every 5 s with --no-ui or when stdout is not a terminal); at the end or on",
        "  Ctrl-C goes back to the normal screen, drains, stops and prints a summary of what the gateway observed.",
        "  --duration: 45, 45s, 1500ms or 2m (a bare number is seconds). Ports 0 pick free ones.",
        "",
      ].join("\n"),
    );
    return 0;
  }
  let durationMs: number;
  try {
    durationMs = parseDurationMs("--duration", values.duration ?? "45");
  } catch (error) {
    if (error instanceof DurationError) return fail(error.message);
    throw error;
  }
  const rate = Number(values.rate ?? "10");
  if (!(rate > 0) || rate > 1000) return fail(`--rate must be a number of requests per second from 0 to 1000, got "${values.rate}"`);
  const gatewayPort = intFlag("port", values.port, undefined);
  const simulatorPort = intFlag("sim-port", values["sim-port"], 8181) ?? 8181;
  if ((gatewayPort ?? 0) > 65535 || simulatorPort > 65535) return fail("ports go from 0 to 65535");
  const seed = intFlag("seed", values.seed, 1) ?? 1;
  let profiles: SimProfiles;
  try {
    profiles = await loadSimProfiles(values.profiles ?? "config/sim-profiles.yaml");
  } catch (error) {
    if (error instanceof SimProfilesError) return fail(error.message);
    throw error;
  }
  const ui: DemoUi = values["no-ui"] || !process.stdout.isTTY ? "log" : "live";
  // The live view is drawn on the terminal's alternate screen, for its size of the moment. Whatever ends the
  // demo (the end of the story, Ctrl-C, an error, a second signal, a crash) goes back to the normal screen
  // and shows the cursor first, so the summary, an error message or the shell prompt lands there.
  const terminalSize = (): ScreenSize => ({ columns: process.stdout.columns || 80, rows: process.stdout.rows || 24 });
  const screen = ui === "live" ? createLiveScreen((text) => void process.stdout.write(text), terminalSize) : undefined;
  const restore = () => screen?.close();
  const redraw = () => screen?.resize();
  /** A second signal ends the demo at once, as Node's default would, after restoring the terminal. */
  const exitNow = (signal: NodeJS.Signals) => {
    restore();
    process.exit(128 + (constants.signals[signal] ?? 0));
  };
  const controller = new AbortController();
  const stop = nextStopSignal();
  void stop.signal.then(() => {
    controller.abort();
    process.once("SIGINT", exitNow);
    process.once("SIGTERM", exitNow);
  });
  process.stdout.on("resize", redraw);
  process.on("exit", restore);
  process.on("uncaughtExceptionMonitor", restore);
  try {
    await runDemo({
      durationMs,
      ratePerSecond: rate,
      seed,
      configPath: values.config ?? "config/demo.yaml",
      profiles,
      ...(gatewayPort !== undefined ? { gatewayPort } : {}),
      simulatorPort,
      ui,
      ...(screen !== undefined ? { screen } : {}),
      signal: controller.signal,
    });
  } catch (error) {
    if (error instanceof PortInUseError)
      return fail(`port ${error.port} is in use: pass ${error.server === "gateway" ? "--port" : "--sim-port"} <n> (0 picks a free port)`);
    throw error;
  } finally {
    stop.dispose();
    restore();
    process.stdout.off("resize", redraw);
    process.off("exit", restore);
    process.off("uncaughtExceptionMonitor", restore);
    process.off("SIGINT", exitNow);
    process.off("SIGTERM", exitNow);
  }
  return 0;
}

async function simulateCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: "string", short: "p" },
      host: { type: "string" },
      profiles: { type: "string" },
      duration: { type: "string", short: "d" },
      seed: { type: "string" },
      "no-faults": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(
      [
        "subsecond simulate [--port 8181] [--host 127.0.0.1] [--profiles config/sim-profiles.yaml] [--duration 120s] [--seed N] [--no-faults]",
        "  Serves the simulated models of the profiles file (OpenAI-compatible: POST /v1/chat/completions, GET /v1/models)",
        "  and plays their story of drift and faults, looping every --duration (default: the file's story.durationMs;",
        "  120s, 1500ms, 2m; a bare number is seconds). --no-faults: drift only. Runs until SIGINT/SIGTERM.",
        "",
      ].join("\n"),
    );
    return 0;
  }
  const profilesPath = values.profiles ?? "config/sim-profiles.yaml";
  let profiles: SimProfiles;
  let durationMs: number | undefined;
  try {
    profiles = await loadSimProfiles(profilesPath);
    durationMs = values.duration === undefined ? undefined : parseDurationMs("--duration", values.duration);
  } catch (error) {
    if (error instanceof SimProfilesError || error instanceof DurationError) return fail(error.message);
    throw error;
  }
  const port = intFlag("port", values.port, 8181) ?? 8181;
  if (port > 65535) return fail(`--port must be from 0 to 65535, got "${values.port}"`);
  const storyDurationMs = durationMs ?? profiles.story.durationMs;
  const stop = nextStopSignal();
  const simulator = await startSimulator({
    profiles,
    host: values.host ?? "127.0.0.1",
    port,
    storyDurationMs,
    seed: intFlag("seed", values.seed, 1) ?? 1,
    faults: values["no-faults"] !== true,
  });
  const episodes = profiles.timeline.map(
    (e) =>
      `    ${String(Math.round(e.from * 100)).padStart(3)}–${Math.round(e.to * 100)}%  ${e.name}: ${e.models === "*" ? "every model" : e.models.join(", ")}`,
  );
  process.stdout.write(
    [
      `simulator listening on ${simulator.url}  (${profiles.models.length} models from ${profilesPath}; faults ${values["no-faults"] ? "off" : "on"})`,
      `  story: ${storyDurationMs / 1000} s${profiles.story.loop ? ", looping" : ""}; episodes (fractions of the story):`,
      ...episodes,
      `  try:  curl -s ${simulator.url}/chat/completions -H 'content-type: application/json' -d '{"model":"${profiles.models[0]?.id ?? "model"}","messages":[{"role":"user","content":"Hi"}]}'`,
      "  Ctrl-C stops it.",
      "",
    ].join("\n"),
  );
  const signal = await stop.signal;
  stop.dispose();
  process.stdout.write(`${signal}: stopping the simulator\n`);
  await simulator.close();
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case "serve":
      return serveCommand(args);
    case "check":
      return checkCommand(args);
    case "explain":
      return explainCommand(args);
    case "catalog":
      return catalogCommand(args);
    case "demo":
      return demoCommand(args);
    case "simulate":
      return simulateCommand(args);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof InvalidFileError || error instanceof StartupError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    process.stderr.write(`subsecond: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
