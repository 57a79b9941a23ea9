/**
 * scale: 1,000 registered meeting servers heartbeating every 500 ms (from
 * separate processes, heartbeat-fleet.ts, one per 5,000 servers, through the
 * agent's own client and retry rule; re-registering when declared dead) and
 * 100,000 meetings with 1 KiB checkpoints on three coordinator members.
 * Reports the leader's CPU during steady heartbeats, each member's memory
 * (RSS), the size of a member's data directory, and the time for a member
 * killed with kill -9 to restart and catch up, GetRoute's latency while
 * the heartbeats flow, and last the servers declared dead when the leader
 * is killed with kill -9 under them. SCALE_NODES and SCALE_MEETINGS change the size.
 */
import { type ChildProcess, execSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { MemberCluster, buildOnce, unary } from "../../test/support/member-cluster.js";
import { closedLoop } from "./latency.js";

/** Runs op(i) for i in [0, total) with `concurrency` in flight; returns the failures. */
async function forEachConcurrently(total: number, concurrency: number, op: (i: number, worker: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  let failures = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let i = next++; i < total; i = next++) {
        try {
          await op(i, worker);
        } catch {
          failures++;
        }
      }
    }),
  );
  return failures;
}

const pkg = loadProto("convene.proto");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface FleetStats {
  reregistered: number;
  heartbeats: number;
  /** Beats that failed on every member (the agent's call failed). */
  failures: number;
  /** Heartbeat attempts that failed (the agent then sends the beat on to the next member, or gives it up). */
  attemptsFailed: number;
  /** Times a connection moved to the member a forwarded answer named leader. */
  leaderHintsFollowed: number;
  /** The fleet processes' own CPU, ms. */
  cpuMs: number;
  failuresByStatus: Record<string, { count: number; first: string }>;
  /** The fleet processes' own event-loop stalls of 250 ms or more: [when it ended (epoch ms), ms]. */
  stalls: [number, number][];
}

/** One heartbeat-fleet.ts child process: nodes s<first> … s<first + count - 1>. */
class FleetProcess {
  private readonly child: ChildProcess;
  private readonly lines: ((line: string) => void)[] = [];
  readonly registered: Promise<Record<string, number>>;

  constructor(coordinators: string[], first: number, count: number, capacity: number) {
    const script = fileURLToPath(new URL("./heartbeat-fleet.ts", import.meta.url));
    // About 250 servers per connection: separate servers would each have their own.
    const links = Math.max(1, Math.ceil(count / 250));
    this.child = spawn(
      process.execPath,
      ["--import", "tsx", script, "--coordinators", coordinators.join(","), "--first", String(first), "--count", String(count), "--capacity", String(capacity), "--links", String(links)],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    createInterface({ input: this.child.stdout! }).on("line", (line) => this.lines.shift()?.(line));
    this.registered = this.nextLine().then((line) => (JSON.parse(line) as { registered: Record<string, number> }).registered);
  }

  async stats(): Promise<FleetStats> {
    const reply = this.nextLine();
    this.child.stdin!.write("stats\n");
    return JSON.parse(await reply) as FleetStats;
  }

  stop(): void {
    this.child.kill("SIGKILL");
  }

  private nextLine(): Promise<string> {
    return new Promise((resolve) => this.lines.push(resolve));
  }
}

/** The meeting servers, one process per 5,000 of them (a process beats 10,000 times a second at that size). */
class Fleet {
  private readonly processes: FleetProcess[] = [];
  readonly registered: Promise<Record<string, number>>;

  constructor(coordinators: string[], nodes: number, capacity: number) {
    const count = Math.max(1, Math.ceil(nodes / 5000));
    for (let p = 0; p < count; p++) {
      const first = Math.floor((p * nodes) / count);
      const last = Math.floor(((p + 1) * nodes) / count);
      this.processes.push(new FleetProcess(coordinators, first, last - first, capacity));
    }
    this.registered = Promise.all(this.processes.map((p) => p.registered)).then((all) => Object.assign({}, ...all) as Record<string, number>);
  }

