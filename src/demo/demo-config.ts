// Loads the demo's gateway config with its simulator provider pointed at the simulator actually running.
import { ConfigError, parseConfig, type LoadedConfig } from "../config/load.js";
import { parseYaml, readTextFile } from "../config/yaml-file.js";

/** The provider name the demo config uses for the simulator. */
export const SIMULATOR_PROVIDER = "simulator";

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Reads a gateway config file and, in memory only, sets `providers.<provider>.baseUrl` to `baseUrl`
 * (the simulator's real URL: its port may be 0 = any free one). The file itself is never written.
 * @param provider name of the provider to redirect; default `simulator`.
 * @throws ConfigError when the file is unreadable, invalid, or has no such provider.
 */
export async function loadDemoConfig(path: string, baseUrl: string, provider = SIMULATOR_PROVIDER): Promise<LoadedConfig> {
  const file = await readTextFile(path);
  if (file.issues.length > 0) throw new ConfigError(path, file.issues);
  const { value, issues } = parseYaml(file.text);
  if (issues.length > 0) throw new ConfigError(path, issues);
  const providers = isRecord(value) ? value.providers : undefined;
  const entry = isRecord(providers) ? providers[provider] : undefined;
  if (!isRecord(entry)) {
    throw new ConfigError(path, [{ path: `providers.${provider}`, message: `the demo needs a provider named "${provider}" to point at the simulator` }]);
  }
  entry.baseUrl = baseUrl;
  // Hashed as the file's bytes, so subsecond_config_info names the same hash as `subsecond check`.
  return parseConfig(value, path, file.text);
}
