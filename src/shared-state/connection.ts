// The gateway's connection to Redis (or Valkey): connects in the background, reconnects by itself with
// backoff, logs each down/up transition once, and runs commands that fail at once while it is down, so
// no caller ever waits on Redis. Only this module imports the Redis client (@redis/client, node-redis).
import { createClient } from "@redis/client";
import type { Logger } from "pino";

/** A connected node-redis client, as `run` hands it to a command. */
export type RedisClient = ReturnType<typeof createClient>;

/** A command was refused because Redis is not connected now (or stalled); nothing was sent. */
export class SharedStateUnavailableError extends Error {
  readonly code = "shared_state_unavailable";
  constructor() {
    super("shared state (Redis) is not connected");
    this.name = "SharedStateUnavailableError";
  }
}

export interface SharedStateConnectionOptions {
  /** redis://[user:password@]host:port[/db] or rediss://…; the password is never logged. */
  readonly url: string;
  readonly logger: Logger;
  /** Called on each transition: true when both connections are ready, false when either is lost. */
  readonly onStatus?: (up: boolean) => void;
  /**
   * Longest wait for one command, in ms (default 500). A command that waits longer fails, and the
   * connection counts as down (stalled) until a PING answers within this time again.
   */
  readonly commandTimeoutMs?: number;
  /** Longest wait between reconnection attempts, in ms (default 1000); the first retry is after 50 ms. */
  readonly maxReconnectDelayMs?: number;
}

export interface SharedStateConnection {
  /** Both connections (commands and subscriptions) are ready now. */
  readonly up: boolean;
  /**
   * Runs `command` on the command connection. Rejects at once with SharedStateUnavailableError while
   * Redis is down (nothing is queued for later), and after `commandTimeoutMs` when Redis is slow.
   */
  run<T>(command: (client: RedisClient) => Promise<T>): Promise<T>;
  /**
   * Listens to a pub/sub channel on the subscription connection, as raw bytes. Subscriptions survive
   * reconnections (the client subscribes again).
   */
  subscribe(channel: string, listener: (message: Buffer) => void): void;
  /** Calls `listener` each time the connection comes up (the first time, and after every outage). */
  onUp(listener: () => void): void;
  /** Closes both connections; pending commands fail. */
  close(): Promise<void>;
}

/** Where `url` points, without user or password: what logs may say. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === "/" ? "" : parsed.pathname}`;
  } catch {
    return "(unparsable URL)";
  }
}

/** Exponential backoff from 50 ms, capped, with "equal jitter" so replicas do not reconnect in lockstep. */
export function reconnectDelayMs(retries: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, 50 * 2 ** Math.min(retries, 16));
  return Math.round(ceiling * (0.5 + 0.5 * random()));
}

/** How often a stalled connection sends a PING to see whether the server answers again, in ms. */
const STALL_CHECK_MS = 250;

/** A command got no reply within `commandTimeoutMs`. */
export class CommandTimeoutError extends Error {
  readonly code = "shared_state_timeout";
  constructor(timeoutMs: number) {
    super(`Redis did not answer within ${timeoutMs} ms`);
    this.name = "CommandTimeoutError";
  }
}

class Connection implements SharedStateConnection {
  readonly #commands: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #logger: Logger;
  readonly #target: string;
  readonly #onStatus: ((up: boolean) => void) | undefined;
  readonly #commandTimeoutMs: number;
  readonly #upListeners: Array<() => void> = [];
  /** undefined until the first connection attempt settles, so the first failure is logged too. */
  #up: boolean | undefined;
  #closed = false;
  /** Set while the server is stalled (a command timed out): a PING every STALL_CHECK_MS until one answers. */
  #stalledCheck: NodeJS.Timeout | undefined;
  #pinging = false;

