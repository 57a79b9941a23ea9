/**
 * `convene certs`: a local CA and the certificates and tokens of a test
 * cluster, so a TLS cluster is one command away:
 *
 *   ca.crt, ca.key                the CA (keep ca.key away from the members)
 *   n1.crt, n1.key, ...           one per member: OU=member, for serving and
 *                                 for dialing peers; SANs localhost, 127.0.0.1,
 *                                 ::1 and the member's own host names and IPs
 *   gateway.crt, operator.crt,    client certificates (OU = the role), for
 *   agent-<node>.crt (+ .key)     members that require client certificates
 *   tokens.yaml                   the members' tokens file: one token per
 *                                 role (and per agent node), plaintext
 *   operator.token, ...           each client's token, for --token $(cat ...)
 *
 * X.509 is built with node-forge (pure JavaScript, so it works wherever
 * Node does, no openssl binary needed); the RSA keys come from Node's own
 * crypto, which is fast.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import forge from "node-forge";
import { stringify as toYaml } from "yaml";
import { SecurityConfigError } from "./errors.js";
import type { Role } from "./tokens.js";

export interface MemberHosts {
  readonly id: string;
  /** Host names and IPs this member is reached by, beyond localhost, 127.0.0.1 and ::1. */
  readonly hosts: readonly string[];
}

export interface CertsRequest {
  readonly outDir: string;
  readonly members: readonly MemberHosts[];
  /** Node ids of meeting servers: an agent certificate and token each. */
  readonly agents: readonly string[];
  /** Validity of every certificate, in days. */
  readonly days: number;
  /** Overwrite files that exist. */
  readonly force: boolean;
}

export interface CertsResult {
  /** Every file written, as paths under outDir. */
  readonly files: readonly string[];
}

const ID = /^[A-Za-z0-9._-]{1,64}$/;
const HOST = /^[A-Za-z0-9.-]{1,253}$/;
const LOOPBACK_SANS = ["localhost", "127.0.0.1", "::1"];

interface KeyPair {
  readonly pem: string;
  readonly forgePrivate: forge.pki.rsa.PrivateKey;
  readonly forgePublic: forge.pki.rsa.PublicKey;
}

function newKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return {
    pem,
    forgePrivate: forge.pki.privateKeyFromPem(pem),
    forgePublic: forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString()),
  };
}

/** A positive serial number of 16 random bytes (RFC 5280 allows up to 20). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f;
  return bytes.toString("hex");
}

interface Issuer {
  readonly cert: forge.pki.Certificate;
  readonly key: forge.pki.rsa.PrivateKey;
}

function certificate(opts: {
  subject: forge.pki.CertificateField[];
  publicKey: forge.pki.rsa.PublicKey;
  issuer: Issuer | "self";
  selfKey: forge.pki.rsa.PrivateKey;
  days: number;
  extensions: object[];
}): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = opts.publicKey;
  cert.serialNumber = serialNumber();
  // An hour of slack for clocks a little behind this one.
  cert.validity.notBefore = new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = new Date(Date.now() + opts.days * 86_400_000);
  cert.setSubject(opts.subject);
  const issuer = opts.issuer === "self" ? { cert, key: opts.selfKey } : opts.issuer;
  cert.setIssuer(opts.issuer === "self" ? opts.subject : opts.issuer.cert.subject.attributes);
  const extensions: object[] = [...opts.extensions, { name: "subjectKeyIdentifier" }];
  if (opts.issuer !== "self") {
    extensions.push({ name: "authorityKeyIdentifier", keyIdentifier: opts.issuer.cert.generateSubjectKeyIdentifier().getBytes() });
  }
  cert.setExtensions(extensions);
  cert.sign(issuer.key, forge.md.sha256.create());
  return cert;
}

function subject(cn: string, unit?: Role): forge.pki.CertificateField[] {
  const fields: forge.pki.CertificateField[] = [{ name: "organizationName", value: "convene" }];
  if (unit) fields.push({ shortName: "OU", value: unit });
  fields.push({ name: "commonName", value: cn });
  return fields;
}

function altNames(hosts: readonly string[]): object[] {
  return [...new Set(hosts)].map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h }));
}

/** A token: 32 random bytes, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Checks a request. @throws SecurityConfigError naming the field. */
export function validateCertsRequest(r: CertsRequest): CertsRequest {
  if (r.members.length === 0) throw new SecurityConfigError("members: name at least one member");
  const ids = new Set<string>();
  for (const m of r.members) {
    if (!ID.test(m.id)) throw new SecurityConfigError(`member id must match ${ID.source}, got ${JSON.stringify(m.id)}`);
    if (ids.has(m.id)) throw new SecurityConfigError(`member ${m.id} is listed twice`);
    ids.add(m.id);
    for (const h of m.hosts) {
      if (!isIP(h) && !HOST.test(h)) throw new SecurityConfigError(`member ${m.id}: host must be a host name or an IP address, got ${JSON.stringify(h)}`);
    }
  }
  for (const a of r.agents) {
    if (!ID.test(a)) throw new SecurityConfigError(`agent node id must match ${ID.source}, got ${JSON.stringify(a)}`);
  }
  if (new Set(r.agents).size !== r.agents.length) throw new SecurityConfigError("agents: a node id is listed twice");
  const reserved = r.members.map((m) => m.id).find((id) => id === "ca" || id === "gateway" || id === "operator");
  if (reserved) throw new SecurityConfigError(`member id ${reserved} would clash with the file ${reserved}.crt; pick another`);
  if (!Number.isInteger(r.days) || r.days < 1 || r.days > 3650) throw new SecurityConfigError(`days must be an integer from 1 to 3650, got ${r.days}`);
  return r;
}

