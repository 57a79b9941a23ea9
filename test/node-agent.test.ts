/**
 * The node agent against an in-process fake coordinator (two gRPC members
 * sharing one in-memory state, test/support/fake-coordinator.ts): register,
 * heartbeats, assignments with checkpoints, checkpoint sequences, failover
 * between members, fencing, graceful leave, bad input, the sidecar's HTTP
 * API. Heartbeats and checkpoints run every 50 ms so each case takes well
 * under a second.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { type AgentOptions, AgentConfigError, NodeAgent, type ReregisteredInfo, type RevokedInfo, agentUsage, runAgentSidecar, validateAgentConfig } from "../src/node-agent/index.js";
import type { AgentSidecar } from "../src/node-agent/sidecar.js";
import { MeetingTable } from "../src/node-agent/meeting-table.js";
import { ASSIGNED, FakeCoordinator, REVOKED } from "./support/fake-coordinator.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function waitFor(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function startFake(members = 2): Promise<FakeCoordinator> {
  const fake = await FakeCoordinator.start({ members, heartbeatIntervalMs: 50, leaseTtlMs: 600 });
  cleanups.push(() => fake.close());
  return fake;
}

interface Host {
  readonly assigned: { meetingId: string; epoch: number; sequence: number | undefined; state: string | undefined }[];
  readonly revoked: string[];
  readonly revokeReasons: RevokedInfo[];
  readonly errors: Error[];
  /** meeting id → state getState returns (as text); absent → undefined. */
  readonly states: Map<string, string>;
}

function startAgent(fake: FakeCoordinator, overrides: Partial<AgentOptions> = {}): { agent: NodeAgent; host: Host } {
  const host: Host = { assigned: [], revoked: [], revokeReasons: [], errors: [], states: new Map() };
  const agent = new NodeAgent(
    {
      coordinators: fake.addresses,
      nodeId: "m1",
      address: "127.0.0.1:9001",
      capacity: 4,
      checkpointIntervalMs: 50,
      rpcTimeoutMs: 500,
      onAssigned: (meetingId, epoch, checkpoint) =>
        void host.assigned.push({ meetingId, epoch, sequence: checkpoint?.sequence, state: checkpoint && Buffer.from(checkpoint.state).toString() }),
      onRevoked: (meetingId) => void host.revoked.push(meetingId),
      getState: (meetingId) => {
        const s = host.states.get(meetingId);
        return s === undefined ? undefined : Buffer.from(s);
      },
      ...overrides,
    },
    { random: () => 0 }, // start on member 0
  );
  agent.on("error", (err) => host.errors.push(err));
  agent.on("revoked", (info) => host.revokeReasons.push(info));
  cleanups.push(() => agent.stop().catch(() => undefined));
  return { agent, host };
}

