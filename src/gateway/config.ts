/**
 * The gateway's configuration: defaults, and `validateGatewayConfig`, which
 * `startGateway`'s callers (the CLI, tests, the benchmark) run first. Raw
 * values may come from flags, so numbers and booleans are accepted as
 * strings too. Each broken rule throws a GatewayConfigError naming the field,
 * the rule in words and the value (src/wire/describe.ts):
 *   createPerMinute must be a whole number from 1 to 1,000,000; got "lots"
 */
import { CLIENT_SECURITY_KEYS, type ClientSecuritySettings, optionalClientSecurity } from "../security/client-security.js";
import { SecurityConfigError } from "../security/errors.js";
import { type Cidr, parseCidrList } from "../security/node-address-policy.js";
import { TOKEN_RULE, tokenWeakness } from "../security/token-strength.js";
import { isWellFormedToken } from "../security/tokens.js";
import { type FieldNames, HOST_PORT_RULE, configKeys, describeValue as shown } from "../wire/describe.js";
import { GatewayConfigError } from "./errors.js";

export interface GatewayConfig {
  /** "host:port" the HTTP server binds; port 0 picks a free one (tests). */
  readonly listen: string;
  /** Every coordinator member's gRPC address; any member accepts every call. */
  readonly coordinators: readonly string[];
  /** Whether a request for an unknown meeting creates it (GetRoute create=true). */
  readonly create: boolean;
  /** Creations allowed per client IP per minute (token bucket, burst of the same size). */
  readonly createPerMinute: number;
  /** Bound on opening a TCP connection to a meeting server. */
  readonly connectTimeoutMs: number;
  /** Bound on a meeting server's response headers, and on each silence in its body. */
  readonly responseTimeoutMs: number;
  /**
   * How long a request whose host cannot be reached waits for the meeting to
   * move before its 503 (src/gateway/move-watch.ts); 0: no wait. The default
   * is the 503's Retry-After, so waiting never makes a client later.
   */
  readonly moveWaitMs: number;
  /** Largest request body proxied; larger ones get 413. */
  readonly maxBodyBytes: number;
  readonly logLevel: string;
  /**
   * TLS to the members and the gateway's token (config keys and flags ca,
   * cert, key, token, insecure); undefined: loopback plaintext, no token.
   */
  readonly security: ClientSecuritySettings | undefined;
  /**
   * Networks a node's address must be in for the gateway to proxy to it
   * (flag --node-address-allow); undefined: any address the node address
   * policy does not refuse always (src/security/node-address-policy.ts).
   */
  readonly nodeAddressAllow: readonly Cidr[] | undefined;
  /** This gateway's id in its Via mark (loop-guard.ts); undefined: a random one per start. */
  readonly gatewayId: string | undefined;
  /**
   * Who may see the operator pages (the dashboard `/` and `/dashboard.json`):
   * "off", "loopback" (clients on this host only; the default), "token"
   * (operatorToken as a bearer token or Basic password) or "open" (anyone
   * who reaches the port; `convene start`, whose gateway listens on loopback).
   */
  readonly operatorPages: PageAccess;
  /** Who may read /metrics: the same choices; default "open" (see README, Security). */
  readonly metricsAccess: PageAccess;
  /** The token of operatorPages/metricsAccess "token" (flag --operator-token, $CONVENE_OPERATOR_TOKEN). */
  readonly operatorToken: string | undefined;
  /** HTTPS on the gateway's own port (flags --tls-cert, --tls-key: PEM files); undefined: plain HTTP. */
  readonly tls: { readonly cert: string; readonly key: string } | undefined;
  /** The CA that signed the meeting servers' HTTPS certificates (flag --node-ca): proxy to https://{address}; undefined: http. */
  readonly nodeCa: string | undefined;
}

export const PAGE_ACCESS = ["off", "loopback", "token", "open"] as const;
export type PageAccess = (typeof PAGE_ACCESS)[number];

export const gatewayDefaults: GatewayConfig = {
  listen: "127.0.0.1:8080",
  coordinators: ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"],
  create: true,
  createPerMinute: 30,
  connectTimeoutMs: 1000,
  responseTimeoutMs: 30_000,
  moveWaitMs: 1000,
  maxBodyBytes: 1024 * 1024,
  logLevel: "info",
  security: undefined,
  nodeAddressAllow: undefined,
  gatewayId: undefined,
  operatorPages: "loopback",
  metricsAccess: "open",
  operatorToken: undefined,
  tls: undefined,
  nodeCa: undefined,
};

