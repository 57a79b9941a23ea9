/**
 * TLS material: PEM files read and checked once at start (a wrong path,
 * a key that does not match its certificate or an expired certificate
 * stops the process with the field named, instead of failing every
 * handshake later), and the grpc-js credentials built from them.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { SecurityConfigError } from "./errors.js";

/** PEM contents. `ca` verifies the other side; `cert` + `key` are this side's own. */
export interface TlsMaterial {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** Paths as given by flags or a config file. */
export interface TlsPaths {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

function readPem(field: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new SecurityConfigError(`${field}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Checks PEM contents: certificates parse and are valid now, the key
 * parses and matches `cert`. `where` says where each came from.
 * @throws SecurityConfigError naming the field.
 */
export function checkTlsMaterial(m: TlsMaterial, where: Readonly<Record<keyof TlsMaterial, string>> = { ca: "ca", cert: "cert", key: "key" }): TlsMaterial {
  if ((m.cert === undefined) !== (m.key === undefined)) {
    throw new SecurityConfigError(`${m.cert ? where.cert : where.key} needs ${m.cert ? where.key : where.cert} too: a certificate and its private key go together`);
  }
  const now = Date.now();
  let cert: X509Certificate | undefined;
  for (const field of ["ca", "cert"] as const) {
    const pem = m[field];
    if (pem === undefined) continue;
    let parsed: X509Certificate;
    try {
      parsed = new X509Certificate(pem);
    } catch (err) {
      throw new SecurityConfigError(`${where[field]} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
    }
    if (Date.parse(parsed.validTo) < now) throw new SecurityConfigError(`${where[field]}: the certificate expired on ${parsed.validTo}`);
    if (Date.parse(parsed.validFrom) > now) throw new SecurityConfigError(`${where[field]}: the certificate is not valid before ${parsed.validFrom}`);
    if (field === "cert") cert = parsed;
  }
  if (m.key !== undefined) {
    let key;
    try {
      key = createPrivateKey(m.key);
    } catch (err) {
      throw new SecurityConfigError(`${where.key} is not a PEM private key: ${(err as Error).message}`, { cause: err });
    }
    if (cert && !cert.checkPrivateKey(key)) throw new SecurityConfigError(`${where.key} is not the private key of the certificate in ${where.cert}`);
  }
  return m;
}

/** Reads the files that are given and checks them; undefined when none is. */
export function readTlsFiles(paths: TlsPaths, names: Readonly<Record<keyof TlsPaths, string>> = { ca: "ca", cert: "cert", key: "key" }): TlsMaterial | undefined {
  if (paths.ca === undefined && paths.cert === undefined && paths.key === undefined) return undefined;
  const material: TlsMaterial = {
    ca: paths.ca === undefined ? undefined : readPem(names.ca, paths.ca),
    cert: paths.cert === undefined ? undefined : readPem(names.cert, paths.cert),
    key: paths.key === undefined ? undefined : readPem(names.key, paths.key),
  };
  const where = {
    ca: `${names.ca} (${paths.ca})`,
    cert: `${names.cert} (${paths.cert})`,
    key: `${names.key} (${paths.key})`,
  };
  return checkTlsMaterial(material, where);
}

/**
 * A server's credentials: TLS with its certificate, and with
 * `requireClientCert` only clients with a certificate signed by `ca` get
 * past the handshake (mutual TLS). Plaintext when `tls` is undefined.
 */
export function serverCredentials(tls: TlsMaterial | undefined, requireClientCert: boolean): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  if (!tls.cert || !tls.key) throw new SecurityConfigError("a TLS server needs cert and key");
  if (requireClientCert && !tls.ca) throw new SecurityConfigError("requiring client certificates needs ca, the CA that signs them");
  return grpc.ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], requireClientCert);
}

/**
 * A client's channel credentials: TLS verifying the server against `ca`
 * (the system's roots when there is none), presenting `cert` when given.
 * Plaintext when `tls` is undefined.
 */
export function channelCredentials(tls: TlsMaterial | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
}
