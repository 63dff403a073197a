// The gateway's recent events (fallbacks, hedges, circuit changes, cooldowns, reloads, catalog refreshes)
// in a bounded ring, for GET /admin/events and the status page. Written only when something happens, so a
// request that goes as planned costs nothing here.
import type { HealthChange } from "../router/brain.js";

/** What happened. A `hedge.*` pair: `fired` when the hedge is sent, then how its race ended. */
export type EventKind =
  | "fallback"
  | "hedge.fired"
  | "hedge.won"
  | "hedge.lost"
  | "hedge.failed"
  | "continuation"
  | "circuit.opened"
  | "circuit.closed"
  | "cooldown"
  | "reload.ok"
  | "reload.failed"
  | "catalog.ok"
  | "catalog.failed";

/** One event as /admin/events serves it. */
export interface GatewayEvent {
  /** Increases by one per event, from 1; poll with `?since=<id>` for the ones after it. */
  readonly id: number;
  /** When it happened, ISO 8601 (UTC, wall clock). */
  readonly time: string;
  readonly kind: EventKind;
  /** The route label (a route name, `pinned`, `request`); null for events of a model or of the gateway. */
  readonly route: string | null;
  /** Catalog ids concerned, in order: a hedge names the first attempt's model, then the hedge's. */
  readonly models: readonly string[];
  /** A short description, for people. */
  readonly detail: string;
}

export interface EventFields {
  readonly route?: string;
  readonly models?: readonly string[];
  readonly detail: string;
}

/** Events after an id, oldest first. */
export interface EventPage {
  readonly events: readonly GatewayEvent[];
  /** Id of the newest event; 0 before the first. */
  readonly latestId: number;
  /** Id of the oldest event still held; events between `since` and it were overwritten. 0 when empty. */
  readonly oldestId: number;
}

export interface EventLog {
  add(kind: EventKind, fields: EventFields): void;
  /** Events with an id above `sinceId` (0: all held). */
  since(sinceId: number): EventPage;
}

/** Events held by default: a few minutes of a busy brownout, a page's worth for a person. */
export const EVENT_CAPACITY = 200;

interface Stored {
  readonly id: number;
  readonly atMs: number;
  readonly kind: EventKind;
  readonly fields: EventFields;
}

/** An empty log holding the last `capacity` events; `nowMs` is the wall clock in ms (default Date.now). */
export function createEventLog(capacity = EVENT_CAPACITY, nowMs: () => number = Date.now): EventLog {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  const ring: (Stored | undefined)[] = new Array<Stored | undefined>(capacity);
  let latestId = 0;
  return {
    add(kind, fields) {
      latestId++;
      ring[latestId % capacity] = { id: latestId, atMs: nowMs(), kind, fields };
    },
    since(sinceId) {
      const oldestId = latestId === 0 ? 0 : Math.max(1, latestId - capacity + 1);
      const events: GatewayEvent[] = [];
      for (let id = Math.max(sinceId + 1, oldestId); id <= latestId && oldestId > 0; id++) {
        const stored = ring[id % capacity] as Stored;
        const { route, models, detail } = stored.fields;
        events.push({ id, time: new Date(stored.atMs).toISOString(), kind: stored.kind, route: route ?? null, models: models ?? [], detail });
      }
      return { events, latestId, oldestId };
    },
  };
}

/** Seconds for a detail line: "2.5 s". */
const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/** Writes a model's health change (from the brain) as an event. */
export function addHealthEvent(events: EventLog, modelId: string, change: HealthChange): void {
  const models = [modelId];
  const lasting = change.forMs === undefined ? "" : ` for ${seconds(change.forMs)}`;
  if (change.change === "opened") events.add("circuit.opened", { models, detail: `${change.reason}: circuit open${lasting}` });
  else if (change.change === "closed") events.add("circuit.closed", { models, detail: `${change.reason}: circuit closed` });
  else events.add("cooldown", { models, detail: `${change.reason}: cooling${lasting}` });
}