const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252}):([0-9]{1,5})$/;
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const KNOWN_KEYS = new Set([...Object.keys(gatewayDefaults).filter((k) => k !== "security" && k !== "tls"), "tlsCert", "tlsKey", ...CLIENT_SECURITY_KEYS]);
const GATEWAY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** "host:port" with a port in 1..65535 (0 too when `allowPortZero`, for the listener). */
export function isHostPort(value: unknown, allowPortZero = false): value is string {
  if (typeof value !== "string") return false;
  const match = HOST_PORT.exec(value);
  if (!match) return false;
  const port = Number(match[1]);
  return port <= 65535 && (port >= 1 || allowPortZero);
}

function intField(field: string, value: unknown, min: number, max: number, names: FieldNames): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new GatewayConfigError(field, `${names(field)} must be a whole number from ${min} to ${max.toLocaleString("en-US")}; got ${shown(value)}`);
  }
  return n;
}

function boolField(field: string, value: unknown, names: FieldNames): boolean {
  if (typeof value === "boolean") return value;
  if (value === "true") return true;
  if (value === "false") return false;
  throw new GatewayConfigError(field, `${names(field)} must be true or false; got ${shown(value)}`);
}

function coordinatorsField(value: unknown, names: FieldNames): string[] {
  const list = typeof value === "string" ? value.split(",").map((s) => s.trim()).filter((s) => s !== "") : value;
  const name = names("coordinators");
  if (!Array.isArray(list) || list.length === 0) {
    throw new GatewayConfigError("coordinators", `${name} must list the coordinator members as host:port (a list, or comma-separated); got ${shown(value)}`);
  }
  const seen = new Set<string>();
  for (const address of list) {
    if (!isHostPort(address)) throw new GatewayConfigError("coordinators", `${name} must list members as ${HOST_PORT_RULE}; got ${shown(address)}`);
    if (seen.has(address)) throw new GatewayConfigError("coordinators", `${name} lists ${shown(address)} twice`);
    seen.add(address);
  }
  return [...seen];
}

function accessField(field: string, value: unknown, names: FieldNames): PageAccess {
  if (typeof value === "string" && (PAGE_ACCESS as readonly string[]).includes(value)) return value as PageAccess;
  throw new GatewayConfigError(field, `${names(field)} must be one of ${PAGE_ACCESS.join(", ")}; got ${shown(value)}`);
}

function pathField(field: string, value: unknown, names: FieldNames): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw new GatewayConfigError(field, `${names(field)} must be a file path; got ${shown(value)}`);
  return value;
}

/** Each rule of the security settings, as a GatewayConfigError naming the field. */
function asGatewayError<T>(field: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (!(err instanceof SecurityConfigError)) throw err;
    throw new GatewayConfigError(field, err.message);
  }
}

/** The operator pages' settings: who may see them, and the token when one is needed. */
function operatorAccess(raw: Record<string, unknown>, names: FieldNames): Pick<GatewayConfig, "operatorPages" | "metricsAccess" | "operatorToken"> {
  const operatorPages = accessField("operatorPages", raw.operatorPages ?? gatewayDefaults.operatorPages, names);
  const metricsAccess = accessField("metricsAccess", raw.metricsAccess ?? gatewayDefaults.metricsAccess, names);
  let operatorToken: string | undefined;
  if (raw.operatorToken !== undefined && raw.operatorToken !== "") {
    const token = raw.operatorToken;
    if (!isWellFormedToken(token)) throw new GatewayConfigError("operatorToken", "operatorToken must be 24 to 4096 printable ASCII characters without spaces");
    const weakness = tokenWeakness(token);
    if (weakness !== undefined) throw new GatewayConfigError("operatorToken", `operatorToken is too weak: ${weakness}. A token needs ${TOKEN_RULE}`);
    operatorToken = token;
  }
  const needsToken = operatorPages === "token" || metricsAccess === "token";
  if (needsToken && operatorToken === undefined) {
    const which = operatorPages === "token" ? "operatorPages" : "metricsAccess";
    throw new GatewayConfigError("operatorToken", `${which} token needs operatorToken (flag --operator-token or $CONVENE_OPERATOR_TOKEN)`);
  }
  if (!needsToken && operatorToken !== undefined) {
    throw new GatewayConfigError("operatorToken", "operatorToken is given but neither operatorPages nor metricsAccess is token: it would guard nothing");
  }
  return { operatorPages, metricsAccess, operatorToken };
}

