/**
 * The demo meeting server's config: its keys, their defaults, and
 * `validateDemoServerConfig`, which `startDemoServer`'s caller (the CLI, a
 * test) runs first. Raw values may come from CLI flags, so numbers may be
 * numeric strings and `coordinators` a comma-separated string. Each broken
 * rule throws a DemoServerConfigError naming the key, the rule in words and
 * the value (src/wire/describe.ts):
 *   capacity must be a whole number from 1 to 4,294,967,295; got "0"
 */
import { CLIENT_SECURITY_KEYS, type ClientSecuritySettings, optionalClientSecurity } from "../security/client-security.js";
import { SecurityConfigError } from "../security/errors.js";
import { type FieldNames, configKeys, describeValue as shown, idProblem, missingFields } from "../wire/describe.js";
import { DemoServerConfigError } from "./errors.js";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export interface DemoServerConfig {
  /** The node id registered with the coordinator. */
  readonly nodeId: string;
  /** "host:port" the HTTP server binds; port 0 picks a free port (tests). */
  readonly listen: string;
  /** "host:port" registered with the coordinator; undefined: the actual listen address. */
  readonly advertise: string | undefined;
  readonly coordinators: readonly string[];
  /** Max meetings this server hosts. */
  readonly capacity: number;
  readonly region: string;
  /** How often each room is checkpointed (only rooms that changed are sent). */
  readonly checkpointIntervalMs: number;
  /**
   * How long a request for a meeting not held waits for its ASSIGNED before
   * the 421: the gateway proxies right after creating the meeting, so the
   * assignment may be a few ms behind the first request.
   */
  readonly assignmentWaitMs: number;
  readonly logLevel: LogLevel;
  /** TLS to the members and the agent's token (keys ca, cert, key, token, insecure); undefined: loopback plaintext. */
  readonly security?: ClientSecuritySettings;
  /** HTTPS (and WSS) on its own port (keys tlsCert, tlsKey: PEM files); undefined: plain HTTP. Gateways then need --node-ca. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export const demoServerDefaults = {
  listen: "127.0.0.1:9001",
  coordinators: ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"],
  capacity: 100,
  region: "",
  checkpointIntervalMs: 1000,
  assignmentWaitMs: 2000,
  logLevel: "info",
} as const;

const HOST_PORT_PATTERN = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252}):([0-9]{1,5})$/;
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const KEYS = [
  "nodeId", "listen", "advertise", "coordinators", "capacity", "region", "checkpointIntervalMs", "assignmentWaitMs", "logLevel", "tlsCert", "tlsKey",
  ...CLIENT_SECURITY_KEYS,
] as const;
const MAX_UINT32 = 0xffff_ffff;
const MAX_REGION_CHARS = 64;

function hostPort(key: string, value: unknown, allowPortZero: boolean, names: FieldNames): string {
  const match = typeof value === "string" ? HOST_PORT_PATTERN.exec(value) : null;
  const port = match ? Number(match[1]) : -1;
  if (!match || port > 65535 || port < (allowPortZero ? 0 : 1)) {
    const ports = allowPortZero ? "a port from 0 (any free port) to 65535" : "a port from 1 to 65535";
    throw new DemoServerConfigError(`${names(key)} must be host:port with ${ports}; got ${shown(value)}`);
  }
  return value as string;
}

function integer(key: string, value: unknown, min: number, max: number, names: FieldNames): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new DemoServerConfigError(`${names(key)} must be a whole number from ${min} to ${max.toLocaleString("en-US")}; got ${shown(value)}`);
  }
  return n;
}

function coordinatorList(value: unknown, names: FieldNames): string[] {
  const list = typeof value === "string" ? value.split(",").map((s) => s.trim()).filter((s) => s !== "") : value;
  if (!Array.isArray(list) || list.length === 0) {
    throw new DemoServerConfigError(`${names("coordinators")} must list the coordinator members as host:port (a list, or comma-separated); got ${shown(value)}`);
  }
  const seen = new Set<string>();
  for (const address of list) {
    hostPort("coordinators", address, false, names);
    if (seen.has(address as string)) throw new DemoServerConfigError(`${names("coordinators")} lists ${shown(address)} twice`);
    seen.add(address as string);
  }
  return [...seen];
}

/** The host part of "host:port", without IPv6 brackets. */
export function hostOf(address: string): string {
  const host = address.slice(0, address.lastIndexOf(":"));
  return host.startsWith("[") ? host.slice(1, -1) : host;
}

/** Whether a listen host binds every interface (so it cannot be advertised as is). */
export function isWildcardHost(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

/**
 * Checks every key and fills in the defaults; absent and undefined are the
 * same. `names` says how messages name a field: the config key by default;
 * the CLI passes the flags.
 */
export function validateDemoServerConfig(raw: Record<string, unknown>, names: FieldNames = configKeys): DemoServerConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new DemoServerConfigError(`config must be an object, got ${shown(raw)}`);
  for (const key of Object.keys(raw)) {
    if (raw[key] !== undefined && !(KEYS as readonly string[]).includes(key)) {
      throw new DemoServerConfigError(`${shown(key)} is not a demo server config key; known keys: ${KEYS.join(", ")}`);
    }
  }
  const missing = missingFields(raw, ["nodeId"], names);
  if (missing) throw new DemoServerConfigError(`${missing}: the id this server registers with the coordinator`);
  const nodeId = raw["nodeId"];
  const idError = idProblem("node", nodeId);
  if (typeof nodeId !== "string" || idError) throw new DemoServerConfigError(`${names("nodeId")} ${idError}`);
  const listen = hostPort("listen", raw["listen"] ?? demoServerDefaults.listen, true, names);
  const advertise = raw["advertise"] === undefined ? undefined : hostPort("advertise", raw["advertise"], false, names);
  if (advertise === undefined && isWildcardHost(hostOf(listen))) {
    throw new DemoServerConfigError(`${names("advertise")} is required when ${names("listen")} binds every interface (${shown(listen)}): gateways must be told an address they can reach`);
  }
  const region = raw["region"] ?? demoServerDefaults.region;
  if (typeof region !== "string" || region.length > MAX_REGION_CHARS || CONTROL_CHARS.test(region)) {
    throw new DemoServerConfigError(`${names("region")} must be text of at most ${MAX_REGION_CHARS} characters without control characters; got ${shown(region)}`);
  }
  const logLevel = raw["logLevel"] ?? demoServerDefaults.logLevel;
  if (typeof logLevel !== "string" || !(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new DemoServerConfigError(`${names("logLevel")} must be one of ${LOG_LEVELS.join(", ")}; got ${shown(logLevel)}`);
  }
  const coordinators = coordinatorList(raw["coordinators"] ?? demoServerDefaults.coordinators, names);
  let security: ClientSecuritySettings | undefined;
  try {
    security = optionalClientSecurity(raw, coordinators);
  } catch (err) {
    if (err instanceof SecurityConfigError) throw new DemoServerConfigError(err.message, { cause: err });
    throw err;
  }
  const tls = ownTls(raw["tlsCert"], raw["tlsKey"]);
  return {
    nodeId,
    listen,
    advertise,
    coordinators,
    capacity: integer("capacity", raw["capacity"] ?? demoServerDefaults.capacity, 1, MAX_UINT32, names),
    region,
    checkpointIntervalMs: integer("checkpointIntervalMs", raw["checkpointIntervalMs"] ?? demoServerDefaults.checkpointIntervalMs, 10, 3_600_000, names),
    assignmentWaitMs: integer("assignmentWaitMs", raw["assignmentWaitMs"] ?? demoServerDefaults.assignmentWaitMs, 0, 30_000, names),
    logLevel: logLevel as LogLevel,
    ...(security ? { security } : {}),
    ...(tls ? { tls } : {}),
  };
}

/** tlsCert and tlsKey: both file paths, or neither. */
function ownTls(cert: unknown, key: unknown): { cert: string; key: string } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  for (const [field, value] of [["tlsCert", cert], ["tlsKey", key]] as const) {
    if (typeof value !== "string" || value === "") {
      throw new DemoServerConfigError(`${field} must be a file path (tlsCert and tlsKey go together: a certificate and its private key), got ${shown(value)}`);
    }
  }
  return { cert: cert as string, key: key as string };
}
