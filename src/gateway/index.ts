/**
 * The gateway's public surface (src/gateway/): the HTTP front door of
 * API.md's "Gateway: HTTP". Callers: the CLI, the tests, the benchmark.
 *
 *   const config = validateGatewayConfig({ listen: "127.0.0.1:8080", coordinators: "127.0.0.1:7001,127.0.0.1:7002" });
 *   const gateway = await startGateway(config, logger);
 *   ...
 *   await gateway.close();
 */
export { type GatewayConfig, gatewayDefaults, validateGatewayConfig } from "./config.js";
export { type Gateway, type GatewayStats, MAX_HEADER_BYTES, startGateway } from "./gateway.js";
export type { Route } from "./route-cache.js";
export {
  BadPathError,
  CreateRateLimitedError,
  GatewayClosedError,
  GatewayConfigError,
  GatewayError,
  HeadersTooLargeError,
  InvalidMeetingIdError,
  MeetingNotFoundError,
  NoQuorumError,
  NoRoomError,
  RouteNotFoundError,
  UpstreamUnavailableError,
} from "./errors.js";
