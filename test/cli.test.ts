/**
 * `convene` as an operator runs it: real processes (node --import tsx
 * src/cli.ts ...) against three real coordinator members, with two meeting
 * servers played by raw gRPC clients (Register, Heartbeat, WatchAssignments).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/cli/run.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { MemberCluster, basePort, unary } from "./support/member-cluster.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const pkg = loadProto("convene.proto");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A meeting server as the coordinator sees it: registered, heartbeating, watching. */
class FakeServer {
  generation = 0;
  private beat: NodeJS.Timeout | undefined;
  private watch: grpc.ClientReadableStream<unknown> | undefined;
  readonly client: grpc.Client;

  constructor(
    readonly nodeId: string,
    coordinator: string,
    private readonly port: number,
  ) {
    this.client = new NodeAgentClient(coordinator, grpc.credentials.createInsecure());
  }

  async start(): Promise<void> {
    const r = await unary<{ generation: number; heartbeat_interval_ms: number }>(this.client, "Register", {
      node_id: this.nodeId, address: `127.0.0.1:${this.port}`, capacity: 10, region: "", labels: {},
    }, 10_000);
    this.generation = r.generation;
    this.beat = setInterval(() => {
      unary(this.client, "Heartbeat", { node_id: this.nodeId, generation: this.generation, active_meetings: 0, load: 0 }).catch(() => undefined);
    }, r.heartbeat_interval_ms);
    const watch = (this.client as unknown as { WatchAssignments(req: unknown): grpc.ClientReadableStream<unknown> }).WatchAssignments({
      node_id: this.nodeId, generation: this.generation,
    });
    watch.on("error", () => undefined);
    this.watch = watch;
  }

  stop(): void {
    clearInterval(this.beat);
    this.watch?.cancel();
    this.client.close();
  }
}

