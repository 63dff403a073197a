// Gateway keys: clients send `Authorization: Bearer <key>`; accepted keys are held as sha256 digests.
import type { IncomingMessage } from "node:http";
import { LRUCache } from "lru-cache";
import { DEFAULT_CLIENT, hashKey } from "../clients/directory.js";
import { GatewayError } from "../errors.js";
import type { OpenRequestCheck } from "./open-mode.js";

export { hashKey };

/** Who may call an endpoint: any client key, an admin key, or anyone. */
export type Access = "client" | "admin" | "public";

export interface KeySets {
  /** sha256 hex digest of each accepted client key → its client's name; empty = open gateway. */
  readonly clientKeys: () => ReadonlyMap<string, string>;
  /** sha256 hex digests of admin keys; empty = admin only when the gateway is open. */
  readonly adminKeys: () => ReadonlySet<string>;
}

function bearerToken(incoming: IncomingMessage): string | undefined {
  const header = incoming.headers.authorization;
  if (typeof header !== "string" || header.length < 8 || header.slice(0, 7).toLowerCase() !== "bearer ") return undefined;
  const token = header.slice(7).trim();
  return token === "" ? undefined : token;
}

/**
 * Checks a request's key for `access`; throws a 401/403 GatewayError. Returns the calling client's name
 * for `client` access (`default` on an open gateway), undefined otherwise.
 */
export type Authenticator = (incoming: IncomingMessage, access: Access) => string | undefined;

/** `checkOpen` vets the requests that need no key (open mode, see open-mode.ts). */
export function createAuthenticator(keys: KeySets, checkOpen: OpenRequestCheck): Authenticator {
  // Tokens already found valid for the current key set, so the hot path hashes a client's key once,
  // not per request. Bounded; only valid tokens enter; a reload that changes the keys starts it afresh.
  let acceptedFor: ReadonlyMap<string, string> | undefined;
  const accepted = new LRUCache<string, string>({ max: 1024 });

  const client = (incoming: IncomingMessage): string => {
    const clientKeys = keys.clientKeys();
    if (clientKeys.size === 0) {
      checkOpen(incoming);
      return DEFAULT_CLIENT;
    }
    const token = bearerToken(incoming);
    if (token === undefined) {
      throw new GatewayError(401, "Missing API key: send `Authorization: Bearer <gateway key>`.", { code: "missing_api_key" });
    }
    if (acceptedFor !== clientKeys) {
      accepted.clear();
      acceptedFor = clientKeys;
    }
    const known = accepted.get(token);
    if (known !== undefined) return known;
    const name = clientKeys.get(hashKey(token));
    if (name === undefined) throw new GatewayError(401, "Incorrect API key provided.", { code: "invalid_api_key" });
    accepted.set(token, name);
    return name;
  };

  const admin = (incoming: IncomingMessage) => {
    const adminKeys = keys.adminKeys();
    if (adminKeys.size === 0) {
      if (keys.clientKeys().size === 0) {
        checkOpen(incoming);
        return;
      }
      throw new GatewayError(403, "Admin endpoints are disabled: no admin keys are configured (auth.adminKeysEnv).", { code: "admin_disabled" });
    }
    const token = bearerToken(incoming);
    if (token === undefined || !adminKeys.has(hashKey(token))) {
      throw new GatewayError(401, "An admin key is required: send `Authorization: Bearer <admin key>`.", { code: "invalid_api_key" });
    }
  };

  return (incoming, access) => {
    if (access === "client") return client(incoming);
    if (access === "admin") admin(incoming);
    return undefined;
  };
}
