/**
 * Bearer tokens: the tokens file a member reads, the roles, and the
 * constant-time lookup of a presented token.
 *
 *   tokens:
 *     - { role: operator, token: "…" }
 *     - { role: gateway,  sha256: "<hex of the token's SHA-256>" }   # no secret in the file
 *     - { role: agent,    token: "…", node: m1 }                    # may act for node m1 only
 *     - { role: member,   token: "…", member: n1 }                  # member n1 presents it to its peers
 *
 * Every member of a group must read the same file: a follower forwards
 * the caller's token to the leader, which checks it again. Each member has
 * a token of its own, so a peer knows which member is calling (the Raft
 * transport refuses a batch whose sender is another member than the
 * caller). Plaintext tokens must pass the strength rule of
 * token-strength.ts; the file must be private to its owner (mode 0600), as
 * ssh demands of a private key.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { SecurityConfigError } from "./errors.js";
import { TOKEN_RULE, tokenWeakness } from "./token-strength.js";

export const ROLES = ["operator", "gateway", "agent", "member"] as const;
export type Role = (typeof ROLES)[number];

/** Who a call is from, once authenticated. */
export interface Identity {
  readonly role: Role;
  /** The one node an agent may act for; set for role agent only. */
  readonly node?: string;
  /** The member this is; set for role member only (its token's `member`, or its certificate's CN). */
  readonly member?: string;
  /** For logs: the entry's name, or its role and index. */
  readonly name: string;
}

/** Tokens travel in gRPC metadata: printable ASCII, no spaces; long enough not to be guessed. */
const TOKEN = /^[\x21-\x7e]{24,4096}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
const ENTRY_KEYS = ["role", "token", "sha256", "node", "member", "name"];
/** Permission bits for group and others: a tokens file must have none of them. */
const GROUP_OR_OTHER = 0o077;

interface Entry {
  readonly digest: Buffer;
  readonly identity: Identity;
  /** The token itself, when the file holds it (a member takes its own from here). */
  readonly token: string | undefined;
}

function digestOf(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** The SHA-256 of a token as the tokens file's `sha256` field holds it. */
export function tokenSha256(token: string): string {
  return digestOf(token).toString("hex");
}

/** Whether `value` may be used as a token (printable ASCII without spaces, 24 to 4096 characters). */
export function isWellFormedToken(value: unknown): value is string {
  return typeof value === "string" && TOKEN.test(value);
}

/** "Bearer abc" → "abc"; undefined when the value is not a bearer credential. */
export function parseBearer(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const match = /^Bearer +(\S+)$/i.exec(value.trim());
  return match ? match[1] : undefined;
}

function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null || value === undefined || typeof value === "number" || typeof value === "boolean") return String(value);
  return Array.isArray(value) ? "a list" : typeof value;
}

export class TokenStore {
  private constructor(private readonly entries: readonly Entry[]) {}

  /**
   * Reads and checks a tokens file, refusing one that group or others may
   * access (it holds every role's secret).
   * @throws SecurityConfigError naming the file, the entry and the rule.
   */
  static fromFile(path: string): TokenStore {
    let text: string;
    let mode: number;
    try {
      mode = statSync(path).mode;
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new SecurityConfigError(`tokens file ${path} cannot be read: ${(err as Error).message}`, { cause: err });
    }
    if ((mode & GROUP_OR_OTHER) !== 0) {
      throw new SecurityConfigError(
        `tokens file ${path} is accessible by group or others (mode ${(mode & 0o777).toString(8).padStart(4, "0")}); it holds every role's secret: run \`chmod 600 ${path}\``,
      );
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      throw new SecurityConfigError(`tokens file ${path} is not valid YAML: ${(err as Error).message}`, { cause: err });
    }
    return TokenStore.parse(doc, `tokens file ${path}`);
  }

