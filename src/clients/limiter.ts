// Client limits (DESIGN.md "Clients, limits and budgets"): requests and tokens over a sliding minute, and
// spend per UTC day. Every decision is local and synchronous, on this replica's own counts plus what the
// other replicas are known to have used (`others`, kept current by shared-limits.ts when Redis is
// configured). Tokens are estimated when a request is admitted and settled with its usage afterwards.
import { GatewayError } from "../errors.js";
import type { Client } from "./directory.js";
import { SLOT_MS, SlotWindow, WINDOW_SLOTS, slotOf } from "./window.js";

/** Which limit refused a request (label `limit` of subsecond_client_limited_total). */
export type LimitKind = "requests" | "tokens" | "budget";
export const LIMIT_KINDS: readonly LimitKind[] = ["requests", "tokens", "budget"];

export const DAY_MS = 86_400_000;
export const dayOf = (wallMs: number): number => Math.floor(wallMs / DAY_MS);

/** Uses not yet sent to the shared store: per slot, and spend of the day. */
export interface PendingUse {
  slots: Map<number, { requests: number; tokens: number }>;
  usd: number;
  day: number;
}

/** One client's counts on this replica. */
export interface ClientCounts {
  readonly requests: SlotWindow;
  readonly tokens: SlotWindow;
  day: number;
  spentUsd: number;
  /** What the other replicas used, as last heard from the shared store. */
  readonly others: { readonly requests: SlotWindow; readonly tokens: SlotWindow; spentUsd: number; day: number };
  /** Own uses since the last send to the shared store (kept only while shared state is configured). */
  readonly pending: PendingUse;
}

/** An admitted request's hold on its client's limits. */
export interface Admission {
  /** OpenAI's `x-ratelimit-*` headers for the client's limits (none for an unlimited client). */
  readonly headers: Readonly<Record<string, string>>;
  /** Usage of one attempt: tokens count against the minute, `usd` against the day. */
  meter(tokens: number, usd: number): void;
  /** The request ended: its token estimate gives way to the usage metered. Idempotent. */
  release(): void;
}

export interface Refusal {
  /** The limit reached; undefined when limits cannot be counted (fail closed). */
  readonly limit: LimitKind | undefined;
  readonly error: GatewayError;
}

/** How the shared store is doing, as the limiter needs to know. */
export type SharedStatus = "off" | "up" | "down";

export interface LimiterOptions {
  /** Wall-clock time in ms (Date.now): windows and days are shared across replicas. */
  readonly wallClock: () => number;
  readonly shared?: () => SharedStatus;
  /** Refuse limited clients while the shared store is down (sharedState.limitsFailClosed). */
  readonly failClosed?: () => boolean;
  /** Hears that a client's counts changed, so the shared store can be told. */
  readonly onUse?: (client: string) => void;
}

/**
 * A duration as OpenAI writes it in `x-ratelimit-reset-*` (Go's format): `20ms`, `1s`, `6m0s`,
 * `1m30.5s`; `0s` for none.
 */
export function formatReset(ms: number): string {
  if (ms <= 0) return "0s";
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const totalSeconds = Math.ceil(ms / 10) / 100;
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = Math.round((totalSeconds % 60) * 100) / 100;
  return `${hours > 0 ? `${hours}h` : ""}${hours > 0 || minutes > 0 ? `${minutes}m` : ""}${seconds}s`;
}

export class ClientLimiter {
  readonly #counts = new Map<string, ClientCounts>();

  constructor(private readonly options: LimiterOptions) {}

  /** This replica's counts of `client`, created on first use. */
  counts(client: string): ClientCounts {
    let counts = this.#counts.get(client);
    if (counts === undefined) {
      const day = dayOf(this.options.wallClock());
      counts = {
        requests: new SlotWindow(),
        tokens: new SlotWindow(),
        day,
        spentUsd: 0,
        others: { requests: new SlotWindow(), tokens: new SlotWindow(), spentUsd: 0, day },
        pending: { slots: new Map(), usd: 0, day },
      };
      this.#counts.set(client, counts);
    }
    return counts;
  }

  /** Clients with counts on this replica. */
  clients(): IterableIterator<string> {
    return this.#counts.keys();
  }

  /** Spend of `client` today in USD, across replicas as far as known. */
  spentToday(client: string): number {
    const counts = this.#counts.get(client);
    if (counts === undefined) return 0;
    const day = dayOf(this.options.wallClock());
    return (counts.day === day ? counts.spentUsd : 0) + (counts.others.day === day ? counts.others.spentUsd : 0);
  }

