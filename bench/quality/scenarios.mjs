// The quality bench's scenarios: each a simulator profile file under scenarios/, and, for the ones
// that degrade a model for a window, the episode whose start and end the leave/return times measure from.

/**
 * @typedef {object} Scenario
 * @property {string} name
 * @property {string} file          profile file, relative to bench/quality/scenarios/
 * @property {string} about         one line for the table and the JSON
 * @property {string | null} degradation  name of the timeline episode that degrades one model, or null
 */

/** @type {readonly Scenario[]} */
export const SCENARIOS = Object.freeze([
  { name: "steady", file: "steady.yaml", about: "every model healthy, no episodes, no faults", degradation: null },
  { name: "brownout", file: "brownout.yaml", about: "qwen3.5-flash TTFT x5 from 30% to 60% of the run", degradation: "qwen-flash-brownout" },
  { name: "heavy-tail", file: "heavy-tail.yaml", about: "qwen3.5-flash: 10% of first tokens +1 s, whole run", degradation: null },
  { name: "burst-429", file: "burst-429.yaml", about: "qwen3.5-flash answers 429 (Retry-After 2) from 30% to 60%", degradation: "qwen-flash-429" },
]);

/**
 * The scenario called `name`.
 * @throws {RangeError} naming the known scenarios
 */
export function scenarioNamed(name) {
  const scenario = SCENARIOS.find((entry) => entry.name === name);
  if (scenario === undefined) throw new RangeError(`unknown scenario "${name}" (scenarios: ${SCENARIOS.map((entry) => entry.name).join(", ")})`);
  return scenario;
}
