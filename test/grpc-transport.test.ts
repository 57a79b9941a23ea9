/**
 * GrpcTransport on 127.0.0.1 with real gRPC servers, and the wire format
 * (message-codec.ts) it carries: order, bytes, chunked snapshots, dead and
 * stuck peers, redialling, garbage from the network, and a clean exit.
 */
import { spawn } from "node:child_process";
import net from "node:net";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import fc from "fast-check";
import { Packr } from "msgpackr";
import { afterEach, describe, expect, it } from "vitest";
import { GrpcTransport, peerServerOptions, type GrpcTransportOptions, type TransportLogger } from "../src/raft-runtime/grpc-transport.js";
import {
  BATCH_OVERHEAD_BOUND, MessageDecodeError, SnapshotAssembler, decodeMessages, encodeMessages, encodedSizeBound, splitSnapMessage,
} from "../src/raft-runtime/message-codec.js";
import { EntryType, MessageType, message, type Message, type NodeId } from "../src/raft/types.js";
import { Recorder } from "./support/transport-recorder.js";

// ---- helpers ---------------------------------------------------------------


class SpyLogger implements TransportLogger {
  readonly lines: string[] = [];
  readonly debugs: { fields: Record<string, unknown>; message: string }[] = [];
  debug(fields: object, message: string): void {
    this.debugs.push({ fields: fields as Record<string, unknown>, message });
  }
  warn(_fields: object, message: string): void {
    this.lines.push(message);
  }
  error(_fields: object, message: string): void {
    this.lines.push(message);
  }
}

interface Member {
  readonly id: NodeId;
  readonly port: number;
  readonly server: grpc.Server;
  readonly transport: GrpcTransport;
  readonly seen: Recorder;
  readonly log: SpyLogger;
}

const servers: grpc.Server[] = [];
const transports: GrpcTransport[] = [];
afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.close()));
  for (const server of servers.splice(0)) server.forceShutdown();
});

async function bindServer(port = 0): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server(peerServerOptions());
  servers.push(server);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, port: bound };
}

async function startMember(id: NodeId, bound: { server: grpc.Server; port: number }, addresses: ReadonlyMap<NodeId, string>,
  options: Partial<GrpcTransportOptions> = {}): Promise<Member> {
  const log = new SpyLogger();
  const transport = new GrpcTransport({ selfId: id, peers: addresses, server: bound.server, logger: log, ...options });
  transports.push(transport);
  const seen = new Recorder();
  await transport.start(seen);
  return { id, ...bound, transport, seen, log };
}

async function cluster(ids: NodeId[]): Promise<Member[]> {
  const bound = await Promise.all(ids.map(() => bindServer()));
  const addresses = new Map(ids.map((id, i) => [id, `127.0.0.1:${bound[i]!.port}`]));
  return Promise.all(ids.map((id, i) => startMember(id, bound[i]!, addresses)));
}

function app(from: NodeId, to: NodeId, index: number, bytes = 32): Message {
  const data = new Uint8Array(bytes).map((_, i) => (index * 31 + i) % 256);
  return message({ type: MessageType.App, from, to, term: 3, logTerm: 3, index, commit: index,
    entries: [{ term: 3, index: index + 1, type: EntryType.Normal, data }] });
}

const heartbeat = (from: NodeId, to: NodeId, commit: number): Message => message({ type: MessageType.Heartbeat, from, to, term: 3, commit });

function snap(from: NodeId, to: NodeId, bytes: number): Message {
  const data = new Uint8Array(bytes).map((_, i) => (i * 7 + 3) % 256);
  return message({ type: MessageType.Snap, from, to, term: 3,
    snapshot: { metadata: { index: 500, term: 3, confState: { voters: ["n1", "n2", "n3"], learners: ["n4"] } }, data } });
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Runs `use` with the address of a server that accepts TCP connections and never says a word. */
async function withBlackHole(use: (address: string) => Promise<void>): Promise<void> {
  const sockets: net.Socket[] = [];
  const blackHole = net.createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
  try {
    await use(`127.0.0.1:${(blackHole.address() as net.AddressInfo).port}`);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => blackHole.close(resolve));
  }
}

async function until(condition: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(2);
  }
}

// ---- the wire format -------------------------------------------------------

