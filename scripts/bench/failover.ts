/**
 * failover: three coordinator members and three meeting-server processes
 * (the node agent embedded, checkpoints every 200 ms). Each trial kills the
 * meeting server hosting the most meetings — with kill -9, or frozen with
 * SIGSTOP (connections open, silent) — and times until every one of its
 * meetings is held by a live server that received its checkpoint.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { MemberCluster, unary } from "../../test/support/member-cluster.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Assigned {
  meetingId: string;
  epoch: number;
  checkpoint: string | null;
  at: number;
}

class ServerProcess {
  child: ChildProcess | undefined;
  readonly assigned: Assigned[] = [];
  constructor(
    public nodeId: string,
    readonly port: number,
    private readonly coordinators: string,
  ) {}
  start(): void {
    this.assigned.length = 0;
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/bench/bench-meeting-server.ts", this.nodeId, String(this.port), this.coordinators], {
      cwd: root,
      stdio: ["ignore", "pipe", "ignore"],
    });
    let buf = "";
    child.stdout!.on("data", (b: Buffer) => {
      buf += b.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const e = JSON.parse(line) as Assigned & { ev: string };
          if (e.ev === "assigned") this.assigned.push(e);
        } catch {
          // not ours
        }
      }
    });
    this.child = child;
  }
  async kill(signal: "SIGKILL" | "SIGSTOP"): Promise<void> {
    if (!this.child) return;
    this.child.kill(signal);
    if (signal === "SIGKILL") {
      await new Promise((r) => this.child!.once("exit", r));
      this.child = undefined;
    }
  }
  async stopFrozen(): Promise<void> {
    if (!this.child) return;
    const c = this.child;
    c.kill("SIGKILL");
    c.kill("SIGCONT");
    await new Promise((r) => c.once("exit", r));
    this.child = undefined;
  }
}

function stats(times: number[]): Record<string, number> {
  const t = [...times].sort((a, b) => a - b);
  return { trials: t.length, "median ms": Math.round(t[Math.floor(t.length / 2)]!), "max ms": Math.round(t[t.length - 1]!), "min ms": Math.round(t[0]!) };
}

async function trials(kind: "SIGKILL" | "SIGSTOP", count: number): Promise<number[]> {
  const ids = ["n1", "n2", "n3"];
  const cluster = new MemberCluster(ids, undefined, { app: "coordinator" });
  const servers: ServerProcess[] = [];
  const times: number[] = [];
  try {
    for (const id of ids) cluster.start(id);
    await cluster.waitForLeader();
    await cluster.waitForAll();
    const coordinators = ids.map((id) => cluster.addresses.get(id)!).join(",");
    const client = new CoordinatorClient(cluster.addresses.get("n1")!, grpc.credentials.createInsecure());
    for (let i = 0; i < 3; i++) {
      const s = new ServerProcess(`m${i + 1}`, 9400 + i, coordinators);
      s.start();
      servers.push(s);
    }
    // Until all three have registered (their processes start slowly on a busy machine).
    for (const start = Date.now(); ; await sleep(200)) {
      const nodes = await unary<{ nodes: { state: number }[] }>(client, "ListNodes", {}, 5000);
      if (nodes.nodes.filter((n) => n.state === 1).length === servers.length) break;
      if (Date.now() - start > 60_000) throw new Error("the meeting servers did not register within 60 s");
    }
    for (let i = 0; i < 300; i++) await unary(client, "GetRoute", { meeting_id: `room-${kind}-${i}`, create: true, region: "" }, 5000);
    for (let t = 0; t < count; t++) {
      await sleep(1500); // checkpoints saved
      const list = await unary<{ meetings: { meeting_id: string; node_id: string; epoch: number }[] }>(client, "ListMeetings", { node_id: "" }, 5000);
      const byNode = new Map<string, { meeting_id: string; epoch: number }[]>();
      for (const m of list.meetings) byNode.set(m.node_id, [...(byNode.get(m.node_id) ?? []), m]);
      const victim = servers.reduce((a, b) => ((byNode.get(a.nodeId)?.length ?? 0) >= (byNode.get(b.nodeId)?.length ?? 0) ? a : b));
      const meetings = new Map((byNode.get(victim.nodeId) ?? []).map((m) => [m.meeting_id, m.epoch]));
      // A meeting created moments ago may not have a checkpoint yet: only
      // those that have one must arrive with it.
      const checkpointed = new Set<string>();
      await Promise.all(
        [...meetings.keys()].map((m) =>
          unary(client, "GetCheckpoint", { meeting_id: m }, 5000).then(
            () => checkpointed.add(m),
            () => undefined,
          ),
        ),
      );
      const killedAt = Date.now();
      await victim.kill(kind);
      // Done when every meeting is held elsewhere at a higher epoch, with a checkpoint.
      const others = servers.filter((s) => s !== victim);
      let doneAt = 0;
      while (Date.now() - killedAt < 15_000) {
        const held = new Set<string>();
        for (const s of others) for (const a of s.assigned) if (a.at >= killedAt && (meetings.get(a.meetingId) ?? Infinity) < a.epoch && (a.checkpoint !== null || !checkpointed.has(a.meetingId))) held.add(a.meetingId);
        if ([...meetings.keys()].every((m) => held.has(m))) {
          doneAt = Math.max(...others.flatMap((s) => s.assigned.filter((a) => meetings.has(a.meetingId) && a.at >= killedAt).map((a) => a.at)));
          break;
        }
        await sleep(20);
      }
      if (!doneAt) {
        const now = await unary<{ meetings: { meeting_id: string; node_id: string; epoch: number }[] }>(client, "ListMeetings", { node_id: "" }, 5000);
        const missing = [...meetings.keys()].filter((m) => !others.some((s) => s.assigned.some((a) => a.meetingId === m && a.at >= killedAt && a.epoch > meetings.get(m)!)));
        const sample = missing.slice(0, 5).map((m) => ({ m, route: now.meetings.find((x) => x.meeting_id === m), events: others.flatMap((s) => s.assigned.filter((a) => a.meetingId === m).map((a) => ({ node: s.nodeId, ...a }))) }));
        throw new Error(`trial ${t}: meetings of ${victim.nodeId} did not all move within 15 s: ${missing.length} of ${meetings.size} not held elsewhere, e.g. ${JSON.stringify(sample)}`);
      }
      times.push(doneAt - killedAt);
      if (kind === "SIGSTOP") await victim.stopFrozen();
      // It comes back empty under a new id: flap damping rightly holds a
      // node that died three times in ten minutes out of placement, which
      // is not what this benchmark measures.
      victim.nodeId = `${victim.nodeId.split("-")[0]}-r${t}`;
      victim.start();
      await sleep(1500);
      // Keep 300 meetings: end the ones that moved and create as many anew;
      // they land on the emptiest server, the one that just came back.
      for (const m of meetings.keys()) await unary(client, "EndMeeting", { meeting_id: m }, 5000);
      for (let i = 0; i < meetings.size; i++) await unary(client, "GetRoute", { meeting_id: `room-${kind}-${t}-${i}`, create: true, region: "" }, 5000);
    }
    client.close();
  } finally {
    for (const s of servers) await s.stopFrozen();
    await cluster.close();
  }
  return times;
}

export async function benchFailover(options: { kills?: number; freezes?: number } = {}): Promise<Record<string, number | string>> {
  // Checked: a moved meeting that had a checkpoint arrives with it (the
  // new owner printed its state), within the time reported.
  const out: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(stats(await trials("SIGKILL", options.kills ?? 20)))) out[`kill -9 ${k}`] = v;
  for (const [k, v] of Object.entries(stats(await trials("SIGSTOP", options.freezes ?? 10)))) out[`SIGSTOP ${k}`] = v;
  out.targets = "kill -9: median ≤ 1,000 ms, max ≤ 1,500 ms; SIGSTOP: median ≤ 2,000 ms, max ≤ 3,000 ms";
  return out;
}
