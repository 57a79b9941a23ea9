/**
 * The node agent's options, their defaults, and `validateAgentConfig`, which
 * the NodeAgent constructor calls first. Each broken rule throws an
 * AgentConfigError naming the field, the rule in words and the value:
 *   capacity must be a whole number from 1 to 4,294,967,295; got 0
 * The limits mirror what the coordinator accepts (API.md), so a config that
 * passes here is not refused by Register later.
 */
import type { Logger } from "pino";
import { tokenField } from "../security/client-security.js";
import { SecurityConfigError } from "../security/errors.js";
import { checkClientTransport } from "../security/listen-policy.js";
import { type TlsMaterial, checkTlsMaterial } from "../security/tls-files.js";
import type { Checkpoint } from "./coordinator-responses.js";
import { type FieldNames, HOST_PORT_RULE, configKeys, describeValue, idProblem, missingFields } from "../wire/describe.js";
import { AgentConfigError } from "./errors.js";

/** The part of a pino logger the agent uses; any pino logger fits. */
export type AgentLogger = Pick<Logger, "debug" | "info" | "warn" | "error">;

/**
 * Called when the coordinator assigns a meeting to this node: start serving
 * it, restoring from `checkpoint` when one is given. Called again with a
 * higher epoch after an `onRevoked` when the meeting moved away and back.
 * May return a promise; the agent does not wait for it, and a throw or a
 * rejection is reported as an 'error' event, never raised.
 */
export type OnAssigned = (meetingId: string, epoch: number, checkpoint: Checkpoint | undefined) => void | Promise<void>;
/** Called when this node must stop serving a meeting (moved, ended, or the node was fenced). */
export type OnRevoked = (meetingId: string) => void | Promise<void>;
/** The meeting's state to checkpoint now, or undefined to skip this round. */
export type GetState = (meetingId: string) => Uint8Array | undefined | Promise<Uint8Array | undefined>;
/**
 * A planned move (MoveMeeting, a rebalance, a drain's deadline): stop
 * accepting writes to the meeting, then resolve with its final state,
 * taken after the last write. The agent sends it to the coordinator, which
 * gives the meeting to its new owner with exactly this state; onRevoked
 * follows. Until then keep serving reads. If it throws or takes longer
 * than the coordinator's deadline (10 s by default), the meeting moves
 * with its last periodic checkpoint, as in a failover.
 */
export type OnHandover = (meetingId: string, epoch: number) => Uint8Array | Promise<Uint8Array>;

/** Load figures a heartbeat carries, all optional (0 or absent: not reported). */
export interface LoadSample {
  /** CPU in use, 0..1 of the machine. */
  readonly cpu?: number;
  readonly netInBytesPerSec?: number;
  readonly netOutBytesPerSec?: number;
  /** People connected to this server's meetings. */
  readonly participants?: number;
}
/** Called before every heartbeat; must be quick and must not throw (a throw sends no figures). */
export type ReportLoad = () => LoadSample;
/** Hard limits declared at Register: no new meeting while a reported figure is at or over one. */
export type LoadLimits = LoadSample;

export interface AgentOptions {
  /** Every coordinator member's gRPC address, "host:port". Any member accepts every call. */
  readonly coordinators: readonly string[];
  readonly nodeId: string;
  /** "host:port" where this meeting server serves meeting HTTP/WebSocket traffic. */
  readonly address: string;
  /** Max meetings this server hosts, > 0. */
  readonly capacity: number;
  readonly region?: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** How often each held meeting's state is saved; default 2000. */
  readonly checkpointIntervalMs?: number;
  /** Deadline of each coordinator call; default 1000. */
  readonly rpcTimeoutMs?: number;
  /** Checkpoint saves in flight at once, over all meetings; default 4. */
  readonly maxSavesInFlight?: number;
  /** First backoff after every member failed once; doubles up to retryMaxMs (jittered). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  readonly onAssigned: OnAssigned;
  readonly onRevoked: OnRevoked;
  readonly getState: GetState;
  /** Planned moves without loss; without it the agent hands over what getState returns (writes after that read may be lost). */
  readonly onHandover?: OnHandover;
  /** Load figures for placement, sent with every heartbeat. */
  readonly reportLoad?: ReportLoad;
  /** Hard limits, declared at Register. */
  readonly limits?: LoadLimits;
  readonly logger?: AgentLogger;
  /**
   * TLS to the members: `ca` (PEM) verifies their certificates; `cert` and
   * `key` (PEM) are this server's own, for members that require client
   * certificates. Without it, calls are plaintext, which is allowed only to
   * loopback addresses unless `insecure`.
   */
  readonly tls?: { readonly ca: string | Buffer; readonly cert?: string | Buffer; readonly key?: string | Buffer };
  /** Bearer token of role agent for this nodeId; required with tls or members beyond loopback. */
  readonly token?: string;
  /** Plaintext to members beyond loopback, on purpose. */
  readonly insecure?: boolean;
}

