/**
 * Configuration of a member process, from flags and/or a YAML or JSON file.
 * `validateMemberConfig` names the field (as the caller spells it: see
 * FieldNames), the rule in words and the value of the first broken rule.
 */
import { ConfigError } from "../raft/errors.js";
import { DEFAULT_WEIGHTS, type PlacementWeights } from "../coordinator/node-load.js";
import { type FieldNames, HOST_PORT_RULE, configKeys, describeValue, idProblem, inWords } from "../wire/describe.js";
import { SecurityConfigError } from "../security/errors.js";
import { hostOfAddress, isLoopbackHost } from "../security/listen-policy.js";
import { type Cidr, parseCidrList } from "../security/node-address-policy.js";
import { type ServerSecuritySettings, validateServerSecurity } from "../security/server-security.js";

export interface MemberConfig {
  readonly id: string;
  /** host:port this member's gRPC server binds. */
  readonly listen: string;
  /** Every founding member's id → host:port (including this one). */
  readonly peers: ReadonlyMap<string, string>;
  readonly dataDir: string;
  /** Join an existing group (as a learner added by an operator) instead of founding one. */
  readonly join: boolean;
  /**
   * Recovery from a lost majority: start as the only member of the group,
   * keeping this member's data (README "Losing a majority"). Done once per
   * data directory; never without this explicit flag.
   */
  readonly forceNewCluster: boolean;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly snapshotEvery: number;
  /** Entries kept in memory behind each snapshot, for followers a little behind it (RaftDriverOptions.catchUpEntries). */
  readonly snapshotCatchUpEntries: number;
  readonly requestTimeoutMs: number;
  readonly logLevel: string;
  /**
   * The replicated application: "coordinator" (the product: API.md's
   * NodeAgent and Coordinator services) or "kv" (a small key-value store,
   * for the Raft layer's durability tests and benchmark).
   */
  readonly app: "coordinator" | "kv";
  /** TLS, tokens and the plaintext opt-in (src/security/server-security.ts); none on the loopback quick start. */
  readonly security: ServerSecuritySettings;
  /**
   * Networks a meeting server's registered address must be in
   * (--node-address-allow); undefined: any address the node address policy
   * does not refuse always (src/security/node-address-policy.ts).
   */
  readonly nodeAddressAllow: readonly Cidr[] | undefined;
  /**
   * The coordinator's placement weights (src/coordinator/node-load.ts) and
   * how many events it keeps (WatchEvents). They steer the replicated
   * state: every member must run with the same values.
   */
  readonly placementWeights: PlacementWeights;
  readonly eventLogSize: number;
  /**
   * Where the member serves /metrics, /livez and /readyz over HTTP
   * (metrics-server.ts): host:port (port 0: any free one), undefined for
   * none ("off"). Default: 127.0.0.1 and the gRPC port + 1000.
   */
  readonly metricsListen: string | undefined;
  /** Whether metricsListen is that default: a port already taken then only warns instead of stopping the start. */
  readonly metricsListenDefaulted: boolean;
}

/** Defaults tuned for failover well under a second on a small machine. */
export const memberDefaults = {
  tickMs: 20,
  // Election timeout 400–800 ms: heartbeats every 40 ms leave room for
  // event-loop stalls of a loaded 2-core machine without spurious elections.
  // Every 100 ms (etcd's default) halves an idle member's CPU here, but a
  // saturated group (10,000 servers heartbeating) then lost its leader
  // again and again (BENCHMARKS.md, issue 21's table).
  electionTicks: 20,
  heartbeatTicks: 2,
  snapshotEvery: 10_000,
  // Off: see ETCD_CATCH_UP_ENTRIES in src/raft-runtime/driver.ts.
  snapshotCatchUpEntries: 0,
  requestTimeoutMs: 5_000,
  logLevel: "info",
} as const;

const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;

/** Parses "n1=127.0.0.1:7001,n2=127.0.0.1:7002". */
export function parsePeers(raw: string, names: FieldNames = configKeys): Map<string, string> {
  const peers = new Map<string, string>();
  if (raw.trim() === "") return peers;
  for (const part of raw.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new ConfigError(`${names("peers")} must list the founding members as id=host:port, comma-separated; got ${describeValue(part)}`);
    const id = part.slice(0, eq).trim();
    const address = part.slice(eq + 1).trim();
    if (peers.has(id)) throw new ConfigError(`${names("peers")} lists ${describeValue(id)} twice`);
    peers.set(id, address);
  }
  return peers;
}