/** `convene ARGS` run in this process (src/cli/run.ts): its exit code and what it printed. */
async function inProcess(args: readonly string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(args, { writeOut: (t) => (stdout += t), writeErr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

/** Anything that reads like a regular expression: what users must never be shown. */
const REGEX_LIKE = /\^|\$\W|\{\d+,\d+\}|\[A-Z/;

describe("convene's messages for a newcomer's mistakes", () => {
  const dir = mkdtempSync(join(tmpdir(), "convene-cli-messages-"));
  const badListen = join(dir, "gateway.yaml");
  writeFileSync(badListen, "listen: nope\n");
  const longId = "x".repeat(10_000);
  const table: [string, string[], number, string][] = [
    ["member without flags names every required flag", ["member"], 2, "convene member: --id, --listen, --data and --peers (or --join) are required\n"],
    [
      "member whose peers leave it out names --peers and --join",
      ["member", "--id", "n1", "--listen", "127.0.0.1:1", "--data", join(dir, "n1"), "--peers", "n2=127.0.0.1:2"],
      2,
      "convene member: --peers must include this member (n1=127.0.0.1:1) to found a group: every founding member as id=host:port, comma-separated; or pass --join to join an existing group\n",
    ],
    ["member with a bad flag value names the flag", ["member", "--id", "a b", "--listen", "127.0.0.1:1", "--data", "d", "--join"], 2, '--id must be a member id: 1 to 64 letters, digits, ".", "_" or "-"; got "a b" (a space is not allowed)'],
    ["a member id is called a member id", ["members", "promote", "n/4"], 2, 'convene members promote: ID must be a member id: 1 to 64 letters, digits, ".", "_" or "-"; got "n/4" ("/" is not allowed)\n'],
    ["agent without flags names every required flag", ["agent"], 2, "convene agent: --coordinators, --node-id, --address and --capacity are required (convene agent --help lists every flag"],
    ["demo-server without --node-id", ["demo-server"], 2, "convene demo-server: --node-id is required"],
    ["gateway with a bad --listen", ["gateway", "--listen", "nope"], 2, 'convene gateway: --listen must be host:port with a port from 0 (any free port) to 65535; got "nope"'],
    ["a bad value from a config file is named as the file's key", ["gateway", "--config", badListen], 2, `convene gateway: listen in ${badListen} must be host:port`],
    ["a missing config file says why", ["gateway", "--config", "/nonexistent.yaml"], 2, "convene gateway: config file /nonexistent.yaml cannot be read: there is no such file\n"],
    ["a missing member config file says why", ["member", "--config", "/nonexistent.yaml"], 2, "convene member: config file /nonexistent.yaml cannot be read: there is no such file\n"],
    ["a config path that is a directory says so", ["demo-server", "--config", dir], 2, "cannot be read: it is a directory, not a file"],
    ["an id rule is said in words", ["meetings", "--node", "a/b"], 2, 'convene meetings: --node must be a node id: 1 to 64 letters, digits, ".", "_" or "-"; got "a/b" ("/" is not allowed)\n'],
    ["a 10,000-character id is not echoed", ["route", longId], 2, `convene route: MEETING must be a meeting id: 1 to 128 letters, digits, ".", "_", ":" or "-"; got "${"x".repeat(40)}…" (10,000 characters), longer than 128\n`],
    ["a number rule names the flag", ["log", "--limit", "many"], 2, 'convene log: --limit must be a whole number from 0 to 4,294,967,295; got "many"\n'],
    [
      "status with no cluster says no member answered and how to start one",
      ["status", "--coordinators", "127.0.0.1:1,127.0.0.1:2"],
      1,
      "convene status: UNAVAILABLE: no coordinator member answered at the addresses tried (127.0.0.1:1 and 127.0.0.1:2: connection refused: nothing listens there). " +
        "Start a local cluster with `convene start`",
    ],
  ];
  it.each(table)("%s", async (_what, args, code, message) => {
    const r = await inProcess(args);
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(REGEX_LIKE);
    expect(r.stderr).not.toContain("Resolution note");
    expect(r.stderr.length).toBeLessThan(600);
  });
});

describe("convene CLI", () => {
  const cluster = new MemberCluster(["n1", "n2", "n3"], undefined, { app: "coordinator" });
  const coordinators = [...cluster.addresses.values()].join(",");
  const servers: FakeServer[] = [];

  function cli(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
        cwd: root,
        env: { ...process.env, CONVENE_COORDINATORS: coordinators, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** Runs a command that must succeed; its stdout. */
  async function ok(args: readonly string[], env?: Record<string, string>): Promise<string> {
    const r = await cli(args, env);
    if (r.code !== 0) throw new Error(`convene ${args.join(" ")} exited ${r.code}\n${r.stderr}\n${cluster.recentLogs()}`);
    return r.stdout;
  }

  beforeAll(async () => {
    for (const id of ["n1", "n2", "n3"]) cluster.start(id);
    await cluster.waitForLeader();
    await cluster.waitForAll();
    const port = basePort();
    for (const [i, id] of ["m1", "m2"].entries()) {
      const s = new FakeServer(id, cluster.addresses.get("n1")!, port + i);
      await s.start();
      servers.push(s);
    }
  }, 60_000);

  afterAll(async () => {
    for (const s of servers) s.stop();
    await cluster.close();
  });

  it("status shows one leader, as a table and as JSON", async () => {
    const [text, json] = await Promise.all([ok(["status"]), ok(["status", "--json"])]);
    const rows = text.split("\n").filter((l) => /^n[123]\s/.test(l));
    expect(rows).toHaveLength(3);
    expect(rows.filter((l) => /\sLEADER\s/.test(l))).toHaveLength(1);
    const s = JSON.parse(json) as { leader_id: string; term: number; members: { id: string; role: string; reachable: boolean }[] };
    expect(s.members.map((m) => m.id).sort()).toEqual(["n1", "n2", "n3"]);
    expect(s.members.filter((m) => m.role === "LEADER").map((m) => m.id)).toEqual([s.leader_id]);
    expect(text).toContain(`leader ${s.leader_id}`);
  });

  it("nodes lists the meeting servers with state and meetings/capacity", async () => {
    const text = await ok(["nodes"]);
    expect(text.split("\n")[0]).toMatch(/^NODE\s+ADDRESS\s+STATE\s+MEETINGS\s+REGION\s+GENERATION\s+CPU\s+IN MB\/S\s+OUT MB\/S\s+PEOPLE\s+HANDS OVER AT$/);
    // No load figures reported, no drain deadline: dashes.
    expect(text).toMatch(/^m1\s+127\.0\.0\.1:\d+\s+ALIVE\s+0\/10\s+-\s+\d+\s+-\s+-\s+-\s+-\s+-$/m);
    expect(text).toMatch(/^m2\s+127\.0\.0\.1:\d+\s+ALIVE\s+0\/10\s+-\s+\d+\s+-\s+-\s+-\s+-\s+-$/m);
  });

  it("route --create places a meeting; route, meetings --node and checkpoint then show it; drain --migrate moves it", async () => {
    const created = JSON.parse(await ok(["route", "room-1", "--create", "--json"])) as { node_id: string; epoch: number; created: boolean };
    expect(created).toMatchObject({ epoch: 1, created: true });
    const owner = servers.find((s) => s.nodeId === created.node_id)!;
    const other = servers.find((s) => s !== owner)!;
    const [again, onOwner, onOther] = await Promise.all([
      ok(["route", "room-1"]),
      ok(["meetings", "--node", owner.nodeId]),
      ok(["meetings", "--node", other.nodeId]),
    ]);
    expect(again).toMatch(new RegExp(`^node\\s+${owner.nodeId}$`, "m"));
    expect(again).toMatch(/^created\s+no$/m);
    expect(onOwner).toMatch(new RegExp(`^room-1\\s+${owner.nodeId}\\s+127\\.0\\.0\\.1:\\d+\\s+1$`, "m"));
    expect(onOther).toBe(`no meetings on ${other.nodeId}\n`);

    await unary(owner.client, "SaveCheckpoint", {
      node_id: owner.nodeId, generation: owner.generation, meeting_id: "room-1", epoch: 1, sequence: 1, state: Buffer.from("hello"),
    });
    const cp = JSON.parse(await ok(["checkpoint", "room-1", "--json"])) as Record<string, unknown>;
    expect(cp).toMatchObject({ meeting_id: "room-1", node_id: owner.nodeId, epoch: 1, sequence: 1, size_bytes: 5 });
    expect(cp).not.toHaveProperty("state");

    expect(await ok(["drain", owner.nodeId, "--migrate"])).toBe(`${owner.nodeId} is draining: it gets no new meetings; moved 1 meeting to other servers\n`);
    const [nodes, meetings] = await Promise.all([ok(["nodes", "--json"]), ok(["meetings", "--json"])]);
    expect((JSON.parse(nodes) as { nodes: { node_id: string; state: string }[] }).nodes.find((n) => n.node_id === owner.nodeId)!.state).toBe("DRAINING");
    expect((JSON.parse(meetings) as { meetings: unknown[] }).meetings).toContainEqual(expect.objectContaining({ meeting_id: "room-1", node_id: other.nodeId, epoch: 2 }));
  });

  it("tries the next member when the first listed is down", async () => {
    const text = await ok(["status"], { CONVENE_COORDINATORS: `127.0.0.1:1,${coordinators}` });
    expect(text).toMatch(/\sLEADER\s/);
    // A flag overrides the environment.
    const r = await cli(["nodes", "--coordinators", "127.0.0.1:1", "--timeout-ms", "2000"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^convene nodes: UNAVAILABLE: /);
  });

  it("refuses bad commands and arguments, naming them (exit 2), and reports the cluster's refusals (exit 1)", async () => {
    const [bogus, badId, badLimit, notFound, removeUnknown] = await Promise.all([
      cli(["bogus"]),
      cli(["route", "a b"]),
      cli(["log", "--limit", "many"]),
      cli(["route", "never-created"]),
      cli(["members", "remove", "n9"]),
    ]);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toContain("unknown command 'bogus'");
    expect(badId.code).toBe(2);
    expect(badId.stderr).toContain("convene route: MEETING must be a meeting id");
    expect(badLimit.code).toBe(2);
    expect(badLimit.stderr).toContain("--limit");
    expect(notFound.code).toBe(1);
    expect(notFound.stderr).toMatch(/^convene route: NOT_FOUND: .+/);
    expect(removeUnknown.code).toBe(1);
    expect(removeUnknown.stderr).toMatch(/^convene members remove: n9 is not a member of the group \(voters: n1, n2, n3; learners: none\)/);
  });

  it("meetings --node and drain of an unknown node say it is unknown (exit 1), and change nothing", async () => {
    const flags = ["--coordinators", coordinators];
    const [meetings, drain] = await Promise.all([inProcess(["meetings", "--node", "nosuch", ...flags]), inProcess(["drain", "nosuch", "--migrate", ...flags])]);
    expect(meetings).toEqual({ code: 1, stdout: "", stderr: "convene meetings: no meeting server nosuch is registered (registered: m1, m2)\n" });
    expect(drain).toEqual({ code: 1, stdout: "", stderr: "convene drain: no meeting server nosuch is registered (registered: m1, m2)\n" });
  });

  it("drain says what happened: a dead server has nothing to move, a draining one is already draining", async () => {
    const flags = ["--coordinators", coordinators];
    const port = basePort();
    const dead = new FakeServer("m3", cluster.addresses.get("n1")!, port + 2);
    const idle = new FakeServer("m4", cluster.addresses.get("n1")!, port + 3);
    await dead.start();
    await idle.start();
    servers.push(idle);
    dead.stop();
    const stateOf = async (id: string) =>
      (JSON.parse((await inProcess(["nodes", "--json", ...flags])).stdout) as { nodes: { node_id: string; state: string }[] }).nodes.find((n) => n.node_id === id)?.state;
    await expect.poll(() => stateOf("m3"), { timeout: 20_000, interval: 200 }).toBe("DEAD");

    const onDead = await inProcess(["drain", "m3", "--migrate", ...flags]);
    expect(onDead).toMatchObject({ code: 0, stderr: "" });
    expect(onDead.stdout).toBe("m3 is dead: its meetings moved when it was declared dead, so nothing moved now. It is marked draining, which it forgets if it registers again\n");
    expect(onDead.stdout).not.toContain("moving");

    expect((await inProcess(["drain", "m4", ...flags])).stdout).toBe("m4 is draining: it gets no new meetings; its 0 meetings stay until they end (--migrate moves them now)\n");
    expect((await inProcess(["drain", "m4", "--migrate", ...flags])).stdout).toBe("m4 was already draining; it held no meetings, so none moved\n");
    const json = JSON.parse((await inProcess(["drain", "m4", "--migrate", "--json", ...flags])).stdout) as Record<string, unknown>;
    expect(json).toEqual({ node_id: "m4", state_before: "DRAINING", draining: true, migrate: true, moved: 0, stayed: 0 });
  });

  it("transfer-leader to the current leader and to an unknown id say different things", async () => {
    const flags = ["--coordinators", coordinators];
    const { leader_id: leader } = JSON.parse(await ok(["status", "--json"])) as { leader_id: string };
    expect(await inProcess(["transfer-leader", leader, ...flags])).toEqual({ code: 0, stdout: `${leader} is the leader already; nothing to do\n`, stderr: "" });
    expect(await inProcess(["transfer-leader", "n9", ...flags])).toEqual({
      code: 1,
      stdout: "",
      stderr: "convene transfer-leader: n9 is not a member of the group (members: n1, n2, n3); nothing changed\n",
    });
    // The service itself (through a follower, which forwards) tells the two apart too.
    const follower = ["n1", "n2", "n3"].find((id) => id !== leader)!;
    const client = new CoordinatorClient(cluster.addresses.get(follower)!, grpc.credentials.createInsecure());
    try {
      expect(await unary(client, "TransferLeadership", { target_id: leader })).toEqual({ leader_id: leader });
      const refused = await unary(client, "TransferLeadership", { target_id: "n9" }).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(refused).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: 'target_id "n9" is not a member of the group (voters: n1, n2, n3)' });
    } finally {
      client.close();
    }
  });

  it("end removes a meeting; log shows the audit trail", async () => {
    await ok(["route", "room-2", "--create"]);
    expect(await ok(["end", "room-2"])).toBe("ended room-2\n");
    const gone = await cli(["route", "room-2"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^convene route: NOT_FOUND: /);
    const log = await ok(["log", "--limit", "3"]);
    const lines = log.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^INDEX\s+TERM\s+TIME\s+KIND\s+OK\s+CODE\s+SUMMARY$/);
    expect(lines).toHaveLength(4);
  });

  it("member --config reads YAML, refuses unknown keys naming them, and flags override the file", async () => {
    const dir = cluster.dir;
    const unknown = join(dir, "unknown.yaml");
    writeFileSync(unknown, "id: n9\nlisten: 127.0.0.1:1\nbogusKey: 3\n");
    const overridden = join(dir, "member.yaml");
    writeFileSync(overridden, `id: n9\nlisten: 127.0.0.1:1\npeers:\n  n9: 127.0.0.1:1\ndataDir: ${join(dir, "n9")}\ntickMs: 20\n`);
    const [a, b] = await Promise.all([cli(["member", "--config", unknown]), cli(["member", "--config", overridden, "--tick-ms", "0"])]);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('unknown key "bogusKey"');
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('convene member: --tick-ms must be a whole number from 1 to 10,000; got "0"');
  });
});
