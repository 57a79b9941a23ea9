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
 *   https-<name>.crt (+ .key)     serving certificates (OU=server) for the
 *                                 HTTPS ports of gateways and demo servers
 *   tokens.yaml                   the members' tokens file (mode 0600): one
 *                                 token per member, per client role and per
 *                                 agent node, plaintext
 *   operator.token, ...           each client's token, for --token $(cat ...)
 *
 * X.509 is built with node-forge (pure JavaScript, so it works wherever
 * Node does, no openssl binary needed); the RSA keys come from Node's own
 * crypto, which is fast.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
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
  /** Gateways and demo servers serving HTTPS on their own port: a serving certificate each (https-<id>.crt). */
  readonly https?: readonly MemberHosts[];
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

/** A certificate's OU: a role, or "server" for a gateway's or demo server's own HTTPS port. */
type Unit = Role | "server";

function subject(cn: string, unit?: Unit): forge.pki.CertificateField[] {
  const fields: forge.pki.CertificateField[] = [{ name: "organizationName", value: "convene" }];
  if (unit) fields.push({ shortName: "OU", value: unit });
  fields.push({ name: "commonName", value: cn });
  return fields;
}

function altNames(hosts: readonly string[]): object[] {
  return [...new Set(hosts)].map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h }));
}

/** A leaf certificate and its key, PEM. Members and HTTPS servers serve (and members dial their peers); clients only dial. */
function leafCertificate(issuer: Issuer, cn: string, unit: Unit, sans: readonly string[], days: number): { cert: string; key: string } {
  const keys = newKeyPair();
  const extensions: object[] = [
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: unit === "member" || unit === "server", clientAuth: unit !== "server" },
  ];
  if (sans.length > 0) extensions.push({ name: "subjectAltName", altNames: altNames(sans) });
  const cert = certificate({ subject: subject(cn, unit), publicKey: keys.forgePublic, issuer, selfKey: keys.forgePrivate, days, extensions });
  return { cert: forge.pki.certificateToPem(cert), key: keys.pem };
}

/**
 * Issues one more member certificate, `<id>.crt` and `<id>.key`, with the
 * CA that `writeCerts` left in `dir` (ca.crt, ca.key): for a member added
 * later, under a new id. @throws SecurityConfigError when the CA cannot be
 * read or the files cannot be written.
 */
export function issueMemberCertificate(dir: string, member: MemberHosts, days: number): { cert: string; key: string } {
  validateCertsRequest({ outDir: dir, members: [member], agents: [], days, force: true });
  let issuer: Issuer;
  try {
    issuer = {
      cert: forge.pki.certificateFromPem(readFileSync(join(dir, "ca.crt"), "utf8")),
      key: forge.pki.privateKeyFromPem(readFileSync(join(dir, "ca.key"), "utf8")) as forge.pki.rsa.PrivateKey,
    };
  } catch (err) {
    throw new SecurityConfigError(`cannot read the CA in ${dir} (ca.crt, ca.key): ${(err as Error).message}`, { cause: err });
  }
  const made = leafCertificate(issuer, member.id, "member", [...LOOPBACK_SANS, ...member.hosts], days);
  const paths = { cert: join(dir, `${member.id}.crt`), key: join(dir, `${member.id}.key`) };
  try {
    writeFileSync(paths.cert, made.cert, { mode: 0o644 });
    writeFileSync(paths.key, made.key, { mode: 0o600 });
  } catch (err) {
    throw new SecurityConfigError(`cannot write to ${dir}: ${(err as Error).message}`, { cause: err });
  }
  return paths;
}

/** A token: 32 random bytes, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Checks a request. @throws SecurityConfigError naming the field. */
export function validateCertsRequest(r: CertsRequest): CertsRequest {
  const ids = new Set<string>();
  for (const m of r.members) {
    if (!ID.test(m.id)) throw new SecurityConfigError(`member id must match ${ID.source}, got ${JSON.stringify(m.id)}`);
    if (ids.has(m.id)) throw new SecurityConfigError(`member ${m.id} is listed twice`);
    ids.add(m.id);
    for (const h of m.hosts) {
      if (!isIP(h) && !HOST.test(h)) throw new SecurityConfigError(`member ${m.id}: host must be a host name or an IP address, got ${JSON.stringify(h)}`);
    }
  }
  for (const h of r.https ?? []) {
    if (!ID.test(h.id)) throw new SecurityConfigError(`https server name must match ${ID.source}, got ${JSON.stringify(h.id)}`);
    for (const host of h.hosts) {
      if (!isIP(host) && !HOST.test(host)) throw new SecurityConfigError(`https server ${h.id}: host must be a host name or an IP address, got ${JSON.stringify(host)}`);
    }
  }
  if (new Set((r.https ?? []).map((h) => h.id)).size !== (r.https ?? []).length) throw new SecurityConfigError("https: a server name is listed twice");
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
    ...(r.https ?? []).flatMap((h) => [`https-${h.id}.crt`, `https-${h.id}.key`]),
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
  const leaf = (name: string, cn: string, unit: Unit, sans: readonly string[]): void => {
    const made = leafCertificate(issuer, cn, unit, sans, r.days);
    files.set(`${name}.crt`, { text: made.cert, secret: false });
    files.set(`${name}.key`, { text: made.key, secret: true });
  };
  for (const m of r.members) leaf(m.id, m.id, "member", [...LOOPBACK_SANS, ...m.hosts]);
  for (const h of r.https ?? []) leaf(`https-${h.id}`, h.id, "server", [...LOOPBACK_SANS, ...h.hosts]);
  const entries: Record<string, string>[] = r.members.map((m) => ({ role: "member", member: m.id, token: newToken(), name: m.id }));
  for (const c of clients) {
    leaf(c.file, c.cn, c.role, []);
    const token = newToken();
    files.set(`${c.file}.token`, { text: `${token}\n`, secret: true });
    entries.push(c.role === "agent" ? { role: "agent", node: c.cn, token, name: c.file } : { role: c.role, token, name: c.file });
  }
  const header = "# convene tokens file (made by `convene certs`): give it to every member with --tokens.\n# Entries: role (operator, gateway, agent, member), token or sha256, node (agents), member (members), name.\n";
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
