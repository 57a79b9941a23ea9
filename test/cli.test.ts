/**
 * `convene` as an operator runs it: real processes (node --import tsx
 * src/cli.ts ...) against three real coordinator members, with two meeting
 * servers played by raw gRPC clients (Register, Heartbeat, WatchAssignments).
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProto, lookup } from "../src/wire/proto.js";
import { MemberCluster, basePort, unary } from "./support/member-cluster.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const pkg = loadProto("convene.proto");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");

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

    expect(await ok(["drain", owner.nodeId, "--migrate"])).toContain(`${owner.nodeId} is draining`);
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
    expect(badId.stderr).toContain("argument 'meeting'");
    expect(badLimit.code).toBe(2);
    expect(badLimit.stderr).toContain("--limit");
    expect(notFound.code).toBe(1);
    expect(notFound.stderr).toMatch(/^convene route: NOT_FOUND: .+/);
    expect(removeUnknown.code).toBe(1);
    expect(removeUnknown.stderr).toMatch(/^convene members remove: n9 is not a member of the group \(voters: n1, n2, n3; learners: none\)/);
  });

  it("end removes a meeting; log shows the audit trail", async () => {
    await ok(["route", "room-2", "--create"]);
    expect(await ok(["end", "room-2"])).toBe("ended room-2\n");
    const gone = await cli(["route", "room-2"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^convene route: NOT_FOUND: /);
    const log = await ok(["log", "--limit", "3"]);
    const lines = log.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^INDEX\s+TIME\s+KIND\s+OK\s+CODE\s+SUMMARY$/);
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
    expect(b.stderr).toContain('convene member: tickMs must be an integer from 1 to 10000, got "0"');
  });
});
