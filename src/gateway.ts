// Assembles a running gateway: config, upstream pools, brain, metrics, HTTP server, hot reload and drain.
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { AddressInfo } from "node:net";
import type { Server, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { addHealthEvent, createEventLog } from "./events/event-log.js";
import { createRequestListener, hashKey, type ReloadResult } from "./http/app.js";
import { createGatewayServer } from "./http/server.js";
import { answerClientError } from "./http/client-error.js";
import { createClientDirectory, type ClientDirectory } from "./clients/directory.js";
import { createClientGate } from "./clients/gate.js";
import { ClientLimiter, type LimitKind } from "./clients/limiter.js";
import { createSharedLimiter } from "./clients/shared-limits.js";
import { Registry, createMetrics, type GatewayMetrics } from "./metrics/metrics.js";
import { createBrain, type Brain } from "./router/brain.js";
import type { Clock, Rng } from "./router/types.js";
import { ConfigError, type LoadedConfig } from "./config/load.js";
import { describeChanges } from "./config/diff.js";
import { InvalidFileError, readTextFile } from "./config/yaml-file.js";
import { configWithCatalog } from "./catalog/import.js";
import { createCatalogRefresher, type RefreshedCatalog } from "./catalog/refresh.js";
import { closeUnused, createUpstreams, type Upstreams } from "./proxy/upstream.js";
import { createBookkeeping } from "./proxy/bookkeeping.js";
import { configuredSecrets, createScrubber, scrubbingLogger } from "./proxy/scrubber.js";
import { BufferedAnswers, ShutdownSignal } from "./proxy/protections.js";
import type { Runtime } from "./proxy/executor.js";
import { estimateTokensByCharacters, type TokenEstimator } from "./proxy/chat-request.js";
import type { Tracing } from "./observability/tracing.js";
import { createSharedStateConnection, type SharedStateConnection } from "./shared-state/connection.js";
import { createReplication } from "./shared-state/replication.js";

export interface GatewayOptions {
  readonly config: LoadedConfig;
  /** Watched for hot reload when set. */
  readonly configPath?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly host?: string;
  readonly port?: number;
  readonly estimateTokens?: TokenEstimator;
  /** Debounce of file-change bursts before a reload, in ms. */
  readonly reloadDebounceMs?: number;
  /** Traces of chat requests (its owner shuts it down, after close()); undefined: off. */
  readonly tracing?: Tracing;
}

export interface Gateway {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly brain: Brain;
  readonly metrics: GatewayMetrics;
  /** The Redis connection of `sharedState` (read at start-up; a reload does not change it); undefined without. */
  readonly sharedState: SharedStateConnection | undefined;
  /** Runs the pending bookkeeping of served requests now (metrics, access log); it otherwise runs within ~1 ms. */
  flushBookkeeping(): void;
  /** Reads the config file again and swaps it in if valid. */
  reload(): Promise<ReloadResult>;
  /** Stops accepting, lets in-flight requests finish (bounded by `drainTimeoutMs`), closes pools. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** After a drain's timeout cut the requests still running, how long their error events get to leave, in ms. */
const CUT_FLUSH_MS = 1000;

/** A problem that stops the gateway from starting (message says what to do). */
export class StartupError extends Error {
  readonly code = "startup_failed";
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

/** Clients with their configured limits, for their metric series. */
function limitedClients(directory: ClientDirectory): { name: string; limits: LimitKind[] }[] {
  return [...directory.clients.values()].map(({ name, limits }) => ({
    name,
    limits: [
      ...(limits.requestsPerMinute !== undefined ? (["requests"] as const) : []),
      ...(limits.tokensPerMinute !== undefined ? (["tokens"] as const) : []),
      ...(limits.usdPerDay !== undefined ? (["budget"] as const) : []),
    ],
  }));
}

function keySet(envName: string | undefined, env: GatewayOptions["env"]): ReadonlySet<string> {
  const raw = envName ? env[envName] : undefined;
  return new Set(
    (raw ?? "")
      .split(",")
      .map((key) => key.trim())
      .filter((key) => key.length > 0)
      .map(hashKey),
  );
}

/** Env vars named by `apiKeyEnv` of providers that serve models, when unset. */
export function missingProviderKeys(config: LoadedConfig, upstreams: Upstreams): string[] {
  const used = new Set(config.models.map((model) => model.provider));
  return [...upstreams.values()]
    .filter((provider) => used.has(provider.name) && provider.missingKeyEnv !== undefined)
    .map((provider) => `providers.${provider.name}.apiKeyEnv: environment variable ${provider.missingKeyEnv} is not set`);
}

/** The first few lines of a list, for an event's one-line detail. */
function summarize(lines: readonly string[], none: string): string {
  if (lines.length === 0) return none;
  const shown = lines.slice(0, 3).join("; ");
  return lines.length > 3 ? `${shown}; and ${lines.length - 3} more` : shown;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { env } = options;
  const scrubberOf = (config: LoadedConfig) => createScrubber(configuredSecrets(config.config, env));
  let runtime: Runtime = { config: options.config, upstreams: createUpstreams(options.config.config.providers, env), scrubber: scrubberOf(options.config) };
  const logger = scrubbingLogger(options.logger, () => runtime.scrubber);
  const missing = missingProviderKeys(runtime.config, runtime.upstreams);
  if (missing.length > 0) {
    await closeUnused(runtime.upstreams, undefined);
    throw new StartupError(`provider keys are missing:\n  ${missing.join("\n  ")}`);
  }
  let clients = createClientDirectory(options.config.config, env);
  if (clients.missing.length > 0) {
    await closeUnused(runtime.upstreams, undefined);
    throw new StartupError(`client keys are missing:\n  ${clients.missing.join("\n  ")}`);
  }
  let adminKeys = keySet(options.config.config.auth.adminKeysEnv, env);
  const server = options.config.config.server;
  const host = options.host ?? server.host;
  const port = options.port ?? server.port;
  if (clients.keys.size === 0 && !LOOPBACK.has(host) && !options.config.config.auth.allowOpen) {
    await closeUnused(runtime.upstreams, undefined);
    throw new StartupError(
      `refusing to serve ${host} without client keys: set ${options.config.config.auth.apiKeysEnv ?? "auth.apiKeysEnv"} (comma-separated keys), bind 127.0.0.1, or set auth.allowOpen: true`,
    );
  }

  const events = createEventLog();
  const brain = createBrain({
    clock: options.clock,
    rng: options.rng,
    stats: options.config.config.stats,
    health: options.config.config.health,
    onHealthChange: (modelId, change) => addHealthEvent(events, modelId, change),
  });
  // Read once: a reload does not reconnect elsewhere.
  const sharedConfig = options.config.config.sharedState;
  const sharedUrl = sharedConfig ? env[sharedConfig.redisUrlEnv] : undefined;
  if (sharedConfig && !sharedUrl) {
    await closeUnused(runtime.upstreams, undefined);
    throw new StartupError(`sharedState.redisUrlEnv: environment variable ${sharedConfig.redisUrlEnv} is not set (e.g. redis://127.0.0.1:6379/0)`);
  }

  brain.sync(runtime.config.models, options.config.config.stats, options.config.config.health);
  const registry = new Registry();
  const bookkeeping = createBookkeeping((error) => logger.error({ err: error }, "request bookkeeping failed"));
  const metrics = createMetrics(registry, {
    modelIds: () => runtime.config.models.map((model) => model.id),
    modelState: (id) => brain.state(id),
    latencyEstimateSeconds: (id, metric) => {
      const route = runtime.config.routes.get(runtime.config.defaultRoute);
      return brain.estimateMs(id, metric, route?.target.percentile ?? 95) / 1000;
    },
    configHash: () => runtime.config.hash,
    healthyCandidates: () =>
      [...runtime.config.routes.values()].map((route) => {
        const usable = route.candidates.filter((model) => {
          const state = brain.state(model.id);
          return state === "ok" || state === "half-open";
        });
        return [route.name, usable.length] as const;
      }),
    clientBudgets: () =>
      [...clients.clients.values()].flatMap(({ name, limits }) =>
        limits.usdPerDay === undefined ? [] : [{ client: name, budgetUsd: limits.usdPerDay, spentUsd: limiter.spentToday(name) }],
      ),
  });
  metrics.registerRoutes(runtime.config.routes.keys());
  metrics.registerClients(limitedClients(clients));
  const sharedState =
    sharedConfig && sharedUrl
      ? createSharedStateConnection({ url: sharedUrl, logger, onStatus: (up) => metrics.sharedStateUp(up), commandTimeoutMs: sharedConfig.commandTimeoutMs })
      : undefined;
  if (sharedState) metrics.sharedStateUp(false);
  const replication =
    sharedConfig && sharedState
      ? createReplication({
          connection: sharedState,
          brain,
          logger,
          keyPrefix: sharedConfig.keyPrefix,
          batchMs: sharedConfig.batchMs,
          // Older samples weigh under 1/8 by now: not worth replaying.
          warmStartMaxAgeMs: 3 * options.config.config.stats.halfLifeMs,
          count: (direction, events) => metrics.sharedStateEvents(direction, events),
        })
      : undefined;
  const sharedLimiter =
    sharedConfig && sharedState
      ? createSharedLimiter({
          connection: sharedState,
          keyPrefix: sharedConfig.keyPrefix,
          failClosed: () => runtime.config.config.sharedState?.limitsFailClosed ?? false,
          limitedClients: () => limitedClients(clients).flatMap(({ name, limits }) => (limits.length > 0 ? [name] : [])),
          wallClock: Date.now,
          logger,
        })
      : undefined;
  const limiter = sharedLimiter?.limiter ?? new ClientLimiter({ wallClock: Date.now });

  let draining = false;
  const shutdown = new ShutdownSignal();
  let notReadyReason: string | undefined;
  let reloading: Promise<ReloadResult> | undefined;

  // The catalog of the last successful refresh; every reload applies it over the config file's text.
  let refreshed: RefreshedCatalog | undefined;
  const baseText = async (): Promise<{ text: string; source: string }> => {
    if (!options.configPath) return { text: JSON.stringify(options.config.config), source: options.config.source };
    const file = await readTextFile(options.configPath);
    if (file.issues.length > 0) throw new ConfigError(options.configPath, file.issues);
    return { text: file.text, source: options.configPath };
  };

  /** Validates the config `load` gives and swaps it in atomically; counts and logs the outcome either way. */
  const replaceConfig = async (load: () => Promise<LoadedConfig>, catalog?: RefreshedCatalog): Promise<ReloadResult> => {
    try {
      const next = await load();
      const upstreams = createUpstreams(next.config.providers, env, runtime.upstreams);
      const previous = runtime;
      const stillMissing = missingProviderKeys(next, upstreams);
      // Atomic swap: requests in flight keep the runtime object they started with.
      runtime = { config: next, upstreams, scrubber: scrubberOf(next) };
      brain.sync(next.models, next.config.stats, next.config.health);
      configureServer(next.config.server);
      clients = createClientDirectory(next.config, env);
      if (clients.missing.length > 0) logger.error({ problems: clients.missing }, "config reloaded but client keys are missing; those clients are refused");
      metrics.registerClients(limitedClients(clients));
      adminKeys = keySet(next.config.auth.adminKeysEnv, env);
      notReadyReason = stillMissing.length > 0 ? stillMissing.join("; ") : undefined;
      void closeUnused(previous.upstreams, upstreams);
      metrics.registerRoutes(next.routes.keys());
      metrics.configReload("success");
      if (catalog) refreshed = catalog;
      if (!next.config.catalog) refreshed = undefined;
      refresher.configure(next.config.catalog);
      const summary = { hash: next.hash, previousHash: previous.config.hash, models: next.models.length, routes: next.routes.size };
      const changes = describeChanges(previous.config, next);
      if (catalog) logger.info({ ...summary, url: catalog.url, changes }, "catalog refreshed");
      else logger.info(summary, "config reloaded");
      events.add(catalog ? "catalog.ok" : "reload.ok", {
        detail: `config ${next.hash.slice(0, 12)}: ${summarize(changes, "no change to models, providers or routes")}`,
      });
      if (notReadyReason) logger.error({ problems: stillMissing }, "config reloaded but provider keys are missing; /readyz reports not ready");
      return { ok: true, hash: next.hash, errors: [] };
    } catch (error) {
      metrics.configReload("failure");
      const errors = error instanceof InvalidFileError ? error.issues.map((issue) => `${issue.path}: ${issue.message}`) : [String(error)];
      if (catalog) logger.error({ url: catalog.url, errors }, "catalog refresh rejected; the current catalog keeps serving");
      else logger.error({ file: options.configPath, errors }, "config reload rejected; the previous config keeps serving");
      events.add(catalog ? "catalog.failed" : "reload.failed", { detail: `rejected, the current config keeps serving: ${summarize(errors, "")}` });
      return { ok: false, hash: runtime.config.hash, errors };
    }
  };
  const reloadOnce = async (): Promise<ReloadResult> => {
    if (!options.configPath) return { ok: false, hash: runtime.config.hash, errors: ["the gateway was started without a config file"] };
    return replaceConfig(async () => {
      const base = await baseText();
      return configWithCatalog(base.text, base.source, refreshed && { name: refreshed.url, models: refreshed.models });
    });
  };
  /** One reload or catalog refresh at a time; one requested meanwhile runs afterwards, on what is current then. */
  const serialized = (task: () => Promise<ReloadResult>): Promise<ReloadResult> => {
    const next = (reloading ?? Promise.resolve()).then(task);
    reloading = next.finally(() => {
      if (reloading === next) reloading = undefined;
    });
    return next;
  };
  const reload = (): Promise<ReloadResult> => serialized(reloadOnce);
  const refresher = createCatalogRefresher({
    env,
    logger,
    countReload: (result) => {
      metrics.configReload(result);
      if (result === "failure")
        events.add("catalog.failed", { detail: "the catalog could not be fetched or read; the current one keeps serving (see the log)" });
    },
    apply: (catalog) =>
      serialized(() =>
        replaceConfig(async () => {
          const base = await baseText();
          return configWithCatalog(base.text, base.source, { name: catalog.url, models: catalog.models });
        }, catalog),
      ),
  });

  const { server: httpServer, configure: configureServer } = createGatewayServer(
    createRequestListener({
      runtime: () => runtime,
      brain,
      metrics,
      bookkeeping,
      buffered: new BufferedAnswers(),
      shutdown,
      events,
      logger,
      estimateTokens: options.estimateTokens ?? estimateTokensByCharacters,
      clients: createClientGate({ directory: () => clients, limiter, metrics }),
      clientKeys: () => clients.keys,
      adminKeys: () => adminKeys,
      ready: () => (draining ? { ready: false, reason: "draining" } : notReadyReason ? { ready: false, reason: notReadyReason } : { ready: true }),
      reload,
      bindHost: host,
      catalogRefreshedAt: () => refreshed?.fetchedAt,
      tracing: options.tracing,
    }),
    server,
  );
  await new Promise<void>((resolveListen, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(port, host, () => {
      httpServer.off("error", reject);
      resolveListen();
    });
  });
  httpServer.on("clientError", answerClientError);
  // In-flight requests, so a drain can end as soon as the last one finishes.
  let inFlight = 0;
  let onDrained: (() => void) | undefined;
  httpServer.on("request", (_request, response: ServerResponse) => {
    inFlight++;
    response.once("close", () => {
      if (--inFlight === 0) onDrained?.();
    });
  });
  /** True once no request is in flight, false if some still are after `ms`. */
  const drainedWithin = (ms: number): Promise<boolean> =>
    new Promise<boolean>((resolveDrain) => {
      if (inFlight === 0) resolveDrain(true);
      onDrained = () => resolveDrain(true);
      setTimeout(() => resolveDrain(false), ms).unref();
    });
  const address = httpServer.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
  if (clients.keys.size === 0) {
    logger.warn({ url }, "no client keys configured: the gateway is OPEN to anyone who can reach it");
  }

  let watcher: FSWatcher | undefined;
  if (options.configPath) {
    const file = resolve(options.configPath);
    let debounce: NodeJS.Timeout | undefined;
    // Watch the directory: editors and `mv` replace the file, which ends a watch on the file itself.
    watcher = watch(dirname(file), (_event, name) => {
      if (name !== null && name !== basename(file)) return;
      clearTimeout(debounce);
      debounce = setTimeout(() => void reload(), options.reloadDebounceMs ?? 200);
    });
    watcher.on("error", (error) => logger.error({ err: error }, "config watch failed; reload with SIGHUP or POST /admin/reload"));
  }

  refresher.configure(runtime.config.config.catalog);

  const close = async (): Promise<void> => {
    draining = true;
    watcher?.close();
    refresher.close();
    const drainMs = runtime.config.config.server.drainTimeoutMs;
    const started = performance.now();
    // Still listening while draining: /readyz answers 503 (a load balancer's cue to stop sending here), and
    // what still arrives is served.
    const drained = await drainedWithin(drainMs);
    const closed = new Promise<void>((resolveClose) => httpServer.close(() => resolveClose()));
    if (!drained) {
      logger.warn({ drainMs, inFlight }, "drain timeout: ending the requests still in flight");
      // Streams end with an error event, requests without an answer yet get a 503.
      shutdown.cutAll();
      await drainedWithin(CUT_FLUSH_MS);
    }
    // Idle keep-alive connections (and those of clients that did not take their error) are closed now.
    httpServer.closeAllConnections();
    await closed;
    await closeUnused(runtime.upstreams, undefined);
    await sharedLimiter?.close();
    await replication?.close();
    await sharedState?.close();
    // After the pools: attempts cut by the drain timeout have finished and queued their log lines by then.
    bookkeeping.flush();
    logger.info({ drainedMs: Math.round(performance.now() - started) }, "stopped");
  };

  logger.info(
    { url, config: options.configPath, hash: runtime.config.hash, models: runtime.config.models.length, routes: [...runtime.config.routes.keys()] },
    "listening",
  );
  return { url, port: address.port, server: httpServer, brain, metrics, sharedState, flushBookkeeping: bookkeeping.flush, reload, close };
}
