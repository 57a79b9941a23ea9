/**
 * The pure parts of src/security/: the authorization table, the loopback
 * rule, tokens files, and the validators that apply the transport policy
 * (a table of bad settings, each with the message it must give).
 */
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { validateGatewayConfig } from "../src/gateway/index.js";
import { validateMemberConfig } from "../src/member/member-config.js";
import { loadDefinition } from "../src/wire/proto.js";
import { AgentConfigError, AgentSidecar, parseSidecarArgs, validateAgentConfig } from "../src/node-agent/index.js";
import { accessRule, authorizeCall, checkRequest, ruledMethods } from "../src/security/authorization.js";
import { validateClientSecurity } from "../src/security/client-security.js";
import { hostOfAddress, isLoopbackHost } from "../src/security/listen-policy.js";
import { newToken } from "../src/security/certs.js";
import { tokenStrength, tokenWeakness } from "../src/security/token-strength.js";
import { type Identity, TokenStore, parseBearer, tokenSha256 } from "../src/security/tokens.js";

const operator: Identity = { role: "operator", name: "op" };
const gateway: Identity = { role: "gateway", name: "gw" };
const member: Identity = { role: "member", member: "n1", name: "n1" };
const agentM1: Identity = { role: "agent", node: "m1", name: "agent m1" };
/** A strong token of its own for each name (43 base64url characters). */
const T = (c: string) => createHash("sha256").update(c).digest("base64url");

