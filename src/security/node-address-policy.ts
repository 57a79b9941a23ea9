/**
 * Where a meeting server may say it serves: the policy on a node's address
 * ("host:port", as NodeAgent.Register takes it), beyond its syntax. The
 * gateway connects to whatever address a node registered, so an agent that
 * registers the gateway's own address, a member's port or a cloud
 * metadata service (169.254.169.254) turns every gateway into its proxy.
 * Refused, always:
 *
 *   unspecified   0.0.0.0/8, ::            (not an address one connects to)
 *   link-local    169.254.0.0/16, fe80::/10 (metadata services, neighbours)
 *   multicast     224.0.0.0/4, 255.255.255.255, ff00::/8
 *   own           the listen addresses of the cluster's own processes, as
 *                 the caller names them (members: their group; a gateway:
 *                 itself and its members), on any address of this host
 *                 when one listens on a wildcard
 *   IPv4 shorthand  "127.1", "2852039166", "0x7f.1": host names that the
 *                 system resolver reads as IPv4 addresses; an IPv4 address
 *                 must be written as four decimal numbers
 *
 * and, when an allow list is given (`--node-address-allow CIDR,...`),
 * every address outside it. The allow list only narrows: it cannot open
 * what is refused always. A host name is checked by what it resolves to,
 * which only the caller can do (I/O): `checkAddress` says so with
 * `resolve: true`, and the caller checks each resolved address with
 * `checkIp`. "localhost" (and names under .localhost) stand for 127.0.0.1
 * and ::1 without asking a resolver.
 *
 * Pure: no resolver, no clock. Used by the members' Register handler
 * (before proposing: the state machine's apply checks syntax only, so a
 * member's flags never decide what the replicated state holds) and by the
 * gateway before it connects.
 */
import { BlockList, isIP } from "node:net";
import { SecurityConfigError } from "./errors.js";
import { hostOfAddress } from "./listen-policy.js";

export type RefusalReason = "unspecified" | "link_local" | "multicast" | "own_address" | "ip_shorthand" | "not_allowed";

export type AddressVerdict =
  | { readonly ok: true; readonly resolve: boolean }
  | { readonly ok: false; readonly reason: RefusalReason; readonly message: string };

/** One network of an allow list, as given ("10.0.0.0/8"). */
export interface Cidr {
  readonly text: string;
  readonly address: string;
  readonly prefix: number;
  readonly family: "ipv4" | "ipv6";
}

export interface NodeAddressPolicyOptions {
  /** Networks node addresses must be in; undefined: any address not refused always. */
  readonly allow?: readonly Cidr[];
  /** "host:port" listen addresses of the cluster's own processes (wildcards and names allowed). */
  readonly ownAddresses: readonly string[];
  /** This host's interface addresses: what a wildcard listener answers on (os.networkInterfaces()). */
  readonly localAddresses?: readonly string[];
}

function blockList(subnets: readonly (readonly [string, number, "ipv4" | "ipv6"])[], addresses: readonly (readonly [string, "ipv4" | "ipv6"])[] = []): BlockList {
  const list = new BlockList();
  for (const [address, prefix, family] of subnets) list.addSubnet(address, prefix, family);
  for (const [address, family] of addresses) list.addAddress(address, family);
  return list;
}

const UNSPECIFIED = blockList([["0.0.0.0", 8, "ipv4"]], [["::", "ipv6"]]);
const LINK_LOCAL = blockList([["169.254.0.0", 16, "ipv4"], ["fe80::", 10, "ipv6"]]);
const MULTICAST = blockList([["224.0.0.0", 4, "ipv4"], ["ff00::", 8, "ipv6"]], [["255.255.255.255", "ipv4"]]);
const LOOPBACK = blockList([["127.0.0.0", 8, "ipv4"]], [["::1", "ipv6"]]);

/** A host name whose last label is a number: the system resolver reads it as IPv4 ("127.1", "0x7f.1", "2852039166"). */
const NUMERIC_LAST_LABEL = /(?:^|\.)(?:0x[0-9a-f]*|[0-9]+)\.?$/i;

