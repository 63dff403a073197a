// Keeps the catalog current: every `catalog.refreshIntervalMs` fetches a models list in OpenRouter's format,
// validates it, and hands it to the gateway, which applies it like an edit of the config file.
import type { Logger } from "pino";
import type { CatalogConfig } from "../config/schema.js";
import type { ConfigReloadResult } from "../metrics/metrics.js";
import { fetchCatalogText } from "./fetch.js";
import { parseModelsList, type ModelsList } from "./openrouter.js";

/** Longest a refresh may take (or the interval, when shorter), in ms. */
const REFRESH_TIMEOUT_MS = 30_000;
/** Largest catalog accepted, in bytes (OpenRouter's full list is a few MB). */
const MAX_CATALOG_BYTES = 32 * 1024 * 1024;

/** A models list that was fetched and is valid in form; whether it fits the config is the gateway's check. */
export interface RefreshedCatalog {
  /** Where it came from, without query string or credentials: safe to log. */
  readonly url: string;
  readonly models: ModelsList;
  /** When it was fetched (wall clock). */
  readonly fetchedAt: Date;
}

export interface CatalogRefresherOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
  /** Counts refreshes that fail before reaching `apply` (the gateway counts what `apply` decides). */
  readonly countReload: (result: ConfigReloadResult) => void;
  /** Validates the config with `catalog` applied and swaps it in, or refuses it (and says so itself). */
  readonly apply: (catalog: RefreshedCatalog) => Promise<unknown>;
  /** Wall clock, for `fetchedAt`. */
  readonly now?: () => Date;
}

export interface CatalogRefresher {
  /**
   * Follows the config's `catalog` settings: a change refreshes at once and then every interval;
   * undefined stops refreshing. Unchanged settings change nothing.
   */
  configure(settings: CatalogConfig | undefined): void;
  /** Stops the timer and aborts a refresh in flight. */
  close(): void;
}

/** The URL as logs may show it: no credentials, no query (either could hold a key). */
export function loggableUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}

/** A refresher that does nothing until `configure` gives it settings. */
export function createCatalogRefresher(options: CatalogRefresherOptions): CatalogRefresher {
  const { env, logger } = options;
  const now = options.now ?? (() => new Date());
  let settings: CatalogConfig | undefined;
  let settingsKey: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: AbortController | undefined;
  let rerun = false;
  let closed = false;

  const fail = (url: string, errors: readonly string[]) => {
    options.countReload("failure");
    logger.error({ url, errors }, "catalog refresh failed; the current catalog keeps serving");
  };

  const refreshOnce = async (current: CatalogConfig, signal: AbortSignal): Promise<void> => {
    const url = loggableUrl(current.refreshUrl);
    let key: string | undefined;
    if (current.refreshKeyEnv !== undefined) {
      key = env[current.refreshKeyEnv];
      if (!key) return fail(url, [`catalog.refreshKeyEnv: environment variable ${current.refreshKeyEnv} is not set`]);
    }
    let text: string;
    try {
      const timeoutMs = Math.min(current.refreshIntervalMs, REFRESH_TIMEOUT_MS);
      text = await fetchCatalogText(current.refreshUrl, { ...(key !== undefined ? { key } : {}), timeoutMs, maxBytes: MAX_CATALOG_BYTES, signal });
    } catch (error) {
      if (!signal.aborted) fail(url, [error instanceof Error ? error.message : String(error)]);
      return;
    }
    const fetchedAt = now();
    const { value, issues } = parseModelsList(text);
    if (value === undefined)
      return fail(
        url,
        issues.map((issue) => `${issue.path}: ${issue.message}`),
      );
    if (!signal.aborted) await options.apply({ url, models: value, fetchedAt });
  };

  const schedule = (delayMs: number) => {
    clearTimeout(timer);
    timer = setTimeout(() => void run(), delayMs);
    timer.unref();
  };

  const run = async () => {
    const current = settings;
    if (current === undefined || closed) return;
    const controller = new AbortController();
    running = controller;
    try {
      await refreshOnce(current, controller.signal);
    } catch (error) {
      fail(loggableUrl(current.refreshUrl), [error instanceof Error ? error.message : String(error)]);
    } finally {
      running = undefined;
      if (!closed && settings !== undefined) schedule(rerun ? 0 : settings.refreshIntervalMs);
      rerun = false;
    }
  };

  return {
    configure(next) {
      const key = next === undefined ? undefined : JSON.stringify(next);
      if (key === settingsKey || closed) return;
      settings = next;
      settingsKey = key;
      if (next === undefined) {
        clearTimeout(timer);
        running?.abort();
      } else if (running) {
        rerun = true;
      } else {
        schedule(0);
      }
    },
    close() {
      closed = true;
      clearTimeout(timer);
      running?.abort();
    },
  };
}
