/**
 * Options of `convene start`, the whole local cluster in one command, with
 * their defaults (API.md's ports) and validation. Raw values come from a
 * config file (keys below) with flags laid over them (`--data` for dataDir,
 * `--gateway-port`, `--member-ports`, `--demo-ports`), as typed: numbers
 * may be strings. A broken rule throws StartConfigError naming the flag
 * (or the key, for what has no flag), the rule in words and the value.
 */
import { StartConfigError } from "./errors.js";

export interface StartConfig {
  /** Each member keeps its log in <dataDir>/<id>; every process logs to <dataDir>/logs/<id>.log. */
  readonly dataDir: string;
  readonly host: string;
  /** Members n1..nN listen on memberPorts[0..N-1]. */
  readonly members: number;
  readonly memberPorts: readonly number[];
  readonly gatewayPort: number;
  /** Demo meeting servers m1..mN listen on demoPorts[0..N-1]. */
  readonly demoServers: number;
  readonly demoPorts: readonly number[];
  readonly demoCapacity: number;
  readonly checkpointIntervalMs: number;
  /** Log level of the child processes (their logs go to files, not the terminal). */
  readonly logLevel: string;
}

export const startDefaults = {
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
} as const;

/** Keys a config file (or the flags) may set: the defaults', plus the port lists. */
const KNOWN_KEYS = [...Object.keys(startDefaults), "memberPorts", "demoPorts"];

/** How each key is typed on the command line, for messages. */
const FLAG: Readonly<Record<string, string>> = {
  dataDir: "--data",
  gatewayPort: "--gateway-port",
  memberPorts: "--member-ports",
  demoPorts: "--demo-ports",
};

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** The option as a user names it: its flag (and the config key), or the config key alone. */
function named(key: string): string {
  return FLAG[key] ? `${FLAG[key]} (config key ${key})` : key;
}

/** A value as shown in a message: quoted, cut short when long. */
function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (Array.isArray(value)) return `a list of ${value.length}`;
  return String(value);
}

function integer(key: string, value: unknown, min: number, max: number): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new StartConfigError(key, `${named(key)} must be a whole number from ${min} to ${max}, got ${shown(value)}`);
  }
  return n;
}

function port(key: string, value: unknown): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new StartConfigError(key, `${named(key)} must hold port numbers from 1 to 65535, got ${shown(value)}`);
  }
  return n;
}

/**
 * `count` ports from a list ("7001,7002,7003", or an array) or one base
 * port (7001: 7001, 7002, ...); `base` is the legacy *BasePort key.
 */
function portList(key: string, value: unknown, count: number, base: unknown): number[] {
  const what = key === "memberPorts" ? "members" : "demo servers";
  if (value === undefined) {
    const first = port(key === "memberPorts" ? "memberBasePort" : "demoBasePort", base);
    if (first + count - 1 > 65535) throw new StartConfigError(key, `${named(key)}: ${count} ${what} from port ${first} would pass 65535; give a lower base port`);
    return Array.from({ length: count }, (_, i) => first + i);
  }
  const items = typeof value === "string" ? value.split(",").map((s) => s.trim()) : Array.isArray(value) ? value : [value];
  if (items.length === 0 || items.some((item) => item === "")) {
    throw new StartConfigError(key, `${named(key)} must be ports separated by commas (e.g. 7001,7002,7003) or one base port, got ${shown(value)}`);
  }
  const ports = items.map((item) => port(key, item));
  if (ports.length === 1) return portList(key, undefined, count, ports[0]);
  if (ports.length !== count) {
    throw new StartConfigError(key, `${named(key)} lists ${ports.length} ports for ${count} ${what}; give ${count} ports, or one base port`);
  }
  return ports;
}

function text(key: string, value: unknown, valid: (v: string) => boolean, rule: string): string {
  if (typeof value !== "string" || !valid(value)) throw new StartConfigError(key, `${named(key)} must be ${rule}, got ${shown(value)}`);
  return value;
}

export function validateStartConfig(raw: Record<string, unknown>): StartConfig {
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.includes(key) && raw[key] !== undefined) {
      throw new StartConfigError(key, `unknown start option ${shown(key)}; known: ${KNOWN_KEYS.join(", ")}`);
    }
  }
  const given = Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== undefined));
  for (const [list, base] of [["memberPorts", "memberBasePort"], ["demoPorts", "demoBasePort"]] as const) {
    if (given[list] !== undefined && given[base] !== undefined) {
      throw new StartConfigError(list, `${named(list)} and ${base} both set the ports; keep one`);
    }
  }
  const v: Record<string, unknown> = { ...startDefaults, ...given };
  const members = integer("members", v.members, 1, 5);
  // Raft needs a majority: 2 or 4 members survive no more failures than 1 or 3.
  if (members % 2 === 0) throw new StartConfigError("members", `members must be 1, 3 or 5 (a majority of ${members} survives no more failures than of ${members - 1}), got ${members}`);
  const demoServers = integer("demoServers", v.demoServers, 0, 9);
  const config: StartConfig = {
    dataDir: text("dataDir", v.dataDir, (s) => s.length > 0 && s.length <= 4096 && !s.includes("\0"), "a directory path"),
    host: text("host", v.host, (s) => /^[A-Za-z0-9.:-]{1,253}$/.test(s), "a host name or IP address"),
    members,
    memberPorts: portList("memberPorts", v.memberPorts, members, v.memberBasePort),
    gatewayPort: port("gatewayPort", v.gatewayPort),
    demoServers,
    demoPorts: portList("demoPorts", v.demoPorts, demoServers, v.demoBasePort),
    demoCapacity: integer("demoCapacity", v.demoCapacity, 1, 100_000),
    checkpointIntervalMs: integer("checkpointIntervalMs", v.checkpointIntervalMs, 50, 3_600_000),
    logLevel: text("logLevel", v.logLevel, (s) => LOG_LEVELS.includes(s), `one of ${LOG_LEVELS.join(", ")}`),
  };
  const seen = new Map<number, PortOwner>();
  for (const owner of portOwners(config)) {
    const other = seen.get(owner.port);
    if (other) {
      const flags = other.flag === owner.flag ? other.flag : `${other.flag} and ${owner.flag}`;
      throw new StartConfigError("ports", `port ${owner.port} is given to both ${other.name} and ${owner.name}; each process needs its own port (${flags})`);
    }
    seen.set(owner.port, owner);
  }
  return config;
}

/** A port the cluster listens on: which process it is for, and the flag that sets it. */
export interface PortOwner {
  readonly port: number;
  readonly name: string;
  readonly flag: string;
}

/** Every port the cluster listens on, in start order. */
export function portOwners(config: StartConfig): PortOwner[] {
  return [
    ...config.memberPorts.map((port, i) => ({ port, name: `member n${i + 1}`, flag: "--member-ports" })),
    { port: config.gatewayPort, name: "the gateway", flag: "--gateway-port" },
    ...config.demoPorts.map((port, i) => ({ port, name: `demo server m${i + 1}`, flag: "--demo-ports" })),
  ];
}
