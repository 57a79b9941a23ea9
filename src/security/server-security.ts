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
import { callingMember, memberOfCertificate, peerChannelCredentials } from "./member-identity.js";
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
  /** The Raft transport's channel to peer `id`: with TLS, only a certificate naming `id` is accepted. */
  peerCredentials(id: string): grpc.ChannelCredentials;
  /**
   * Which member a call came from, by its credentials (member-identity.ts);
   * undefined on the plain loopback setup, where nobody is authenticated and
   * the transport cannot bind senders to callers.
   */
  readonly callingMember: ((metadata: grpc.Metadata) => string | undefined) | undefined;
}

/** "O=convene\nOU=member\nCN=n1" as Node's PeerCertificate subject ({ O, OU, CN }; repeated fields as arrays). */
function subjectFields(subject: string): Record<string, string | string[]> {
  const fields: Record<string, string | string[]> = {};
  for (const line of subject.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    const had = fields[key];
    fields[key] = had === undefined ? value : ([] as string[]).concat(had, value);
  }
  return fields;
}

export interface SecurityLogger {
  debug(fields: object, message: string): void;
}

/**
 * Reads the files and builds everything for member `selfId`.
 * @throws SecurityConfigError naming the file and the rule.
 */
export function loadServerSecurity(s: ServerSecuritySettings, selfId: string, logger?: SecurityLogger): ServerSecurity {
  const tls = readTlsFiles({ ca: s.ca, cert: s.cert, key: s.key });
  const credentials = serverCredentials(tls, s.requireClientCert);
  if (tls) {
    // Peers dialing this member accept only a certificate that names it.
    const subject = new X509Certificate(tls.cert!).subject;
    if (memberOfCertificate({ subject: subjectFields(subject) as never }) !== selfId) {
      throw new SecurityConfigError(
        `cert (${s.cert}) must name this member: OU=member and CN=${selfId} in its subject (it has ${JSON.stringify(subject.replace(/\n/g, ", "))}); ` +
          `peers dialing ${selfId} accept no other. \`convene certs --member ${selfId}\` makes one`,
      );
    }
  }
  const peerCredentials = (id: string): grpc.ChannelCredentials => peerChannelCredentials(tls, id);
  if (s.tokensFile === undefined) {
    return { credentials, interceptors: [], peer: tls ? clientSecurity(tls, undefined) : PLAINTEXT, peerCredentials, callingMember: undefined };
  }
  const tokens = TokenStore.fromFile(s.tokensFile);
  const memberToken = tokens.memberToken(selfId);
  const certMembers = s.requireClientCert;
  if (memberToken === undefined && !certMembers) {
    throw new SecurityConfigError(
      `tokens file ${s.tokensFile} has no plaintext token for member ${selfId} (an entry {role: member, member: ${selfId}, token: "…"}): ` +
        "each member presents its own token to its peers. Add one (`convene certs` writes one per member), " +
        "or require client certificates (--require-client-cert, config key requireClientCert) so members know each other by certificate",
    );
  }
  const interceptor = authInterceptor({
    tokens,
    certMembers,
    onRefused: (path, peer, decision) => logger?.debug({ path, peer, decision }, "refused a call"),
  });
  return { credentials, interceptors: [interceptor], peer: clientSecurity(tls, memberToken), peerCredentials, callingMember };
}
