/**
 * Which member is on the other end of a connection between members. Both
 * ways, a member credential names one member:
 *
 * - A member certificate (subject OU=member) names its member by its CN
 *   (`convene certs` writes CN=<member id>). A member's token names it by
 *   the tokens file's `member` field.
 * - Incoming: the auth interceptor records who a call authenticated as on
 *   the call's metadata object (a WeakMap, so nothing a client sends can
 *   set it); the Raft transport reads it with `callerOf` and refuses a
 *   batch whose sender is another member.
 * - Outgoing: `peerChannelCredentials` dials peer nX accepting only a
 *   certificate that names nX, on top of the usual CA and host name checks.
 *
 * What a member credential still allows is in the README's threat model:
 * everything that member may do, which in Raft is a lot.
 */
import { type PeerCertificate, checkServerIdentity } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { TlsMaterial } from "./tls-files.js";
import type { Identity } from "./tokens.js";

/** A subject field as Node gives it: a string, or an array when repeated. */
function fieldValues(value: unknown): string[] {
  return ([] as unknown[]).concat(value).filter((v): v is string => typeof v === "string");
}

/** The member id a certificate names (its CN) when its subject says OU=member; undefined otherwise. */
export function memberOfCertificate(cert: Pick<PeerCertificate, "subject"> | undefined): string | undefined {
  const subject = cert?.subject as unknown as Record<string, unknown> | undefined;
  if (!subject || !fieldValues(subject.OU).includes("member")) return undefined;
  const names = fieldValues(subject.CN);
  return names.length === 1 ? names[0] : undefined;
}

const callers = new WeakMap<grpc.Metadata, Identity>();

/** Records who the call with `metadata` authenticated as. Called by the auth interceptor only. */
export function rememberCaller(metadata: grpc.Metadata, identity: Identity): void {
  callers.set(metadata, identity);
}

/** Who the call with `metadata` authenticated as; undefined when nobody authenticated it (no tokens file, or open methods). */
export function callerOf(metadata: grpc.Metadata): Identity | undefined {
  return callers.get(metadata);
}

/**
 * The member a call to the Raft transport comes from, as its credentials
 * say: the member id of its member token or certificate; undefined for a
 * call that did not authenticate as a member (the interceptor refuses
 * those before the transport sees them).
 */
export function callingMember(metadata: grpc.Metadata): string | undefined {
  const identity = callers.get(metadata);
  return identity?.role === "member" ? identity.member : undefined;
}

/** Why `cert`, presented by the server dialed as peer `peerId` at `host`, is not that peer's; undefined when it is. */
export function peerCertificateMismatch(peerId: string, host: string, cert: PeerCertificate): Error | undefined {
  const hostError = checkServerIdentity(host, cert);
  if (hostError) return hostError;
  const named = memberOfCertificate(cert);
  if (named === peerId) return undefined;
  return new Error(
    named === undefined
      ? `peer ${peerId} at ${host} presented a certificate that is not a member's (its subject needs OU=member and CN=${peerId})`
      : `peer ${peerId} at ${host} presented the certificate of member ${named}`,
  );
}

/**
 * The credentials for dialing peer `peerId`: TLS against the CA, this
 * member's own certificate when it has one, and only a server whose
 * certificate names `peerId` is accepted. Plaintext without TLS.
 */
export function peerChannelCredentials(tls: TlsMaterial | undefined, peerId: string): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null, {
    checkServerIdentity: (host, cert) => peerCertificateMismatch(peerId, host, cert),
  });
}
