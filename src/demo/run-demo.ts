// `subsecond demo` in one process: the simulator, the gateway on the demo config pointed at it, client
// traffic, a live view, and a summary built from what the gateway observed.
import { pino, type Logger } from "pino";
import { startGateway, type Gateway } from "../gateway.js";
import { createSystemClock } from "../router/clock.js";
import { createSeededRng } from "../router/rng.js";
import type { LoadedConfig } from "../config/load.js";
import { startSimulator, type Simulator } from "../sim/simulator.js";
import type { SimProfiles } from "../sim/profiles.js";
import { episodeIntensity } from "../sim/story.js";
import { loadDemoConfig } from "./demo-config.js";
import { createTally, tallyResult, type DemoSummary } from "./demo-state.js";
import { attainmentOf, createFrameBuilder } from "./frames.js";
import { readCounters, sumBy, total } from "./observe.js";
import { createTimeline } from "./timeline.js";
import { DEFAULT_MIX, startTraffic, type TrafficMix, type TrafficResult } from "./traffic.js";
import { createLiveScreen, frameLines, renderIntro, renderLogLine, renderSummary, type LiveScreen, type ScreenSize } from "./view.js";

/** The model whose brownout the shipped story plays (config/sim-profiles.yaml, 30%–60%). */
export const DEFAULT_FOCUS_MODEL = "qwen/qwen3.5-flash-02-23";

/** The size the live view is laid out for when no screen is given: a classic terminal. */
const DEFAULT_SCREEN_SIZE: ScreenSize = { columns: 80, rows: 24 };

/** A port the demo was told to listen on is taken (EADDRINUSE); `server` says whose port it is. */
export class PortInUseError extends Error {
  readonly code = "port_in_use";
  readonly server: "gateway" | "simulator";
  readonly port: number;
  constructor(server: "gateway" | "simulator", port: number, cause: unknown) {
    super(`port ${port} of the ${server} is in use`, { cause });
    this.name = "PortInUseError";
    this.server = server;
    this.port = port;
  }
}

/** `error`, or a PortInUseError when it says the port was taken. */
function portError(error: unknown, server: "gateway" | "simulator", port: number): unknown {
  return (error as NodeJS.ErrnoException | null)?.code === "EADDRINUSE" ? new PortInUseError(server, port, error) : error;
}

/** How the demo shows progress: a live view redrawn every second, a log line every few seconds, or nothing. */
export type DemoUi = "live" | "log" | "none";

/** Options of `startDemo` / `runDemo`. */
export interface DemoOptions {
  /** Length of the story and of the traffic, in ms (`--duration`). */
  readonly durationMs: number;
  /** Mean request rate, per second (`--rate`). */
  readonly ratePerSecond: number;
  /** Seeds the simulator, the brain's RNG and the traffic mix. */
  readonly seed: number;
  /** Gateway config, e.g. config/demo.yaml; its `simulator` provider is pointed at the simulator. */
  readonly configPath: string;
  /** Simulator profiles (config/sim-profiles.yaml, or a custom story). */
  readonly profiles: SimProfiles;
  /** Gateway port; 0 picks a free one. Default: the config's server.port. */
  readonly gatewayPort?: number;
  /** Simulator port; 0 picks a free one. */
  readonly simulatorPort: number;
  readonly ui: DemoUi;
  /**
   * Where the live view (ui "live") is drawn; the demo closes it when the view ends, before the summary.
   * Default: a screen on `write`, laid out for 80×24.
   */
  readonly screen?: LiveScreen;
  /** Receives everything the demo prints (default: stdout). */
  readonly write?: (text: string) => void;
  /** Gateway logs (default: silent, so they do not tear the live view). */
  readonly logger?: Logger;
  /** Simulator delay multiplier (1 = as profiled). */
  readonly latencyScale?: number;
  /** false: the simulator plays drift only, no 429/5xx/hang/cut. Default true. */
  readonly faults?: boolean;
  readonly mix?: TrafficMix;
  /** Slices of the story in the decision timeline. Default 10. */
  readonly windows?: number;
  /** The model the timeline follows. Default qwen/qwen3.5-flash-02-23. */
  readonly focusModel?: string;
  /** Live view refresh, ms. Default 1000. */
  readonly refreshMs?: number;
  /** --no-ui log line period, ms. Default 5000. */
  readonly logEveryMs?: number;
  /** After the traffic stops, how long requests in flight may take to finish, ms. Default 10000. */
  readonly drainMs?: number;
  /** Called with every finished request, after it is tallied (tests and tools look at single answers). */
  readonly onResult?: (result: TrafficResult) => void;
  /** Aborting stops the demo early (Ctrl-C); the summary is still built. */
  readonly signal?: AbortSignal;
}

