// Public surface of the demo (used by `subsecond demo` and its tests).
export { runDemo, startDemo, DEFAULT_FOCUS_MODEL, PortInUseError, type DemoOptions, type DemoUi, type RunningDemo } from "./run-demo.js";
export { loadDemoConfig, SIMULATOR_PROVIDER } from "./demo-config.js";
export { parseDurationMs, DurationError } from "./duration.js";
export {
  DEFAULT_MIX,
  planRequest,
  requestBody,
  readStream,
  startTraffic,
  type PlannedRequest,
  type RequestKind,
  type RequestOutcome,
  type TrafficMix,
  type TrafficResult,
} from "./traffic.js";
export { shareOf, failedCount, type DemoSummary, type TimelineWindow, type TrafficTally, type Frame, type ModelRow } from "./demo-state.js";
export { createLiveScreen, frameLines, renderFrame, renderSummary, renderIntro, renderLogLine, type LiveScreen, type ScreenSize } from "./view.js";
