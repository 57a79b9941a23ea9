/**
 * Configuration of a member process, from flags and/or a JSON file.
 * `validateMemberConfig` names the field and value of the first broken rule.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../raft/errors.js";
import { DEFAULT_WEIGHTS, type PlacementWeights } from "../coordinator/node-load.js";
import { SecurityConfigError } from "../security/errors.js";
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
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly snapshotEvery: number;
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
}

/** Defaults tuned for failover well under a second on a small machine. */
export const memberDefaults = {
  tickMs: 20,
  // Election timeout 400–800 ms: heartbeats every 40 ms leave room for
  // event-loop stalls of a loaded 2-core machine without spurious elections.
  electionTicks: 20,
  heartbeatTicks: 2,
  snapshotEvery: 10_000,
  requestTimeoutMs: 5_000,
  logLevel: "info",
} as const;

const ID = /^[A-Za-z0-9._-]{1,64}$/;
const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;

/** Parses "n1=127.0.0.1:7001,n2=127.0.0.1:7002". */
export function parsePeers(raw: string): Map<string, string> {
  const peers = new Map<string, string>();
  if (raw.trim() === "") return peers;
  for (const part of raw.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new ConfigError(`peers must be id=host:port[,id=host:port...], got ${JSON.stringify(part)}`);
    const id = part.slice(0, eq).trim();
    const address = part.slice(eq + 1).trim();
    if (peers.has(id)) throw new ConfigError(`peers lists ${id} twice`);
    peers.set(id, address);
  }
  return peers;
}

function intField(field: string, value: unknown, min: number, max: number): number {
  const n = typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Raw settings as they come from flags or a file (strings or numbers). */
export type RawMemberConfig = Partial<Record<Exclude<keyof MemberConfig, "security"> | SecurityKey | "config", unknown>>;

/** The security settings' keys, flat beside the others (flags: --ca, --cert, --key, --require-client-cert, --tokens, --insecure). */
const SECURITY_KEYS = ["ca", "cert", "key", "requireClientCert", "tokensFile", "insecure"] as const;
type SecurityKey = (typeof SECURITY_KEYS)[number];

/**
 * Reads a member's config file: YAML (so JSON files work too), a mapping
 * with the keys of MemberConfig. An unknown key is refused, naming it: a
 * misspelt key would otherwise run silently with the default. Called by
 * the CLI before validateMemberConfig, with flags laid over the result.
 */
export function loadConfigFile(path: string): RawMemberConfig {
  const known: readonly string[] = [
    "id", "listen", "peers", "dataDir", "join", "tickMs", "electionTicks", "heartbeatTicks",
    "snapshotEvery", "requestTimeoutMs", "logLevel", "app", "nodeAddressAllow", "placementWeights", "eventLogSize", ...SECURITY_KEYS,
  ];
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`config file ${path} cannot be read`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML or JSON: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(`config file ${path} must be a mapping of key: value, got ${Array.isArray(doc) ? "a list" : JSON.stringify(doc)}`);
  }
  for (const key of Object.keys(doc)) {
    if (!known.includes(key)) throw new ConfigError(`config file ${path}: unknown key ${JSON.stringify(key)} (known keys: ${known.join(", ")})`);
  }
  return doc as RawMemberConfig;
}

/**
 * Placement weights as a YAML map ({ meetings: 1, cpu: 2 }) or the flag's
 * "meetings=1,cpu=2"; unnamed ones keep their defaults.
 */
