/**
 * How a client of the members (gateway, node agent, CLI, a member's own
 * forwarder and probes) secures its channels: TLS credentials, and its
 * bearer token on every call. The token goes in by a client interceptor,
 * not call credentials: grpc-js refuses call credentials on a plaintext
 * channel, and a token over loopback plaintext is allowed.
 */
import * as grpc from "@grpc/grpc-js";
import { SecurityConfigError } from "./errors.js";
import { type FixHints, checkClientTransport, clientHints } from "./listen-policy.js";
import { type TlsMaterial, channelCredentials, readTlsFiles } from "./tls-files.js";
import { isWellFormedToken } from "./tokens.js";

export const AUTHORIZATION_HEADER = "authorization";

export interface ClientSecurity {
  readonly credentials: grpc.ChannelCredentials;
  /** Sent as "authorization: Bearer <token>" on every call, when set. */
  readonly token: string | undefined;
  readonly tls: boolean;
}

/** Loopback plaintext, no token: the quick start's setting. */
export const PLAINTEXT: ClientSecurity = { credentials: grpc.credentials.createInsecure(), token: undefined, tls: false };

export function clientSecurity(tls: TlsMaterial | undefined, token: string | undefined): ClientSecurity {
  return { credentials: channelCredentials(tls), token, tls: tls !== undefined };
}

/** A client interceptor adding the bearer token to every call's metadata. */
export function tokenInterceptor(token: string): grpc.Interceptor {
  const value = `Bearer ${token}`;
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        // A copy: the caller's Metadata object may be reused for other calls.
        if (metadata.get(AUTHORIZATION_HEADER).length > 0) return next(metadata, listener);
        const withToken = metadata.clone();
        withToken.set(AUTHORIZATION_HEADER, value);
        next(withToken, listener);
      },
    });
}

/** `options` with the token interceptor added when the security has a token. */
export function channelOptionsWith(security: ClientSecurity, options: grpc.ChannelOptions = {}): grpc.ClientOptions {
  return security.token === undefined ? { ...options } : { ...options, interceptors: [tokenInterceptor(security.token)] };
}

/** A service client over `address` with `security`'s credentials and token. */
export function makeClient<C extends grpc.Client>(
  Ctor: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => C,
  address: string,
  security: ClientSecurity,
  options: grpc.ChannelOptions = {},
): C {
  return new Ctor(address, security.credentials, channelOptionsWith(security, options));
}

/** The client settings of a process as flags or config keys give them (file paths, the token). */
export interface RawClientSecurity {
  readonly ca?: unknown;
  readonly cert?: unknown;
  readonly key?: unknown;
  readonly token?: unknown;
  readonly insecure?: unknown;
}

function pathField(field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw new SecurityConfigError(`${field} must be a file path, got ${JSON.stringify(value)}`);
  return value;
}

/** true/false, also as the strings flags give. */
export function booleanField(field: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  throw new SecurityConfigError(`${field} must be true or false, got ${JSON.stringify(value)}`);
}

/** Checks a token's shape. @throws SecurityConfigError naming `field`. */
export function tokenField(field: string, value: unknown): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (!isWellFormedToken(value)) throw new SecurityConfigError(`${field} must be 24 to 4096 printable ASCII characters without spaces`);
  return value;
}

/** The checked settings, files not yet read (validators stay pure). */
export interface ClientSecuritySettings {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly token?: string;
  readonly insecure: boolean;
}

/**
 * Checks the shapes and the transport policy against the addresses the
 * process will dial. Called by config validators; reads no file.
 * @throws SecurityConfigError naming the field and how to fix it.
 */
export function validateClientSecurity(raw: RawClientSecurity, addresses: readonly string[], field = "coordinators", hints: FixHints = clientHints): ClientSecuritySettings {
  const settings: ClientSecuritySettings = {
    ca: pathField("ca", raw.ca),
    cert: pathField("cert", raw.cert),
    key: pathField("key", raw.key),
    token: tokenField("token", raw.token),
    insecure: booleanField("insecure", raw.insecure),
  };
  if ((settings.cert === undefined) !== (settings.key === undefined)) {
    throw new SecurityConfigError(`${settings.cert ? "cert needs key" : "key needs cert"} too: a client certificate and its private key go together`);
  }
  if (settings.cert !== undefined && settings.ca === undefined) {
    throw new SecurityConfigError("cert needs ca too: TLS to the members is turned on by ca, the CA that signed their certificates");
  }
  checkClientTransport({ addresses, field, tls: settings.ca !== undefined, insecure: settings.insecure, hasToken: settings.token !== undefined }, hints);
  return settings;
}

/** Reads the files of checked settings. @throws SecurityConfigError naming the file. */
export function loadClientSecurity(settings: ClientSecuritySettings): ClientSecurity {
  const tls = settings.ca === undefined ? undefined : readTlsFiles({ ca: settings.ca, cert: settings.cert, key: settings.key });
  return clientSecurity(tls, settings.token);
}

/** The keys of the client settings, for config validators' lists of known keys. */
export const CLIENT_SECURITY_KEYS = ["ca", "cert", "key", "token", "insecure"] as const;

/**
 * validateClientSecurity, but undefined when none of the settings is given
 * (loopback plaintext without a token: the quick start), so configs
 * without security compare as before.
 */
export function optionalClientSecurity(raw: RawClientSecurity, addresses: readonly string[], field = "coordinators", hints: FixHints = clientHints): ClientSecuritySettings | undefined {
  const settings = validateClientSecurity(raw, addresses, field, hints);
  const given = settings.ca !== undefined || settings.token !== undefined || settings.insecure;
  return given ? settings : undefined;
}