describe("authorization table", () => {
  it.each([
    ["/convene.v1.Coordinator/GetRoute", gateway, true],
    ["/convene.v1.Coordinator/ListNodes", gateway, true],
    ["/convene.v1.Coordinator/ClusterStatus", gateway, true],
    ["/convene.routes.v1.RouteFeed/WatchRoutes", gateway, true],
    ["/convene.routes.v1.RouteFeed/ReportUpstreamFailure", gateway, true],
    ["/convene.v1.Coordinator/DrainNode", gateway, false],
    ["/convene.v1.Coordinator/EndMeeting", gateway, false],
    ["/convene.v1.Coordinator/GetCheckpoint", gateway, false],
    ["/convene.v1.Coordinator/ListMeetings", gateway, false],
    ["/convene.v1.NodeAgent/Heartbeat", gateway, false],
    ["/convene.member.v1.MemberAdmin/AddLearner", gateway, false],
    ["/convene.member.v1.MemberAdmin/AuditLog", gateway, true],
    ["/convene.v1.Coordinator/DrainNode", operator, true],
    ["/convene.v1.Coordinator/TransferLeadership", operator, true],
    ["/convene.v1.Coordinator/EndMeeting", operator, true],
    ["/convene.member.v1.MemberAdmin/Remove", operator, true],
    ["/convene.v1.NodeAgent/Register", operator, true],
    ["/convene.raft.v1.RaftTransport/Stream", operator, false],
    ["/convene.member.v1.MemberAdmin/NodeConnection", operator, false],
    ["/convene.v1.NodeAgent/Heartbeat", agentM1, true],
    ["/convene.v1.NodeAgent/WatchAssignments", agentM1, true],
    ["/convene.v1.Coordinator/GetRoute", agentM1, false],
    ["/convene.v1.Coordinator/ListMeetings", agentM1, true],
    ["/convene.raft.v1.RaftTransport/Stream", member, true],
    ["/convene.raft.v1.RaftTransport/SendSnapshot", member, true],
    ["/convene.member.v1.MemberAdmin/Status", member, true],
    ["/convene.member.v1.MemberAdmin/NodeConnection", member, true],
    ["/convene.v1.Coordinator/DrainNode", member, false],
    ["/convene.v1.NodeAgent/Heartbeat", member, false],
  ] as const)("%s by %o: %s", (path, identity, allowed) => {
    const d = authorizeCall(path, identity);
    expect(d.ok).toBe(allowed);
    if (!d.ok) {
      expect(d.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(d.details).toContain(`role ${identity.role} may not call`);
    }
  });

  it("refuses calls without credentials, except health checking and reflection", () => {
    const d = authorizeCall("/convene.v1.Coordinator/GetRoute", undefined);
    expect(d).toMatchObject({ ok: false, code: grpc.status.UNAUTHENTICATED });
    expect(authorizeCall("/grpc.health.v1.Health/Check", undefined).ok).toBe(true);
    expect(authorizeCall("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", undefined).ok).toBe(true);
  });

  it("refuses a method without a rule to every role (fail closed)", () => {
    expect(authorizeCall("/convene.v1.Coordinator/Nuke", operator)).toMatchObject({ ok: false, code: grpc.status.PERMISSION_DENIED, details: expect.stringContaining("no access rule") });
  });

  it("has a rule for every method of every service a member serves", () => {
    const paths: string[] = [];
    for (const file of ["convene.proto", "member.proto", "routes.proto", "raft.proto"]) {
      for (const definition of Object.values(loadDefinition(file))) {
        // A service's definition maps method names to { path, ... }; message types have no path.
        for (const method of Object.values(definition as Record<string, unknown>)) {
          const path = (method as { path?: unknown } | null)?.path;
          if (typeof path === "string") paths.push(path);
        }
      }
    }
    expect(paths.length).toBeGreaterThan(25);
    expect(paths.filter((p) => accessRule(p) === undefined)).toEqual([]);
    expect(ruledMethods().filter((p) => !paths.includes(p) && !p.startsWith("/grpc."))).toEqual([]);
  });

  it("lets an agent act only for its own node", () => {
    expect(checkRequest("/convene.v1.NodeAgent/Heartbeat", agentM1, { node_id: "m1" }).ok).toBe(true);
    const d = checkRequest("/convene.v1.NodeAgent/Heartbeat", agentM1, { node_id: "m2" });
    expect(d).toMatchObject({ ok: false, code: grpc.status.PERMISSION_DENIED });
    expect(!d.ok && d.details).toMatch(/agent token of node m1 may not act for node "m2"/);
    expect(checkRequest("/convene.v1.NodeAgent/Register", agentM1, {}).ok).toBe(false);
    // Its own meetings only: not another node's, not everyone's (empty filter).
    expect(checkRequest("/convene.v1.Coordinator/ListMeetings", agentM1, { node_id: "m1" }).ok).toBe(true);
    expect(checkRequest("/convene.v1.Coordinator/ListMeetings", agentM1, { node_id: "" }).ok).toBe(false);
    // An operator may act for any node.
    expect(checkRequest("/convene.v1.NodeAgent/Heartbeat", operator, { node_id: "m2" }).ok).toBe(true);
  });
});

describe("loopback detection", () => {
  it.each([
    ["127.0.0.1", true], ["127.1.2.3", true], ["localhost", true], ["LOCALHOST", true], ["::1", true], ["[::1]", true],
    ["0:0:0:0:0:0:0:1", true], ["::ffff:127.0.0.1", true],
    ["0.0.0.0", false], ["::", false], ["[::]", false], ["10.0.0.1", false], ["128.0.0.1", false], ["::2", false],
    ["::ffff:10.0.0.1", false], ["example.com", false], ["localhost.example.com", false], ["", false],
  ])("%s → %s", (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });

  it("takes the host out of host:port", () => {
    expect(hostOfAddress("[::1]:7001")).toBe("::1");
    expect(hostOfAddress("127.0.0.1:7001")).toBe("127.0.0.1");
    expect(hostOfAddress("localhost:0")).toBe("localhost");
  });
});

describe("tokens file", () => {
  const good = {
    tokens: [
      { role: "operator", token: T("o") },
      { role: "gateway", sha256: tokenSha256(T("g")) },
      { role: "agent", node: "m1", token: T("a") },
      { role: "member", member: "n1", token: T("m1") },
      { role: "member", member: "n2", token: T("m2") },
    ],
  };

  it("identifies each token, plain or hashed, and nothing else", () => {
    const store = TokenStore.parse(good);
    expect(store.identify(T("o"))).toMatchObject({ role: "operator" });
    expect(store.identify(T("g"))).toMatchObject({ role: "gateway" });
    expect(store.identify(T("a"))).toEqual({ role: "agent", node: "m1", name: "agent m1" });
    expect(store.identify(T("x"))).toBeUndefined();
    expect(store.identify("")).toBeUndefined();
    expect(store.identify(T("m2"))).toEqual({ role: "member", member: "n2", name: "member n2" });
    expect(store.memberToken("n1")).toBe(T("m1"));
    expect(store.memberToken("n2")).toBe(T("m2"));
    expect(store.memberToken("n3")).toBeUndefined();
  });

  it("parses bearer credentials", () => {
    expect(parseBearer("Bearer abc")).toBe("abc");
    expect(parseBearer("bearer  abc ")).toBe("abc");
    expect(parseBearer("Basic abc")).toBeUndefined();
    expect(parseBearer("Bearer a b")).toBeUndefined();
  });

  it.each([
    [null, /must be a mapping with a key tokens/],
    [{ tokens: [] }, /tokens must be a non-empty list/],
    [{ tokens: [], extra: 1 }, /unknown key "extra"/],
    [{ tokens: ["x"] }, /tokens\[0\] must be a mapping/],
    [{ tokens: [{ role: "admin", token: T("a") }] }, /tokens\[0\]\.role must be one of operator, gateway, agent, member, got "admin"/],
    [{ tokens: [{ role: "operator" }] }, /tokens\[0\] must have exactly one of token .* or sha256/],
    [{ tokens: [{ role: "operator", token: T("a"), sha256: tokenSha256(T("a")) }] }, /exactly one of token/],
    [{ tokens: [{ role: "operator", token: "short" }] }, /tokens\[0\]\.token must be 24 to 4096 printable ASCII characters without spaces, got 5 characters/],
    [{ tokens: [{ role: "operator", token: "a".repeat(24) }] }, /tokens\[0\]\.token is too weak: its estimated strength is 112 bits .* under 128.* A token needs at least 24 characters, an estimated 128 bits/],
    [{ tokens: [{ role: "operator", token: "qwzmxkeplrtyvbnhgfdsaiou" }] }, /tokens\[0\]\.token is too weak: its estimated strength is 112 bits/],
    [{ tokens: [{ role: "operator", token: "aB1!".repeat(10) }] }, /tokens\[0\]\.token is too weak: it repeats a few characters \(2\.0 bits per character/],
    [{ tokens: [{ role: "member", token: T("m") }] }, /tokens\[0\]\.member is required for role member \(the member id the token stands for, one token per member\)/],
    [{ tokens: [{ role: "member", member: "n 1", token: T("m") }] }, /tokens\[0\]\.member is required .* got "n 1"/],
    [{ tokens: [{ role: "gateway", member: "n1", token: T("g") }] }, /tokens\[0\]\.member is only for role member, got it on role gateway/],
    [{ tokens: [{ role: "operator", token: `${T("a")} x` }] }, /without spaces/],
    [{ tokens: [{ role: "operator", sha256: "abc" }] }, /tokens\[0\]\.sha256 must be 64 hexadecimal digits/],
    [{ tokens: [{ role: "agent", token: T("a") }] }, /tokens\[0\]\.node is required for role agent/],
    [{ tokens: [{ role: "agent", token: T("a"), node: "m 1" }] }, /node is required for role agent .* got "m 1"/],
    [{ tokens: [{ role: "gateway", token: T("a"), node: "m1" }] }, /tokens\[0\]\.node is only for role agent, got it on role gateway/],
    [{ tokens: [{ role: "gateway", token: T("a"), secret: 1 }] }, /tokens\[0\]: unknown key "secret"/],
    [{ tokens: [{ role: "gateway", token: T("a") }, { role: "operator", sha256: tokenSha256(T("a")) }] }, /tokens\[1\] repeats the token of tokens\[0\]/],
  ])("refuses %j", (doc, message) => {
    expect(() => TokenStore.parse(doc, "tokens file t.yaml")).toThrow(message);
  });

  it("refuses a tokens file that group or others may read, saying how to fix it, as ssh does", () => {
    const dir = mkdtempSync(join(tmpdir(), "convene-tokens-"));
    const file = join(dir, "tokens.yaml");
    try {
      writeFileSync(file, `tokens:\n  - { role: operator, token: "${T("o")}" }\n`, { mode: 0o644 });
      chmodSync(file, 0o644);
      expect(() => TokenStore.fromFile(file)).toThrow(`tokens file ${file} is accessible by group or others (mode 0644); it holds every role's secret: run \`chmod 600 ${file}\``);
      chmodSync(file, 0o640);
      expect(() => TokenStore.fromFile(file)).toThrow(/mode 0640/);
      chmodSync(file, 0o600);
      expect(TokenStore.fromFile(file).identify(T("o"))?.role).toBe("operator");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("token strength", () => {
  it("passes every token convene certs makes, and random hex of 128 bits", () => {
    for (let i = 0; i < 500; i++) expect(tokenWeakness(newToken())).toBeUndefined();
    expect(tokenWeakness(createHash("md5").update("x").digest("hex"))).toBeUndefined();
  });

  it("estimates length × log2 of the alphabet used, and the spread of the characters", () => {
    expect(tokenStrength("a".repeat(24))).toEqual({ bits: 24 * Math.log2(26), bitsPerChar: 0 });
    expect(tokenStrength("abcdefgh".repeat(4)).bitsPerChar).toBe(3);
    expect(tokenStrength("aA0-").bits).toBeCloseTo(4 * Math.log2(94));
    expect(tokenWeakness("a".repeat(23))).toBe("it has 23 characters, fewer than 24");
  });
});

describe("transport policy in the config validators", () => {
  const member = { id: "n1", peers: "n1=127.0.0.1:7001,n2=127.0.0.1:7002", dataDir: "/tmp/x" };

  it("keeps the loopback quick start plaintext and token-free", () => {
    expect(validateMemberConfig({ ...member, listen: "127.0.0.1:7001" }).security).toEqual({ requireClientCert: false, insecure: false });
    expect(validateMemberConfig({ ...member, listen: "[::1]:7001" }).security.insecure).toBe(false);
    expect(validateGatewayConfig({}).security).toBeUndefined();
  });

  it.each([
    [{ listen: "0.0.0.0:0" }, /listen 0\.0\.0\.0:0 is not a loopback address and TLS is off: turn TLS on with --cert FILE --key FILE --ca FILE .* or serve plaintext anyway with --insecure \(config key insecure: true\)/],
    [{ listen: "0.0.0.0:0", insecure: true }, /tokens are required when TLS is on or listen \(0\.0\.0\.0:0\) is beyond loopback: give a tokens file with --tokens FILE \(config key tokensFile/],
    [{ listen: "127.0.0.1:7001", cert: "c.pem", key: "k.pem", ca: "ca.pem" }, /tokens are required when TLS is on/],
    [{ listen: "127.0.0.1:7001", cert: "c.pem" }, /cert \(--cert\) needs key \(--key\)/],
    [{ listen: "127.0.0.1:7001", cert: "c.pem", key: "k.pem", tokensFile: "t" }, /ca \(--ca\) is required with cert and key/],
    [{ listen: "127.0.0.1:7001", requireClientCert: true, tokensFile: "t" }, /requireClientCert \(--require-client-cert\) needs TLS/],
    [{ listen: "127.0.0.1:7001", insecure: "maybe" }, /insecure must be true or false, got "maybe"/],
    [{ listen: "127.0.0.1:7001", peers: "n1=127.0.0.1:7001,n2=10.0.0.2:7002" }, /peers: 10\.0\.0\.2:7002 is not a loopback address and TLS is off/],
  ])("refuses member %j", (raw, message) => {
    expect(() => validateMemberConfig({ ...member, ...raw })).toThrow(message);
  });

  it("allows a TLS member with tokens anywhere, and plaintext beyond loopback with insecure and tokens", () => {
    expect(validateMemberConfig({ ...member, listen: "0.0.0.0:7001", cert: "c", key: "k", ca: "a", tokensFile: "t", requireClientCert: "true" }).security)
      .toEqual({ ca: "a", cert: "c", key: "k", tokensFile: "t", requireClientCert: true, insecure: false });
    expect(validateMemberConfig({ ...member, listen: "0.0.0.0:7001", insecure: "true", tokensFile: "t" }).security.insecure).toBe(true);
  });

  it.each([
    [{}, ["10.0.0.1:7001"], /coordinators: 10\.0\.0\.1:7001 is not a loopback address and TLS is off: turn TLS on with --ca FILE .* or send plaintext anyway with --insecure/],
    [{ insecure: true }, ["10.0.0.1:7001"], /token is required when TLS is on or a member is beyond loopback \(10\.0\.0\.1:7001\): give one with --token TOKEN or \$CONVENE_TOKEN/],
    [{ ca: "ca.pem" }, ["127.0.0.1:7001"], /token is required when TLS is on/],
    [{ ca: "ca.pem", token: "short" }, ["127.0.0.1:7001"], /token must be 24 to 4096 printable ASCII/],
    [{ cert: "c.pem", key: "k.pem", token: T("a") }, ["127.0.0.1:7001"], /cert needs ca too/],
    [{ ca: "ca.pem", cert: "c.pem", token: T("a") }, ["127.0.0.1:7001"], /cert needs key too/],
  ])("refuses client %j to %j", (raw, addresses, message) => {
    expect(() => validateClientSecurity(raw, addresses)).toThrow(message);
  });

  it("applies the same rule to the gateway and the agent library, naming their fields", () => {
    expect(() => validateGatewayConfig({ coordinators: "10.0.0.1:7001" })).toThrow(/coordinators: 10\.0\.0\.1:7001 is not a loopback address/);
    expect(() => validateGatewayConfig({ token: 7 })).toThrow(/token must be 24/);
    const base = { nodeId: "m1", address: "127.0.0.1:9001", capacity: 1, onAssigned() {}, onRevoked() {}, getState: () => undefined };
    expect(() => validateAgentConfig({ ...base, coordinators: ["10.0.0.1:7001"] })).toThrow(/not a loopback address and TLS is off: turn TLS on with tls: \{ ca \}/);
    expect(() => validateAgentConfig({ ...base, coordinators: ["127.0.0.1:7001"], tls: { ca: "nope" } })).toThrow(/tls\.ca is not a PEM certificate/);
    expect(() => validateAgentConfig({ ...base, coordinators: ["10.0.0.1:7001"], insecure: true })).toThrow(/token is required .* give one with token \(of role agent for this nodeId\)/);
    expect(validateAgentConfig({ ...base, coordinators: ["10.0.0.1:7001"], insecure: true, token: T("a") }).insecure).toBe(true);
  });
});

describe("the agent sidecar's security flags", () => {
  const base = ["--node-id", "m1", "--address", "127.0.0.1:9001", "--capacity", "5"];

  it("reads --ca, --token and --insecure (the token also from $CONVENE_TOKEN)", () => {
    const o = parseSidecarArgs([...base, "--coordinators", "10.0.0.1:7001", "--insecure", "--token", T("a")]);
    expect(o.agent).toMatchObject({ insecure: true, token: T("a") });
    expect(() => new AgentSidecar({ ...o, listen: "127.0.0.1:0" })).not.toThrow();
    expect(() => parseSidecarArgs([...base, "--coordinators", "127.0.0.1:7001", "--ca", "/nonexistent/ca.pem"])).toThrow(AgentConfigError);
    expect(() => parseSidecarArgs([...base, "--coordinators", "127.0.0.1:7001", "--ca", "/nonexistent/ca.pem"])).toThrow(/ca: cannot read \/nonexistent\/ca\.pem/);
  });

  it("refuses plaintext beyond loopback without --insecure", () => {
    const o = parseSidecarArgs([...base, "--coordinators", "10.0.0.1:7001"]);
    expect(() => new AgentSidecar({ ...o, listen: "127.0.0.1:0" })).toThrow(/coordinators: 10\.0\.0\.1:7001 is not a loopback address and TLS is off/);
  });
});
