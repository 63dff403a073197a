// Client limits counted across replicas on Redis, off the request path. Each replica decides alone, at
// once, on its own counts plus what the others are known to have used; what it used goes to Redis right
// after the request (one Lua script per client: add this replica's uses, read the pooled window and the
// day's spend, and publish that the client's counts moved), and each replica that hears so reads them
// again. So a replica learns of another's use about two round trips after it, and every client's view
// is also read again every REFRESH_MS, in case a message was lost to a reconnection.
// While Redis is down each replica counts alone (or refuses, with sharedState.limitsFailClosed); uses
// made meanwhile are sent when it is back, and counts that Redis lost in a restart are sent again.
import { createHash, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { RedisClient, SharedStateConnection } from "../shared-state/connection.js";
import { ClientLimiter, DAY_MS, dayOf, type ClientCounts, type PendingUse } from "./limiter.js";
import { WINDOW_SLOTS, slotOf, type SlotWindow } from "./window.js";

/** How often every counted client's pooled view is read again, in ms. */
export const REFRESH_MS = 250;

/**
 * KEYS: the client's requests hash, tokens hash (slot → count), the day's spend, and the epoch of its
 * counts (set when missing: a changed epoch says Redis lost them). ARGV: the caller's current slot, the
 * spend to add, the spend key's lifetime in s, the channel and message that say the counts moved, a new
 * epoch, then (slot, requests, tokens) triples. Returns the window's requests and tokens as flat
 * [slot, count, …] lists, the day's spend and the epoch.
 */
const SCRIPT = `
local now = tonumber(ARGV[1])
local oldest = now - ${WINDOW_SLOTS - 1}
local epoch = redis.call('GET', KEYS[4])
if not epoch then
  epoch = ARGV[6]
  redis.call('SET', KEYS[4], epoch)
end
for i = 7, #ARGV, 3 do
  if tonumber(ARGV[i]) >= oldest then
    if ARGV[i + 1] ~= '0' then redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
    if ARGV[i + 2] ~= '0' then redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 2]) end
  end
end
local function window(key)
  local flat = redis.call('HGETALL', key)
  local live, stale = {}, {}
  for i = 1, #flat, 2 do
    if tonumber(flat[i]) < oldest then stale[#stale + 1] = flat[i]
    else live[#live + 1] = flat[i]; live[#live + 1] = flat[i + 1] end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  if #flat > 0 then redis.call('PEXPIRE', key, ${(WINDOW_SLOTS + 1) * 1000}) end
  return live
end
local requests = window(KEYS[1])
local tokens = window(KEYS[2])
local spent = redis.call('GET', KEYS[3]) or '0'
if ARGV[2] ~= '0' then
  spent = redis.call('INCRBYFLOAT', KEYS[3], ARGV[2])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
if #ARGV > 6 or ARGV[2] ~= '0' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return { requests, tokens, spent, epoch }
`;
const SCRIPT_SHA = createHash("sha1").update(SCRIPT).digest("hex");

export interface SharedLimiterOptions {
  readonly connection: SharedStateConnection;
  /** sharedState.keyPrefix: every key starts with it. */
  readonly keyPrefix: string;
  readonly failClosed: () => boolean;
  /** Clients with limits now: their pooled view is kept fresh before their first request here. */
  readonly limitedClients: () => Iterable<string>;
  readonly wallClock: () => number;
  readonly logger: Logger;
}

export interface SharedLimiter {
  readonly limiter: ClientLimiter;
  /** Sends what is pending (bounded by the connection's command timeout), then stops refreshing. */
  close(): Promise<void>;
}

type Reply = [requests: unknown[], tokens: unknown[], spent: unknown, epoch: unknown];

/** Slot → count from a flat [slot, count, …] reply. */
function slotCounts(flat: unknown[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (let index = 0; index + 1 < flat.length; index += 2) counts.set(Number(String(flat[index])), Number(String(flat[index + 1])));
  return counts;
}

export function createSharedLimiter(options: SharedLimiterOptions): SharedLimiter {
  const { connection, keyPrefix, wallClock, logger } = options;
  const syncing = new Map<string, Promise<void>>();
  const channel = `${keyPrefix}limits`;
  // Tells this replica's messages from the others'.
  const replica = randomUUID();
  const dirty = new Set<string>();
  /** The epoch of each client's counts last seen in Redis. */
  const epochs = new Map<string, string>();
  let failing = false;

  const limiter = new ClientLimiter({
    wallClock,
    shared: () => (connection.up ? "up" : "down"),
    failClosed: options.failClosed,
    onUse: (client) => schedule(client),
  });

  const keys = (client: string, day: number): string[] => {
    // The {hash tag} keeps a client's keys in one slot of a Redis Cluster, as a script needs.
    const base = `${keyPrefix}limits:{${client}}`;
    return [`${base}:requests`, `${base}:tokens`, `${base}:usd:${new Date(day * DAY_MS).toISOString().slice(0, 10)}`, `${base}:epoch`];
  };

  const evaluate = async (client: RedisClient, scriptKeys: string[], args: string[]): Promise<Reply> => {
    try {
      return (await client.evalSha(SCRIPT_SHA, { keys: scriptKeys, arguments: args })) as Reply;
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return (await client.eval(SCRIPT, { keys: scriptKeys, arguments: args })) as Reply;
    }
  };

  /** Others' share of each slot: the pooled count less what this replica had sent. */
  const learn = (own: SlotWindow, others: SlotWindow, pooled: Map<number, number>, unsent: (slot: number) => number, nowSlot: number) => {
    for (let slot = nowSlot - WINDOW_SLOTS + 1; slot <= nowSlot; slot++) {
      others.set(slot, Math.max(0, (pooled.get(slot) ?? 0) - (own.at(slot) - unsent(slot))));
    }
  };

  const sync = async (client: string): Promise<void> => {
    const counts = limiter.counts(client);
    const pending = counts.pending;
    const nowMs = wallClock();
    // With no spend to send, read today's: a client's first request after midnight sees the others' spend.
    if (pending.usd === 0) pending.day = dayOf(nowMs);
    const { slots, usd, day } = pending;
    pending.slots = new Map();
    pending.usd = 0;
    const nowSlot = slotOf(nowMs);
    const lifetimeSeconds = Math.ceil(((day + 2) * DAY_MS - nowMs) / 1000);
    const args = [String(nowSlot), String(usd), String(lifetimeSeconds), channel, `${replica} ${client}`, randomUUID()];
    for (const [slot, use] of slots) args.push(String(slot), String(use.requests), String(use.tokens));
    try {
      const [requests, tokens, spent, epoch] = await connection.run((redis) => evaluate(redis, keys(client, day), args));
      failing = false;
      apply(counts, { requests: slotCounts(requests), tokens: slotCounts(tokens), spentUsd: Number(String(spent)), day }, nowSlot);
      const seen = epochs.get(client);
      epochs.set(client, String(epoch));
      if (seen !== undefined && seen !== String(epoch)) resendAll(client, counts, nowSlot);
    } catch (error) {
      // Kept for the next try: uses still in the window, and the day's spend.
      putBack(counts, slots, usd, day, nowSlot);
      if (!failing && connection.up) logger.warn({ err: error, client }, "shared limits: counting on Redis failed; counting on this replica meanwhile");
      failing = true;
    }
  };

  const apply = (
    counts: ClientCounts,
    pooled: { requests: Map<number, number>; tokens: Map<number, number>; spentUsd: number; day: number },
    nowSlot: number,
  ) => {
    const pending = counts.pending;
    const unsent = (kind: "requests" | "tokens") => (slot: number) => pending.slots.get(slot)?.[kind] ?? 0;
    learn(counts.requests, counts.others.requests, pooled.requests, unsent("requests"), nowSlot);
    learn(counts.tokens, counts.others.tokens, pooled.tokens, unsent("tokens"), nowSlot);
    // The day's spend as Redis has it, less this replica's part of it.
    const sentUsd = (counts.day === pooled.day ? counts.spentUsd : 0) - (pending.day === pooled.day ? pending.usd : 0);
    counts.others.spentUsd = Math.max(0, pooled.spentUsd - sentUsd);
    counts.others.day = pooled.day;
  };

  /**
   * Redis lost the client's counts (a restart without persistence, a flush: its epoch key changed): this
   * replica's uses of the window and spend of the day are sent again, as every replica's are.
   */
  const resendAll = (client: string, counts: ClientCounts, nowSlot: number) => {
    const pending = counts.pending;
    for (let slot = nowSlot - WINDOW_SLOTS + 1; slot <= nowSlot; slot++) {
      const entry = pending.slots.get(slot) ?? { requests: 0, tokens: 0 };
      entry.requests = counts.requests.at(slot);
      entry.tokens = counts.tokens.at(slot);
      if (entry.requests !== 0 || entry.tokens !== 0) pending.slots.set(slot, entry);
    }
    const today = dayOf(wallClock());
    if (counts.day === today) {
      if (pending.day !== today) pending.day = today;
      pending.usd = counts.spentUsd;
    }
    dirty.add(client);
  };

  const putBack = (counts: ClientCounts, slots: PendingUse["slots"], usd: number, day: number, nowSlot: number) => {
    const pending = counts.pending;
    for (const [slot, use] of slots) {
      if (slot <= nowSlot - WINDOW_SLOTS) continue;
      const entry = pending.slots.get(slot);
      if (entry === undefined) pending.slots.set(slot, use);
      else {
        entry.requests += use.requests;
        entry.tokens += use.tokens;
      }
    }
    if (pending.day === day) pending.usd += usd;
  };

  /** One sync per client at a time; uses made meanwhile go in the next one. */
  const run = (client: string): void => {
    if (syncing.has(client)) {
      dirty.add(client);
      return;
    }
    dirty.delete(client);
    const done = sync(client).finally(() => {
      syncing.delete(client);
      if (dirty.has(client)) run(client);
    });
    syncing.set(client, done);
  };

  const queued = new Set<string>();
  function schedule(client: string): void {
    if (queued.size === 0)
      setImmediate(() => {
        for (const name of queued) run(name);
        queued.clear();
      });
    queued.add(client);
  }

  connection.subscribe(channel, (message) => {
    const text = message.toString();
    const space = text.indexOf(" ");
    if (space <= 0 || text.slice(0, space) === replica) return;
    const client = text.slice(space + 1);
    for (const limited of options.limitedClients()) if (limited === client) run(client);
  });

  const refresher = setInterval(() => {
    if (!connection.up) return;
    for (const client of options.limitedClients()) run(client);
  }, REFRESH_MS);
  refresher.unref();

  return {
    limiter,
    async close() {
      clearInterval(refresher);
      if (connection.up) for (const client of limiter.clients()) if (limiter.counts(client).pending.slots.size > 0 || dirty.has(client)) run(client);
      await Promise.allSettled([...syncing.values()]);
    },
  };
}
