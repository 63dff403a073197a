// Stats and health settings for router tests: the schema's defaults, optionally overridden.
import { HealthSchema, StatsSchema, type HealthConfig, type StatsConfig } from "../../src/config/schema.js";

export const defaultStats = (overrides: Partial<StatsConfig> = {}): StatsConfig => ({ ...StatsSchema.parse({}), ...overrides });
export const defaultHealth = (overrides: Partial<HealthConfig> = {}): HealthConfig => ({ ...HealthSchema.parse({}), ...overrides });