export interface AgentConfig {
  readonly coordinators: readonly string[];
  readonly nodeId: string;
  readonly address: string;
  readonly capacity: number;
  readonly region: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly checkpointIntervalMs: number;
  readonly rpcTimeoutMs: number;
  readonly maxSavesInFlight: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly onAssigned: OnAssigned;
  readonly onRevoked: OnRevoked;
  readonly getState: GetState;
  readonly onHandover: OnHandover | undefined;
  readonly reportLoad: ReportLoad | undefined;
  readonly limits: Required<LoadLimits>;
  readonly logger: AgentLogger | undefined;
  readonly tls: TlsMaterial | undefined;
  readonly token: string | undefined;
  readonly insecure: boolean;
}

export const agentDefaults = {
  checkpointIntervalMs: 2000,
  rpcTimeoutMs: 1000,
  maxSavesInFlight: 4,
  retryBaseMs: 25,
  retryMaxMs: 1000,
} as const;

const HOST_PORT_PATTERN = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252}):([0-9]{1,5})$/;
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
const MAX_UINT32 = 0xffff_ffff;
const MAX_REGION_CHARS = 64;
const MAX_LABELS = 32;
const MAX_LABEL_KEY_CHARS = 64;
const MAX_LABEL_VALUE_CHARS = 256;

/** The value as it appears in a message: quoted, and cut short when long. */
export const shown = describeValue;

/** "host:port" with a port in 1..65535 (0 when `allowPortZero`, for listeners). */
export function isHostPort(value: unknown, allowPortZero = false): value is string {
  if (typeof value !== "string") return false;
  const match = HOST_PORT_PATTERN.exec(value);
  if (!match) return false;
  const port = Number(match[1]);
  return port <= 65535 && (port >= 1 || allowPortZero);
}

export function intField(field: string, value: unknown, min: number, max: number, names: FieldNames = configKeys): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new AgentConfigError(`${names(field)} must be a whole number from ${min} to ${max.toLocaleString("en-US")}; got ${shown(value)}`);
  }
  return n;
}

function functionField<T>(field: string, value: unknown): T {
  if (typeof value !== "function") throw new AgentConfigError(`${field} must be a function; got ${shown(value)}`);
  return value as T;
}

function validateCoordinators(value: unknown, names: FieldNames): string[] {
  const name = names("coordinators");
  if (!Array.isArray(value) || value.length === 0) {
    throw new AgentConfigError(`${name} must list the coordinator members as host:port; got ${shown(value)}`);
  }
  const seen = new Set<string>();
  for (const address of value) {
    if (!isHostPort(address)) throw new AgentConfigError(`${name} must list members as ${HOST_PORT_RULE}; got ${shown(address)}`);
    if (seen.has(address)) throw new AgentConfigError(`${name} lists ${shown(address)} twice`);
    seen.add(address);
  }
  return [...seen];
}

