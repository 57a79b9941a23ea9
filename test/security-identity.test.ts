/**
 * Attacks on member identity and on the authorization header, against
 * real member processes with TLS made by `convene certs`:
 *
 * - with member C's credential (its certificate, or its token), a stream
 *   to follower T that claims to come from the leader L and carries a
 *   TimeoutNow: T would campaign at once and take the leadership. Refused:
 *   a member's credential speaks only for that member.
 * - a member dialing its peer accepts only a certificate naming that peer.
 * - two authorization headers in one request, sent by a raw HTTP/2 client
 *   (Node's own refuses to), with a valid token first: refused, not
 *   decided by whichever value Node's server keeps.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { HealthImplementation, service as healthService } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeMessages } from "../src/raft-runtime/message-codec.js";
import { MessageType } from "../src/raft/types.js";
import { writeCerts } from "../src/security/certs.js";
import { tokenInterceptor } from "../src/security/client-security.js";
import { peerChannelCredentials } from "../src/security/member-identity.js";
import { silenceIpServernameWarning } from "../src/security/servername-warning.js";
import { MemberCluster } from "./support/member-cluster.js";
import { grpcMessage, grpcRequestFields, rawH2Request } from "./support/raw-h2.js";

silenceIpServernameWarning();

const root = fileURLToPath(new URL("../", import.meta.url));
const ids = ["n1", "n2", "n3"];

const raftDefinition = protoLoader.loadSync(join(root, "proto/raft.proto"), { keepCase: false, longs: Number, enums: Number, defaults: true });
const raftStream = (raftDefinition["convene.raft.v1.RaftTransport"] as unknown as grpc.ServiceDefinition)["Stream"]!;

/**
 * Opens a Raft stream to `to` at `address` with `credentials` (and
 * `token`), sends one batch claiming to be from `from` holding a
 * TimeoutNow of `term`, ends the stream, and returns how it ended.
 */
function sendTimeoutNow(address: string, credentials: grpc.ChannelCredentials, token: string | undefined, from: string, to: string, term: number): Promise<string> {
  const client = new grpc.Client(address, credentials, token ? { interceptors: [tokenInterceptor(token)] } : {});
  return new Promise<string>((resolve) => {
    const call = client.makeClientStreamRequest(raftStream.path, raftStream.requestSerialize, raftStream.responseDeserialize, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err) => {
      client.close();
      resolve(err ? `${grpc.status[err.code]}: ${err.details}` : "OK");
    });
    call.on("error", () => undefined);
    const timeoutNow = { type: MessageType.TimeoutNow, from, to, term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
    call.write({ clusterId: "convene", from, to, messages: encodeMessages([timeoutNow]) });
    // Give the member time to step it before the stream ends.
    setTimeout(() => call.end(), 500);
  });
}

/** Leader and term as seen by `id`, and `id`'s own role. */
async function roles(cluster: MemberCluster, id: string): Promise<{ role: string; leader: string; term: number }> {
  const s = await cluster.status(id);
  return { role: s.role, leader: s.leader_id, term: s.term };
}