const id = fc.string({ unit: "grapheme", maxLength: 6 });
const nat = fc.oneof(fc.nat(1000), fc.maxSafeNat());
const bytes = fc.uint8Array({ maxLength: 48 });
const plain = { noNullPrototype: true } as const;
const entry = fc.record({ term: nat, index: nat, type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange), data: bytes }, plain);
const confState = fc.record({ voters: fc.array(id, { maxLength: 5 }), learners: fc.array(id, { maxLength: 3 }) }, plain);
const snapshot = fc.record({ metadata: fc.record({ index: nat, term: nat, confState }, plain), data: fc.uint8Array({ maxLength: 300 }) }, plain);
const anyMessage = fc.record(
  {
    type: fc.integer({ min: 0, max: 18 }), from: id, to: id, term: nat, logTerm: nat, index: nat, entries: fc.array(entry, { maxLength: 4 }),
    commit: nat, reject: fc.boolean(), rejectHint: nat, snapshot, transfer: fc.boolean(), context: bytes,
  },
  { requiredKeys: ["type", "from", "to", "term", "logTerm", "index", "entries", "commit", "reject", "rejectHint"], noNullPrototype: true },
) as fc.Arbitrary<Message>;

describe("message codec", () => {
  it("round-trips any batch of messages exactly, bytes as plain Uint8Arrays, within the size bound", () => {
    fc.assert(
      fc.property(fc.array(anyMessage, { maxLength: 6 }), (messages) => {
        const encoded = encodeMessages(messages);
        const decoded = decodeMessages(encoded);
        expect(decoded).toStrictEqual(messages);
        const bound = messages.reduce((sum, m) => sum + encodedSizeBound(m), BATCH_OVERHEAD_BOUND);
        expect(encoded.length).toBeLessThanOrEqual(bound);
      }),
      { numRuns: 2000 },
    );
  });

  it("turns any garbage into a MessageDecodeError (or a well-typed batch), never another error", () => {
    const check = (input: Uint8Array) => {
      try {
        for (const m of decodeMessages(input)) expect(typeof m.from === "string" && Array.isArray(m.entries)).toBe(true);
      } catch (error) {
        expect(error).toBeInstanceOf(MessageDecodeError);
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check), { numRuns: 20_000 });
    const packr = new Packr();
    fc.assert(fc.property(fc.jsonValue(), (value) => check(packr.pack(value))), { numRuns: 5000 });
    // Mutations of a real batch: truncations and flipped bytes.
    const real = encodeMessages([app("n1", "n2", 7), snap("n1", "n2", 40), heartbeat("n1", "n2", 3)]);
    fc.assert(fc.property(fc.nat(real.length - 1), fc.nat(255), (at, value) => {
      check(real.subarray(0, at));
      const flipped = Uint8Array.from(real);
      flipped[at] = value;
      check(flipped);
    }), { numRuns: 5000 });
    expect(() => decodeMessages(new Uint8Array(300_000).fill(0x91))).toThrow(MessageDecodeError); // absurd nesting
    expect(decodeMessages(encodeMessages([heartbeat("n1", "n2", 1)]))).toHaveLength(1); // and the codec still works
  });

  it("splits a snapshot into chunks that reassemble exactly, and refuses short, long or oversized ones", () => {
    const m = snap("n1", "n2", 5 * 1024 * 1024 + 1);
    const { header, chunks } = splitSnapMessage(m, 1024 * 1024);
    expect(chunks.map((c) => c.length)).toEqual([...Array(5).fill(1024 * 1024), 1]);
    const assembler = new SnapshotAssembler(header, 10 * 1024 * 1024);
    expect(assembler.header.snapshot!.data.length).toBe(0);
    for (const chunk of chunks) assembler.add(chunk);
    const rebuilt = assembler.finish();
    expect(sameBytes(rebuilt.snapshot!.data, m.snapshot!.data)).toBe(true);
    expect({ ...rebuilt, snapshot: rebuilt.snapshot!.metadata }).toEqual({ ...m, snapshot: m.snapshot!.metadata });

    const short = new SnapshotAssembler(header, 10 * 1024 * 1024);
    short.add(chunks[0]!);
    expect(() => short.finish()).toThrow(/ended after 1048576 of 5242881 bytes/);
    const long = new SnapshotAssembler(header, 10 * 1024 * 1024);
    for (const chunk of chunks) long.add(chunk);
    expect(() => long.add(new Uint8Array(1))).toThrow(MessageDecodeError);
    expect(() => new SnapshotAssembler(header, 1024)).toThrow(/snapshot size 5242881/);
    expect(() => new SnapshotAssembler(new Uint8Array([1, 2, 3]), 1024)).toThrow(MessageDecodeError);
    expect(() => new SnapshotAssembler(encodeMessages([heartbeat("n1", "n2", 1)]), 1024)).toThrow(MessageDecodeError);
  });
});

