// Public surface of the provider simulator (used by `subsecond simulate` and `subsecond demo`).
export { startSimulator, type Simulator, type SimulatorOptions } from "./simulator.js";
export { phaseAt, storyFraction, episodeIntensity, type ModelPhase, type ResolvedFaults } from "./story.js";
export {
  loadSimProfiles,
  parseSimProfiles,
  parseSimProfilesText,
  SimProfilesError,
  SimProfilesSchema,
  type SimProfiles,
  type SimProfilesInput,
  type SimProfilesIssue,
  type ModelProfile,
  type Episode,
  type Faults,
  type HangMode,
} from "./profiles.js";
export {
  planResponse,
  estimatePromptTokens,
  fillerText,
  type ResponsePlan,
  type PlannedFault,
  type ChunkPlan,
  type PlanRequest,
  type PlanOptions,
} from "./plan.js";
export { createSimRng, type SimRng } from "./random.js";
