// Keeps the secrets the config resolves from the environment (provider, gateway, admin and catalog keys)
// out of what the gateway relays from upstreams: error bodies, in-band error events and log lines. Some
// proxies and misconfigured servers echo the request's `Authorization: Bearer <provider key>` in errors.
import { stdSerializers, type Logger } from "pino";
import { GatewayError } from "../errors.js";
import type { Config } from "../config/schema.js";

/** What a secret becomes: `Bearer sk-…` reads `Bearer [redacted]`. */
export const REDACTED = "[redacted]";

/** Built once per config (a reload builds a new one); scrubbing compiles nothing. */
export interface Scrubber {
  /** `text` with every secret replaced by `[redacted]`; `text` itself when it holds none. */
  text(text: string): string;
  /** `buffer[start, end)` scrubbed, or undefined when it holds no secret (forward the range as it is). */
  bytes(buffer: Buffer, start: number, end: number): Buffer | undefined;
  /** `error` with its message, type, code and param scrubbed; `error` itself when they hold none. */
  error(error: GatewayError): GatewayError;
}

/**
 * Every value the config reads from the environment: for each setting named `…Env` (`apiKeyEnv`,
 * `apiKeysEnv`, `adminKeysEnv`, `refreshKeyEnv`, and any added later), each comma-separated key of the
 * variable it names.
 */
export function configuredSecrets(config: Config, env: Readonly<Record<string, string | undefined>>): string[] {
  const secrets = new Set<string>();
  const visit = (value: unknown): void => {
    if (typeof value !== "object" || value === null) return;
    for (const [key, member] of Object.entries(value)) {
      if (key.endsWith("Env") && typeof member === "string") {
        for (const part of env[member]?.split(",") ?? []) if (part.trim() !== "") secrets.add(part.trim());
      } else visit(member);
    }
  };
  visit(config);
  return [...secrets];
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export function createScrubber(secrets: readonly string[]): Scrubber {
  if (secrets.length === 0) return { text: (text) => text, bytes: () => undefined, error: (error) => error };
  // Longest first, so a key that contains another is replaced whole.
  const pattern = new RegExp(
    [...secrets]
      .sort((a, b) => b.length - a.length)
      .map(escape)
      .join("|"),
    "g",
  );
  const text = (value: string): string => {
    pattern.lastIndex = 0;
    return pattern.test(value) ? value.replace(pattern, REDACTED) : value;
  };
  const optional = (value: string | null): string | null => (value === null ? null : text(value));
  return {
    text,
    bytes(buffer, start, end) {
      const original = buffer.toString("utf8", start, end);
      const scrubbed = text(original);
      return scrubbed === original ? undefined : Buffer.from(scrubbed);
    },
    error(error) {
      const message = text(error.message);
      const type = text(error.type);
      const code = optional(error.code);
      const param = optional(error.param);
      if (message === error.message && type === error.type && code === error.code && param === error.param) return error;
      return new GatewayError(error.status, message, {
        type,
        code,
        param,
        headers: error.headers,
        ...(error.shouldRetry !== undefined ? { shouldRetry: error.shouldRetry } : {}),
      });
    },
  };
}

/** A log object's values with every secret scrubbed (strings, arrays and plain objects, recursively). */
export function scrubValue(value: unknown, scrubber: Scrubber): unknown {
  if (typeof value === "string") return scrubber.text(value);
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, scrubber));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, member]) => [key, scrubValue(member, scrubber)]));
  }
  return value;
}

/**
 * `logger` with the values of `err` and `errors` (what error lines carry: causes, messages of failed
 * refreshes and reloads) scrubbed by the current scrubber. Access-log lines carry neither and cost nothing more.
 */
export function scrubbingLogger(logger: Logger, current: () => Scrubber): Logger {
  return logger.child(
    {},
    {
      serializers: {
        err: (error: Error) => scrubValue(stdSerializers.err(error), current()),
        errors: (errors: unknown) => scrubValue(errors, current()),
      },
    },
  );
}