/** A demo that is running. */
export interface RunningDemo {
  readonly gatewayUrl: string;
  readonly simulatorUrl: string;
  readonly gateway: Gateway;
  readonly simulator: Simulator;
  /** Stops the traffic early (same as aborting `signal`). */
  stop(): void;
  /** Resolves after the drain and shutdown, with the summary (already printed unless ui is "none"). */
  readonly finished: Promise<DemoSummary>;
}

/**
 * Starts the simulator (story = `durationMs`), the gateway on the demo config, and the traffic; resolves
 * once they run. The demo then stops by itself at the end of the story, or on `stop()` / `signal`.
 * @throws PortInUseError when the simulator's or the gateway's port is taken (nothing is left running).
 */
export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const write = options.write ?? ((text: string) => void process.stdout.write(text));
  const windows = options.windows ?? 10;
  const focusModel = options.focusModel ?? DEFAULT_FOCUS_MODEL;
  const mix = options.mix ?? DEFAULT_MIX;
  const refreshMs = options.refreshMs ?? 1000;
  const logEveryMs = options.logEveryMs ?? 5000;
  const drainMs = options.drainMs ?? 10_000;
  const { durationMs, profiles } = options;
  if (!(durationMs > 0)) throw new RangeError("durationMs must be positive");
  if (!(options.ratePerSecond > 0)) throw new RangeError("ratePerSecond must be positive");

  const originMs = performance.now();
  const simulator = await startSimulator({
    profiles,
    port: options.simulatorPort,
    storyDurationMs: durationMs,
    seed: options.seed,
    startAtMs: originMs,
    ...(options.faults !== undefined ? { faults: options.faults } : {}),
    ...(options.latencyScale !== undefined ? { latencyScale: options.latencyScale } : {}),
  }).catch((error: unknown) => {
    throw portError(error, "simulator", options.simulatorPort);
  });
  let config: LoadedConfig;
  let gateway: Gateway;
  try {
    config = await loadDemoConfig(options.configPath, simulator.url);
    const port = options.gatewayPort ?? config.config.server.port;
    gateway = await startGateway({
      config,
      // The demo is self-contained: no client keys from the environment (the traffic sends none).
      env: {},
      logger: options.logger ?? pino({ level: "silent" }),
      clock: createSystemClock(),
      rng: createSeededRng(options.seed),
      port,
    }).catch((error: unknown) => {
      throw portError(error, "gateway", port);
    });
  } catch (error) {
    await simulator.close();
    throw error;
  }
  const route = config.routes.get(mix.route);
  if (route === undefined) {
    await gateway.close();
    await simulator.close();
    throw new RangeError(`the demo config has no route "${mix.route}" (routes: ${[...config.routes.keys()].join(", ")})`);
  }

  if (options.ui !== "none") {
    write(
      renderIntro({
        gatewayUrl: gateway.url,
        simulatorUrl: simulator.url,
        route: mix.route,
        durationMs,
        ratePerSecond: options.ratePerSecond,
        seed: options.seed,
        configPath: options.configPath,
      }),
    );
  }

  const tally = createTally(route.deadlines.budgetMs);
  const traffic = startTraffic({
    gatewayUrl: gateway.url,
    ratePerSecond: options.ratePerSecond,
    // A stream of its own, so the mix does not depend on how many random numbers the brain drew.
    rng: createSeededRng(options.seed ^ 0x5eed),
    mix,
    onResult: (result) => {
      tallyResult(tally, result);
      options.onResult?.(result);
    },
  });

  const elapsed = () => performance.now() - originMs;
  const timeline = createTimeline({
    windows,
    durationMs,
    route: route.name,
    focus: () => {
      const row = gateway.brain.snapshot(route).find((candidate) => candidate.id === focusModel);
      return { observedP95Ms: row?.observedTtftP95Ms ?? null, predictedMs: row?.predictedMs ?? null };
    },
    scriptedDuring: (from, to) => profiles.timeline.filter((episode) => episode.from < to && episode.to > from).map((episode) => episode.name),
  });
  const frames = createFrameBuilder({
    gatewayUrl: gateway.url,
    route,
    models: config.models,
    brain: gateway.brain,
    durationMs,
    shareWindowMs: 5000,
    tally,
    sent: () => traffic.sent(),
    inFlight: () => traffic.inFlight(),
    scriptedAt: (fraction) => profiles.timeline.filter((episode) => episodeIntensity(episode, fraction) > 0).map((episode) => episode.name),
  });

  const screen = options.ui === "live" ? (options.screen ?? createLiveScreen(write, () => DEFAULT_SCREEN_SIZE)) : undefined;
  let lastLogMs = Number.NEGATIVE_INFINITY;
  /** Set once the gateway is closing: late timers must not read it. */
  let closed = false;
  let ticking: Promise<void> = Promise.resolve();
  /**
   * Reads the counters, closes the timeline slices whose end has passed (`boundary`: the timer of that
   * slice boundary fired) and, on a refresh, builds and shows a frame. Serialized, so slices close in order.
   */
  const tick = (refresh: boolean, boundary = 0) => {
    ticking = ticking
      .then(async () => {
        if (closed) return;
        gateway.flushBookkeeping();
        const counters = await readCounters(gateway.metrics.registry);
        const nowMs = elapsed();
        timeline.closeDue(counters, nowMs, boundary);
        if (!refresh || options.ui === "none") return;
        const frame = frames.build(counters, nowMs);
        if (screen) screen.show((size) => frameLines(frame, size));
        else if (nowMs - lastLogMs >= logEveryMs - refreshMs / 2) {
          lastLogMs = nowMs;
          write(`${renderLogLine(frame)}\n`);
        }
      })
      .catch((error: unknown) => {
        // A view that cannot refresh must not stop the demo: say so and carry on.
        write(`demo: refresh failed: ${error instanceof Error ? error.message : String(error)}\n`);
      });
    return ticking;
  };

  // Window boundaries get their own timers: with a short story, slices are shorter than a refresh.
  const boundaryTimers: NodeJS.Timeout[] = [];
  for (let index = 1; index < windows; index++) {
    boundaryTimers.push(setTimeout(() => void tick(false, index), originMs + (index / windows) * durationMs - performance.now()));
  }
  const refresher = setInterval(() => void tick(true), refreshMs);

  let stopRequested: () => void = () => undefined;
  const stopped = new Promise<boolean>((resolve) => {
    const endTimer = setTimeout(() => resolve(false), originMs + durationMs - performance.now());
    stopRequested = () => {
      clearTimeout(endTimer);
      resolve(true);
    };
  });
  if (options.signal?.aborted) stopRequested();
  options.signal?.addEventListener("abort", () => stopRequested(), { once: true });

  const finished = (async (): Promise<DemoSummary> => {
    const interrupted = await stopped;
    const ranMs = elapsed();
    clearInterval(refresher);
    for (const timer of boundaryTimers) clearTimeout(timer);
    await ticking;
    if (screen) await tick(true);
    screen?.close();
    if (options.ui !== "none") write(`\n${interrupted ? "Interrupted: " : ""}stopping the traffic, draining ${traffic.inFlight()} requests in flight…\n`);
    await traffic.stop(drainMs);
    gateway.flushBookkeeping();
    const counters = await readCounters(gateway.metrics.registry);
    timeline.finish(counters, ranMs);
    closed = true;
    await gateway.close();
    await simulator.close();
    const where = { route: route.name };
    const summary: DemoSummary = {
      gatewayUrl: gateway.url,
      simulatorUrl: simulator.url,
      seed: options.seed,
      ratePerSecond: options.ratePerSecond,
      durationMs,
      ranMs,
      interrupted,
      route: route.name,
      focusModel,
      sent: traffic.sent(),
      skipped: traffic.skipped(),
      tally,
      fallbacksByReason: sumBy(counters.fallbacks, "reason"),
      fallbacksByModel: sumBy(counters.fallbacks, "from_model"),
      attemptsByOutcome: sumBy(counters.attempts, "outcome"),
      hedgesByOutcome: sumBy(counters.hedges, "outcome"),
      continuationsByOutcome: sumBy(counters.continuations, "outcome"),
      requestsByOutcome: sumBy(counters.requests, "outcome"),
      decisionsByModel: sumBy(counters.decisions, "model", where),
      decisionsByReason: sumBy(counters.decisions, "reason", where),
      costUsd: total(counters.cost),
      costByModel: sumBy(counters.cost, "model"),
      attainment: attainmentOf(counters),
      timeline: timeline.windows,
    };
    if (options.ui !== "none") write(renderSummary(summary));
    return summary;
  })();

  return { gatewayUrl: gateway.url, simulatorUrl: simulator.url, gateway, simulator, stop: () => stopRequested(), finished };
}

/** Runs the whole demo and resolves with its summary (see `startDemo`). */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const demo = await startDemo(options);
  return demo.finished;
}