function validatePlacementWeights(value: unknown): PlacementWeights {
  if (value === undefined) return DEFAULT_WEIGHTS;
  let entries: [string, unknown][];
  if (typeof value === "string") {
    entries = value.split(",").filter((p) => p.trim() !== "").map((part) => {
      const eq = part.indexOf("=");
      if (eq <= 0) throw new ConfigError(`placementWeights must be name=number[,name=number...], got ${JSON.stringify(part)}`);
      return [part.slice(0, eq).trim(), Number(part.slice(eq + 1))];
    });
  } else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    entries = Object.entries(value);
  } else {
    throw new ConfigError(`placementWeights must be a map of weights, got ${JSON.stringify(value)}`);
  }
  const weights: Record<string, number> = { ...DEFAULT_WEIGHTS };
  for (const [name, weight] of entries) {
    if (!Object.prototype.hasOwnProperty.call(DEFAULT_WEIGHTS, name)) {
      throw new ConfigError(`placementWeights: unknown weight ${JSON.stringify(name)} (known: ${Object.keys(DEFAULT_WEIGHTS).join(", ")})`);
    }
    if (typeof weight !== "number" || !Number.isFinite(weight) || weight < 0 || weight > 1000) {
      throw new ConfigError(`placementWeights.${name} must be a number from 0 to 1000, got ${JSON.stringify(weight)}`);
    }
    weights[name] = weight;
  }
  return weights as unknown as PlacementWeights;
}

function validateApp(value: unknown): "coordinator" | "kv" {
  if (value === undefined) return "coordinator";
  if (value === "coordinator" || value === "kv") return value;
  throw new ConfigError(`app must be "coordinator" or "kv", got ${JSON.stringify(value)}`);
}

export function validateMemberConfig(raw: RawMemberConfig): MemberConfig {
  const id = raw.id;
  if (typeof id !== "string" || !ID.test(id)) throw new ConfigError(`id must match ${ID.source}, got ${JSON.stringify(id)}`);
  const listen = raw.listen;
  if (typeof listen !== "string" || !HOST_PORT.test(listen)) {
    throw new ConfigError(`listen must be host:port, got ${JSON.stringify(listen)}`);
  }
  const peers =
    raw.peers instanceof Map
      ? (raw.peers as Map<string, string>)
      : typeof raw.peers === "string"
        ? parsePeers(raw.peers)
        : raw.peers && typeof raw.peers === "object"
          ? new Map(Object.entries(raw.peers as Record<string, string>))
          : new Map<string, string>();
  for (const [peerId, address] of peers) {
    if (!ID.test(peerId)) throw new ConfigError(`peers: id must match ${ID.source}, got ${JSON.stringify(peerId)}`);
    if (typeof address !== "string" || !HOST_PORT.test(address)) {
      throw new ConfigError(`peers: address of ${peerId} must be host:port, got ${JSON.stringify(address)}`);
    }
  }
  const join = raw.join === true || raw.join === "true";
  if (!join && !peers.has(id)) throw new ConfigError(`peers must include this member's own id ${id} (or pass join)`);
  const dataDir = raw.dataDir;
  if (typeof dataDir !== "string" || dataDir === "") throw new ConfigError(`data must be a directory path, got ${JSON.stringify(dataDir)}`);
  const tickMs = intField("tickMs", raw.tickMs ?? memberDefaults.tickMs, 1, 10_000);
  const heartbeatTicks = intField("heartbeatTicks", raw.heartbeatTicks ?? memberDefaults.heartbeatTicks, 1, 1_000);
  const electionTicks = intField("electionTicks", raw.electionTicks ?? memberDefaults.electionTicks, 2, 10_000);
  if (electionTicks <= heartbeatTicks) {
    throw new ConfigError(`electionTicks (${electionTicks}) must be greater than heartbeatTicks (${heartbeatTicks})`);
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
    tickMs,
    electionTicks,
    heartbeatTicks,
    snapshotEvery: intField("snapshotEvery", raw.snapshotEvery ?? memberDefaults.snapshotEvery, 1, 100_000_000),
    requestTimeoutMs: intField("requestTimeoutMs", raw.requestTimeoutMs ?? memberDefaults.requestTimeoutMs, 1, 600_000),
    logLevel: typeof raw.logLevel === "string" ? raw.logLevel : memberDefaults.logLevel,
    app: validateApp(raw.app),
    security,
    nodeAddressAllow,
    placementWeights: validatePlacementWeights(raw.placementWeights),
    eventLogSize: intField("eventLogSize", raw.eventLogSize ?? 20_000, 1, 10_000_000),
  };
}
