/**
 * The gRPC server interceptor that authenticates and authorizes every call
 * a member serves, before any handler sees it (so no handler can forget):
 *
 * 1. Identity: the bearer token in the "authorization" metadata, looked up
 *    in the tokens file; without a token, a client certificate whose
 *    subject says OU=member, standing for the member its CN names (only
 *    when members know each other by certificate, i.e. client certificates
 *    are required and signed by the cluster's CA). A token always wins over
 *    the certificate. The identity is recorded on the call's metadata
 *    (member-identity.ts) for handlers that need to know who called.
 * 2. The method's rule (authorization.ts): UNAUTHENTICATED without valid
 *    credentials, PERMISSION_DENIED for a role the method does not allow.
 * 3. For an agent, each request (decoded by then) must name its own node.
 *
 * Installed by Member.start only when the member has a tokens file: the
 * loopback quick start runs without it, unchanged.
 */
import * as grpc from "@grpc/grpc-js";
import { type Decision, authorizeCall, checkRequest, needsRequestCheck } from "./authorization.js";
import { AUTHORIZATION_HEADER } from "./client-security.js";
import { memberOfCertificate, rememberCaller } from "./member-identity.js";
import { type Identity, type TokenStore, parseBearer } from "./tokens.js";

export interface AuthOptions {
  readonly tokens: TokenStore;
  /** Whether a client certificate with OU=member stands for a member (client certificates are required). */
  readonly certMembers: boolean;
  /** Told of every refusal (for a debug log). */
  readonly onRefused?: (path: string, peer: string, decision: Decision) => void;
}

type Authenticated = { readonly identity: Identity | undefined } | { readonly refusal: Decision };

function unauthenticated(details: string): { refusal: Decision } {
  return { refusal: { ok: false, code: grpc.status.UNAUTHENTICATED, details } };
}

function authenticate(metadata: grpc.Metadata, call: grpc.ServerInterceptingCallInterface, options: AuthOptions): Authenticated {
  const values = metadata.get(AUTHORIZATION_HEADER);
  if (values.length > 1) return unauthenticated("send one authorization metadata value, not several");
  if (values.length === 1) {
    const token = parseBearer(values[0]);
    if (token === undefined) return unauthenticated('the authorization metadata must be "Bearer <token>"');
    const identity = options.tokens.identify(token);
    if (!identity) return unauthenticated("the token is not in the members' tokens file");
    return { identity };
  }
  if (options.certMembers) {
    const member = memberOfCertificate(call.getAuthContext().sslPeerCertificate);
    if (member !== undefined) return { identity: { role: "member", member, name: `member certificate ${member}` } };
  }
  return { identity: undefined };
}

export function authInterceptor(options: AuthOptions): grpc.ServerInterceptor {
  return (descriptor, call) => {
    const path = descriptor.path;
    let identity: Identity | undefined;
    let refused = false;
    const refuse = (decision: Decision): void => {
      refused = true;
      if (decision.ok) return;
      options.onRefused?.(path, call.getPeer(), decision);
      call.sendStatus({ code: decision.code, details: decision.details });
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const who = authenticate(metadata, call, options);
            if ("refusal" in who) return refuse(who.refusal);
            identity = who.identity;
            const decision = authorizeCall(path, identity);
            if (!decision.ok) return refuse(decision);
            if (identity) rememberCaller(metadata, identity);
            pass(metadata);
          },
          onReceiveMessage: (message, pass) => {
            if (refused) return;
            if (identity && needsRequestCheck(path, identity)) {
              const decision = checkRequest(path, identity, message);
              if (!decision.ok) return refuse(decision);
            }
            pass(message);
          },
          onReceiveHalfClose: (pass) => {
            if (!refused) pass();
          },
        }),
    });
  };
}