  /** Admits a request of `client` estimated at `estimatedTokens`, or says which limit refuses it. */
  admit(client: Client, estimatedTokens: number): Admission | Refusal {
    const { requestsPerMinute, tokensPerMinute, usdPerDay } = client.limits;
    if (requestsPerMinute === undefined && tokensPerMinute === undefined && usdPerDay === undefined) return UNLIMITED;
    const status = this.options.shared?.() ?? "off";
    if (status === "down" && this.options.failClosed?.()) {
      return {
        limit: undefined,
        error: new GatewayError(429, "Client limits cannot be counted right now (shared state is down); try again shortly.", {
          code: "limits_unavailable",
          headers: { "retry-after": "1" },
        }),
      };
    }
    const nowMs = this.options.wallClock();
    const slot = slotOf(nowMs);
    const day = dayOf(nowMs);
    const counts = this.counts(client.name);
    if (counts.day !== day) {
      counts.day = day;
      counts.spentUsd = 0;
    }
    // The others' counts are trusted while the store answers; down, each replica counts alone (fail open).
    const others = status === "up" ? counts.others : undefined;
    // A request larger than the whole minute's allowance still passes alone, on an empty window.
    const tokens = tokensPerMinute === undefined ? estimatedTokens : Math.min(estimatedTokens, tokensPerMinute);
    const headers: Record<string, string> = {};
    const window = (kind: "requests" | "tokens", limit: number | undefined, amount: number): Refusal | undefined => {
      if (limit === undefined) return undefined;
      const used = counts[kind].total(slot) + (others?.[kind].total(slot) ?? 0);
      const fits = used + amount <= limit;
      const emptyAt = counts[kind].emptyAt(slot, others?.[kind]);
      headers[`x-ratelimit-limit-${kind}`] = String(limit);
      headers[`x-ratelimit-remaining-${kind}`] = String(Math.max(0, Math.floor(limit - used - (fits ? amount : 0))));
      headers[`x-ratelimit-reset-${kind}`] = formatReset(Math.max(emptyAt ?? 0, fits && amount > 0 ? (slot + WINDOW_SLOTS) * SLOT_MS : 0) - nowMs);
      if (fits) return undefined;
      const freesAt = counts[kind].freesAt(slot, limit, amount, others?.[kind]) ?? nowMs + WINDOW_SLOTS * SLOT_MS;
      return this.#refusal(
        kind,
        freesAt - nowMs,
        headers,
        `Rate limit reached for ${kind} per minute: limit ${limit}, used ${Math.ceil(used)}, requested ${amount}.`,
      );
    };
    const refused = window("requests", requestsPerMinute, 1) ?? window("tokens", tokensPerMinute, tokens);
    if (refused) return refused;
    if (usdPerDay !== undefined) {
      const spent = this.spentToday(client.name);
      if (spent >= usdPerDay) {
        return this.#refusal("budget", (day + 1) * DAY_MS - nowMs, headers, `You exceeded your daily budget of ${usdPerDay} USD; it renews at 00:00 UTC.`);
      }
    }
    counts.requests.add(slot, 1, slot);
    counts.tokens.add(slot, tokens, slot);
    this.#record(client.name, counts, slot, 1, tokens, 0, day);
    return this.#admission(client.name, counts, slot, tokens, headers);
  }

  #refusal(limit: LimitKind, waitMs: number, headers: Record<string, string>, message: string): Refusal {
    const budget = limit === "budget";
    return {
      limit,
      error: new GatewayError(429, message, {
        type: budget ? "insufficient_quota" : "rate_limit_error",
        code: budget ? "insufficient_quota" : "rate_limit_exceeded",
        headers: { ...headers, "retry-after": String(Math.max(1, Math.ceil(waitMs / 1000))) },
        // A spent budget renews at midnight: an SDK's quick retries cannot help.
        ...(budget ? { shouldRetry: false } : {}),
      }),
    };
  }

  #admission(client: string, counts: ClientCounts, admittedSlot: number, estimate: number, headers: Record<string, string>): Admission {
    let released = false;
    return {
      headers,
      meter: (tokens, usd) => {
        const nowMs = this.options.wallClock();
        const slot = slotOf(nowMs);
        const day = dayOf(nowMs);
        if (counts.day !== day) {
          counts.day = day;
          counts.spentUsd = 0;
        }
        counts.tokens.add(slot, tokens, slot);
        counts.spentUsd += usd;
        this.#record(client, counts, slot, 0, tokens, usd, day);
      },
      release: () => {
        if (released || estimate === 0) return;
        released = true;
        const slot = slotOf(this.options.wallClock());
        counts.tokens.add(admittedSlot, -estimate, slot);
        if (admittedSlot > slot - WINDOW_SLOTS) this.#record(client, counts, admittedSlot, 0, -estimate, 0, counts.day);
      },
    };
  }

  /** Keeps what the shared store has not heard yet, and tells it. */
  #record(client: string, counts: ClientCounts, slot: number, requests: number, tokens: number, usd: number, day: number): void {
    if (this.options.onUse === undefined) return;
    const pending = counts.pending;
    if (pending.day !== day) {
      pending.day = day;
      pending.usd = 0;
    }
    const entry = pending.slots.get(slot);
    if (entry === undefined) pending.slots.set(slot, { requests, tokens });
    else {
      entry.requests += requests;
      entry.tokens += tokens;
    }
    pending.usd += usd;
    this.options.onUse(client);
  }
}

const UNLIMITED: Admission = { headers: {}, meter: () => undefined, release: () => undefined };