/** Writes the CA, certificates and tokens. @throws SecurityConfigError when a file exists (without force) or cannot be written. */
export function writeCerts(request: CertsRequest): CertsResult {
  const r = validateCertsRequest(request);
  const clients: { file: string; cn: string; role: Role }[] = [
    { file: "gateway", cn: "gateway", role: "gateway" },
    { file: "operator", cn: "operator", role: "operator" },
    ...r.agents.map((node) => ({ file: `agent-${node}`, cn: node, role: "agent" as const })),
  ];
  const planned = [
    "ca.crt", "ca.key",
    ...r.members.flatMap((m) => [`${m.id}.crt`, `${m.id}.key`]),
    ...clients.flatMap((c) => [`${c.file}.crt`, `${c.file}.key`, `${c.file}.token`]),
    "tokens.yaml",
  ];
  if (!r.force) {
    const existing = planned.filter((f) => existsSync(join(r.outDir, f)));
    if (existing.length > 0) throw new SecurityConfigError(`${r.outDir} already holds ${existing.join(", ")}; pass --force to overwrite`);
  }
  const files = new Map<string, { text: string; secret: boolean }>();
  const caKeys = newKeyPair();
  const ca = certificate({
    subject: subject("convene test CA"),
    publicKey: caKeys.forgePublic,
    issuer: "self",
    selfKey: caKeys.forgePrivate,
    days: r.days,
    extensions: [
      { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const issuer: Issuer = { cert: ca, key: caKeys.forgePrivate };
  files.set("ca.crt", { text: forge.pki.certificateToPem(ca), secret: false });
  files.set("ca.key", { text: caKeys.pem, secret: true });
  const leaf = (name: string, cn: string, role: Role, sans: readonly string[]): void => {
    const keys = newKeyPair();
    const extensions: object[] = [
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      // Members serve and also dial their peers; clients only dial.
      { name: "extKeyUsage", serverAuth: role === "member", clientAuth: true },
    ];
    if (sans.length > 0) extensions.push({ name: "subjectAltName", altNames: altNames(sans) });
    const cert = certificate({ subject: subject(cn, role), publicKey: keys.forgePublic, issuer, selfKey: keys.forgePrivate, days: r.days, extensions });
    files.set(`${name}.crt`, { text: forge.pki.certificateToPem(cert), secret: false });
    files.set(`${name}.key`, { text: keys.pem, secret: true });
  };
  for (const m of r.members) leaf(m.id, m.id, "member", [...LOOPBACK_SANS, ...m.hosts]);
  const entries: Record<string, string>[] = [{ role: "member", token: newToken(), name: "members" }];
  for (const c of clients) {
    leaf(c.file, c.cn, c.role, []);
    const token = newToken();
    files.set(`${c.file}.token`, { text: `${token}\n`, secret: true });
    entries.push(c.role === "agent" ? { role: "agent", node: c.cn, token, name: c.file } : { role: c.role, token, name: c.file });
  }
  const header = "# convene tokens file (made by `convene certs`): give it to every member with --tokens.\n# Entries: role (operator, gateway, agent, member), token or sha256, node (agents), name.\n";
  files.set("tokens.yaml", { text: header + toYaml({ tokens: entries }), secret: true });
  try {
    mkdirSync(r.outDir, { recursive: true });
    for (const [name, { text, secret }] of files) {
      const path = join(r.outDir, name);
      writeFileSync(path, text, { mode: secret ? 0o600 : 0o644 });
      // The mode above applies only to a new file; one overwritten with --force keeps its own.
      chmodSync(path, secret ? 0o600 : 0o644);
    }
  } catch (err) {
    throw new SecurityConfigError(`cannot write to ${r.outDir}: ${(err as Error).message}`, { cause: err });
  }
  return { files: [...files.keys()].map((f) => join(r.outDir, f)) };
}
