/**
 * Options of `convene start`, the whole local cluster in one command, with
 * their defaults (API.md's ports) and validation naming the field and rule.
 */
import { ConfigError } from "../raft/errors.js";

export interface StartConfig {
  /** Each member keeps its log in <dataDir>/<id>; every process logs to <dataDir>/logs/<id>.log. */
  readonly dataDir: string;
  readonly host: string;
  /** Members n1..nN listen on memberBasePort, +1, ... */
  readonly members: number;
  readonly memberBasePort: number;
  readonly gatewayPort: number;
  /** Demo meeting servers m1..mN listen on demoBasePort, +1, ... */
  readonly demoServers: number;
  readonly demoBasePort: number;
  readonly demoCapacity: number;
  readonly checkpointIntervalMs: number;
  /** Log level of the child processes (their logs go to files, not the terminal). */
  readonly logLevel: string;
}

export const startDefaults: StartConfig = {
  dataDir: "./data",
  host: "127.0.0.1",
  members: 3,
  memberBasePort: 7001,
  gatewayPort: 8080,
  demoServers: 2,
  demoBasePort: 9001,
  demoCapacity: 100,
  checkpointIntervalMs: 1000,
  logLevel: "info",
};

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function integer(field: string, value: unknown, min: number, max: number): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function text(field: string, value: unknown, rule: RegExp, ruleText: string): string {
  if (typeof value !== "string" || !rule.test(value)) throw new ConfigError(`${field} must be ${ruleText}, got ${JSON.stringify(value)}`);
  return value;
}

export function validateStartConfig(raw: Record<string, unknown>): StartConfig {
  for (const key of Object.keys(raw)) {
    if (!(key in startDefaults)) throw new ConfigError(`unknown start option ${JSON.stringify(key)}; known: ${Object.keys(startDefaults).join(", ")}`);
  }
  const v = { ...startDefaults, ...Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== undefined)) };
  const config: StartConfig = {
    dataDir: text("dataDir", v.dataDir, /^[^\0]{1,4096}$/, "a directory path"),
    host: text("host", v.host, /^[A-Za-z0-9.:-]{1,253}$/, "a host name or address"),
    // Raft needs a majority: 1 (no fault tolerance), 3 or 5.
    members: integer("members", v.members, 1, 5),
    memberBasePort: integer("memberBasePort", v.memberBasePort, 1, 65530),
    gatewayPort: integer("gatewayPort", v.gatewayPort, 1, 65535),
    demoServers: integer("demoServers", v.demoServers, 0, 9),
    demoBasePort: integer("demoBasePort", v.demoBasePort, 1, 65526),
    demoCapacity: integer("demoCapacity", v.demoCapacity, 1, 100_000),
    checkpointIntervalMs: integer("checkpointIntervalMs", v.checkpointIntervalMs, 50, 3_600_000),
    logLevel: text("logLevel", v.logLevel, new RegExp(`^(${LOG_LEVELS.join("|")})$`), `one of ${LOG_LEVELS.join(", ")}`),
  };
  const ports = [
    ...Array.from({ length: config.members }, (_, i) => config.memberBasePort + i),
    config.gatewayPort,
    ...Array.from({ length: config.demoServers }, (_, i) => config.demoBasePort + i),
  ];
  if (new Set(ports).size !== ports.length) throw new ConfigError(`ports overlap: members, gateway and demo servers need distinct ports, got ${ports.join(", ")}`);
  return config;
}