/** The IP in its canonical form, IPv4-mapped IPv6 as IPv4 ("::ffff:a9fe:a9fe" → "169.254.169.254"); undefined when not an IP. */
export function canonicalIp(text: string): string | undefined {
  const host = text.replace(/^\[(.*)\]$/, "$1");
  const family = isIP(host);
  if (family === 4) return host;
  if (family !== 6 || host.includes("%")) return undefined;
  const canonical = new URL(`http://[${host}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (!mapped) return canonical;
  const hi = parseInt(mapped[1]!, 16);
  const lo = parseInt(mapped[2]!, 16);
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

function familyOf(ip: string): "ipv4" | "ipv6" {
  return isIP(ip) === 4 ? "ipv4" : "ipv6";
}

function isLocalhostName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  return h === "localhost" || h.endsWith(".localhost");
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(":") + 1));
}

/**
 * Parses an allow list: "CIDR,CIDR,..." or an array; a bare address is a
 * network of one. @throws SecurityConfigError naming `field` and the rule.
 */
export function parseCidrList(value: unknown, field: string): Cidr[] {
  const items = typeof value === "string" ? value.split(",").map((s) => s.trim()).filter((s) => s !== "") : value;
  if (!Array.isArray(items) || items.length === 0) {
    throw new SecurityConfigError(`${field} must be a non-empty list of networks like 10.0.0.0/8 or fd00::/8 (comma-separated, or an array)`);
  }
  return items.map((item) => {
    if (typeof item !== "string" || item.length > 64) throw new SecurityConfigError(`${field} must hold networks like 10.0.0.0/8, got ${JSON.stringify(item).slice(0, 70)}`);
    const slash = item.indexOf("/");
    const base = canonicalIp(slash < 0 ? item : item.slice(0, slash));
    if (base === undefined) throw new SecurityConfigError(`${field}: ${JSON.stringify(item)} is not a network: write an IP address, a "/" and a prefix length, like 10.0.0.0/8`);
    const family = familyOf(base);
    const bits = family === "ipv4" ? 32 : 128;
    const prefixText = slash < 0 ? String(bits) : item.slice(slash + 1);
    const prefix = Number(prefixText);
    if (!/^[0-9]{1,3}$/.test(prefixText) || prefix > bits) throw new SecurityConfigError(`${field}: ${JSON.stringify(item)} has a prefix length outside 0..${bits}`);
    // Host bits set ("10.0.0.1/8") is most likely a typo for another network: say so rather than guess.
    const start = networkStart(base, prefix, family);
    if (start !== base) throw new SecurityConfigError(`${field}: ${JSON.stringify(item)} has bits set beyond its prefix; the network is ${start}/${prefix}`);
    return { text: item, address: base, prefix, family };
  });
}

/** The first address of the network of `ip` with `prefix` bits (for the host-bits check). */
function networkStart(ip: string, prefix: number, family: "ipv4" | "ipv6"): string {
  if (family === "ipv4") {
    const n = ip.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
    const size = 2 ** (32 - prefix);
    const start = Math.floor(n / size) * size;
    return [24, 16, 8, 0].map((shift) => Math.floor(start / 2 ** shift) % 256).join(".");
  }
  const groups = expandIpv6(ip);
  let value = groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
  const hostBits = BigInt(128 - prefix);
  value = (value >> hostBits) << hostBits;
  const out: string[] = [];
  for (let i = 7; i >= 0; i--) out.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
  return canonicalIp(out.join(":"))!;
}

/** The eight 16-bit groups of a canonical IPv6 address. */
function expandIpv6(ip: string): number[] {
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const parse = (part: string | undefined): number[] => (part ? part.split(":").map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

export class NodeAddressPolicy {
  private readonly allow: BlockList | undefined;
  private readonly allowText: string;
  private readonly own: readonly { readonly host: string; readonly ip: string | undefined; readonly port: number }[];
  private readonly local: BlockList;

  constructor(options: NodeAddressPolicyOptions) {
    if (options.allow && options.allow.length > 0) {
      this.allow = new BlockList();
      for (const c of options.allow) this.allow.addSubnet(c.address, c.prefix, c.family);
    }
    this.allowText = (options.allow ?? []).map((c) => c.text).join(", ");
    this.own = options.ownAddresses.map((a) => {
      const host = hostOfAddress(a).toLowerCase();
      return { host, ip: canonicalIp(host), port: portOf(a) };
    });
    this.local = new BlockList();
    for (const a of options.localAddresses ?? []) {
      const ip = canonicalIp(a);
      if (ip) this.local.addAddress(ip, familyOf(ip));
    }
  }

  /** Whether an allow list narrows the policy (then host names must be resolved and checked). */
  get hasAllowList(): boolean {
    return this.allow !== undefined;
  }

  /**
   * The verdict on a registered "host:port" (already valid syntax). For a
   * host name that is not refused outright, `resolve` says the caller must
   * check what it resolves to (`checkIp` with the same port).
   */
  checkAddress(address: string): AddressVerdict {
    const host = hostOfAddress(address);
    const port = portOf(address);
    const ip = canonicalIp(host);
    if (ip !== undefined) return this.checkIp(host, port, address);
    if (NUMERIC_LAST_LABEL.test(host)) {
      return refuse("ip_shorthand", `${address} is refused: its host reads as a shortened IPv4 address; write an IPv4 address as four decimal numbers (a.b.c.d)`);
    }
    if (isLocalhostName(host)) {
      for (const loopback of ["127.0.0.1", "::1"]) {
        const v = this.checkIp(loopback, port, address);
        if (!v.ok) return v;
      }
      return { ok: true, resolve: false };
    }
    const name = host.toLowerCase().replace(/\.$/, "");
    if (this.own.some((o) => o.port === port && o.host.replace(/\.$/, "") === name)) return ownRefusal(address);
    return { ok: true, resolve: true };
  }

  /** The verdict on connecting to `ip` (any spelling) on `port`; `shown` names the address in messages. */
  checkIp(rawIp: string, port: number, shown = `${rawIp}:${port}`): AddressVerdict {
    const ip = canonicalIp(rawIp);
    if (ip === undefined) return refuse("not_allowed", `${shown} is refused: ${JSON.stringify(rawIp)} is not an IP address`);
    const family = familyOf(ip);
    const via = ip === rawIp.replace(/^\[(.*)\]$/, "$1") ? "" : ` (${ip})`;
    if (UNSPECIFIED.check(ip, family)) return refuse("unspecified", `${shown}${via} is refused: an unspecified address (0.0.0.0/8, ::) is not one to connect to`);
    if (LINK_LOCAL.check(ip, family)) return refuse("link_local", `${shown}${via} is refused: a link-local address (169.254.0.0/16, fe80::/10) is never a meeting server's`);
    if (MULTICAST.check(ip, family)) return refuse("multicast", `${shown}${via} is refused: a multicast or broadcast address is not a meeting server's`);
    if (this.isOwn(ip, family, port)) return ownRefusal(shown);
    if (this.allow && !this.allow.check(ip, family)) {
      return refuse("not_allowed", `${shown}${via} is refused: it is outside the networks node addresses must be in (node-address-allow: ${this.allowText})`);
    }
    return { ok: true, resolve: false };
  }

  private isOwn(ip: string, family: "ipv4" | "ipv6", port: number): boolean {
    const loopback = LOOPBACK.check(ip, family);
    const local = loopback || this.local.check(ip, family);
    for (const o of this.own) {
      if (o.port !== port) continue;
      if (o.ip === ip) return true;
      const ownIp = o.ip;
      // A listener on a wildcard answers on every address of this host; one on loopback, on any loopback address.
      const wildcard = ownIp !== undefined && UNSPECIFIED.check(ownIp, familyOf(ownIp));
      const ownLoopback = isLocalhostName(o.host) || (ownIp !== undefined && LOOPBACK.check(ownIp, familyOf(ownIp)));
      if ((wildcard && local) || (ownLoopback && loopback)) return true;
    }
    return false;
  }
}

function refuse(reason: RefusalReason, message: string): AddressVerdict {
  return { ok: false, reason, message };
}

function ownRefusal(shown: string): AddressVerdict {
  return refuse("own_address", `${shown} is refused: it is where one of the cluster's own processes listens (a coordinator member or the gateway), not a meeting server`);
}
