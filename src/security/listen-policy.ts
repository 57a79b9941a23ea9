/**
 * When plaintext is allowed: on loopback only, or with an explicit
 * `insecure`. And when tokens are required: whenever TLS is on or a process
 * listens (or dials) beyond loopback. Pure functions, called by the config
 * validators of every process before anything listens or dials, so a
 * process that would expose plaintext refuses to start and says which
 * flags or config keys fix it.
 */
import { isIP } from "node:net";
import { SecurityConfigError } from "./errors.js";

/** The host part of "host:port" ("[::1]:7001" → "::1"). */
export function hostOfAddress(address: string): string {
  const colon = address.lastIndexOf(":");
  const host = colon < 0 ? address : address.slice(0, colon);
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/**
 * Whether a host only ever means this machine: "localhost", 127.0.0.0/8,
 * ::1 (any spelling) and IPv4-mapped 127.x. A wildcard (0.0.0.0, ::) is not:
 * it binds every interface.
 */
export function isLoopbackHost(rawHost: string): boolean {
  const host = rawHost.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (host === "localhost") return true;
  const family = isIP(host);
  if (family === 4) return host.split(".")[0] === "127";
  if (family !== 6) return false;
  // The URL parser writes IPv6 in its canonical form: "0:0::1" → "::1", "::ffff:127.0.0.1" → "::ffff:7f00:1".
  const canonical = new URL(`http://[${host}]/`).hostname.slice(1, -1);
  return canonical === "::1" || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(canonical);
}

/** How one kind of process spells the settings a fix needs (flags and config keys). */
export interface FixHints {
  /** How to turn TLS on, e.g. "--cert FILE --key FILE --ca FILE (config keys cert, key, ca)". */
  readonly tls: string;
  /** How to opt into plaintext, e.g. "--insecure (config key insecure: true)". */
  readonly insecure: string;
  /** How to give tokens, e.g. "--tokens FILE (config key tokensFile)". */
  readonly tokens: string;
}

export const memberHints: FixHints = {
  tls: "--cert FILE --key FILE --ca FILE (config keys cert, key, ca; `convene certs` makes them)",
  insecure: "--insecure (config key insecure: true)",
  tokens: "--tokens FILE (config key tokensFile; `convene certs` writes one)",
};

export const clientHints: FixHints = {
  tls: "--ca FILE to verify the members' certificates, with --cert FILE --key FILE when they require client certificates (config keys ca, cert, key)",
  insecure: "--insecure (config key insecure: true)",
  tokens: "--token TOKEN or $CONVENE_TOKEN (config key token)",
};

export interface ServerTransport {
  /** "host:port" the gRPC server binds. */
  readonly listen: string;
  readonly tls: boolean;
  readonly insecure: boolean;
  readonly hasTokens: boolean;
}

/**
 * Refuses a gRPC server that would serve plaintext beyond loopback, or
 * serve without tokens where they are required.
 * @throws SecurityConfigError naming the setting and how to fix it.
 */
export function checkServerTransport(s: ServerTransport, hints: FixHints = memberHints): void {
  const loopback = isLoopbackHost(hostOfAddress(s.listen));
  if (!loopback && !s.tls && !s.insecure) {
    throw new SecurityConfigError(
      `listen ${s.listen} is not a loopback address and TLS is off: turn TLS on with ${hints.tls}, or serve plaintext anyway with ${hints.insecure}`,
    );
  }
  if ((s.tls || !loopback) && !s.hasTokens) {
    throw new SecurityConfigError(
      `tokens are required when TLS is on or listen (${s.listen}) is beyond loopback: give a tokens file with ${hints.tokens}`,
    );
  }
}

export interface ClientTransport {
  /** Where the process dials, "host:port" each. */
  readonly addresses: readonly string[];
  /** The field the addresses came from, for messages ("coordinators", "peers"). */
  readonly field: string;
  readonly tls: boolean;
  readonly insecure: boolean;
  readonly hasToken: boolean;
  /** Whether a token is needed beyond loopback / with TLS (members dialing peers may rely on their certificate). */
  readonly tokenRequired?: boolean;
}

/**
 * Refuses a client that would send plaintext beyond loopback, or call a
 * TLS cluster without a token (it would only ever get UNAUTHENTICATED).
 * @throws SecurityConfigError naming the setting and how to fix it.
 */
export function checkClientTransport(c: ClientTransport, hints: FixHints = clientHints): void {
  const remote = c.addresses.find((a) => !isLoopbackHost(hostOfAddress(a)));
  if (remote !== undefined && !c.tls && !c.insecure) {
    throw new SecurityConfigError(
      `${c.field}: ${remote} is not a loopback address and TLS is off: turn TLS on with ${hints.tls}, or send plaintext anyway with ${hints.insecure}`,
    );
  }
  if ((c.tokenRequired ?? true) && (c.tls || remote !== undefined) && !c.hasToken) {
    throw new SecurityConfigError(
      `token is required when TLS is on or a member is beyond loopback${remote ? ` (${remote})` : ""}: give one with ${hints.tokens}`,
    );
  }
}
