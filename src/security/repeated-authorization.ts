/**
 * A request carrying the "authorization" header more than once must be
 * refused, not decided by whichever value survives. Node's HTTP/2 server
 * keeps one value of such a header (RFC 9110 lets it drop duplicates of
 * single-value fields), so grpc-js's metadata, and the auth interceptor
 * that refuses several values, would only ever see one. The raw header
 * list still has them all: this hands every value to grpc-js, and the
 * interceptor answers UNAUTHENTICATED ("send one authorization metadata
 * value, not several").
 *
 * grpc-js builds its HTTP/2 servers in a method it does not export
 * (`createHttp2Server`, grpc-js 1.x); it is wrapped here so the listener
 * runs before grpc-js reads the headers. If a grpc-js release renames it,
 * `refuseRepeatedAuthorization` throws at start rather than silently
 * letting the first value win (test/security-identity.test.ts sends the
 * duplicate with a raw HTTP/2 client).
 */
import type { IncomingHttpHeaders, Http2Server, ServerHttp2Stream } from "node:http2";
import type * as grpc from "@grpc/grpc-js";
import { AUTHORIZATION_HEADER } from "./client-security.js";

/** Every value of `name` in a raw header list ([name, value, name, value, …]); names compared without case. */
export function rawHeaderValues(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === name) values.push(rawHeaders[i + 1]!);
  }
  return values;
}

/** The 'stream' listener: puts back every authorization value Node dropped. */
function restoreRepeated(_stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: unknown): void {
  if (!Array.isArray(rawHeaders)) return;
  const values = rawHeaderValues(rawHeaders as string[], AUTHORIZATION_HEADER);
  // grpc-js turns an array value into one metadata entry per element.
  if (values.length > 1) (headers as Record<string, unknown>)[AUTHORIZATION_HEADER] = values;
}

type ServerInternals = { createHttp2Server?: (this: grpc.Server, credentials: grpc.ServerCredentials) => Http2Server };

/** Makes every HTTP/2 server `server` creates (at bindAsync) hand repeated authorization values to grpc-js. Call before bindAsync. */
export function refuseRepeatedAuthorization(server: grpc.Server): void {
  const internals = server as unknown as ServerInternals;
  const create = internals.createHttp2Server;
  if (typeof create !== "function") {
    throw new Error("invariant: grpc-js's Server has no createHttp2Server; update src/security/repeated-authorization.ts for this grpc-js version");
  }
  internals.createHttp2Server = function (this: grpc.Server, credentials: grpc.ServerCredentials): Http2Server {
    const http2Server = create.call(this, credentials);
    http2Server.prependListener("stream", restoreRepeated);
    return http2Server;
  };
}
