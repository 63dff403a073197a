// Starts a real gateway on 127.0.0.1:0 for a test, with a config built around a fake upstream.
import { pino, type Logger } from "pino";
import OpenAI from "openai";
import { parseConfig, type LoadedConfig } from "../../src/config/load.js";
import { startGateway, type Gateway } from "../../src/gateway.js";
import { createSystemClock } from "../../src/router/clock.js";
import { createSeededRng } from "../../src/router/rng.js";
import type { TokenEstimator } from "../../src/proxy/chat-request.js";

export interface TestModel {
  id: string;
  input?: number;
  output?: number;
  contextTokens?: number;
  upstreamModel?: string;
  capabilities?: string[];
  prior?: { ttftMs: number; tokensPerSecond: number };
}

/** A config with one provider (the fake upstream) and the given models and routes. */
export function testConfig(upstreamUrl: string, models: TestModel[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    server: { host: "127.0.0.1", port: 0, logLevel: "silent" },
    providers: { fake: { baseUrl: upstreamUrl, apiKeyEnv: "FAKE_PROVIDER_KEY", headers: { "x-provider-extra": "yes" } } },
    models: models.map((model, index) => ({
      id: model.id,
      provider: "fake",
      rank: index + 1,
      score: 100,
      pricePerMTok: { input: model.input ?? 0.1, output: model.output ?? 0.4 },
      contextTokens: model.contextTokens ?? 128000,
      ...(model.upstreamModel ? { upstreamModel: model.upstreamModel } : {}),
      ...(model.capabilities ? { capabilities: model.capabilities } : {}),
      // Measured-fast priors by default, so a fresh test gateway predicts its candidates within target.
      prior: model.prior ?? { ttftMs: 100, tokensPerSecond: 200 },
    })),
    routes: { chat: { candidates: models.map((model) => model.id), strategy: "ordered" } },
    defaultRoute: "chat",
    ...extra,
  };
}

export interface TestGateway {
  readonly gateway: Gateway;
  readonly url: string;
  readonly client: OpenAI;
  close(): Promise<void>;
}

export const PROVIDER_KEY = "sk-provider-secret";

export async function startTestGateway(
  raw: Record<string, unknown>,
  options: {
    env?: Record<string, string>;
    clientKey?: string;
    configPath?: string;
    config?: LoadedConfig;
    estimateTokens?: TokenEstimator;
    /** Where the gateway logs; silent by default. */
    logger?: Logger;
  } = {},
): Promise<TestGateway> {
  const config = options.config ?? parseConfig(raw, "test");
  const gateway = await startGateway({
    config,
    ...(options.configPath ? { configPath: options.configPath } : {}),
    ...(options.estimateTokens ? { estimateTokens: options.estimateTokens } : {}),
    env: { FAKE_PROVIDER_KEY: PROVIDER_KEY, ...options.env },
    logger: options.logger ?? pino({ level: "silent" }),
    clock: createSystemClock(),
    rng: createSeededRng(42),
    reloadDebounceMs: 50,
  });
  const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: options.clientKey ?? "client-key", maxRetries: 0, timeout: 15_000 });
  return { gateway, url: gateway.url, client, close: () => gateway.close() };
}

/** A logger that keeps every line it writes, parsed, for assertions on the log. */
export function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}
