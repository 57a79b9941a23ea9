/**
 * The node agent's public surface: what a meeting server (or the CLI)
 * imports. Everything else in src/node-agent/ is internal.
 */
export { NodeAgent } from "./node-agent.js";
export type {
  AgentEvents,
  AssignedInfo,
  CheckpointSavedInfo,
  HandedOverInfo,
  HandoverInfo,
  HeartbeatInfo,
  RegisteredInfo,
  ReregisteredInfo,
  RevokeReason,
  RevokedInfo,
  ShutdownOptions,
  StopOptions,
} from "./agent-events.js";
export { agentDefaults, validateAgentConfig } from "./agent-config.js";
export type {
  AgentConfig,
  AgentLogger,
  AgentOptions,
  GetState,
  LoadLimits,
  LoadSample,
  OnAssigned,
  OnHandover,
  OnRevoked,
  RawAgentOptions,
  ReportLoad,
} from "./agent-config.js";
export { formatDuration, parseDuration } from "./duration.js";
export type { Checkpoint } from "./coordinator-responses.js";
export {
  AgentConfigError,
  AgentError,
  AgentStoppedError,
  BadResponseError,
  CoordinatorCallError,
  HostCallbackError,
  MeetingMovingError,
  MeetingNotHeldError,
} from "./errors.js";
export { AgentSidecar, agentUsage, parseSidecarArgs, runAgentSidecar, sidecarDefaults } from "./sidecar.js";
export type { SidecarOptions } from "./sidecar.js";