  /** Checks a parsed tokens document (`source` starts each message). */
  static parse(doc: unknown, source = "tokens"): TokenStore {
    if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
      throw new SecurityConfigError(`${source} must be a mapping with a key tokens (a list), got ${shown(doc)}`);
    }
    for (const key of Object.keys(doc)) {
      if (key !== "tokens") throw new SecurityConfigError(`${source}: unknown key ${JSON.stringify(key)} (known keys: tokens)`);
    }
    const list = (doc as { tokens?: unknown }).tokens;
    if (!Array.isArray(list) || list.length === 0) throw new SecurityConfigError(`${source}: tokens must be a non-empty list, got ${shown(list)}`);
    const entries = list.map((raw, i) => parseEntry(raw, `${source}: tokens[${i}]`, i));
    const seen = new Map<string, number>();
    entries.forEach((e, i) => {
      const hex = e.digest.toString("hex");
      const first = seen.get(hex);
      if (first !== undefined) throw new SecurityConfigError(`${source}: tokens[${i}] repeats the token of tokens[${first}]; each token must be unique`);
      seen.set(hex, i);
    });
    return new TokenStore(entries);
  }

  get size(): number {
    return this.entries.length;
  }

  /**
   * The identity a presented token stands for, or undefined. Compares its
   * digest with every entry's in constant time and without stopping at a
   * match, so the time taken says nothing about which or how much matched.
   */
  identify(token: string): Identity | undefined {
    const digest = digestOf(token);
    let found: Identity | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(digest, e.digest) && found === undefined) found = e.identity;
    }
    return found;
  }

  /** The plaintext token of member `id`: what that member presents to its peers. */
  memberToken(id: string): string | undefined {
    return this.entries.find((e) => e.identity.role === "member" && e.identity.member === id && e.token !== undefined)?.token;
  }
}

function parseEntry(raw: unknown, where: string, index: number): Entry {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new SecurityConfigError(`${where} must be a mapping like {role: operator, token: "…"}, got ${shown(raw)}`);
  }
  const e = raw as Record<string, unknown>;
  for (const key of Object.keys(e)) {
    if (!ENTRY_KEYS.includes(key)) throw new SecurityConfigError(`${where}: unknown key ${JSON.stringify(key)} (known keys: ${ENTRY_KEYS.join(", ")})`);
  }
  const role = e.role;
  if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) {
    throw new SecurityConfigError(`${where}.role must be one of ${ROLES.join(", ")}, got ${shown(role)}`);
  }
  if ((e.token === undefined) === (e.sha256 === undefined)) {
    throw new SecurityConfigError(`${where} must have exactly one of token (the token) or sha256 (its SHA-256 in hex)`);
  }
  let digest: Buffer;
  let token: string | undefined;
  if (e.token !== undefined) {
    if (!isWellFormedToken(e.token)) {
      throw new SecurityConfigError(`${where}.token must be 24 to 4096 printable ASCII characters without spaces, got ${typeof e.token === "string" ? `${e.token.length} characters` : shown(e.token)}`);
    }
    const weakness = tokenWeakness(e.token);
    if (weakness !== undefined) throw new SecurityConfigError(`${where}.token is too weak: ${weakness}. A token needs ${TOKEN_RULE}`);
    token = e.token;
    digest = digestOf(token);
  } else {
    if (typeof e.sha256 !== "string" || !SHA256_HEX.test(e.sha256.toLowerCase())) {
      throw new SecurityConfigError(`${where}.sha256 must be 64 hexadecimal digits (the SHA-256 of the token), got ${shown(e.sha256)}`);
    }
    digest = Buffer.from(e.sha256.toLowerCase(), "hex");
  }
  if (role === "agent") {
    if (typeof e.node !== "string" || !NODE_ID.test(e.node)) {
      throw new SecurityConfigError(`${where}.node is required for role agent (the node id it may act for) and must match ${NODE_ID.source}, got ${shown(e.node)}`);
    }
  } else if (e.node !== undefined) {
    throw new SecurityConfigError(`${where}.node is only for role agent, got it on role ${role}`);
  }
  if (role === "member") {
    if (typeof e.member !== "string" || !NODE_ID.test(e.member)) {
      throw new SecurityConfigError(
        `${where}.member is required for role member (the member id the token stands for, one token per member) and must be 1 to 64 letters, digits, ".", "_" or "-", got ${shown(e.member)}`,
      );
    }
  } else if (e.member !== undefined) {
    throw new SecurityConfigError(`${where}.member is only for role member, got it on role ${role}`);
  }
  if (e.name !== undefined && (typeof e.name !== "string" || e.name.length === 0 || e.name.length > 128)) {
    throw new SecurityConfigError(`${where}.name must be a string of 1 to 128 characters, got ${shown(e.name)}`);
  }
  const name =
    typeof e.name === "string" ? e.name : role === "agent" ? `agent ${e.node as string}` : role === "member" ? `member ${e.member as string}` : `${role} #${index}`;
  const identity: Identity =
    role === "agent" ? { role, node: e.node as string, name } : role === "member" ? { role, member: e.member as string, name } : { role: role as Role, name };
  return { digest, identity, token };
}