function certsDir(prefix: string): { dir: string; file: (name: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeCerts({ outDir: dir, members: ids.map((id) => ({ id, hosts: [] })), agents: [], days: 1, force: false });
  return { dir, file: (name) => join(dir, name) };
}

/** The TimeoutNow attack: C's credential, to follower T, claiming the leader L. */
async function impersonateLeader(cluster: MemberCluster, credentialsOf: (id: string) => { credentials: grpc.ChannelCredentials; token?: string }) {
  const leader = await cluster.waitForLeader();
  const [target, attacker] = ids.filter((id) => id !== leader) as [string, string];
  const before = await roles(cluster, target);
  const { credentials, token } = credentialsOf(attacker);
  // No wait after it: a member steps a delivered message before the call is
  // answered (RaftDriver.receive steps at once, and a TimeoutNow starts a
  // campaign within that step), so once the outcome is known, whatever the
  // message could do to the target's term and role is done.
  const outcome = await sendTimeoutNow(cluster.addresses.get(target)!, credentials, token, leader, target, before.term);
  return { leader, target, attacker, before, outcome, after: await roles(cluster, target) };
}

describe("members known by certificate (--require-client-cert)", () => {
  const { dir, file } = certsDir("convene-identity-mtls-");
  const ca = readFileSync(file("ca.crt"));
  const memberCredentials = (id: string) => grpc.credentials.createSsl(ca, readFileSync(file(`${id}.key`)), readFileSync(file(`${id}.crt`)));
  let cluster: MemberCluster;

  beforeAll(async () => {
    // No member token: each member is known by its certificate (CN = its id).
    const operator = readFileSync(file("operator.token"), "utf8").trim();
    cluster = new MemberCluster(ids, undefined, {
      app: "coordinator",
      argsFor: (id) => ["--cert", file(`${id}.crt`), "--key", file(`${id}.key`), "--ca", file("ca.crt"), "--tokens", file("tokens.yaml"), "--require-client-cert"],
      clientCredentials: grpc.credentials.createSsl(ca, readFileSync(file("operator.key")), readFileSync(file("operator.crt"))),
      clientOptions: { interceptors: [tokenInterceptor(operator)] },
    });
    for (const id of ids) cluster.start(id);
    await cluster.waitForAll();
    await cluster.waitForLeader();
  }, 60_000);

  afterAll(async () => {
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a stream whose sender is another member than the certificate's, and the leadership stays", async () => {
    const a = await impersonateLeader(cluster, (id) => ({ credentials: memberCredentials(id) }));
    expect(a.outcome).toBe(`PERMISSION_DENIED: member ${a.attacker}'s credentials may not send as member "${a.leader}"`);
    // Before the fix the target campaigned at once: a new term (or two), and sometimes a new leader.
    expect(a.after).toEqual({ role: "follower", leader: a.leader, term: a.before.term });
  });

  it("dials a peer only when its certificate names that peer", async () => {
    // n3's certificate, serving at an address this member believes is n2's.
    const server = new grpc.Server();
    new HealthImplementation({ "": "SERVING" }).addToServer(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createSsl(ca, [{ cert_chain: readFileSync(file("n3.crt")), private_key: readFileSync(file("n3.key")) }], false), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const tls = { ca, cert: readFileSync(file("n1.crt")), key: readFileSync(file("n1.key")) };
    const check = (peer: string): Promise<string> => {
      const Health = grpc.makeGenericClientConstructor(healthService, "Health");
      const client = new Health(`127.0.0.1:${port}`, peerChannelCredentials(tls, peer));
      return new Promise((resolve) => {
        (client as unknown as { Check: (r: unknown, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void }).Check({ service: "" }, { deadline: Date.now() + 3000 }, (err) => {
          client.close();
          resolve(err ? grpc.status[err.code]! : "OK");
        });
      });
    };
    try {
      expect(await check("n3")).toBe("OK");
      expect(await check("n2")).toBe("UNAVAILABLE");
    } finally {
      server.forceShutdown();
    }
  });
});

describe("members known by token (one per member), over TLS", () => {
  const { dir, file } = certsDir("convene-identity-tokens-");
  const ca = readFileSync(file("ca.crt"));
  const tokens = readFileSync(file("tokens.yaml"), "utf8");
  /** A member's token, read from the tokens file convene certs wrote (the entry names the member). */
  const memberToken = (id: string): string => new RegExp(`member: ${id}\\n\\s+token: (\\S+)`).exec(tokens)![1]!;
  let cluster: MemberCluster;

  beforeAll(async () => {
    cluster = new MemberCluster(ids, undefined, {
      app: "coordinator",
      argsFor: (id) => ["--cert", file(`${id}.crt`), "--key", file(`${id}.key`), "--ca", file("ca.crt"), "--tokens", file("tokens.yaml")],
      clientCredentials: grpc.credentials.createSsl(ca),
      clientOptions: { interceptors: [tokenInterceptor(readFileSync(file("operator.token"), "utf8").trim())] },
    });
    for (const id of ids) cluster.start(id);
    await cluster.waitForAll();
    await cluster.waitForLeader();
  }, 60_000);

  afterAll(async () => {
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a stream whose sender is another member than the token's, and the leadership stays", async () => {
    const a = await impersonateLeader(cluster, (id) => ({ credentials: grpc.credentials.createSsl(ca), token: memberToken(id) }));
    expect(a.outcome).toBe(`PERMISSION_DENIED: member ${a.attacker}'s credentials may not send as member "${a.leader}"`);
    // Before the fix the target campaigned at once: a new term (or two), and sometimes a new leader.
    expect(a.after).toEqual({ role: "follower", leader: a.leader, term: a.before.term });
  });

  it("refuses a call carrying the authorization header twice, even with a valid token first", async () => {
    const address = cluster.addresses.get("n1")!;
    const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
    const operator = `Bearer ${readFileSync(file("operator.token"), "utf8").trim()}`;
    const status = (extra: [string, string][]) =>
      rawH2Request({ host, port, ca }, grpcRequestFields("/convene.member.v1.MemberAdmin/Status", address, "https", extra), grpcMessage());
    // One valid header: the answer is a message (DATA).
    const once = await status([["authorization", operator]]);
    expect(once.ended).toBe(true);
    expect(once.dataBytes).toBeGreaterThan(5);
    // The same, then another value: refused with a status alone, no message.
    for (const second of [operator, "Bearer not-a-token-of-this-cluster-at-all"]) {
      const twice = await status([["authorization", operator], ["authorization", second]]);
      expect(twice).toEqual({ frames: ["HEADERS"], dataBytes: 0, ended: true });
    }
  });

  it("refuses to start a member whose certificate names another member", async () => {
    const other = mkdtempSync(join(tmpdir(), "convene-identity-cert-"));
    try {
      const args = ["--import", "tsx", "src/cli.ts", "member", "--id", "n1", "--listen", "127.0.0.1:0", "--peers", "n1=127.0.0.1:1", "--data", join(other, "n1"),
        "--cert", file("n2.crt"), "--key", file("n2.key"), "--ca", file("ca.crt"), "--tokens", file("tokens.yaml")];
      const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      expect(code).toBe(2);
      expect(stderr).toMatch(/cert \(.*n2\.crt\) must name this member: OU=member and CN=n1 in its subject \(it has "O=convene, OU=member, CN=n2"\); peers dialing n1 accept no other/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
