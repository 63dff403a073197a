// Open mode (no keys): what a web page must not be able to do to a gateway on the user's machine. Any
// page can make the browser send a "simple" cross-site POST (text/plain, form types, no body), and a DNS
// rebinding page can reach 127.0.0.1 under its own host name. Neither can forge `Authorization`, so
// with keys configured these checks are not needed, and curl users may leave out the content type.
import { isIP } from "node:net";
import type { IncomingMessage } from "node:http";
import { GatewayError } from "../errors.js";

const LOOPBACK_NAMES: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "[::1]"]);
const WILDCARDS: ReadonlySet<string> = new Set(["0.0.0.0", "::", "[::]"]);

/** A host as it appears in a `Host` header (IPv6 in brackets), lower-case. */
function hostName(host: string): string {
  const lower = host.toLowerCase();
  return isIP(lower) === 6 ? `[${lower}]` : lower;
}

/** The name part of a `Host` header value (RFC 9110 §7.2): without the port; undefined when malformed. */
function nameOf(hostHeader: string): string | undefined {
  try {
    return new URL(`http://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/** Checks a request that needs no key; throws a 403 or 415 GatewayError. */
export type OpenRequestCheck = (incoming: IncomingMessage) => void;

/**
 * Accepts `Host` names that are loopback names or `bindHost` (any IP literal when it is a wildcard:
 * a rebinding page always comes under a DNS name); an `Origin`, when sent, must be the request's own
 * host; a POST must be `application/json`, which a page cannot send cross-site without a CORS preflight
 * that the gateway never grants.
 */
export function createOpenRequestCheck(bindHost: string): OpenRequestCheck {
  const bound = hostName(bindHost);
  const anyAddress = WILDCARDS.has(bound);
  const allowedName = (name: string) => LOOPBACK_NAMES.has(name) || name === bound || (anyAddress && isIP(name.replace(/^\[|\]$/g, "")) !== 0);
  return (incoming) => {
    const host = incoming.headers.host ?? "";
    const name = nameOf(host);
    if (name === undefined || !allowedName(name)) {
      throw new GatewayError(
        403,
        `Host "${name ?? ""}" is not this gateway's. Without client keys it answers only requests addressed to localhost or ${bindHost} (a defense against DNS rebinding); configure auth.apiKeysEnv to serve other names.`,
        { code: "host_not_allowed" },
      );
    }
    const origin = incoming.headers.origin;
    if (origin !== undefined && !sameHost(origin, host)) {
      throw new GatewayError(403, "Cross-origin requests are refused while the gateway has no client keys (auth.apiKeysEnv).", {
        code: "cross_origin_refused",
      });
    }
    if (incoming.method === "POST" && !isJson(incoming.headers["content-type"])) {
      throw new GatewayError(
        415,
        "Send `Content-Type: application/json`: without client keys the gateway refuses other POSTs, which any web page could send.",
        {
          code: "unsupported_media_type",
        },
      );
    }
  };
}

function sameHost(origin: string, host: string): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === "http:" || url.protocol === "https:") && url.host === new URL(`http://${host}`).host;
  } catch {
    return false;
  }
}

function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.split(";", 1)[0]?.trim().toLowerCase() === "application/json";
}
