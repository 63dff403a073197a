// Who is calling: the clients of the config (DESIGN.md "Clients, limits and budgets"), each with its keys
// held as sha256 digests, its allowed routes and its limits. Keys of `auth.apiKeysEnv` belong to `default`.
import { createHash } from "node:crypto";
import type { ChatRequest } from "../proxy/chat-request.js";
import { GatewayError } from "../errors.js";
import type { ClientLimits, Config } from "../config/schema.js";
import type { CompiledConfig } from "../config/compile.js";

/** The client of `auth.apiKeysEnv` keys, and of every request to an open gateway. */
export const DEFAULT_CLIENT = "default";

/** What `routes` names for concrete catalog ids and `models` lists. */
export const PINNED_ACCESS = "pinned";

export interface Client {
  readonly name: string;
  /** Routes (and `pinned`) the client may use; undefined = all. */
  readonly routes: ReadonlySet<string> | undefined;
  readonly limits: ClientLimits;
}

export interface ClientDirectory {
  /** sha256 hex digest of each accepted key → its client's name; empty = open gateway. */
  readonly keys: ReadonlyMap<string, string>;
  readonly clients: ReadonlyMap<string, Client>;
  /** `clients.<name>.keyEnv: …` for each named client whose env var holds no key. */
  readonly missing: readonly string[];
}

export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

function keysOf(envName: string | undefined, env: Readonly<Record<string, string | undefined>>): string[] {
  const raw = envName ? env[envName] : undefined;
  return (raw ?? "")
    .split(",")
    .map((key) => key.trim())
    .filter((key) => key.length > 0);
}

/** Reads each client's keys from `env`. A key listed for two clients belongs to the first. */
export function createClientDirectory(config: Config, env: Readonly<Record<string, string | undefined>>): ClientDirectory {
  const keys = new Map<string, string>();
  const clients = new Map<string, Client>([[DEFAULT_CLIENT, { name: DEFAULT_CLIENT, routes: undefined, limits: {} }]]);
  const missing: string[] = [];
  for (const key of keysOf(config.auth.apiKeysEnv, env)) keys.set(hashKey(key), DEFAULT_CLIENT);
  for (const [name, client] of Object.entries(config.clients)) {
    clients.set(name, { name, routes: client.routes && new Set(client.routes), limits: client.limits ?? {} });
    const own = keysOf(client.keyEnv, env);
    if (own.length === 0) missing.push(`clients.${name}.keyEnv: environment variable ${client.keyEnv} holds no key`);
    for (const key of own) {
      const digest = hashKey(key);
      if (!keys.has(digest)) keys.set(digest, name);
    }
  }
  return { keys, clients, missing };
}

/**
 * Refuses a request for a route the client may not use, as OpenAI answers for a model the key has no
 * access to: 404 `model_not_found`, which does not tell whether the route exists.
 */
export function checkRouteAccess(client: Client, config: CompiledConfig, request: ChatRequest): void {
  const allowed = client.routes;
  if (allowed === undefined) return;
  const name = request.model === "auto" ? config.defaultRoute : request.model;
  const isRoute = config.routes.has(name);
  const denied = (model: string, param: string): GatewayError =>
    new GatewayError(404, `The model \`${model}\` does not exist or you do not have access to it.`, { code: "model_not_found", param });
  if (isRoute ? !allowed.has(name) : !allowed.has(PINNED_ACCESS) && config.modelsById.has(name)) throw denied(request.model, "model");
  if (request.models && !allowed.has(PINNED_ACCESS)) {
    const index = request.models.findIndex((id) => config.modelsById.has(id));
    if (index !== -1) throw denied(request.models[index] as string, `models[${index}]`);
  }
}