/**
 * Checks every field of `raw` (unknown keys too: a typo must not pass
 * silently) and fills in the defaults. `names` says how messages name a
 * field: the config key by default; the CLI passes the flags.
 */
export function validateGatewayConfig(raw: Record<string, unknown>, names: FieldNames = configKeys): GatewayConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new GatewayConfigError("config", `config must be an object, got ${shown(raw)}`);
  }
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.has(key) && raw[key] !== undefined) {
      throw new GatewayConfigError(key, `${shown(key)} is not a gateway option; known: ${[...KNOWN_KEYS].join(", ")}`);
    }
  }
  const d = gatewayDefaults;
  const listen = raw.listen ?? d.listen;
  if (!isHostPort(listen, true)) throw new GatewayConfigError("listen", `${names("listen")} must be host:port with a port from 0 (any free port) to 65535; got ${shown(listen)}`);
  const logLevel = raw.logLevel ?? d.logLevel;
  if (typeof logLevel !== "string" || !LOG_LEVELS.includes(logLevel)) {
    throw new GatewayConfigError("logLevel", `${names("logLevel")} must be one of ${LOG_LEVELS.join(", ")}; got ${shown(logLevel)}`);
  }
  const coordinators = coordinatorsField(raw.coordinators ?? d.coordinators, names);
  let security: ClientSecuritySettings | undefined;
  try {
    security = optionalClientSecurity(raw, coordinators);
  } catch (err) {
    if (!(err instanceof SecurityConfigError)) throw err;
    throw new GatewayConfigError(/^\w+/.exec(err.message)?.[0] ?? "security", err.message);
  }
  const gatewayId = raw.gatewayId;
  if (gatewayId !== undefined && (typeof gatewayId !== "string" || !GATEWAY_ID.test(gatewayId))) {
    throw new GatewayConfigError("gatewayId", `${names("gatewayId")} must be 1 to 64 letters, digits, ".", "_" or "-"; got ${shown(gatewayId)}`);
  }
  const tlsCert = pathField("tlsCert", raw.tlsCert, names);
  const tlsKey = pathField("tlsKey", raw.tlsKey, names);
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new GatewayConfigError(tlsCert ? "tlsKey" : "tlsCert", `${tlsCert ? "tlsCert (--tls-cert) needs tlsKey (--tls-key)" : "tlsKey (--tls-key) needs tlsCert (--tls-cert)"}: a certificate and its private key go together`);
  }
  return {
    listen,
    coordinators,
    create: boolField("create", raw.create ?? d.create, names),
    createPerMinute: intField("createPerMinute", raw.createPerMinute ?? d.createPerMinute, 1, 1_000_000, names),
    connectTimeoutMs: intField("connectTimeoutMs", raw.connectTimeoutMs ?? d.connectTimeoutMs, 10, 60_000, names),
    responseTimeoutMs: intField("responseTimeoutMs", raw.responseTimeoutMs ?? d.responseTimeoutMs, 10, 3_600_000, names),
    moveWaitMs: intField("moveWaitMs", raw.moveWaitMs ?? d.moveWaitMs, 0, 30_000, names),
    maxBodyBytes: intField("maxBodyBytes", raw.maxBodyBytes ?? d.maxBodyBytes, 0, 1024 * 1024 * 1024, names),
    logLevel,
    security,
    nodeAddressAllow:
      raw.nodeAddressAllow === undefined ? undefined : asGatewayError("nodeAddressAllow", () => parseCidrList(raw.nodeAddressAllow, "nodeAddressAllow (--node-address-allow)")),
    gatewayId,
    ...operatorAccess(raw, names),
    tls: tlsCert !== undefined && tlsKey !== undefined ? { cert: tlsCert, key: tlsKey } : undefined,
    nodeCa: pathField("nodeCa", raw.nodeCa, names),
  };
}
