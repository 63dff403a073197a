// The status page (GET /ui) and the recent events it shows (GET /admin/events). The page itself is
// public, as it holds no data; what it shows comes from /admin/routes and /admin/events, which need the
// admin key (or nothing, when the gateway is open).
import { GatewayError } from "../errors.js";
import type { EventLog } from "../events/event-log.js";
import { send, sendJson } from "./respond.js";
import type { Route } from "./router.js";
import { STATUS_PAGE } from "./status-page.js";

/** `?since=<id>`: a non-negative integer; absent means every event held. */
function sinceOf(url: string | undefined): number {
  const query = url?.indexOf("?") ?? -1;
  if (url === undefined || query === -1) return 0;
  const value = new URLSearchParams(url.slice(query + 1)).get("since");
  if (value === null || value === "") return 0;
  if (!/^\d{1,15}$/.test(value)) {
    throw new GatewayError(400, "`since` must be an event id: a non-negative integer.", { code: "invalid_value", param: "since" });
  }
  return Number(value);
}

export function createStatusRoutes(deps: { readonly events: EventLog }): Route[] {
  return [
    {
      method: "GET",
      path: "/admin/events",
      access: "admin",
      handle({ incoming, outgoing, requestId }) {
        sendJson(outgoing, 200, deps.events.since(sinceOf(incoming.url)), requestId);
      },
    },
    {
      method: "GET",
      path: "/ui",
      access: "public",
      handle({ outgoing, requestId }) {
        send(outgoing, 200, STATUS_PAGE.html, { ...STATUS_PAGE.headers, "x-request-id": requestId });
      },
    },
  ];
}