describe("agent config", () => {
  const base = {
    coordinators: ["127.0.0.1:7001"],
    nodeId: "m1",
    address: "127.0.0.1:9001",
    capacity: 10,
    onAssigned: () => undefined,
    onRevoked: () => undefined,
    getState: () => undefined,
  };
  it.each([
    [{ coordinators: undefined, nodeId: undefined }, /^coordinators and nodeId are required$/],
    [{ coordinators: [] }, /^coordinators must list the coordinator members as host:port; got an empty list/],
    [{ coordinators: ["nohost"] }, /^coordinators must list members as host:port .*; got "nohost"/],
    [{ coordinators: ["a:1", "a:1"] }, /^coordinators lists "a:1" twice/],
    [{ nodeId: "bad id" }, /^nodeId must be a node id: 1 to 64 letters, digits, ".", "_" or "-"; got "bad id" \(a space is not allowed\)$/],
    [{ nodeId: "n".repeat(10_000) }, /^nodeId must be a node id: .*; got "n{40}…" \(10,000 characters\), longer than 64$/],
    [{ address: "127.0.0.1" }, /^address must be where this server serves meeting traffic, as host:port .*; got "127.0.0.1"/],
    [{ capacity: 0 }, /^capacity must be a whole number from 1 to 4,294,967,295; got 0/],
    [{ capacity: 1.5 }, /^capacity must be a whole number .*; got 1.5/],
    [{ region: "x".repeat(65) }, /^region must be text of at most 64 characters/],
    [{ labels: { "": "v" } }, /^labels: a label's key must be 1 to 64 characters/],
    [{ labels: { k: 1 } }, /^labels: label "k" must be text/],
    [{ checkpointIntervalMs: 0 }, /^checkpointIntervalMs must be a whole number from 10 to 3,600,000; got 0/],
    [{ rpcTimeoutMs: "soon" }, /^rpcTimeoutMs must be a whole number from 10 to 600,000; got "soon"/],
    [{ maxSavesInFlight: 0 }, /^maxSavesInFlight must be a whole number from 1 to 1,024; got 0/],
    [{ retryBaseMs: 100, retryMaxMs: 50 }, /^retryMaxMs \(50\) must not be below retryBaseMs \(100\)/],
    [{ onAssigned: "yes" }, /^onAssigned must be a function; got "yes"/],
    [{ getState: undefined }, /^getState must be a function; got nothing/],
    [{ logger: {} }, /^logger must be a pino logger/],
  ])("rejects %j", (bad, message) => {
    expect(() => validateAgentConfig({ ...base, ...bad })).toThrow(message);
    expect(() => new NodeAgent({ ...base, ...bad } as unknown as AgentOptions)).toThrow(AgentConfigError);
  });

  it("fills in the defaults", () => {
    const c = validateAgentConfig(base);
    expect(c).toMatchObject({ checkpointIntervalMs: 2000, rpcTimeoutMs: 1000, region: "", labels: {} });
  });
});

describe("meeting table", () => {
  const assigned = (meetingId: string, epoch: number, sequence?: number) =>
    ({ type: "ASSIGNED", meetingId, epoch, checkpoint: sequence === undefined ? undefined : { meetingId, nodeId: "x", epoch, sequence, state: new Uint8Array(), savedAtMs: 0 } }) as const;
  it("applies the epoch rules", () => {
    const t = new MeetingTable();
    expect(t.apply(assigned("a", 2, 7)).kind).toBe("assigned");
    expect(t.apply(assigned("a", 2)).kind).toBe("unchanged");
    expect(t.apply(assigned("a", 1)).kind).toBe("unchanged");
    const first = t.get("a")!;
    expect(t.allocateSequence(first)).toBe(8);
    const re = t.apply(assigned("a", 3, 5));
    expect(re.kind).toBe("reassigned");
    // Never below what this node already sent.
    expect(t.allocateSequence(t.get("a")!)).toBe(9);
    expect(t.apply({ type: "REVOKED", meetingId: "a", epoch: 2 }).kind).toBe("unchanged");
    expect(t.apply({ type: "REVOKED", meetingId: "a", epoch: 3 }).kind).toBe("revoked");
    expect(t.apply({ type: "REVOKED", meetingId: "a", epoch: 3 }).kind).toBe("unchanged");
  });
  it("sweeps what neither a fresh snapshot nor the linearizable list still assigns", () => {
    const t = new MeetingTable();
    t.apply(assigned("a", 1));
    t.apply(assigned("b", 1));
    t.apply(assigned("c", 1));
    t.apply(assigned("d", 1));
    t.markAllUnconfirmed();
    expect(t.hasUnconfirmed()).toBe(true);
    t.apply(assigned("a", 1));
    // c: still ours (the stream's member is behind); d: ours again at a later epoch (moved away and back).
    const owned = new Map([["c", 1], ["d", 2]]);
    expect(t.sweepUnconfirmed(owned).map((m) => m.meetingId)).toEqual(["b", "d"]);
    expect(t.ids()).toEqual(["a", "c"]);
    expect(t.hasUnconfirmed()).toBe(false);
  });
});

describe("NodeAgent", () => {
  it("registers, heartbeats with its load, and keeps the watch open", async () => {
    const fake = await startFake();
    const { agent, host } = startAgent(fake, { labels: { zone: "a" }, region: "eu" });
    const registered: number[] = [];
    agent.on("registered", (r) => registered.push(r.generation));
    await agent.start();
    expect(agent.generation).toBe(1);
    expect(registered).toEqual([1]);
    expect(agent.heartbeatIntervalMs).toBe(50);
    expect(fake.callsOf("Register")[0]!.request).toMatchObject({ node_id: "m1", address: "127.0.0.1:9001", capacity: 4, region: "eu", labels: { zone: "a" } });
    await waitFor("three heartbeats", () => fake.nodes.get("m1")!.heartbeats >= 3);
    await waitFor("the watch", () => fake.openWatches("m1").length === 1);
    fake.assign("room-1", "m1");
    await waitFor("a heartbeat with one meeting", () => fake.nodes.get("m1")!.lastActiveMeetings === 1);
    expect(fake.nodes.get("m1")!.lastLoad).toBeCloseTo(0.25);
    expect(host.errors).toEqual([]);
  });

  it("hands assignments to the host with their checkpoint and saves with sequences continuing from it", async () => {
    const fake = await startFake();
    // Held before the agent starts: arrives in the watch's first snapshot.
    fake.addNode("m1");
    fake.assign("old-room", "m1");
    const { agent, host } = startAgent(fake);
    const saved: { meetingId: string; sequence: number }[] = [];
    agent.on("checkpoint", (c) => saved.push(c));
    await agent.start();
    expect(agent.generation).toBe(2);
    await waitFor("the snapshot", () => host.assigned.length === 1);
    expect(host.assigned[0]).toEqual({ meetingId: "old-room", epoch: 1, sequence: undefined, state: undefined });

    fake.putCheckpoint("room-1", 5, "hello", "m0");
    fake.addNode("m0");
    fake.assign("room-1", "m0");
    const epoch = fake.assign("room-1", "m1"); // moved here after a failure: comes with the checkpoint
    await waitFor("room-1", () => host.assigned.length === 2);
    expect(host.assigned[1]).toEqual({ meetingId: "room-1", epoch, sequence: 5, state: "hello" });
    expect(agent.meetings()).toEqual(new Map([["old-room", 1], ["room-1", epoch]]));

    host.states.set("room-1", "v1");
    await waitFor("three saves", () => saved.filter((s) => s.meetingId === "room-1").length >= 3);
    const sequences = fake.callsOf("SaveCheckpoint").filter((c) => c.request.meeting_id === "room-1").map((c) => c.request.sequence as number);
    expect(sequences.slice(0, 3)).toEqual([6, 7, 8]);
    host.states.set("room-1", "v2");
    const now = await agent.saveNow("room-1");
    expect(now).toBeGreaterThan(8);
    expect(fake.checkpoints.get("room-1")).toMatchObject({ node_id: "m1", epoch, state: Buffer.from("v2") });
    // Nothing to save for old-room (getState returns undefined): no call, no sequence spent.
    expect(fake.callsOf("SaveCheckpoint").some((c) => c.request.meeting_id === "old-room")).toBe(false);
    expect(await agent.saveNow("old-room")).toBeUndefined();
    await expect(agent.saveNow("not-mine")).rejects.toMatchObject({ code: "NOT_HELD" });
    // A REVOKED reaches the host.
    fake.end("old-room");
    await waitFor("old-room revoked", () => host.revoked.includes("old-room"));
    expect(host.errors).toEqual([]);
  });

  it("retries Register across members until one answers", async () => {
    const fake = await startFake();
    fake.stopMember(0);
    fake.failNext("Register", grpc.status.UNAVAILABLE, 2);
    const { agent } = startAgent(fake, { retryBaseMs: 5, retryMaxMs: 20 });
    await agent.start();
    expect(agent.generation).toBe(1);
    expect(agent.coordinatorAddress).toBe(fake.addresses[1]);
    await waitFor("the watch on member 1", () => fake.openWatches("m1").some((w) => w.member === 1));
  });

  it("reopens the watch on the other member when its member dies, without disturbing held meetings", async () => {
    const fake = await startFake();
    const { agent, host } = startAgent(fake);
    await agent.start();
    await waitFor("the watch on member 0", () => fake.openWatches("m1").some((w) => w.member === 0));
    fake.assign("room-1", "m1");
    await waitFor("room-1", () => host.assigned.length === 1);
    fake.stopMember(0);
    await waitFor("the watch on member 1", () => fake.openWatches("m1").some((w) => w.member === 1), 2000);
    const beats = fake.callsOf("Heartbeat", 1).length;
    await waitFor("heartbeats on member 1", () => fake.callsOf("Heartbeat", 1).length >= beats + 2);
    // room-1 was re-announced at the same epoch: a no-op, and still held after the sweep interval.
    await new Promise((r) => setTimeout(r, 150));
    expect(host.assigned).toHaveLength(1);
    expect(host.revoked).toEqual([]);
    fake.assign("room-2", "m1");
    await waitFor("room-2 over the new stream", () => host.assigned.length === 2);
    expect(agent.generation).toBe(1);
  });

  it("reopens a stream its member broke on the next member at once", async () => {
    const fake = await startFake();
    const { agent } = startAgent(fake);
    await agent.start();
    await waitFor("the watch on member 0", () => fake.openWatches("m1").some((w) => w.member === 0));
    const opened = fake.callsOf("WatchAssignments").length;
    fake.breakWatches(0); // member 0 stays up and keeps answering
    await waitFor("the watch on member 1", () => fake.openWatches("m1").some((w) => w.member === 1), 500);
    expect(fake.callsOf("WatchAssignments").slice(opened).map((c) => c.member)).toEqual([1]);
    expect(agent.coordinatorAddress).toBe(fake.addresses[1]);
  });

  it("moves the watch too when its member stops answering calls (frozen, connections open)", async () => {
    const fake = await startFake();
    const { agent } = startAgent(fake);
    await agent.start();
    await waitFor("the watch on member 0", () => fake.openWatches("m1").some((w) => w.member === 0));
    fake.failNext("Heartbeat", "hang");
    await waitFor("the watch on member 1", () => fake.openWatches("m1").some((w) => w.member === 1), 1500);
    expect(fake.openWatches("m1").filter((w) => w.member === 0)).toEqual([]);
    expect(agent.generation).toBe(1);
  });

  it("releases a meeting the fresh snapshot does not re-announce after a resubscribe", async () => {
    const fake = await startFake();
    fake.addNode("m2");
    const { agent, host } = startAgent(fake);
    await agent.start();
    await waitFor("the watch", () => fake.openWatches("m1").length === 1);
    fake.assign("stays", "m1");
    fake.assign("leaves", "m1");
    await waitFor("two meetings", () => host.assigned.length === 2);
    fake.assign("leaves", "m2", { notify: false }); // its REVOKED is lost
    fake.breakWatches();
    await waitFor("leaves revoked", () => host.revoked.includes("leaves"), 2000);
    expect(host.revokeReasons).toEqual([{ meetingId: "leaves", epoch: 1, reason: "not-reannounced" }]);
    expect(agent.meetings()).toEqual(new Map([["stays", 1]]));
  });

  it("heartbeats at once when its watch stream breaks, so the leader hears it within the disconnect grace", async () => {
    const fake = await FakeCoordinator.start({ members: 2, heartbeatIntervalMs: 2000, leaseTtlMs: 6000 });
    cleanups.push(() => fake.close());
    const { agent } = startAgent(fake);
    await agent.start();
    await waitFor("the watch", () => fake.openWatches("m1").length === 1);
    const before = fake.callsOf("Heartbeat").length;
    fake.breakWatches();
    await waitFor("a heartbeat well before the 2 s interval", () => fake.callsOf("Heartbeat").length > before, 500);
  });

  it("keeps a meeting a lagging member's stream does not re-announce while ListMeetings still lists it", async () => {
    const fake = await startFake();
    const { agent, host } = startAgent(fake);
    await agent.start();
    await waitFor("the watch", () => fake.openWatches("m1").length === 1);
    fake.assign("recent", "m1");
    await waitFor("assigned", () => host.assigned.length === 1);
    fake.lagBehind("recent");
    fake.failNext("ListMeetings", grpc.status.UNAVAILABLE, 2); // no answer at first: nothing may be released
    fake.breakWatches();
    await waitFor("two failed checks and one answer", () => fake.callsOf("ListMeetings").length >= 3, 3000);
    await sleep(100);
    expect(host.revoked).toEqual([]);
    fake.catchUp(); // the late ASSIGNED at the same epoch changes nothing
    await sleep(100);
    expect(host.assigned.map((a) => a.meetingId)).toEqual(["recent"]);
    expect(host.revoked).toEqual([]);
    expect(agent.meetings()).toEqual(new Map([["recent", 1]]));
  });

  it("re-registers with a higher generation after FAILED_PRECONDITION on Heartbeat, dropping what it held", async () => {
    const fake = await startFake();
    const { agent, host } = startAgent(fake);
    const reregistered: ReregisteredInfo[] = [];
    agent.on("reregistered", (r) => reregistered.push(r));
    await agent.start();
    await waitFor("the watch", () => fake.openWatches("m1").length === 1);
    fake.assign("room-1", "m1");
    fake.assign("room-2", "m1");
    await waitFor("two meetings", () => host.assigned.length === 2);
    fake.declareDead("m1", { endWatches: false }); // only the heartbeat tells
    await waitFor("re-registered", () => reregistered.length === 1);
    expect(reregistered[0]).toMatchObject({ generation: 2, previousGeneration: 1 });
    expect(reregistered[0]!.reason).toMatch(/^Heartbeat: .*FAILED_PRECONDITION/);
    expect(host.revoked.sort()).toEqual(["room-1", "room-2"]);
    expect(agent.meetings().size).toBe(0);
    expect(agent.generation).toBe(2);
    await waitFor("a watch at generation 2", () => fake.openWatches("m1").some((w) => w.generation === 2));
    fake.assign("room-3", "m1");
    await waitFor("room-3", () => agent.meetings().has("room-3"));
    const beats = fake.nodes.get("m1")!.heartbeats;
    await waitFor("heartbeats again", () => fake.nodes.get("m1")!.heartbeats > beats + 1);
  });

  it("re-registers when the watch is refused for a dead node", async () => {
    const fake = await startFake();
    const { agent } = startAgent(fake);
    await agent.start();
    await waitFor("the watch", () => fake.openWatches("m1").length === 1);
    fake.declareDead("m1"); // ends the stream with FAILED_PRECONDITION
    await waitFor("generation 2", () => agent.generation === 2);
  });

  it("drops a meeting whose checkpoint is refused because it moved, and keeps the rest", async () => {
    const fake = await startFake();
    fake.addNode("m2");
    const { agent, host } = startAgent(fake);
    await agent.start();
    await waitFor("the watch", () => fake.openWatches("m1").length === 1);
    fake.assign("moves", "m1");
    fake.assign("stays", "m1");
    await waitFor("two meetings", () => host.assigned.length === 2);
    host.states.set("moves", "state");
    host.states.set("stays", "state");
    await waitFor("a save of each", () => fake.checkpoints.has("moves") && fake.checkpoints.has("stays"));
    fake.assign("moves", "m2", { notify: false });
    await waitFor("moves revoked", () => host.revoked.includes("moves"));
    expect(host.revokeReasons).toEqual([{ meetingId: "moves", epoch: 1, reason: "moved" }]);
    expect(fake.checkpoints.get("moves")!.node_id).toBe("m1"); // the refused save changed nothing
    expect(agent.generation).toBe(1);
    const saves = fake.callsOf("SaveCheckpoint").filter((c) => c.request.meeting_id === "stays").length;
    await waitFor("stays still saved", () => fake.callsOf("SaveCheckpoint").filter((c) => c.request.meeting_id === "stays").length > saves);
    expect(host.errors).toEqual([]);
  });

  it("stop({ deregister: true }) saves, deregisters and revokes", async () => {
    const fake = await startFake();
    const { agent, host } = startAgent(fake, { checkpointIntervalMs: 60_000 });
    await agent.start();
    await waitFor("the watch", () => fake.openWatches("m1").length === 1);
    fake.assign("room-1", "m1");
    await waitFor("room-1", () => host.assigned.length === 1);
    host.states.set("room-1", "final");
    await agent.stop({ deregister: true });
    const methods = fake.calls.map((c) => c.method).filter((m) => m === "SaveCheckpoint" || m === "Deregister");
    expect(methods).toEqual(["SaveCheckpoint", "Deregister"]);
    expect(fake.callsOf("Deregister")[0]!.request).toMatchObject({ node_id: "m1", generation: 1 });
    expect(fake.checkpoints.get("room-1")!.state.toString()).toBe("final");
    expect(host.revoked).toEqual(["room-1"]);
    expect(fake.nodes.has("m1")).toBe(false);
    await expect(agent.saveNow("room-1")).rejects.toMatchObject({ code: "STOPPED" });
  });

  it("survives malformed events and throwing host callbacks", async () => {
    const fake = await startFake();
    const { agent, host } = startAgent(fake, {
      onAssigned: (meetingId) => {
        host.assigned.push({ meetingId, epoch: 0, sequence: undefined, state: undefined });
        throw new Error("host bug");
      },
    });
    await agent.start();
    await waitFor("the watch", () => fake.openWatches("m1").length === 1);
    fake.sendRaw("m1", { type: 7, meeting_id: "room", epoch: 1 });
    fake.sendRaw("m1", { type: ASSIGNED, meeting_id: "bad id!", epoch: 1 });
    fake.sendRaw("m1", { type: ASSIGNED, meeting_id: "room", epoch: 0 });
    fake.sendRaw("m1", { type: ASSIGNED, meeting_id: "room", epoch: 1, checkpoint: { meeting_id: "other", sequence: 1, state: Buffer.from("x") } });
    fake.sendRaw("m1", { type: REVOKED, meeting_id: "never-held", epoch: 1 });
    fake.assign("room", "m1");
    await waitFor("room", () => agent.meetings().has("room"));
    expect(host.errors.map((e) => e.message)).toEqual([
      "AssignmentEvent.type must be ASSIGNED (1), REVOKED (2) or HANDOVER (3), got 7",
      'AssignmentEvent.meeting_id must be a meeting id: 1 to 128 letters, digits, ".", "_", ":" or "-"; got "bad id!" (a space is not allowed)',
      "AssignmentEvent.epoch must be an integer in 1..2^53-1, got 0",
      'AssignmentEvent.checkpoint.meeting_id must be "room", got "other"',
      'onAssigned("room") threw',
    ]);
    expect(agent.meetings()).toEqual(new Map([["room", 1]]));
    expect(agent.running).toBe(true);
  });

  it("start() rejects with the coordinator's refusal", async () => {
    const fake = await startFake();
    fake.failNext("Register", grpc.status.INVALID_ARGUMENT);
    const { agent } = startAgent(fake);
    await expect(agent.start()).rejects.toMatchObject({ code: "COORDINATOR_CALL", status: grpc.status.INVALID_ARGUMENT });
    expect(agent.running).toBe(false);
  });
});

describe("agent sidecar", () => {
  it("serves the HTTP API, saves PUT state and calls the webhook", async () => {
    const fake = await startFake();
    const notices: Record<string, unknown>[] = [];
    const hook: Server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        notices.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => hook.close(() => r())));
    const hookPort = (hook.address() as AddressInfo).port;

    const sidecar: AgentSidecar = await runAgentSidecar(
      [
        "--coordinators", fake.addresses.join(","),
        "--node-id", "s1",
        "--address", "127.0.0.1:9002",
        "--capacity", "8",
        "--label", "lang=go",
        "--listen", "127.0.0.1:0",
        "--webhook", `http://127.0.0.1:${hookPort}/events`,
        "--checkpoint-interval-ms", "60000",
        "--log-level", "silent",
      ],
      { handleSignals: false },
    );
    cleanups.push(() => sidecar.stop().catch(() => undefined));
    const url = sidecar.url;
    expect(fake.callsOf("Register")[0]!.request).toMatchObject({ node_id: "s1", capacity: 8, labels: { lang: "go" } });

    await waitFor("the watch", () => fake.openWatches("s1").length === 1);
    fake.putCheckpoint("room-1", 3, "restored");
    fake.assign("room-1", "s1");
    await waitFor("the assigned notice", () => notices.length === 1);
    expect(notices[0]).toEqual({ type: "assigned", meetingId: "room-1", epoch: 1, checkpoint: Buffer.from("restored").toString("base64") });

    const list = await fetch(`${url}/meetings`);
    expect(await list.json()).toEqual({ nodeId: "s1", generation: 1, meetings: [{ meetingId: "room-1", epoch: 1, handingOver: false }] });

    // A host that polls instead of taking the webhook reads the restored checkpoint.
    const restored = await fetch(`${url}/meetings/room-1/state`);
    expect(restored.status).toBe(200);
    expect(restored.headers.get("x-convene-state-source")).toBe("checkpoint");
    expect(restored.headers.get("x-convene-sequence")).toBe("3");
    expect(restored.headers.get("x-convene-epoch")).toBe("1");
    expect(Buffer.from(await restored.arrayBuffer()).toString()).toBe("restored");

    const early = await fetch(`${url}/meetings/room-1/checkpoint`, { method: "POST" });
    expect(early.status).toBe(409);
    expect(await early.json()).toMatchObject({ error: "no_state" });

    expect((await fetch(`${url}/meetings/room-1/state`, { method: "PUT", body: "live state" })).status).toBe(204);
    const afterPut = await fetch(`${url}/meetings/room-1/state`);
    expect(afterPut.headers.get("x-convene-state-source")).toBe("put");
    expect(Buffer.from(await afterPut.arrayBuffer()).toString()).toBe("live state");
    const saved = await fetch(`${url}/meetings/room-1/checkpoint`, { method: "POST" });
    expect(saved.status).toBe(200);
    expect(await saved.json()).toEqual({ meetingId: "room-1", sequence: 4 });
    expect(fake.checkpoints.get("room-1")).toMatchObject({ node_id: "s1", sequence: 4, state: Buffer.from("live state") });

    const notHeld = await fetch(`${url}/meetings/other/state`, { method: "PUT", body: "x" });
    expect(notHeld.status).toBe(404);
    expect(await notHeld.json()).toMatchObject({ error: "not_held" });
    expect((await fetch(`${url}/meetings/bad%20id/checkpoint`, { method: "POST" })).status).toBe(400);
    const badMethod = await fetch(`${url}/meetings/room-1/state`, { method: "DELETE" });
    expect(badMethod.status).toBe(405);
    expect(badMethod.headers.get("allow")).toBe("GET, PUT");
    expect(await (await fetch(`${url}/meetings/other/state`)).json()).toMatchObject({ error: "not_held" });
    expect((await fetch(`${url}/nowhere`)).status).toBe(404);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    fake.end("room-1");
    await waitFor("the revoked notice", () => notices.length === 2);
    expect(notices[1]).toEqual({ type: "revoked", meetingId: "room-1", epoch: 1, checkpoint: null });
    expect(await (await fetch(`${url}/meetings`)).json()).toMatchObject({ meetings: [] });

    // Graceful leave: the last PUT state is saved, Deregister sent, and the host told before stop resolves.
    fake.assign("room-2", "s1");
    await waitFor("room-2", () => notices.length === 3);
    // Nothing PUT and no checkpoint: nothing to read.
    const none = await fetch(`${url}/meetings/room-2/state`);
    expect(none.status).toBe(404);
    expect(await none.json()).toMatchObject({ error: "no_state" });
    expect((await fetch(`${url}/meetings/room-2/state`, { method: "PUT", body: "last words" })).status).toBe(204);
    await sidecar.stop({ deregister: true });
    expect(fake.checkpoints.get("room-2")!.state.toString()).toBe("last words");
    expect(fake.callsOf("Deregister")).toHaveLength(1);
    expect(notices[3]).toEqual({ type: "revoked", meetingId: "room-2", epoch: 1, checkpoint: null });
  });

  it("rejects bad flags naming the flag", async () => {
    const required = ["--coordinators", "127.0.0.1:7001", "--node-id", "s1", "--address", "127.0.0.1:9002"];
    const bad: [string[], string][] = [
      [[], "--coordinators, --node-id, --address and --capacity are required"],
      [["--node-id", "s1", "--capacity", "2"], "--coordinators and --address are required"],
      [[...required, "--capacity", "0"], '--capacity must be a whole number from 1 to 4,294,967,295; got "0"'],
      [[...required, "--capacity", "2", "--listen", "0.0.0.0:7400"], "--listen must be a loopback host:port"],
      [[...required, "--capacity", "2", "--webhook", "ftp://x"], '--webhook must be an http:// or https:// URL; got "ftp://x"'],
      [["--coordinators", "127.0.0.1:7001", "--node-id", "x".repeat(10_000), "--address", "127.0.0.1:9002", "--capacity", "2"], '(10,000 characters), longer than 64'],
      [[...required, "--capacity", "2", "--label", "novalue"], '--label must be KEY=VALUE; got "novalue"'],
    ];
    for (const [flags, message] of bad) {
      const err = await runAgentSidecar(flags, { handleSignals: false }).then(() => undefined, (e: unknown) => e);
      expect(err, flags.join(" ")).toBeInstanceOf(AgentConfigError);
      expect((err as Error).message).toContain(message);
      expect((err as Error).message.length).toBeLessThan(300);
    }
    await expect(runAgentSidecar(["--bogus"], { handleSignals: false })).rejects.toThrow(AgentConfigError);
  });

  it("--help tells a host how to integrate: the HTTP API, the default listen address, the webhook body, what --address is", () => {
    for (const part of [
      "GET  /meetings ",
      "GET  /meetings/{id}/state",
      "PUT  /meetings/{id}/state",
      "POST /meetings/{id}/checkpoint",
      "GET  /healthz",
      "default 127.0.0.1:7400",
      '{"type":"assigned","meetingId":"room-1","epoch":2,"checkpoint":',
      "--address HOST:PORT      where the meeting server itself serves meeting HTTP and WebSocket",
    ]) {
      expect(agentUsage).toContain(part);
    }
  });
});
