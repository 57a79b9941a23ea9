/**
 * HeartbeatStream against real member processes: beats answered as the
 * unary Heartbeat would be (errors included) with the stream going on, at
 * the leader and through a follower (which names the leader); the agent's
 * link uses it and falls back to unary where a member lacks it; and what a
 * careless or hostile client does to a member with it: pipelining past the
 * bound, never reading its answers, sending bytes that are not a message.
 */
import * as http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrpcAgentLink } from "../src/node-agent/agent-link.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const pkg = loadProto("convene.proto");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");

interface Answer {
  sequence: number;
  code: number;
  details: string;
  response: { lease_ttl_ms: number; draining: boolean } | null;
  leader: string;
}
type Duplex = grpc.ClientDuplexStream<Record<string, unknown>, Answer>;

function openStream(client: grpc.Client): Duplex {
  const s = (client as unknown as { HeartbeatStream(): Duplex }).HeartbeatStream();
  s.on("error", () => undefined);
  return s;
}

/** Collects a stream's answers until `count` arrived (or 10 s passed). */
function answers(stream: Duplex, count: number): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const got: Answer[] = [];
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${count} answers within 10 s`)), 10_000);
    const onData = (a: Answer) => {
      got.push(a);
      if (got.length === count) {
        clearTimeout(timer);
        stream.off("data", onData);
        resolve(got);
      }
    };
    stream.on("data", onData);
  });
}

function ended(stream: Duplex): Promise<grpc.StatusObject> {
  return new Promise((resolve) => stream.on("status", resolve));
}

describe("HeartbeatStream on real members", () => {
  const ids = ["n1", "n2", "n3"];
  const cluster = new MemberCluster(ids, undefined, { app: "coordinator" });
  const clients: grpc.Client[] = [];
  let leader: string;
  let follower: string;
  let generation: number;
  let beat: NodeJS.Timeout | undefined;
  const agentClient = (id: string): grpc.Client => {
    const c = new NodeAgentClient(cluster.addresses.get(id)!, grpc.credentials.createInsecure());
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    for (const id of ids) cluster.start(id);
    leader = await cluster.waitForLeader();
    await cluster.waitForAll();
    follower = ids.find((id) => id !== leader)!;
    const r = await unary<{ generation: number }>(agentClient(leader), "Register", { node_id: "hs1", address: "127.0.0.1:29101", capacity: 10, region: "", labels: {} }, 10_000);
    generation = r.generation;
    // Kept alive between the tests' own beats (a lease is 1.5 s).
    const keeper = agentClient(leader);
    beat = setInterval(() => void unary(keeper, "Heartbeat", { node_id: "hs1", generation }).catch(() => undefined), 300);
  }, 60_000);

  afterAll(async () => {
    clearInterval(beat);
    for (const c of clients) c.close();
    await cluster.close();
  });

  it("answers each beat with the unary call's outcome, by sequence, and goes on after an error", async () => {
    const stream = openStream(agentClient(leader));
    const got = answers(stream, 4);
    stream.write({ node_id: "hs1", generation, active_meetings: 0, load: 0, sequence: 11 });
    stream.write({ node_id: "hs1", generation: generation + 5, sequence: 12 });
    stream.write({ node_id: "nobody", generation: 1, sequence: 13 });
    stream.write({ node_id: "", generation: 1, sequence: 14 });
    const bySequence = new Map((await got).map((a) => [a.sequence, a]));
    expect(bySequence.get(11)).toMatchObject({ code: grpc.status.OK, leader: "", response: { lease_ttl_ms: expect.any(Number) } });
    expect(bySequence.get(12)).toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    expect(bySequence.get(13)).toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(bySequence.get(14)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining("node_id") });
    // Still open: one more beat is answered.
    const more = answers(stream, 1);
    stream.write({ node_id: "hs1", generation, sequence: 15 });
    expect(await more).toMatchObject([{ sequence: 15, code: grpc.status.OK }]);
    const end = ended(stream);
    stream.end();
    expect((await end).code).toBe(grpc.status.OK);
  });

  it("forwards beats from a follower to the leader and names the leader", async () => {
    const stream = openStream(agentClient(follower));
    const got = answers(stream, 2);
    stream.write({ node_id: "hs1", generation, sequence: 1 });
    stream.write({ node_id: "hs1", generation: generation + 5, sequence: 2 });
    const [a, b] = (await got).sort((x, y) => x.sequence - y.sequence);
    expect(a).toMatchObject({ code: grpc.status.OK, leader: cluster.addresses.get(leader) });
    expect(b).toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    stream.cancel();
  });

  it("is what the agent's link uses for Heartbeat, and the leader hears those beats", async () => {
    const link = new GrpcAgentLink();
    try {
      const hints: string[] = [];
      const res = await link.unary(cluster.addresses.get(follower)!, "NodeAgent", "Heartbeat", { node_id: "hs1", generation }, 3000, (l) => hints.push(l));
      expect(res).toMatchObject({ lease_ttl_ms: expect.any(Number), draining: false });
      expect(hints).toEqual([cluster.addresses.get(leader)]);
      await expect(link.unary(cluster.addresses.get(leader)!, "NodeAgent", "Heartbeat", { node_id: "hs1", generation: generation + 9 }, 3000, () => undefined)).rejects.toMatchObject({
        code: grpc.status.FAILED_PRECONDITION,
      });
    } finally {
      link.close();
    }
    const nodes = await unary<{ nodes: { node_id: string; state: number }[] }>(new CoordinatorClient(cluster.addresses.get(leader)!, grpc.credentials.createInsecure()), "ListNodes", {});
    expect(nodes.nodes.find((n) => n.node_id === "hs1")?.state).toBe(1); // ALIVE
  });

  it("stops reading a client that does not read its answers, and loses none of its beats when it reads again", async () => {
    // A raw HTTP/2 client: grpc-js's own client slows to a crawl with a large backlog on one call, which would test the client.
    const method = NodeAgentClient.service.HeartbeatStream!;
    const session = http2.connect(`http://${cluster.addresses.get(leader)}`);
    session.on("error", () => undefined);
    const req = session.request({ ":method": "POST", ":path": method.path, "content-type": "application/grpc", te: "trailers" });
    req.on("error", () => undefined);
    req.pause(); // reads nothing for now
    const frame = (message: Buffer): Buffer => {
      const head = Buffer.alloc(5);
      head.writeUInt32BE(message.length, 1);
      return Buffer.concat([head, message]);
    };
    // Beats as fast as the stream takes them, until it takes none for a second: the member must stop
    // reading once its answers back up (HTTP/2 flow control then holds this sender), not buffer them all.
    let written = 0;
    let held = false;
    const deadline = Date.now() + 30_000;
    while (!held && Date.now() < deadline) {
      written++;
      if (!req.write(frame(method.requestSerialize({ node_id: "hs1", generation, sequence: written })))) {
        held = !(await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 1000);
          req.once("drain", () => {
            clearTimeout(timer);
            resolve(true);
          });
        }));
      }
    }
    expect(held).toBe(true);
    const link = new GrpcAgentLink();
    try {
      // Another stream is served at once.
      await expect(link.unary(cluster.addresses.get(leader)!, "NodeAgent", "Heartbeat", { node_id: "hs1", generation }, 2000, () => undefined)).resolves.toMatchObject({ draining: false });
    } finally {
      link.close();
    }
    // Now read: every beat written is answered, once: run, or refused past the bound (one read off the socket holds thousands).
    const sequences = new Set<number>();
    let notOk = 0;
    let pending = Buffer.alloc(0);
    const all = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${sequences.size} of ${written} answers within 20 s`)), 20_000);
      req.on("data", (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
          const length = pending.readUInt32BE(1);
          const answer = method.responseDeserialize(pending.subarray(5, 5 + length)) as Answer;
          pending = pending.subarray(5 + length);
          sequences.add(answer.sequence);
          if (answer.code !== grpc.status.OK && answer.code !== grpc.status.RESOURCE_EXHAUSTED) notOk++;
        }
        if (sequences.size === written) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    req.resume();
    await all;
    expect(notOk).toBe(0);
    req.close();
    session.close();
  });

  it("ends the stream of a client sending bytes that are not a message, and serves the next", async () => {
    const raw = new grpc.Client(cluster.addresses.get(leader)!, grpc.credentials.createInsecure());
    clients.push(raw);
    const call = raw.makeBidiStreamRequest(
      "/convene.v1.NodeAgent/HeartbeatStream",
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    call.on("error", () => undefined);
    const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.write(Buffer.from([0xff])); // wire type 7: no protobuf message
    expect((await status).code).not.toBe(grpc.status.OK);
    const link = new GrpcAgentLink();
    try {
      await expect(link.unary(cluster.addresses.get(leader)!, "NodeAgent", "Heartbeat", { node_id: "hs1", generation }, 2000, () => undefined)).resolves.toMatchObject({ draining: false });
    } finally {
      link.close();
    }
  });
});

describe("the agent's link with a member that has no HeartbeatStream", () => {
  it("sends unary Heartbeat calls instead", async () => {
    const server = new grpc.Server();
    let unaryBeats = 0;
    // An older member: NodeAgent without HeartbeatStream.
    const older = Object.fromEntries(Object.entries(NodeAgentClient.service).filter(([name]) => name !== "HeartbeatStream")) as grpc.ServiceDefinition;
    server.addService(older, {
      Heartbeat: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        unaryBeats++;
        cb(null, { lease_ttl_ms: 1500, draining: false });
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const link = new GrpcAgentLink();
    try {
      for (let i = 0; i < 3; i++) {
        await expect(link.unary(`127.0.0.1:${port}`, "NodeAgent", "Heartbeat", { node_id: "old1", generation: 1 }, 2000, () => undefined)).resolves.toMatchObject({ lease_ttl_ms: 1500 });
      }
      expect(unaryBeats).toBe(3);
    } finally {
      link.close();
      server.forceShutdown();
    }
  });
});
