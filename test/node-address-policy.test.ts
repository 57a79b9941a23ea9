/**
 * The node address policy (src/security/node-address-policy.ts): a table
 * of addresses and verdicts, the allow list's parser, and properties
 * checked with fast-check against a naive model (addresses as BigInt,
 * networks as ranges): every spelling of a refused address is refused,
 * an allow list decides exactly membership, and no input string throws.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NodeAddressPolicy, canonicalIp, parseCidrList } from "../src/security/node-address-policy.js";

const own = ["127.0.0.1:8080", "0.0.0.0:7001", "10.9.9.9:7002", "n3.example:7003"];
const policy = new NodeAddressPolicy({ ownAddresses: own, localAddresses: ["10.1.2.3", "fd00::5"] });
const reason = (p: NodeAddressPolicy, address: string) => {
  const v = p.checkAddress(address);
  return v.ok ? (v.resolve ? "resolve" : "ok") : v.reason;
};

describe("node address policy", () => {
  it.each([
    ["127.0.0.1:9001", "ok"],
    ["10.0.0.7:80", "ok"],
    ["[2001:db8::1]:443", "ok"],
    ["localhost:22", "ok"],
    ["m1.example:9001", "resolve"],
    ["169.254.169.254:80", "link_local"],
    ["[::ffff:169.254.169.254]:80", "link_local"],
    ["[::ffff:a9fe:a9fe]:80", "link_local"],
    ["[fe80::1]:80", "link_local"],
    ["[febf::1]:80", "link_local"],
    ["0.0.0.0:80", "unspecified"],
    ["0.1.2.3:80", "unspecified"],
    ["[::]:80", "unspecified"],
    ["224.0.0.1:80", "multicast"],
    ["255.255.255.255:80", "multicast"],
    ["[ff02::1]:80", "multicast"],
    ["2852039166:80", "ip_shorthand"],
    ["127.1:22", "ip_shorthand"],
    ["0x7f.1:22", "ip_shorthand"],
    ["017700000001:22", "ip_shorthand"],
    ["127.0.0.1:8080", "own_address"],
    ["localhost:8080", "own_address"],
    ["127.9.9.9:8080", "own_address"],
    ["[::1]:8080", "own_address"],
    ["[::ffff:127.0.0.1]:8080", "own_address"],
    ["10.1.2.3:7001", "own_address"],
    ["[fd00::5]:7001", "own_address"],
    ["127.0.0.1:7001", "own_address"],
    ["10.1.2.4:7001", "ok"],
    ["10.9.9.9:7002", "own_address"],
    ["10.9.9.9:7003", "ok"],
    ["N3.Example.:7003", "own_address"],
  ])("%s: %s", (address, expected) => {
    expect(reason(policy, address)).toBe(expected);
  });

  it("says why, naming the address and the rule", () => {
    expect(policy.checkAddress("169.254.169.254:80")).toEqual({
      ok: false,
      reason: "link_local",
      message: "169.254.169.254:80 is refused: a link-local address (169.254.0.0/16, fe80::/10) is never a meeting server's",
    });
    const narrow = new NodeAddressPolicy({ ownAddresses: [], allow: parseCidrList("10.0.0.0/8, fd00::/8", "nodeAddressAllow") });
    expect(narrow.checkAddress("11.0.0.1:80")).toMatchObject({ ok: false, message: "11.0.0.1:80 is refused: it is outside the networks node addresses must be in (node-address-allow: 10.0.0.0/8, fd00::/8)" });
    expect(reason(narrow, "[fd12::1]:80")).toBe("ok");
    expect(reason(narrow, "[::ffff:10.0.0.1]:80")).toBe("ok");
    // The allow list only narrows: it opens nothing refused always.
    const wide = new NodeAddressPolicy({ ownAddresses: [], allow: parseCidrList("0.0.0.0/0,::/0", "x") });
    expect(reason(wide, "169.254.169.254:80")).toBe("link_local");
  });

  it.each([
    ["", /must be a non-empty list of networks/],
    ["10.0.0.1/8", /"10\.0\.0\.1\/8" has bits set beyond its prefix; the network is 10\.0\.0\.0\/8/],
    ["fd00::1/8", /the network is fd00::\/8/],
    ["10.0.0.0/33", /prefix length outside 0\.\.32/],
    ["10.0.0.0/-1", /prefix length outside/],
    ["example.com/8", /is not a network: write an IP address, a "\/" and a prefix length/],
  ])("refuses the allow list %j", (text, message) => {
    expect(() => parseCidrList(text, "nodeAddressAllow (--node-address-allow)")).toThrow(message);
  });
});

// ---- the naive model --------------------------------------------------------

/** An IPv4 address as a number, or an IPv6 one as a BigInt over 128 bits. */
function v4(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join(".");
}

