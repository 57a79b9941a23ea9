/**
 * The node agent's public surface: what a meeting server (or the CLI)
 * imports. Everything else in src/node-agent/ is internal.
 */
export { NodeAgent } from "./node-agent.js";
export type {
  AgentEvents,
  AssignedInfo,
  CheckpointSavedInfo,
  HeartbeatInfo,
  RegisteredInfo,
  ReregisteredInfo,
  RevokeReason,
  RevokedInfo,
  StopOptions,
} from "./agent-events.js";
export { agentDefaults, validateAgentConfig } from "./agent-config.js";
export type { AgentConfig, AgentLogger, AgentOptions, GetState, OnAssigned, OnRevoked, RawAgentOptions } from "./agent-config.js";
export type { Checkpoint } from "./coordinator-responses.js";
export {
  AgentConfigError,
  AgentError,
  AgentStoppedError,
  BadResponseError,
  CoordinatorCallError,
  HostCallbackError,
  MeetingNotHeldError,
} from "./errors.js";
export { AgentSidecar, agentUsage, parseSidecarArgs, runAgentSidecar, sidecarDefaults } from "./sidecar.js";
export type { SidecarOptions } from "./sidecar.js";
