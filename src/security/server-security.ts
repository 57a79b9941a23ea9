/**
 * A member's security, from its config to what its gRPC server and its
 * outgoing channels use. validateServerSecurity (pure, from the member's
 * config validator) checks the settings and the listen policy;
 * loadServerSecurity (Member.start, before anything listens) reads the
 * files and builds the credentials, the auth interceptor and how this
 * member presents itself to its peers.
 */
import { X509Certificate } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { authInterceptor } from "./auth-interceptor.js";
import { type ClientSecurity, PLAINTEXT, booleanField, clientSecurity } from "./client-security.js";
import { SecurityConfigError } from "./errors.js";
import { checkClientTransport, checkServerTransport, memberHints } from "./listen-policy.js";
import { readTlsFiles, serverCredentials } from "./tls-files.js";
import { TokenStore } from "./tokens.js";

/** The member's security settings as checked (file paths; nothing read yet). */
export interface ServerSecuritySettings {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  /** Mutual TLS: only clients with a certificate signed by ca get past the handshake. */
  readonly requireClientCert: boolean;
  readonly tokensFile?: string;
  /** Plaintext beyond loopback, on purpose. */
  readonly insecure: boolean;
}

export const NO_SERVER_SECURITY: ServerSecuritySettings = { requireClientCert: false, insecure: false };

/** The raw member settings (flags or a config file). */
export interface RawServerSecurity {
  readonly ca?: unknown;
  readonly cert?: unknown;
  readonly key?: unknown;
  readonly requireClientCert?: unknown;
  readonly tokensFile?: unknown;
  readonly insecure?: unknown;
}

function pathField(field: string, flag: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw new SecurityConfigError(`${field} (${flag}) must be a file path, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * Checks the settings of a member listening on `listen` and dialing
 * `peers`. @throws SecurityConfigError naming the field and the fix.
 */
export function validateServerSecurity(raw: RawServerSecurity, listen: string, peers: readonly string[]): ServerSecuritySettings {
  const s: ServerSecuritySettings = {
    ca: pathField("ca", "--ca", raw.ca),
    cert: pathField("cert", "--cert", raw.cert),
    key: pathField("key", "--key", raw.key),
    requireClientCert: booleanField("requireClientCert", raw.requireClientCert),
    tokensFile: pathField("tokensFile", "--tokens", raw.tokensFile),
    insecure: booleanField("insecure", raw.insecure),
  };
  const tls = s.cert !== undefined;
  if (tls !== (s.key !== undefined)) throw new SecurityConfigError(`${tls ? "cert (--cert) needs key (--key)" : "key (--key) needs cert (--cert)"}: a certificate and its private key go together`);
  if (tls && s.ca === undefined) throw new SecurityConfigError("ca (--ca) is required with cert and key: members verify each other's certificates against it");
  if (!tls && s.ca !== undefined) throw new SecurityConfigError("ca (--ca) is given but cert and key are not: a TLS member needs cert (--cert) and key (--key) too");
  if (s.requireClientCert && !tls) throw new SecurityConfigError("requireClientCert (--require-client-cert) needs TLS: give cert, key and ca (--cert, --key, --ca)");
  checkServerTransport({ listen, tls, insecure: s.insecure, hasTokens: s.tokensFile !== undefined }, memberHints);
  // This member dials its peers as their client: the same rule for plaintext applies.
  checkClientTransport({ addresses: peers, field: "peers", tls, insecure: s.insecure, hasToken: true, tokenRequired: false }, memberHints);
  return s;
}

export interface ServerSecurity {
  readonly credentials: grpc.ServerCredentials;
  /** The auth interceptor when the member has tokens; none on the plain loopback setup. */
  readonly interceptors: grpc.ServerInterceptor[];
  /** How this member calls its peers: the Raft transport, forwarding, status probes. */
  readonly peer: ClientSecurity;
}

export interface SecurityLogger {
  debug(fields: object, message: string): void;
}

/** Reads the files and builds everything. @throws SecurityConfigError naming the file and the rule. */
export function loadServerSecurity(s: ServerSecuritySettings, logger?: SecurityLogger): ServerSecurity {
  const tls = readTlsFiles({ ca: s.ca, cert: s.cert, key: s.key });
  const credentials = serverCredentials(tls, s.requireClientCert);
  if (s.tokensFile === undefined) return { credentials, interceptors: [], peer: tls ? clientSecurity(tls, undefined) : PLAINTEXT };
  const tokens = TokenStore.fromFile(s.tokensFile);
  const memberToken = tokens.memberToken();
  const certMembers = s.requireClientCert;
  if (memberToken === undefined) {
    if (!certMembers) {
      throw new SecurityConfigError(
        `tokens file ${s.tokensFile} has no plaintext token of role member: members present it to each other. Add one (\`convene certs\` writes one), ` +
          "or require client certificates (--require-client-cert, config key requireClientCert) so members know each other by certificate",
      );
    }
    const subject = new X509Certificate(tls!.cert!).subject;
    if (!/^OU=member$/m.test(subject)) {
      throw new SecurityConfigError(`cert (${s.cert}) must have OU=member in its subject (it has ${JSON.stringify(subject.replace(/\n/g, ", "))}) for peers to know this member by it, or the tokens file needs a plaintext member token`);
    }
  }
  const interceptor = authInterceptor({
    tokens,
    certMembers,
    onRefused: (path, peer, decision) => logger?.debug({ path, peer, decision }, "refused a call"),
  });
  return { credentials, interceptors: [interceptor], peer: clientSecurity(tls, memberToken) };
}
