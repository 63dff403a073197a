// Replicas that learn together: this replica's brain events go out in small batches, the other
// replicas' come in and merge into the brain, and a starting replica replays the recent pool (warm start).
//
// Pub/sub rather than streams: an event is worth something for seconds (statistics decay, a cooldown
// ends), so what matters is delivery in milliseconds to whoever is connected now, at no cost per
// reader. A replica that was away for a moment loses those events and keeps learning from its own
// traffic; replaying them later would count stale samples as fresh. Streams would add a read cursor per
// replica and blocking reads for a replay that is not wanted. The warm start needs only "the recent
// past": each batch is also pushed to a capped list that a new replica reads once.
//
// Nothing here is on a request's path: the brain hands events over synchronously (an array push); a
// timer publishes them; while Redis is down the batches are dropped and the brain serves on its own.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Brain } from "../router/brain.js";
import { isUrgent, type SharedEvent } from "../router/shared-events.js";
import { decodeBatch, encodeBatch } from "./codec.js";
import type { SharedStateConnection } from "./connection.js";

/** Batches kept for warm starts (newest first): about a minute of three busy replicas at 20 batches/s. */
export const WARM_START_BATCHES = 2048;

/** Events queued while a publish is slow or Redis is away are capped: beyond this, new ones are dropped. */
const MAX_QUEUED_EVENTS = 10_000;

export type SharedEventsDirection = "sent" | "received" | "dropped";

export interface ReplicationOptions {
  readonly connection: SharedStateConnection;
  readonly brain: Brain;
  readonly logger: Logger;
  /** Prefix of the channel and the warm-start list (sharedState.keyPrefix). */
  readonly keyPrefix: string;
  /** Longest wait of an event before it is published, in ms (sharedState.batchMs, ≤ 100). */
  readonly batchMs: number;
  /** Batches older than this are not replayed at a warm start, in ms (a few statistics half-lives). */
  readonly warmStartMaxAgeMs: number;
  /** Counts events per direction (metrics). */
  readonly count?: (direction: SharedEventsDirection, events: number) => void;
  /** Wall clock, ms since the epoch: ages of replayed batches. Default Date.now. */
  readonly wallClock?: () => number;
  /** This replica's id on the wire; default random. */
  readonly replicaId?: string;
}

export interface Replication {
  readonly replicaId: string;
  /** Publishes the queued events now. */
  flush(): Promise<void>;
  /** Stops sharing: publishes what is queued, then detaches from the brain. */
  close(): Promise<void>;
}

class ReplicationImpl implements Replication {
  readonly replicaId: string;
  readonly #options: ReplicationOptions;
  readonly #channel: string;
  readonly #recentKey: string;
  readonly #wallClock: () => number;
  #queue: SharedEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #urgent = false;
  #warm = false;
  /** Batches received live while the warm start reads the list, so that they are not merged twice. */
  #seenWhileWarming: Set<string> | undefined = new Set();

  constructor(options: ReplicationOptions) {
    this.#options = options;
    this.replicaId = options.replicaId ?? randomBytes(6).toString("base64url");
    this.#channel = `${options.keyPrefix}events`;
    this.#recentKey = `${options.keyPrefix}events:recent`;
    this.#wallClock = options.wallClock ?? Date.now;
    options.brain.share((event) => this.#enqueue(event));
    options.connection.subscribe(this.#channel, (message) => this.#receive(message.toString("utf8")));
    options.connection.onUp(() => void this.#warmStart());
  }

  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#urgent = false;
    const events = this.#queue;
    if (events.length === 0) return Promise.resolve();
    this.#queue = [];
    const { connection, count } = this.#options;
    if (!connection.up) {
      count?.("dropped", events.length);
      return Promise.resolve();
    }
    const payload = encodeBatch({ replica: this.replicaId, sentAtMs: this.#wallClock(), events });
    const channel = this.#channel;
    const recent = this.#recentKey;
    const ttlMs = Math.ceil(this.#options.warmStartMaxAgeMs);
    return connection
      .run((client) =>
        // Issued in one tick: node-redis writes them as one pipeline.
        Promise.all([
          client.publish(channel, payload),
          client.lPush(recent, payload),
          client.lTrim(recent, 0, WARM_START_BATCHES - 1),
          client.pExpire(recent, ttlMs),
        ]),
      )
      .then(
        () => count?.("sent", events.length),
        () => count?.("dropped", events.length),
      );
  }

  async close(): Promise<void> {
    this.#options.brain.share(undefined);
    await this.flush();
  }

  #enqueue(event: SharedEvent): void {
    if (this.#queue.length >= MAX_QUEUED_EVENTS) {
      this.#options.count?.("dropped", 1);
      return;
    }
    this.#queue.push(event);
    if (isUrgent(event)) {
      // Health and probe leases go at once (with whatever else this tick produced).
      if (this.#urgent) return;
      this.#urgent = true;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => void this.flush(), 0);
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => void this.flush(), this.#options.batchMs);
    }
    this.#timer.unref();
  }

  #receive(text: string): void {
    const batch = decodeBatch(text);
    if (batch === undefined || batch.replica === this.replicaId) return;
    this.#seenWhileWarming?.add(`${batch.replica}:${batch.sentAtMs}`);
    const { brain, count } = this.#options;
    for (const event of batch.events) brain.applyShared(event);
    count?.("received", batch.events.length);
  }

  /** Once, at the first connection: replays the pool's recent batches, oldest first, at their age. */
  async #warmStart(): Promise<void> {
    if (this.#warm) return;
    this.#warm = true;
    let texts: string[];
    try {
      texts = await this.#options.connection.run((client) => client.lRange(this.#recentKey, 0, WARM_START_BATCHES - 1));
    } catch {
      // Lost again before the read: the next connection tries again.
      this.#warm = false;
      return;
    }
    const seen = this.#seenWhileWarming ?? new Set<string>();
    this.#seenWhileWarming = undefined;
    const { brain, count, logger, warmStartMaxAgeMs } = this.#options;
    const nowMs = this.#wallClock();
    let batches = 0;
    let events = 0;
    for (let index = texts.length - 1; index >= 0; index--) {
      const batch = decodeBatch(texts[index] ?? "");
      if (batch === undefined || batch.replica === this.replicaId || seen.has(`${batch.replica}:${batch.sentAtMs}`)) continue;
      const ageMs = Math.max(0, nowMs - batch.sentAtMs);
      if (ageMs > warmStartMaxAgeMs) continue;
      for (const event of batch.events) brain.applyShared(event, ageMs);
      batches++;
      events += batch.events.length;
    }
    count?.("received", events);
    logger.info({ batches, events }, "shared state: warm start from the pooled recent observations");
  }
}

/** Shares `brain`'s events with the other replicas through `connection`, from now until `close`. */
export function createReplication(options: ReplicationOptions): Replication {
  return new ReplicationImpl(options);
}