function intField(field: string, value: unknown, min: number, max: number, names: FieldNames): number {
  const n = typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${names(field)} must be a whole number from ${min} to ${max.toLocaleString("en-US")}; got ${describeValue(value)}`);
  }
  return n;
}

/** Raw settings as they come from flags or a file (strings or numbers). */
export type RawMemberConfig = Partial<Record<Exclude<keyof MemberConfig, "security"> | SecurityKey | "config", unknown>>;

/** The security settings' keys, flat beside the others (flags: --ca, --cert, --key, --require-client-cert, --tokens, --insecure). */
const SECURITY_KEYS = ["ca", "cert", "key", "requireClientCert", "tokensFile", "insecure"] as const;
type SecurityKey = (typeof SECURITY_KEYS)[number];

export const MEMBER_CONFIG_KEYS: readonly string[] = [
  "id", "listen", "peers", "dataDir", "join", "forceNewCluster", "tickMs", "electionTicks", "heartbeatTicks",
  "snapshotEvery", "snapshotCatchUpEntries", "requestTimeoutMs", "logLevel", "app", "nodeAddressAllow", "metricsListen", "placementWeights", "eventLogSize",
  ...SECURITY_KEYS,
];

/**
 * A member's config file as read (YAML or JSON: src/cli/config-file.ts),
 * checked for keys the member does not know: a misspelt key would
 * otherwise run silently with the default. Called by the CLI before
 * validateMemberConfig, with flags laid over the result.
 */
export function checkMemberConfigKeys(doc: Readonly<Record<string, unknown>>, path: string): RawMemberConfig {
  for (const key of Object.keys(doc)) {
    if (!MEMBER_CONFIG_KEYS.includes(key)) {
      throw new ConfigError(`config file ${path}: unknown key ${describeValue(key)} (known keys: ${MEMBER_CONFIG_KEYS.join(", ")})`);
    }
  }
  return doc as RawMemberConfig;
}

/**
 * Placement weights as a YAML map ({ meetings: 1, cpu: 2 }) or the flag's
 * "meetings=1,cpu=2"; unnamed ones keep their defaults.
 */
function validatePlacementWeights(value: unknown, names: FieldNames): PlacementWeights {
  if (value === undefined) return DEFAULT_WEIGHTS;
  let entries: [string, unknown][];
  if (typeof value === "string") {
    entries = value.split(",").filter((p) => p.trim() !== "").map((part) => {
      const eq = part.indexOf("=");
      if (eq <= 0) throw new ConfigError(`${names("placementWeights")} must be name=number, comma-separated; got ${describeValue(part)}`);
      return [part.slice(0, eq).trim(), Number(part.slice(eq + 1))];
    });
  } else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    entries = Object.entries(value);
  } else {
    throw new ConfigError(`${names("placementWeights")} must be a map of weights; got ${describeValue(value)}`);
  }
  const weights: Record<string, number> = { ...DEFAULT_WEIGHTS };
  for (const [name, weight] of entries) {
    if (!Object.prototype.hasOwnProperty.call(DEFAULT_WEIGHTS, name)) {
      throw new ConfigError(`${names("placementWeights")}: unknown weight ${describeValue(name)} (known: ${Object.keys(DEFAULT_WEIGHTS).join(", ")})`);
    }
    if (typeof weight !== "number" || !Number.isFinite(weight) || weight < 0 || weight > 1000) {
      throw new ConfigError(`${names("placementWeights")}: the weight ${name} must be a number from 0 to 1000; got ${describeValue(weight)}`);
    }
    weights[name] = weight;
  }
  return weights as unknown as PlacementWeights;
}

/** The metrics address: given (or "off"), or the default beside the gRPC port. */
function validateMetricsListen(value: unknown, listen: string, insecure: boolean, names: FieldNames): { metricsListen: string | undefined; metricsListenDefaulted: boolean } {
  if (value === undefined) {
    const grpcPort = Number(listen.slice(listen.lastIndexOf(":") + 1));
    // A member on any free port (0) gets any free metrics port too.
    const port = grpcPort === 0 ? 0 : grpcPort + 1000;
    return port > 65_535 ? { metricsListen: undefined, metricsListenDefaulted: true } : { metricsListen: `127.0.0.1:${port}`, metricsListenDefaulted: true };
  }
  if (value === "off") return { metricsListen: undefined, metricsListenDefaulted: false };
  if (typeof value !== "string" || !HOST_PORT.test(value) || Number(value.slice(value.lastIndexOf(":") + 1)) > 65_535) {
    throw new ConfigError(`${names("metricsListen")} must be host:port (port 0 for any free one) or "off"; got ${describeValue(value)}`);
  }
  if (!isLoopbackHost(hostOfAddress(value)) && !insecure) {
    throw new ConfigError(
      `${names("metricsListen")} ${value} is beyond loopback: metrics are plain HTTP without authentication; pass ${names("insecure")} to serve them there anyway (behind a firewall), or keep them on 127.0.0.1`,
    );
  }
  return { metricsListen: value, metricsListenDefaulted: false };
}

function validateApp(value: unknown, names: FieldNames): "coordinator" | "kv" {
  if (value === undefined) return "coordinator";
  if (value === "coordinator" || value === "kv") return value;
  throw new ConfigError(`${names("app")} must be "coordinator" or "kv"; got ${describeValue(value)}`);
}

function peersOf(raw: unknown, names: FieldNames): Map<string, string> {
  if (raw instanceof Map) return raw as Map<string, string>;
  if (typeof raw === "string") return parsePeers(raw, names);
  if (raw && typeof raw === "object") return new Map(Object.entries(raw as Record<string, string>));
  return new Map<string, string>();
}

/**
 * Checks every field and fills in the defaults. `names` says how messages
 * name a field: the config key by default; the CLI passes the flags.
 */
export function validateMemberConfig(raw: RawMemberConfig, names: FieldNames = configKeys): MemberConfig {
  const join = raw.join === true || raw.join === "true";
  const forceNewCluster = raw.forceNewCluster === true || raw.forceNewCluster === "true";
  if (forceNewCluster && join) {
    throw new ConfigError(`${names("forceNewCluster")} and ${names("join")} exclude each other: a forced member keeps its own data, a joiner starts empty`);
  }
  const missing = (["id", "listen", "dataDir"] as const).filter((f) => raw[f] === undefined || raw[f] === "").map(names);
  if (raw.peers === undefined && !join) missing.push(`${names("peers")} (or ${names("join")})`);
  if (missing.length > 0) throw new ConfigError(`${inWords(missing)} ${missing.length === 1 ? "is" : "are"} required`);
  const id = raw.id;
  const idError = idProblem("member", id);
  if (typeof id !== "string" || idError) throw new ConfigError(`${names("id")} ${idError}`);
  const listen = raw.listen;
  if (typeof listen !== "string" || !HOST_PORT.test(listen)) {
    throw new ConfigError(`${names("listen")} must be ${HOST_PORT_RULE}; got ${describeValue(listen)}`);
  }
  const peers = peersOf(raw.peers, names);
  for (const [peerId, address] of peers) {
    const peerError = idProblem("member", peerId);
    if (peerError) throw new ConfigError(`${names("peers")}: each member's id ${peerError}`);
    if (typeof address !== "string" || !HOST_PORT.test(address)) {
      throw new ConfigError(`${names("peers")}: the address of ${peerId} must be ${HOST_PORT_RULE}; got ${describeValue(address)}`);
    }
  }
  if (!join && !peers.has(id)) {
    const why = peers.size === 0 ? "is required to found a group" : `must include this member (${id}=${listen}) to found a group`;
    throw new ConfigError(`${names("peers")} ${why}: every founding member as id=host:port, comma-separated; or pass ${names("join")} to join an existing group`);
  }
  const dataDir = raw.dataDir;
  if (typeof dataDir !== "string" || dataDir === "") throw new ConfigError(`${names("dataDir")} must be a directory path; got ${describeValue(dataDir)}`);
  const tickMs = intField("tickMs", raw.tickMs ?? memberDefaults.tickMs, 1, 10_000, names);
  const heartbeatTicks = intField("heartbeatTicks", raw.heartbeatTicks ?? memberDefaults.heartbeatTicks, 1, 1_000, names);
  const electionTicks = intField("electionTicks", raw.electionTicks ?? memberDefaults.electionTicks, 2, 10_000, names);
  if (electionTicks <= heartbeatTicks) {
    throw new ConfigError(`${names("electionTicks")} (${electionTicks}) must be greater than ${names("heartbeatTicks")} (${heartbeatTicks})`);
  }
  let security: ServerSecuritySettings;
  try {
    security = validateServerSecurity(raw, listen, [...peers].filter(([peerId]) => peerId !== id).map(([, address]) => address));
  } catch (err) {
    // One error class for every member config rule.
    if (err instanceof SecurityConfigError) throw new ConfigError(err.message, { cause: err });
    throw err;
  }
  let nodeAddressAllow: Cidr[] | undefined;
  try {
    nodeAddressAllow = raw.nodeAddressAllow === undefined ? undefined : parseCidrList(raw.nodeAddressAllow, "nodeAddressAllow (--node-address-allow)");
  } catch (err) {
    if (err instanceof SecurityConfigError) throw new ConfigError(err.message, { cause: err });
    throw err;
  }
  return {
    id,
    listen,
    peers,
    dataDir,
    join,
    forceNewCluster,
    tickMs,
    electionTicks,
    heartbeatTicks,
    snapshotEvery: intField("snapshotEvery", raw.snapshotEvery ?? memberDefaults.snapshotEvery, 1, 100_000_000, names),
    snapshotCatchUpEntries: intField("snapshotCatchUpEntries", raw.snapshotCatchUpEntries ?? memberDefaults.snapshotCatchUpEntries, 0, 100_000_000, names),
    requestTimeoutMs: intField("requestTimeoutMs", raw.requestTimeoutMs ?? memberDefaults.requestTimeoutMs, 1, 600_000, names),
    logLevel: typeof raw.logLevel === "string" ? raw.logLevel : memberDefaults.logLevel,
    app: validateApp(raw.app, names),
    security,
    nodeAddressAllow,
    placementWeights: validatePlacementWeights(raw.placementWeights, names),
    eventLogSize: intField("eventLogSize", raw.eventLogSize ?? 20_000, 1, 10_000_000, names),
    ...validateMetricsListen(raw.metricsListen, listen, security.insecure, names),
  };
}