function validateLabels(value: unknown, names: FieldNames): Record<string, string> {
  if (value === undefined) return {};
  const name = names("labels");
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new AgentConfigError(`${name} must be a mapping of text values; got ${shown(value)}`);
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_LABELS) throw new AgentConfigError(`${name}: at most ${MAX_LABELS} labels; got ${entries.length}`);
  for (const [key, val] of entries) {
    if (key.length < 1 || key.length > MAX_LABEL_KEY_CHARS || CONTROL_CHARS.test(key)) {
      throw new AgentConfigError(`${name}: a label's key must be 1 to ${MAX_LABEL_KEY_CHARS} characters without control characters; got ${shown(key)}`);
    }
    if (typeof val !== "string" || val.length > MAX_LABEL_VALUE_CHARS || CONTROL_CHARS.test(val)) {
      throw new AgentConfigError(`${name}: label ${shown(key)} must be text of at most ${MAX_LABEL_VALUE_CHARS} characters without control characters; got ${shown(val)}`);
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** A load sample's figures, checked: CPU in 0..1, the others non-negative integers. Used for limits and for each report. */
export function checkLoadSample(value: unknown, field: string): Required<LoadSample> {
  if (value === undefined) return { cpu: 0, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 0 };
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new AgentConfigError(`${field} must be an object of numbers, got ${shown(value)}`);
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (!["cpu", "netInBytesPerSec", "netOutBytesPerSec", "participants"].includes(key)) {
      throw new AgentConfigError(`${field} has an unknown key ${shown(key)} (known: cpu, netInBytesPerSec, netOutBytesPerSec, participants)`);
    }
  }
  const cpu = v.cpu === undefined ? 0 : typeof v.cpu === "string" && v.cpu.trim() !== "" ? Number(v.cpu) : v.cpu;
  if (typeof cpu !== "number" || !Number.isFinite(cpu) || cpu < 0 || cpu > 1) throw new AgentConfigError(`${field}.cpu must be a number from 0 to 1, got ${shown(v.cpu)}`);
  return {
    cpu,
    netInBytesPerSec: intField(`${field}.netInBytesPerSec`, v.netInBytesPerSec ?? 0, 0, Number.MAX_SAFE_INTEGER),
    netOutBytesPerSec: intField(`${field}.netOutBytesPerSec`, v.netOutBytesPerSec ?? 0, 0, Number.MAX_SAFE_INTEGER),
    participants: intField(`${field}.participants`, v.participants ?? 0, 0, MAX_UINT32),
  };
}

function optionalFunction<T>(field: string, value: unknown): T | undefined {
  return value === undefined ? undefined : functionField<T>(field, value);
}

function validateLogger(value: unknown): AgentLogger | undefined {
  if (value === undefined) return undefined;
  const l = value as Record<string, unknown> | null;
  if (!l || typeof l !== "object" || !["debug", "info", "warn", "error"].every((m) => typeof l[m] === "function")) {
    throw new AgentConfigError(`logger must be a pino logger (debug, info, warn, error), got ${shown(value)}`);
  }
  return value as AgentLogger;
}

function pem(field: string, value: unknown): Buffer | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string" || Buffer.isBuffer(value)) return Buffer.from(value);
  throw new AgentConfigError(`${field} must be PEM text (a string or a Buffer), got ${shown(value)}`);
}

/** tls, token and insecure, with the transport rule (plaintext only to loopback, unless insecure). */
function validateSecurity(raw: RawAgentOptions, coordinators: readonly string[]): Pick<AgentConfig, "tls" | "token" | "insecure"> {
  if (raw.insecure !== undefined && typeof raw.insecure !== "boolean") throw new AgentConfigError(`insecure must be true or false, got ${shown(raw.insecure)}`);
  const insecure = raw.insecure === true;
  if (raw.tls !== undefined && (raw.tls === null || typeof raw.tls !== "object")) {
    throw new AgentConfigError(`tls must be an object { ca, cert?, key? } of PEM texts, got ${shown(raw.tls)}`);
  }
  const t = raw.tls as Record<string, unknown> | undefined;
  try {
    const token = tokenField("token", raw.token);
    let tls: TlsMaterial | undefined;
    if (t) {
      const ca = pem("tls.ca", t.ca);
      if (!ca) throw new AgentConfigError("tls.ca is required: the CA that signed the members' certificates");
      tls = checkTlsMaterial({ ca, cert: pem("tls.cert", t.cert), key: pem("tls.key", t.key) }, { ca: "tls.ca", cert: "tls.cert", key: "tls.key" });
    }
    checkClientTransport(
      { addresses: coordinators, field: "coordinators", tls: tls !== undefined, insecure, hasToken: token !== undefined },
      { tls: "tls: { ca } (and cert, key for members that require client certificates)", insecure: "insecure: true", tokens: "token (of role agent for this nodeId)" },
    );
    return { tls, token, insecure };
  } catch (err) {
    if (err instanceof SecurityConfigError) throw new AgentConfigError(err.message, { cause: err });
    throw err;
  }
}

