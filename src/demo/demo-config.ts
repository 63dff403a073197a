// Loads the demo's gateway config with its simulator provider pointed at the simulator actually running.
import { readFile } from "node:fs/promises";
import { parseDocument } from "yaml";
import { ConfigError, parseConfig, type LoadedConfig } from "../config/load.js";

/** The provider name the demo config uses for the simulator. */
export const SIMULATOR_PROVIDER = "simulator";

/**
 * Reads a gateway config file and, in memory only, sets `providers.<provider>.baseUrl` to `baseUrl`
 * (the simulator's real URL: its port may be 0 = any free one). The file itself is never written.
 * @param provider name of the provider to redirect; default `simulator`.
 * @throws ConfigError when the file is unreadable, invalid, or has no such provider.
 */
export async function loadDemoConfig(path: string, baseUrl: string, provider = SIMULATOR_PROVIDER): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(path, [{ path: "(file)", message: error instanceof Error ? error.message : String(error) }]);
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(path, doc.errors.map((error) => ({ path: "(yaml)", message: error.message.split("\n")[0] ?? error.message })));
  }
  if (!doc.hasIn(["providers", provider])) {
    throw new ConfigError(path, [{ path: `providers.${provider}`, message: `the demo needs a provider named "${provider}" to point at the simulator` }]);
  }
  doc.setIn(["providers", provider, "baseUrl"], baseUrl);
  return parseConfig(doc.toJS(), path, text);
}