  async stats(): Promise<FleetStats> {
    const all = await Promise.all(this.processes.map((p) => p.stats()));
    const byStatus: FleetStats["failuresByStatus"] = {};
    for (const s of all) {
      for (const [name, f] of Object.entries(s.failuresByStatus)) (byStatus[name] ??= { count: 0, first: f.first }).count += f.count;
    }
    return {
      reregistered: all.reduce((n, s) => n + s.reregistered, 0),
      heartbeats: all.reduce((n, s) => n + s.heartbeats, 0),
      failures: all.reduce((n, s) => n + s.failures, 0),
      attemptsFailed: all.reduce((n, s) => n + s.attemptsFailed, 0),
      leaderHintsFollowed: all.reduce((n, s) => n + s.leaderHintsFollowed, 0),
      cpuMs: all.reduce((n, s) => n + s.cpuMs, 0),
      failuresByStatus: byStatus,
      stalls: all.flatMap((s) => s.stalls).sort((a, b) => a[0] - b[0]),
    };
  }

  stop(): void {
    for (const p of this.processes) p.stop();
  }
}

/** A read retried while the group elects a leader (UNAVAILABLE), as a client would. */
async function retryUnavailable<T>(read: () => Promise<T>, attempts = 10): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      const code = (err as grpc.ServiceError).code;
      if ((code !== grpc.status.UNAVAILABLE && code !== grpc.status.DEADLINE_EXCEEDED) || attempt >= attempts) throw err;
      await sleep(500);
    }
  }
}

/** "n (longest ms, last at HH:MM:SS)": a fleet that stalls sends its beats late whatever the members do. */
function fleetStalls(f: Pick<FleetStats, "stalls">): string {
  if (f.stalls.length === 0) return "0";
  const longest = Math.max(...f.stalls.map(([, ms]) => ms));
  const last = new Date(f.stalls.at(-1)![0]).toISOString().slice(11, 19);
  return `${f.stalls.length} (longest ${longest} ms, last at ${last})`;
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks
}

/** CPU time the hypervisor gave to others while this machine wanted it (/proc/stat's steal, all CPUs). */
function stealSeconds(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  return Number(fields[8]) / 100;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Math.round(Number(m![1]) / 1024);
}