/** Options as a caller may pass them (e.g. numbers from flags as strings); checked, not trusted. */
export type RawAgentOptions = Partial<Record<keyof AgentOptions, unknown>>;

/**
 * Checks every option and fills in the defaults. Called by the NodeAgent
 * constructor, and first by the sidecar with `names` that give its flags
 * (`--node-id is required`); by default messages use the option names.
 */
export function validateAgentConfig(raw: RawAgentOptions, names: FieldNames = configKeys): AgentConfig {
  if (raw === null || typeof raw !== "object") throw new AgentConfigError(`options must be an object; got ${shown(raw)}`);
  const missing = missingFields(raw, ["coordinators", "nodeId", "address", "capacity"], names);
  if (missing) throw new AgentConfigError(missing);
  const coordinators = validateCoordinators(raw.coordinators, names);
  const nodeId = raw.nodeId;
  const idError = idProblem("node", nodeId);
  if (typeof nodeId !== "string" || idError) throw new AgentConfigError(`${names("nodeId")} ${idError}`);
  if (!isHostPort(raw.address)) {
    throw new AgentConfigError(`${names("address")} must be where this server serves meeting traffic, as ${HOST_PORT_RULE}; got ${shown(raw.address)}`);
  }
  const capacity = intField("capacity", raw.capacity, 1, MAX_UINT32, names);
  const region = raw.region ?? "";
  if (typeof region !== "string" || region.length > MAX_REGION_CHARS || CONTROL_CHARS.test(region)) {
    throw new AgentConfigError(`${names("region")} must be text of at most ${MAX_REGION_CHARS} characters without control characters; got ${shown(region)}`);
  }
  const retryBaseMs = intField("retryBaseMs", raw.retryBaseMs ?? agentDefaults.retryBaseMs, 1, 60_000, names);
  const retryMaxMs = intField("retryMaxMs", raw.retryMaxMs ?? agentDefaults.retryMaxMs, 1, 600_000, names);
  if (retryMaxMs < retryBaseMs) throw new AgentConfigError(`${names("retryMaxMs")} (${retryMaxMs}) must not be below ${names("retryBaseMs")} (${retryBaseMs})`);
  return {
    coordinators,
    nodeId,
    address: raw.address,
    capacity,
    region,
    labels: validateLabels(raw.labels, names),
    checkpointIntervalMs: intField("checkpointIntervalMs", raw.checkpointIntervalMs ?? agentDefaults.checkpointIntervalMs, 10, 3_600_000, names),
    rpcTimeoutMs: intField("rpcTimeoutMs", raw.rpcTimeoutMs ?? agentDefaults.rpcTimeoutMs, 10, 600_000, names),
    maxSavesInFlight: intField("maxSavesInFlight", raw.maxSavesInFlight ?? agentDefaults.maxSavesInFlight, 1, 1024, names),
    retryBaseMs,
    retryMaxMs,
    onAssigned: functionField<OnAssigned>("onAssigned", raw.onAssigned),
    onRevoked: functionField<OnRevoked>("onRevoked", raw.onRevoked),
    getState: functionField<GetState>("getState", raw.getState),
    onHandover: optionalFunction<OnHandover>("onHandover", raw.onHandover),
    reportLoad: optionalFunction<ReportLoad>("reportLoad", raw.reportLoad),
    limits: checkLoadSample(raw.limits, "limits"),
    logger: validateLogger(raw.logger),
    ...validateSecurity(raw, coordinators),
  };
}