function inRange(n: bigint, base: bigint, prefix: number, bits: number): boolean {
  const shift = BigInt(bits - prefix);
  return n >> shift === base >> shift;
}

const ipv4 = fc.integer({ min: 0, max: 0xffff_ffff });
const port = fc.integer({ min: 1, max: 65535 });

/** Spellings the resolver and the URL parser accept for one IPv4 address. */
function spellings(n: number): string[] {
  const dotted = v4(n);
  const hi = ((n >>> 16) & 0xffff).toString(16);
  const lo = (n & 0xffff).toString(16);
  return [dotted, `[::ffff:${dotted}]`, `[::ffff:${hi}:${lo}]`, `[0:0:0:0:0:ffff:${hi}:${lo}]`, String(n), `0x${n.toString(16)}`];
}

describe("node address policy, by property", () => {
  const bare = new NodeAddressPolicy({ ownAddresses: [] });

  it("refuses every spelling of a link-local or unspecified IPv4 address", () => {
    const special = fc.oneof(
      fc.integer({ min: 0, max: 0xff_ffff }), // 0.0.0.0/8
      fc.integer({ min: 0xa9fe_0000, max: 0xa9fe_ffff }), // 169.254.0.0/16
    );
    fc.assert(
      fc.property(special, port, (n, p) => {
        for (const host of spellings(n)) expect(bare.checkAddress(`${host}:${p}`).ok, `${host}:${p}`).toBe(false);
      }),
      { numRuns: 2_000 },
    );
  });

  it("refuses every IPv6 link-local address, in any spelling", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 118n) - 1n }), port, (rest, p) => {
        const n = (0xfe80n << 112n) | rest;
        const groups = Array.from({ length: 8 }, (_, i) => ((n >> BigInt((7 - i) * 16)) & 0xffffn).toString(16));
        expect(bare.checkAddress(`[${groups.join(":")}]:${p}`)).toMatchObject({ ok: false, reason: "link_local" });
        expect(bare.checkAddress(`[${canonicalIp(groups.join(":"))}]:${p}`)).toMatchObject({ ok: false, reason: "link_local" });
      }),
      { numRuns: 1_000 },
    );
  });

  it("with an allow list, accepts an ordinary IPv4 address exactly when a network holds it", () => {
    const network = fc.tuple(ipv4, fc.integer({ min: 0, max: 32 })).map(([n, prefix]) => {
      const base = prefix === 0 ? 0 : Number((BigInt(n) >> BigInt(32 - prefix)) << BigInt(32 - prefix));
      return { base, prefix, text: `${v4(base)}/${prefix}` };
    });
    fc.assert(
      fc.property(fc.array(network, { minLength: 1, maxLength: 4 }), ipv4, port, (networks, n, p) => {
        const allowed = new NodeAddressPolicy({ ownAddresses: [], allow: parseCidrList(networks.map((c) => c.text).join(","), "x") });
        const special = n >>> 24 === 0 || n >>> 16 === 0xa9fe || n >>> 28 === 0xe || n === 0xffff_ffff;
        const inside = networks.some((c) => inRange(BigInt(n), BigInt(c.base), c.prefix, 32));
        const verdict = allowed.checkAddress(`${v4(n)}:${p}`);
        if (special) expect(verdict.ok).toBe(false);
        else expect(verdict.ok, `${v4(n)} in ${networks.map((c) => c.text).join(",")}`).toBe(inside);
      }),
      { numRuns: 3_000 },
    );
  });

  it("refuses an own listen port on every loopback address, and nothing else on loopback", () => {
    const listening = new NodeAddressPolicy({ ownAddresses: ["127.0.0.1:8080"] });
    fc.assert(
      fc.property(fc.integer({ min: 0x7f00_0000, max: 0x7fff_ffff }), port, (n, p) => {
        expect(listening.checkAddress(`${v4(n)}:${p}`).ok).toBe(p !== 8080);
      }),
      { numRuns: 2_000 },
    );
  });

  it("answers a verdict, never an exception, for any host:port and any allow list text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), port, (host, p) => {
        const v = bare.checkAddress(`${host}:${p}`);
        expect(typeof v.ok).toBe("boolean");
      }),
      { numRuns: 3_000 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        try {
          parseCidrList(text, "x");
        } catch (err) {
          expect((err as Error).name).toBe("SecurityConfigError");
        }
      }),
      { numRuns: 3_000 },
    );
  });
});