/** SCALE_NODES and SCALE_MEETINGS (whole numbers) in place of the defaults, e.g. 10,000 and 1,000,000. */
export function scaleOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): { nodes?: number; meetings?: number } {
  const whole = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === "") return undefined;
    const v = Number(raw);
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${name} must be a whole number of at least 1, got ${JSON.stringify(raw)}`);
    return v;
  };
  const nodes = whole("SCALE_NODES");
  const meetings = whole("SCALE_MEETINGS");
  return { ...(nodes === undefined ? {} : { nodes }), ...(meetings === undefined ? {} : { meetings }) };
}

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");

export async function benchScale(options: { nodes?: number; meetings?: number } = scaleOptionsFromEnv()): Promise<Record<string, number | string>> {
  const nodeCount = options.nodes ?? 1000;
  const meetingCount = options.meetings ?? 100_000;
  const ids = ["n1", "n2", "n3"];
  // Members run from the build, as operators run them: the restart below is timed from kill -9.
  buildOnce();
  const cluster = new MemberCluster(ids, undefined, { app: "coordinator", compiled: true });
  const stealAtStart = stealSeconds();
  let fleet: Fleet | undefined;
  try {
    for (const id of ids) cluster.start(id);
    let leader = await cluster.waitForLeader();
    await cluster.waitForAll();
    const address = cluster.addresses.get(leader)!;
    const agents = Array.from({ length: 4 }, () => new NodeAgentClient(address, grpc.credentials.createInsecure()));
    // The meeting servers heartbeat from their own process, as real ones
    // would: this process's load (64 creates in flight) must not delay them.
    // Each of their connections starts on a random member and moves to the
    // leader when a forwarded call's answer names it, as node agents do.
    fleet = new Fleet([address, ...ids.filter((id) => id !== leader).map((id) => cluster.addresses.get(id)!)], nodeCount, Math.ceil((meetingCount * 2) / nodeCount));
    const generations = await fleet.registered;
    // ListMeetings of 100,000 meetings is several MiB: past the 4 MiB default.
    const coordinator = new CoordinatorClient(address, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": 64 << 20 });
    const createdAt = Date.now();
    let created = 0;
    const acknowledged: string[] = [];
    // Progress on stderr, so a long run that is stopped still tells how far it got and at what cost.
    const progress = async (what: string, done: number, sinceMs: number): Promise<void> => {
      const f = await fleet!.stats();
      const rss = ids.map((id) => (cluster.pid(id) ? rssMiB(cluster.pid(id)!) : 0)).join("/");
      process.stderr.write(`scale: ${what} ${fmt(done)} in ${Math.round((Date.now() - sinceMs) / 1000)} s; RSS ${rss} MiB; beats ${fmt(f.heartbeats)} answered, ${fmt(f.failures)} failed (${fmt(f.attemptsFailed)} failed attempts), ${fmt(f.reregistered)} re-registered, ${fmt(f.leaderHintsFollowed)} leader hints followed, fleet stalls ≥ 250 ms ${fleetStalls(f)}\n`);
    };
    const every = Math.max(10_000, Math.round(meetingCount / 20));
    await forEachConcurrently(meetingCount, 64, async (seq) => {
      await unary(coordinator, "GetRoute", { meeting_id: `room-${seq}`, create: true, region: "" }, 10_000);
      acknowledged.push(`room-${seq}`);
      created++;
      if (created % every === 0) void progress("created", created, createdAt);
    });
    const createSeconds = (Date.now() - createdAt) / 1000;
    type Listed = { meeting_id: string; node_id: string; epoch: number };
    // Every page: ListMeetings answers at most 10,000 meetings a call.
    const list: { meetings: Listed[] } = { meetings: [] };
    try {
      let pageToken = "";
      do {
        const page = await retryUnavailable(() =>
          unary<{ meetings: Listed[]; next_page_token: string }>(coordinator, "ListMeetings", { node_id: "", page_size: 10_000, page_token: pageToken }, 60_000),
        );
        list.meetings.push(...page.meetings);
        pageToken = page.next_page_token;
      } while (pageToken !== "");
    } catch (err) {
      throw new Error(`ListMeetings failed: ${String(err)}\n${cluster.recentLogs()}`);
    }
    // Every acknowledged create must be listed; a create whose answer was lost (a deadline, an election) may be too.
    const listed = new Set(list.meetings.map((m) => m.meeting_id));
    const missing = acknowledged.filter((id) => !listed.has(id));
    if (missing.length > 0) throw new Error(`ListMeetings misses ${missing.length} acknowledged meetings, e.g. ${missing.slice(0, 3).join(", ")}`);
    // Random bytes, different for every meeting: LevelDB compresses, and a few states recycled would
    // shrink the data directory (its blocks of 4 KiB hold repeats) below what real meetings make.
    const savedAt = Date.now();
    let saved = 0;
    const saveFailures = await forEachConcurrently(list.meetings.length, 64, async (k, w) => {
      const m = list.meetings[k]!;
      await unary(agents[w % 4]!, "SaveCheckpoint", { node_id: m.node_id, generation: generations[m.node_id], meeting_id: m.meeting_id, epoch: m.epoch, sequence: 1, state: randomBytes(1024) }, 10_000);
      if (++saved % every === 0) void progress("checkpoints saved", saved, savedAt);
    });
    const saveSeconds = (Date.now() - savedAt) / 1000;
    leader = await cluster.waitForLeader();
    const pids = new Map(ids.map((id) => [id, cluster.pid(id)!]));
    // Steady state: only heartbeats, for 10 s.
    const steady0 = await fleet.stats();
    const t0 = cpuTicks(pids.get(leader)!);
    await sleep(10_000);
    const leaderCpu = (cpuTicks(pids.get(leader)!) - t0) / 100 / 10;
    const steady1 = await fleet.stats();
    const beatsPerSecond = (steady1.heartbeats - steady0.heartbeats) / 10;
    const beatsInWindow = Math.max(1, steady1.heartbeats - steady0.heartbeats);
    // Route lookups while the heartbeats go on: linearizable GetRoute of meetings made above, 16 in flight.
    const reader = new CoordinatorClient(cluster.addresses.get(leader)!, grpc.credentials.createInsecure());
    const lookups = await closedLoop(16, 10, (_w, seq) => unary(reader, "GetRoute", { meeting_id: `room-${(seq * 7919) % meetingCount}`, create: false, region: "" }, 10_000));
    reader.close();
    const rss = ids.map((id) => rssMiB(pids.get(id)!));
    // What the RSS holds: V8's heap (used of committed) and buffers outside it (checkpoints, log entries, snapshot).
    const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
    const memory = await Promise.all(
      ids.map(async (id) => {
        // An overloaded member may not answer within the harness's second: say so rather than stop the run.
        const s = await retryUnavailable(() => cluster.status(id)).catch(() => undefined);
        return s ? `${mib(s.heap_used_bytes)}/${mib(s.heap_total_bytes)} + ${mib(s.array_buffers_bytes)}` : "no answer";
      }),
    );
    const nodes = await retryUnavailable(() => unary<{ nodes: { state: number }[] }>(coordinator, "ListNodes", {}, 10_000));
    const dead = nodes.nodes.filter((n) => n.state !== 1).length;
    const fleetStats = await fleet.stats();
    const follower = ids.find((id) => id !== leader)!;
    const dataMiB = Math.round(Number(execSync(`du -sk ${cluster.dataDir(follower)}`).toString().split("\t")[0]) / 1024);
    // Restart a follower from kill -9 and time its catch-up.
    await cluster.kill9(follower);
    const commit = (await retryUnavailable(() => cluster.status(leader))).commit_index;
    const restartAt = Date.now();
    cluster.start(follower);
    await cluster.waitForApplied([follower], commit, 60_000);
    const restartSeconds = (Date.now() - restartAt) / 1000;
    // Kill -9 the leader while the heartbeats flow: no live server may be
    // declared dead while the fleet finds the new leader (node agents
    // rotate over the members and follow leader hints), watched for 15 s
    // after the new leader is known.
    const beforeKill = await fleet.stats();
    const killedAt = Date.now();
    await cluster.kill9(leader);
    const newLeader = await cluster.waitForLeader(30_000, undefined, 10);
    const electedMs = Date.now() - killedAt;
    await sleep(15_000);
    const afterKill = await fleet.stats();
    coordinator.close();
    for (const a of agents) a.close();
    return {
      "nodes registered": Object.keys(generations).length,
      "nodes not ALIVE at the end": dead,
      "nodes declared dead during the run (re-registered)": fleetStats.reregistered,
      "heartbeats answered / failed": `${fleetStats.heartbeats} / ${fleetStats.failures}`,
      "heartbeat attempts that failed (each sent on to the next member, or the beat given up)": fleetStats.attemptsFailed,
      "the fleet's own event-loop stalls ≥ 250 ms (its beats late at the source)": fleetStalls(fleetStats),
      "failed attempts by status": Object.entries(fleetStats.failuresByStatus).map(([name, f]) => `${name} ${f.count} (${f.first})`).join("; ") || "none",
      "checkpoint saves refused": saveFailures,
      "meetings created": created,
      "creates/s": Math.round(created / createSeconds),
      "checkpoints saved/s": Math.round(list.meetings.length / saveSeconds),
      "heartbeats/s asked / answered": `${fmt(nodeCount * 2)} / ${fmt(beatsPerSecond)}`,
      "leader CPU, heartbeats only (cores)": Number(leaderCpu.toFixed(2)),
      "CPU per heartbeat, leader / fleet (µs)": `${fmt((leaderCpu * 10 * 1e6) / beatsInWindow)} / ${fmt(((steady1.cpuMs - steady0.cpuMs) * 1000) / beatsInWindow)}`,
      "GetRoute under heartbeats, 16 in flight": `${fmt(lookups.opsPerSecond)}/s, p50 ${lookups.latencies.ms(50)} ms, p99 ${lookups.latencies.ms(99)} ms, ${lookups.errors} errors`,
      "RSS per member MiB": rss.join(" / "),
      "heap used/committed + buffers MiB": memory.join(" · "),
      "data dir MiB": dataMiB,
      "restart + catch-up s": Number(restartSeconds.toFixed(2)),
      "leader kill -9 → new leader (ms)": `${electedMs} (${leader} → ${newLeader})`,
      "nodes declared dead in the 15 s after the leader was killed (re-registered)": afterKill.reregistered - beforeKill.reregistered,
      "heartbeats failed on every member in those 15 s": afterKill.failures - beforeKill.failures,
      "CPU stolen by the host during the run s": Number((stealSeconds() - stealAtStart).toFixed(1)),
      targets: nodeCount >= 10_000 ? "≤ 2 GiB per member; restart + catch-up ≤ 10 s; no node declared dead, also when the leader is killed; GetRoute p99 ≤ 50 ms" : "≤ 512 MiB per member; restart ≤ 5 s",
    };
  } finally {
    fleet?.stop();
    await cluster.close();
  }
}