  constructor(options: SharedStateConnectionOptions) {
    this.#logger = options.logger;
    this.#target = redactRedisUrl(options.url);
    this.#onStatus = options.onStatus;
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 500;
    const maxDelayMs = options.maxReconnectDelayMs ?? 1000;
    const connectTimeoutMs = Math.max(this.#commandTimeoutMs, 1000);
    this.#commands = createClient({
      url: options.url,
      // Commands while disconnected fail at once instead of waiting in an offline queue.
      disableOfflineQueue: true,
      socket: { connectTimeout: connectTimeoutMs, reconnectStrategy: (retries) => reconnectDelayMs(retries, maxDelayMs) },
    });
    // Subscriptions made before the first connection wait for it, and are renewed after each reconnection.
    this.#subscriber = this.#commands.duplicate({ disableOfflineQueue: false });
    for (const client of [this.#commands, this.#subscriber]) {
      // Errors are reported through the transitions below; an 'error' without a listener would throw.
      client.on("error", () => this.#update(true));
      client.on("ready", () => this.#update(false));
      client.on("end", () => this.#update(true));
      client.on("reconnecting", () => this.#update(true));
      // The first connection is in the background: connect() retries until it succeeds or close().
      client.connect().catch(() => this.#update(true));
    }
  }

  get up(): boolean {
    return this.#up === true;
  }

  run<T>(command: (client: RedisClient) => Promise<T>): Promise<T> {
    if (this.#up !== true) return Promise.reject(new SharedStateUnavailableError());
    return this.#bounded(command(this.#commands)).catch((error: unknown) => {
      if (error instanceof CommandTimeoutError) this.#stall();
      throw error;
    });
  }

  subscribe(channel: string, listener: (message: Buffer) => void): void {
    this.#subscriber.subscribe(channel, listener, true).catch((error: unknown) => {
      this.#logger.warn({ err: error, channel }, "shared state: subscribing failed; retried on the next reconnection");
    });
  }

  onUp(listener: () => void): void {
    this.#upListeners.push(listener);
    if (this.#up === true) listener();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#stalledCheck);
    // Graceful (pending replies arrive) unless the server does not answer: then cut.
    const graceful = Promise.allSettled([this.#commands.close(), this.#subscriber.close()]);
    await this.#bounded(graceful).catch(() => undefined);
    for (const client of [this.#commands, this.#subscriber]) if (client.isOpen) client.destroy();
  }

  /**
   * node-redis times a command out only while it waits to be written, never while it waits for its
   * reply, so a stalled server would hold callers for ever: the wait is bounded here.
   */
  #bounded<T>(pending: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new CommandTimeoutError(this.#commandTimeoutMs)), this.#commandTimeoutMs);
    });
    // The command may still settle after the timeout; its late result is dropped.
    pending.catch(() => undefined);
    return Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
  }

  /** A command timed out: down until a PING answers in time (checked every STALL_CHECK_MS). */
  #stall(): void {
    if (this.#stalledCheck !== undefined || this.#closed) return;
    this.#stalledCheck = setInterval(() => {
      if (this.#pinging || !this.#commands.isReady) return;
      this.#pinging = true;
      this.#bounded(this.#commands.ping())
        .then(() => {
          clearInterval(this.#stalledCheck);
          this.#stalledCheck = undefined;
          this.#update(false);
        })
        .catch(() => undefined)
        .finally(() => (this.#pinging = false));
    }, STALL_CHECK_MS);
    this.#stalledCheck.unref();
    this.#update(true);
  }

  /** Re-reads the state after an event; `failed`: the event was a failure (not one connection of two becoming ready). */
  #update(failed: boolean): void {
    if (this.#closed) return;
    const up = this.#commands.isReady && this.#subscriber.isReady && this.#stalledCheck === undefined;
    if (up === this.#up || (!up && !failed && this.#up === undefined)) return;
    const first = this.#up === undefined;
    this.#up = up;
    if (up) this.#logger.info({ redis: this.#target }, "shared state connected");
    else if (first) this.#logger.warn({ redis: this.#target }, "shared state unreachable: serving on local state, retrying in the background");
    else this.#logger.warn({ redis: this.#target }, "shared state lost (Redis unreachable or not answering): serving on local state, reconnecting");
    this.#onStatus?.(up);
    if (up) for (const listener of this.#upListeners) listener();
  }
}

/** Starts connecting to Redis in the background and returns at once. */
export function createSharedStateConnection(options: SharedStateConnectionOptions): SharedStateConnection {
  return new Connection(options);
}