// ---- the transport ---------------------------------------------------------

describe("GrpcTransport", () => {
  it("refuses bad options with the field and value", async () => {
    const { server } = await bindServer();
    const base = { selfId: "n1", peers: new Map(), server };
    expect(() => new GrpcTransport({ ...base, maxMessageBytes: 1000 })).toThrow(/maxMessageBytes must be an integer of at least 65536, got 1000/);
    expect(() => new GrpcTransport({ ...base, snapshotChunkBytes: 4 * 1024 * 1024 })).toThrow(/snapshotChunkBytes \(4194304\) must leave/);
    expect(() => new GrpcTransport({ ...base, selfId: "" })).toThrow(/selfId/);
    expect(() => new GrpcTransport({ ...base, peers: new Map([["n2", ""]]) })).toThrow(/peers: member n2 has no address/);
  });

  it("three members exchange thousands of messages, each peer's in order, entries' bytes intact", async () => {
    const members = await cluster(["n1", "n2", "n3"]);
    const perPair = 3000;
    for (let tick = 0; tick < perPair / 100; tick++) {
      for (const sender of members) {
        const batch: Message[] = [];
        for (let i = tick * 100; i < (tick + 1) * 100; i++) {
          for (const peer of members) if (peer !== sender) batch.push(app(sender.id, peer.id, i, 1 + (i % 200)));
        }
        sender.transport.send(batch);
      }
      await turn();
    }
    await until(() => members.every((m) => m.seen.messages.length === 2 * perPair), 10_000, "all messages delivered");
    for (const receiver of members) {
      for (const sender of members) {
        if (sender === receiver) continue;
        const got = receiver.seen.from(sender.id);
        expect(got.map((m) => m.index)).toEqual([...Array(perPair).keys()]);
        expect(got.every((m, i) => sameBytes(m.entries[0]!.data, app(sender.id, receiver.id, i, 1 + (i % 200)).entries[0]!.data))).toBe(true);
      }
      expect(receiver.seen.unreachable).toEqual([]);
    }
    expect(members[1]!.seen.messages[0]).toStrictEqual(app("n1", "n2", 0, 1));
  });

  it("carries a steady flow from one member to another (throughput on loopback)", async () => {
    const [n1, n2] = await cluster(["n1", "n2"]);
    const total = 200_000;
    const perTick = 2000;
    const ticks: Message[][] = [];
    for (let i = 0; i < total; i += perTick) ticks.push(Array.from({ length: perTick }, (_, k) => app("n1", "n2", i + k, 16)));
    const started = performance.now();
    for (const batch of ticks) {
      n1!.transport.send(batch);
      await turn();
    }
    await until(() => n2!.seen.messages.length === total, 20_000, "the flow delivered");
    const seconds = (performance.now() - started) / 1000;
    console.log(`GrpcTransport n1 -> n2 on loopback: ${Math.round(total / seconds).toLocaleString("en")} messages/s (${total} App messages with a 16-byte entry)`);
    expect(n2!.seen.messages.every((m, i) => m.index === i)).toBe(true);
  });

  it("sends a 5 MiB snapshot in chunks on its own call, reports ok once, and does not hold up the stream", async () => {
    const [n1, n2] = await cluster(["n1", "n2"]);
    n1!.transport.send([heartbeat("n1", "n2", 0)]);
    await until(() => n2!.seen.messages.length === 1);
    const sent = snap("n1", "n2", 5 * 1024 * 1024); // more than one 4 MiB gRPC message: it can only arrive chunked
    n1!.transport.send([sent, heartbeat("n1", "n2", 1)]);
    await until(() => n1!.seen.snapshotStatus.length === 1, 10_000, "snapshot status");
    expect(n1!.seen.snapshotStatus).toEqual([["n2", true]]);
    const types = n2!.seen.messages.map((m) => m.type);
    expect(types).toEqual([MessageType.Heartbeat, MessageType.Heartbeat, MessageType.Snap]);
    const got = n2!.seen.messages[2]!;
    expect(sameBytes(got.snapshot!.data, sent.snapshot!.data)).toBe(true);
    expect(got.snapshot!.metadata).toEqual(sent.snapshot!.metadata);
    // Once close() has resolved (and its reports, each a microtask, have
    // run) nothing more can be reported: the one report is all there is.
    await n1!.transport.close();
    await turn();
    expect(n1!.seen.snapshotStatus).toHaveLength(1);
  });

  it("reports a dead peer without delaying the others, fails its snapshot, and redials it when it is back", async () => {
    const [n1, n2, n3] = await cluster(["n1", "n2", "n3"]);
    n1!.transport.send([heartbeat("n1", "n2", 0), heartbeat("n1", "n3", 0)]);
    await until(() => n2!.seen.messages.length === 1 && n3!.seen.messages.length === 1);
    await n3!.transport.close();
    n3!.server.forceShutdown();

    let slowest = 0;
    for (let i = 1; i <= 60; i++) {
      const sentAt = performance.now();
      n1!.transport.send([heartbeat("n1", "n3", i), heartbeat("n1", "n2", i)]);
      await until(() => n2!.seen.messages.length === i + 1, 2000, "delivery to n2");
      slowest = Math.max(slowest, performance.now() - sentAt);
      await sleep(10);
    }
    await until(() => n1!.seen.unreachable.includes("n3"), 5000, "n3 reported unreachable");
    expect(n1!.seen.unreachable).not.toContain("n2");
    expect(slowest).toBeLessThan(500); // blocking would take the 1-2 s it needs to give up on a peer
    n1!.transport.send([snap("n1", "n3", 1000)]);
    await until(() => n1!.seen.snapshotStatus.length === 1);
    expect(n1!.seen.snapshotStatus).toEqual([["n3", false]]);

    const addresses = new Map([["n1", `127.0.0.1:${n1!.port}`], ["n2", `127.0.0.1:${n2!.port}`], ["n3", `127.0.0.1:${n3!.port}`]]);
    const back = await startMember("n3", await bindServer(n3!.port), addresses);
    let commit = 100;
    const restartedAt = performance.now();
    while (back.seen.messages.length === 0) {
      n1!.transport.send([heartbeat("n1", "n3", commit++)]);
      await sleep(20);
      if (performance.now() - restartedAt > 5000) throw new Error("n3 not redialled within 5 s");
    }
    // Everything sent on the new connection arrives, in order, once.
    const last = commit++;
    n1!.transport.send([heartbeat("n1", "n3", last)]);
    await until(() => back.seen.messages.some((m) => m.commit === last), 5000, "the last heartbeat to n3");
    const commits = back.seen.messages.map((m) => m.commit);
    expect(commits).toEqual([...commits].sort((a, b) => a - b));
    expect(new Set(commits).size).toBe(commits.length);
  });

  it("dials a restarted peer back as soon as it is up, not after the redial backoff", async () => {
    const [n1, n2, n3] = await cluster(["n1", "n2", "n3"]);
    n1!.transport.send([heartbeat("n1", "n3", 0)]);
    await until(() => n3!.seen.messages.length === 1);
    await n3!.transport.close();
    n3!.server.forceShutdown();
    const addresses = new Map([["n1", `127.0.0.1:${n1!.port}`], ["n2", `127.0.0.1:${n2!.port}`], ["n3", `127.0.0.1:${n3!.port}`]]);
    // Heartbeats to the dead n3 until a failed redial starts a backoff of at least 700 ms.
    let commit = 1;
    const longBackoff = () => n1!.log.debugs.find((d) => d.message === "stream to peer broke again" && Number(d.fields.retryInMs) >= 700);
    const since = performance.now();
    while (!longBackoff()) {
      n1!.transport.send([heartbeat("n1", "n3", commit++)]);
      await sleep(20);
      if (performance.now() - since > 15_000) throw new Error("no redial backoff of 700 ms within 15 s");
    }
    // n3 comes back at once: n1 must not wait the backoff out.
    const back = await startMember("n3", await bindServer(n3!.port), addresses);
    const restartedAt = performance.now();
    while (back.seen.messages.length === 0) {
      n1!.transport.send([heartbeat("n1", "n3", commit++)]);
      await sleep(10);
      if (performance.now() - restartedAt > 5000) throw new Error("n3 not redialled within 5 s");
    }
    const waitedMs = performance.now() - restartedAt;
    expect(waitedMs, `n3 heard from n1 ${Math.round(waitedMs)} ms after it was up; the backoff was ${String(longBackoff()!.fields.retryInMs)} ms`).toBeLessThan(500);
    expect(n1!.log.debugs.some((d) => d.message === "peer is up again; redialling now")).toBe(true);
  });

  it("reports a stuck peer (it accepts TCP but never answers) without delaying the others", async () => {
    await withBlackHole(async (address) => {
      const [n1, n2] = await cluster(["n1", "n2"]);
      n1!.transport.addPeer("n4", address);
      let slowest = 0;
      const startedAt = performance.now();
      for (let i = 0; !n1!.seen.unreachable.includes("n4"); i++) {
        if (performance.now() - startedAt > 4000) throw new Error("stuck peer not reported within 4 s");
        const sentAt = performance.now();
        n1!.transport.send([heartbeat("n1", "n4", i), heartbeat("n1", "n2", i)]);
        await until(() => n2!.seen.messages.length === i + 1, 2000, "delivery to n2");
        slowest = Math.max(slowest, performance.now() - sentAt);
        await sleep(20);
      }
      expect(slowest).toBeLessThan(500); // blocking would take the 1-2 s it needs to give up on a peer
      expect(n1!.seen.unreachable.every((peer) => peer === "n4")).toBe(true);
      n1!.transport.removePeer("n4");
    });
  });

  it("bounds what waits for a peer that takes nothing: drops the oldest and reports the peer at once", async () => {
    await withBlackHole(async (address) => {
      const log = new SpyLogger();
      const seen = new Recorder();
      const transport = new GrpcTransport({
        selfId: "n1", peers: new Map([["n4", address]]), server: (await bindServer()).server, logger: log,
        maxMessageBytes: 64 * 1024, snapshotChunkBytes: 32 * 1024, maxQueuedBytesPerPeer: 64 * 1024,
      });
      transports.push(transport);
      await transport.start(seen);
      transport.send(Array.from({ length: 100 }, (_, i) => app("n1", "n4", i, 8 * 1024)));
      await until(() => seen.unreachable.length > 0, 500, "unreachable reported");
      expect(log.lines).toContain("peer is too slow: dropped its oldest queued messages");
    });
  });

  it("fails each snapshot that close() cuts short, exactly once", async () => {
    const [n1] = await cluster(["n1", "n2"]);
    n1!.transport.send([snap("n1", "n2", 5 * 1024 * 1024)]);
    await turn(); // this one is on its way
    n1!.transport.send([snap("n1", "n2", 10)]); // this one has not left yet
    await n1!.transport.close();
    await turn(); // its reports are microtasks queued before close() resolved; none can follow
    expect(n1!.seen.snapshotStatus).toEqual([["n2", false], ["n2", false]]);
  });

  it("drops garbage and impostor batches from a raw gRPC client, keeps the stream, and refuses a wrong cluster or member", async () => {
    const [, n2] = await cluster(["n1", "n2"]);
    const protoPath = fileURLToPath(new URL("../proto/raft.proto", import.meta.url));
    const definitions = protoLoader.loadSync(protoPath, { keepCase: false, defaults: true });
    const service = definitions["convene.raft.v1.RaftTransport"] as grpc.ServiceDefinition;
    const stream = service["Stream"]!;
    const raw = new grpc.Client(`127.0.0.1:${n2!.port}`, grpc.credentials.createInsecure());
    const open = <T>(serialize: (value: T) => Buffer) => {
      let result: Promise<grpc.ServiceError | null>;
      const call = new Promise<grpc.ClientWritableStream<T>>((ready) => {
        result = new Promise((settle) => ready(raw.makeClientStreamRequest<T, Buffer>(stream.path, serialize, (b) => b, (err) => settle(err))));
      });
      return call.then((c) => ({ call: c, result: result! }));
    };
    try {
      // Bytes that are not even a MessageBatch: gRPC refuses them, the server lives on.
      const notProto = await open<Buffer>((b) => b);
      notProto.call.write(Buffer.from([0x22, 0x10, 0x01])); // field 4, 16 bytes long, then 1 byte
      notProto.call.end();
      expect((await notProto.result)?.code).toBe(grpc.status.INTERNAL);

      const batch = (fields: object) => stream.requestSerialize({ clusterId: "convene", from: "n9", to: "n2", ...fields });
      const good = await open<object>(batch);
      good.call.write({ messages: Buffer.from("definitely not msgpack tuples") });
      good.call.write({ messages: encodeMessages([heartbeat("n7", "n2", 1)]) }); // claims another sender
      good.call.write({ messages: encodeMessages([heartbeat("n9", "n3", 1)]) }); // for another member
      good.call.write({ messages: encodeMessages([heartbeat("n9", "n2", 42)]) });
      good.call.end();
      expect(await good.result).toBeNull();
      expect(n2!.seen.messages).toEqual([heartbeat("n9", "n2", 42)]);
      expect(n2!.log.lines).toEqual([
        "dropped a batch that does not decode",
        "dropped a batch with a message not from its sender to this member",
        "dropped a batch with a message not from its sender to this member",
      ]);

      for (const wrong of [{ clusterId: "another" }, { to: "n3" }]) {
        const refused = await open<object>(batch);
        refused.call.write({ ...wrong, messages: encodeMessages([heartbeat("n9", "n2", 1)]) });
        refused.call.end();
        expect((await refused.result)?.code).toBe(grpc.status.FAILED_PRECONDITION);
      }
      expect(n2!.seen.messages).toHaveLength(1);

      // SendSnapshot: a header that is garbage, and a snapshot shorter than its header announced.
      const snapshotCall = service["SendSnapshot"]!;
      const { header, chunks } = splitSnapMessage(snap("n9", "n2", 10), 5);
      for (const [first, rest] of [[Buffer.from("garbage"), []], [header, chunks.slice(1)]] as const) {
        const chunk = (fields: object) => snapshotCall.requestSerialize({ clusterId: "convene", from: "n9", to: "n2", ...fields });
        let call!: grpc.ClientWritableStream<object>;
        const result = new Promise<grpc.ServiceError | null>((settle) => {
          call = raw.makeClientStreamRequest<object, Buffer>(snapshotCall.path, chunk, (b) => b, (err) => settle(err));
        });
        call.write({ header: first });
        for (const data of rest) call.write({ data });
        call.end();
        expect((await result)?.code).toBe(grpc.status.INVALID_ARGUMENT);
      }
      expect(n2!.seen.messages).toHaveLength(1);
    } finally {
      raw.close();
    }
  });

  it("close() leaves nothing open: a process that used the transport exits by itself", async () => {
    const script = `
      const grpc = await import("@grpc/grpc-js");
      const { GrpcTransport, peerServerOptions } = await import(${JSON.stringify(new URL("../src/raft-runtime/grpc-transport.ts", import.meta.url).href)});
      const { MessageType, message } = await import(${JSON.stringify(new URL("../src/raft/types.ts", import.meta.url).href)});
      const ids = ["n1", "n2"];
      const servers = ids.map(() => new grpc.Server(peerServerOptions()));
      const ports = await Promise.all(servers.map((s) => new Promise((ok, fail) =>
        s.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? fail(e) : ok(p))))));
      const peers = new Map(ids.map((id, i) => [id, "127.0.0.1:" + ports[i]]));
      let received = 0, snapshots = 0;
      const handlers = { onMessage: () => received++, onUnreachable() {}, onSnapshotStatus: () => snapshots++ };
      const transports = ids.map((selfId, i) => new GrpcTransport({ selfId, peers, server: servers[i] }));
      for (const t of transports) await t.start(handlers);
      const data = new Uint8Array(3 * 1024 * 1024);
      transports[0].send([
        ...Array.from({ length: 1000 }, (_, i) => message({ type: MessageType.Heartbeat, from: "n1", to: "n2", commit: i })),
        message({ type: MessageType.Snap, from: "n1", to: "n2", snapshot: { metadata: { index: 1, term: 1, confState: { voters: ids, learners: [] } }, data } }),
      ]);
      transports[1].send([message({ type: MessageType.Heartbeat, from: "n2", to: "n1" })]);
      while (received < 1002 || snapshots < 1) await new Promise((r) => setTimeout(r, 5));
      await Promise.all(transports.map((t) => t.close()));
      await Promise.all(servers.map((s) => new Promise((r) => s.tryShutdown(r))));
      console.log("closed", received);
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const exit = await new Promise<number | string>((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve("still running 15 s later");
      }, 15_000);
      child.on("exit", (code) => {
        clearTimeout(timer);
        resolve(code ?? "killed");
      });
    });
    expect({ exit, output: output.trim() }).toEqual({ exit: 0, output: "closed 1002" });
  });
});
