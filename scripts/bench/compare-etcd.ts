/**
 * compare-etcd: the same workload against three etcd members (Debian's
 * etcd-server, default tuning) and three convene coordinator members with
 * three registered meeting servers, on this machine:
 *  1. create-if-absent: etcd Txn `if create_revision(key) == 0 then Put
 *     else Range`; convene GetRoute(create=true) of new meetings;
 *  2. linearizable reads of what step 1 created: etcd Range (serializable
 *     false); convene GetRoute(create=false);
 *  3. leader kill -9 under the create load → first acknowledged write from
 *     another member of an attempt sent after the kill.
 * 64 calls in flight from `clients` load processes (load-client.ts, one
 * channel per member, the same client code for both), and a 1-process round
 * before and after. Rounds alternate etcd, convene, bare grpc-js, etcd,
 * ... so drift of the machine hits all alike; figures are medians over
 * rounds. Create rounds go on until each system has written
 * COMPARE_ETCD_FILL meetings, so how p99 and CPU per create grow with the
 * state shows round by round. "bare grpc-js" (steps 1 and 2 only) is a
 * grpc-js server that answers GetRoute at once: the most calls these
 * clients get through here, and with one process the load client's own
 * headroom. Then: each member's RSS after the creates, CPU per read, idle
 * CPU per member over 10 s, and the time from restarting the killed
 * member to every member having caught up; the last lines are issue 21's
 * targets, each met or MISSED.
 *
 * Settings (env): COMPARE_ETCD_CLIENTS (2), COMPARE_ETCD_SECONDS per round
 * (6), COMPARE_ETCD_ROUNDS at least (2), COMPARE_ETCD_FILL meetings written
 * before the last round (200,000), COMPARE_ETCD_TRIALS kill trials per system
 * (3), COMPARE_ETCD_DEADLINE_MS per call (1000), COMPARE_ETCD_STEPS (e.g.
 * "kill"; "create,read,kill" when unset). Run standalone with
 * `node --import tsx scripts/bench/compare-etcd.ts --clients N`.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as hdr from "hdr-histogram-js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { MemberCluster, buildOnce, unary } from "../../test/support/member-cluster.js";
import { EtcdCluster, ensureEtcd, freeEtcdBasePort } from "./etcd-cluster.js";
import { type Job, type JobResult, LoadPool, type SystemName } from "./load-client.js";
import { type NoopServer, startNoopServer } from "./noop-process.js";

/** At most this many create rounds, whatever the fill. */
const MAX_ROUNDS = 40;
/**
 * How often a restarted member is asked whether it is up and caught up
 * (both systems alike): at 100 ms the poll's own step was a tenth of what
 * it measures.
 */
export const RESTART_POLL_MS = 10;
/** The window over which idle members' CPU is read. */
const IDLE_SECONDS = 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = (): number => performance.timeOrigin + performance.now();
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");

export interface CompareOptions {
  clients: number;
  seconds: number;
  rounds: number;
  /** Create rounds go on until each system has written this many meetings. */
  fill: number;
  trials: number;
  deadlineMs: number;
  /** Which steps run: creates, reads (which need the creates), leader kills. */
  steps: Set<"create" | "read" | "kill">;
}

export function compareOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): CompareOptions {
  const num = (name: string, fallback: number, min: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min) throw new Error(`${name} must be a number at least ${min}, got ${JSON.stringify(raw)}`);
    return v;
  };
  return {
    clients: Math.floor(num("COMPARE_ETCD_CLIENTS", 2, 1)),
    seconds: num("COMPARE_ETCD_SECONDS", 6, 0.5),
    rounds: Math.floor(num("COMPARE_ETCD_ROUNDS", 2, 1)),
    fill: Math.floor(num("COMPARE_ETCD_FILL", 200_000, 0)),
    trials: Math.floor(num("COMPARE_ETCD_TRIALS", 3, 0)),
    deadlineMs: num("COMPARE_ETCD_DEADLINE_MS", 1000, 50),
    steps: stepsFrom(env.COMPARE_ETCD_STEPS),
  };
}

const STEPS = ["create", "read", "kill"] as const;

/** COMPARE_ETCD_STEPS, e.g. "kill" to diagnose leader kills alone; every step when unset. */
function stepsFrom(raw: string | undefined): Set<(typeof STEPS)[number]> {
  if (raw === undefined || raw.trim() === "") return new Set(STEPS);
  const steps = raw.split(",").map((s) => s.trim());
  for (const s of steps) {
    if (!(STEPS as readonly string[]).includes(s)) throw new Error(`COMPARE_ETCD_STEPS must list steps among ${STEPS.join(", ")}, got ${JSON.stringify(s)}`);
  }
  if (steps.includes("read") && !steps.includes("create")) throw new Error(`COMPARE_ETCD_STEPS: "read" reads the routes "create" made, so it needs "create" too`);
  return new Set(steps as (typeof STEPS)[number][]);
}

/**
 * "bare grpc-js" is the ceiling of the stack: a grpc-js server that answers
 * GetRoute at once (noop-server.ts), called with convene's client code. It
 * shows how many calls the same clients get through on this machine before
 * any consensus, write or placement.
 */
type SystemLabel = SystemName | "bare grpc-js";

/** What the comparison needs of each system. */
interface System {
  readonly name: SystemLabel;
  /** Which client code the load processes run against it. */
  readonly protocol: SystemName;
  readonly addresses: string[];
  leaderIndex(): Promise<number>;
  kill9(i: number): Promise<void>;
  /** Starts member i again and waits until it has caught up with the leader. */
  restart(i: number): Promise<void>;
  /** OS process ids of the running members. */
  pids(): number[];
  /** What each member's memory holds, where the system reports it. */
  memoryDetail?(): Promise<string>;
}

/** Resident memory of a process in MiB (VmRSS); 0 once it is gone. */
function rssMiBOf(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
function cpuSecondsOf(pid: number): number {
  try {
    // Fields after the ")" that ends the command name: state is 3rd, utime 14th, stime 15th.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

/**
 * Three meeting servers registered with the coordinator and heartbeating
 * every 500 ms through whichever member answers (the first one that fails
 * is skipped until it answers again); registers again when told to.
 */
export class MeetingServers {
  private readonly agents: grpc.Client[];
  private readonly generations = new Map<string, number>();
  private current = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(addresses: string[]) {
    this.agents = addresses.map((a) => new NodeAgentClient(a, grpc.credentials.createInsecure()));
  }

  private async call<T>(method: string, req: unknown): Promise<T> {
    let last: unknown;
    for (let k = 0; k < this.agents.length; k++) {
      const i = (this.current + k) % this.agents.length;
      try {
        const r = await unary<T>(this.agents[i]!, method, req, 1000);
        this.current = i;
        return r;
      } catch (e) {
        last = e;
        const code = (e as grpc.ServiceError).code;
        if (code !== grpc.status.UNAVAILABLE && code !== grpc.status.DEADLINE_EXCEEDED) throw e;
      }
    }
    throw last;
  }

  private async register(id: string, i: number): Promise<void> {
    const r = await this.call<{ generation: number }>("Register", { node_id: id, address: `127.0.0.1:${9300 + i}`, capacity: 1_000_000, region: "", labels: {} });
    this.generations.set(id, r.generation);
  }

  async start(): Promise<void> {
    for (let i = 0; i < 3; i++) await this.register(`m${i}`, i);
    this.timer = setInterval(() => void this.beat(), 500);
  }

  private async beat(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (let i = 0; i < 3; i++) {
        const id = `m${i}`;
        try {
          await this.call("Heartbeat", { node_id: id, generation: this.generations.get(id) });
        } catch (e) {
          const code = (e as grpc.ServiceError).code;
          if (code === grpc.status.FAILED_PRECONDITION || code === grpc.status.NOT_FOUND) await this.register(id, i).catch(() => undefined);
        }
      }
    } finally {
      this.busy = false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const a of this.agents) a.close();
  }
}

function etcdSystem(cluster: EtcdCluster): System {
  return {
    name: "etcd",
    protocol: "etcd",
    addresses: cluster.addresses,
    leaderIndex: () => cluster.waitForLeader(),
    kill9: (i) => cluster.kill9(i),
    restart: async (i) => {
      cluster.start(i);
      await cluster.waitForCaughtUp(30_000, RESTART_POLL_MS);
    },
    pids: () => [0, 1, 2].map((i) => cluster.pid(i)).filter((p): p is number => p !== undefined),
  };
}

function conveneSystem(cluster: MemberCluster, ids: string[]): System {
  return {
    name: "convene",
    protocol: "convene",
    addresses: ids.map((id) => cluster.addresses.get(id)!),
    leaderIndex: async () => ids.indexOf(await cluster.waitForLeader()),
    kill9: (i) => cluster.kill9(ids[i]!),
    restart: async (i) => {
      cluster.start(ids[i]!);
      await cluster.waitForAll(30_000, RESTART_POLL_MS);
      const s = await cluster.status(await cluster.waitForLeader(30_000, undefined, RESTART_POLL_MS));
      await cluster.waitForApplied(ids, s.commit_index, 30_000, RESTART_POLL_MS);
    },
    pids: () => ids.map((id) => cluster.pid(id)).filter((p): p is number => p !== undefined),
    memoryDetail: async () => {
      const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
      const parts = await Promise.all(ids.map(async (id) => {
        const s = await cluster.status(id);
        return `${id} ${mib(s.heap_used_bytes)}/${mib(s.heap_total_bytes)} + ${mib(s.array_buffers_bytes)}`;
      }));
      return `${parts.join(" · ")} MiB (V8 heap used/committed + buffers outside it)`;
    },
  };
}

interface Figures {
  rate: number;
  p50: number;
  p99: number;
  /** Operations acknowledged. */
  ops: number;
  errors: number;
  retries: number;
  cpu: number[];
  /** The load processes' CPU per acknowledged call, in µs. */
  clientCpuPerOpUs: number;
  /** The three members' CPU over the job, in cores (2 = both cores of this machine). */
  serverCpu: number;
  errorKinds: Record<string, number>;
}

function merge(results: JobResult[], serverCpu: number): Figures {
  const all = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const errorKinds: Record<string, number> = {};
  for (const r of results) {
    all.add(hdr.decodeFromCompressedBase64(r.histogram));
    for (const [k, v] of Object.entries(r.errorKinds)) errorKinds[k] = (errorKinds[k] ?? 0) + v;
  }
  const ms = (p: number) => Number((all.getValueAtPercentile(p) / 1000).toFixed(1));
  return {
    rate: results.reduce((s, r) => s + r.ops / r.seconds, 0),
    ops: results.reduce((s, r) => s + r.ops, 0),
    clientCpuPerOpUs: (results.reduce((s, r) => s + r.cpuSeconds, 0) * 1e6) / Math.max(1, results.reduce((s, r) => s + r.ops, 0)),
    p50: all.totalCount ? ms(50) : NaN,
    p99: all.totalCount ? ms(99) : NaN,
    errors: results.reduce((s, r) => s + r.errors, 0),
    retries: results.reduce((s, r) => s + r.retries, 0),
    cpu: results.map((r) => r.cpuSeconds / r.seconds),
    serverCpu,
    errorKinds,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  const v = s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  return Number.isFinite(v) ? Number(v.toFixed(1)) : v;
};
const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a");
const ratio = (a: number, b: number): number => Number((a / b).toFixed(2));
/** 64 calls in flight split over `procs` processes. */
const share = (procs: number, p: number): number => Math.floor(64 / procs) + (p < 64 % procs ? 1 : 0);

function bareSystem(noop: NoopServer): System {
  const unsupported = (): Promise<void> => Promise.reject(new Error("the bare grpc-js server has no leader to kill"));
  return {
    name: "bare grpc-js",
    protocol: "convene",
    addresses: [noop.address],
    leaderIndex: async () => 0,
    kill9: unsupported,
    restart: unsupported,
    pids: () => (noop.child.pid === undefined ? [] : [noop.child.pid]),
  };
}

/** Event-loop blocks (with their CPU and GC share) and leader changes the convene members logged in `logDir`. */
function stallsIn(logDir: string, ids: readonly string[]): string {
  const blocks: string[] = [];
  let leaderChanges = 0;
  for (const id of ids) {
    let text = "";
    try {
      text = readFileSync(join(logDir, `${id}.log`), "utf8");
    } catch {
      continue; // never logged
    }
    for (const line of text.split("\n")) {
      if (line.includes("\"leader changed\"")) leaderChanges++;
      if (!line.includes("event loop was blocked")) continue;
      try {
        const e = JSON.parse(line) as { blockedMs: number; cpuMs: number; gcMs: number };
        blocks.push(`${id} ${e.blockedMs} ms (CPU ${e.cpuMs}, GC ${e.gcMs})`);
      } catch {
        blocks.push(`${id} (unparsed)`);
      }
    }
  }
  return `${leaderChanges} leader changes seen; event loop blocked ≥ 500 ms ${blocks.length} times${blocks.length ? `: ${blocks.slice(0, 8).join(", ")}` : ""}`;
}

function describe(f: Figures): string {
  const kinds = Object.entries(f.errorKinds).map(([k, v]) => `${v}× ${k}`).join("; ");
  const server = Number.isFinite(f.serverCpu) ? `, server CPU ${fmt(f.serverCpu * 100)}% (${fmt((f.serverCpu * 1e6) / f.rate)} µs/op)` : "";
  return `${fmt(f.rate)}/s p50 ${fmt(f.p50, 1)} p99 ${fmt(f.p99, 1)} ms, client CPU ${f.cpu.map((c) => `${fmt(c * 100)}%`).join("+")} (${fmt(f.clientCpuPerOpUs)} µs/call)${server}, errors ${f.errors}, retries ${f.retries}${kinds ? ` (${kinds})` : ""}`;
}

export async function benchCompareEtcd(options: CompareOptions = compareOptionsFromEnv()): Promise<Record<string, number | string>> {
  const { clients, seconds, rounds, fill, deadlineMs, steps } = options;
  const trials = steps.has("kill") ? options.trials : 0;
  const binary = ensureEtcd();
  const out: Record<string, number | string> = {};
  const ids = ["n1", "n2", "n3"];
  const logDir = process.env.CONVENE_CLUSTER_LOG_DIR ?? mkdtempSync(join(tmpdir(), "compare-etcd-logs-"));
  let etcd: EtcdCluster | undefined;
  let convene: MemberCluster | undefined;
  let servers: MeetingServers | undefined;
  let pool: LoadPool | undefined;
  let noop: NoopServer | undefined;
  const cleanup = async (): Promise<void> => {
    servers?.close();
    noop?.close();
    await pool?.close();
    await etcd?.close();
    await convene?.close();
  };
  // Ctrl-C or a kill of the harness: finally blocks do not run then, so clean up here.
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = true;
    console.error(`compare-etcd: ${signal}, stopping every member and load process`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    // Every member's whole log, read at the end for its stalls (MemberCluster appends there).
    process.env.CONVENE_CLUSTER_LOG_DIR = logDir;
    etcd = new EtcdCluster(binary, await freeEtcdBasePort());
    // Members run from the build, as operators run them: a restart is timed from the process start, not from a TypeScript transform.
    buildOnce();
    convene = new MemberCluster(ids, undefined, { app: "coordinator", compiled: true });
    for (let i = 0; i < 3; i++) etcd.start(i);
    for (const id of ids) convene.start(id);
    pool = new LoadPool(clients);
    const etcdLeader = await etcd.waitForLeader();
    await convene.waitForLeader();
    servers = new MeetingServers(ids.map((id) => convene!.addresses.get(id)!));
    await servers.start();
    await sleep(300);
    noop = await startNoopServer();
    const systems: System[] = [etcdSystem(etcd), conveneSystem(convene, ids)];
    // Measured in the same rounds as the two systems, never killed.
    const measured: System[] = [...systems, bareSystem(noop)];
    out["load average at start"] = loadavg().map((l) => l.toFixed(2)).join(" ");
    out["etcd version"] = (await etcd.memberStatus(etcdLeader)).version;
    // Which profile (node --cpu-prof names it by pid) is the leader's.
    const conveneLeader = await convene.waitForLeader();
    out["convene member logs"] = `${logDir} (kept)`;
    out["convene members"] = ids.map((id) => `${id} pid ${convene!.pid(id)}${id === conveneLeader ? " (leader)" : ""}`).join(", ");
    out["load processes × in flight"] = `${clients} × ${share(clients, clients - 1)}${64 % clients ? "–" + share(clients, 0) : ""} (64), deadline ${deadlineMs} ms, ${seconds} s rounds after a ${Math.min(2, seconds)} s warm-up`;

    const warmSeconds = Math.min(2, seconds);
    const run = `${Date.now().toString(36)}`;
    let jobNo = 0;
    const created = new Map<SystemLabel, string[]>(measured.map((s) => [s.name, []]));
    const keep = Math.ceil(20_000 / clients);
    const measure = async (sys: System, op: "create" | "read", procs: number, secs = seconds): Promise<Figures> => {
      const start = await sys.leaderIndex();
      const keys = created.get(sys.name)!;
      const jobs = Array.from({ length: procs }, (_, p): Job => ({
        system: sys.protocol, op, addresses: sys.addresses, start, inFlight: share(procs, p), seconds: secs, deadlineMs,
        prefix: `${sys.protocol === "etcd" ? "/meetings/" : ""}${run}-${jobNo}-${p}`, readKeys: op === "read" ? keys : [], keep, afterFirstAckMs: 0,
      }));
      jobNo++;
      const pids = sys.pids();
      const cpu0 = pids.map(cpuSecondsOf);
      const t0 = performance.now();
      const results = await pool!.run(jobs);
      const serverCpu = pids.reduce((s, pid, k) => s + cpuSecondsOf(pid) - cpu0[k]!, 0) / ((performance.now() - t0) / 1000);
      // The read step cycles over at most 20,000 of the keys created.
      if (op === "create") for (const r of results) keys.push(...r.created.slice(0, Math.max(0, 20_000 - keys.length)));
      return merge(results, serverCpu);
    };

    const perOpUs = (f: Figures): number => (f.serverCpu * 1e6) / f.rate;
    const written = new Map<SystemLabel, number>(measured.map((s) => [s.name, 0]));
    const create = new Map<SystemLabel, Figures[]>(measured.map((s) => [s.name, []]));
    const createOne = new Map<SystemLabel, Figures[]>(measured.map((s) => [s.name, []]));
    const reads = new Map<SystemLabel, Figures[]>(measured.map((s) => [s.name, []]));
    /** The largest member's RSS (MiB) right after the last create round. */
    const rssAfterCreates = new Map<SystemLabel, number>();
    const m = (fs: Figures[], k: "rate" | "p50" | "p99") => median(fs.map((f) => f[k]));
    const last = <T>(xs: T[]): T => xs[xs.length - 1]!;

    if (steps.has("create")) {
      // Warm-up, not reported: JIT of the clients and of convene, first writes of etcd.
      for (const sys of measured) await measure(sys, "create", clients, warmSeconds);
      const oneProcessRound = async (label: string): Promise<void> => {
        for (const sys of measured) {
          const f = await measure(sys, "create", 1);
          createOne.get(sys.name)!.push(f);
          written.set(sys.name, written.get(sys.name)! + f.ops);
          out[`create 1-process ${label} ${sys.name}`] = describe(f);
        }
      };
      await oneProcessRound("first");
      // Rounds go on until each system holds `fill` meetings, so growth shows round by round.
      const filled = (): boolean => systems.every((s) => written.get(s.name)! >= fill);
      for (let r = 1; r <= MAX_ROUNDS && (r <= rounds || !filled()); r++) {
        for (const sys of measured) {
          const f = await measure(sys, "create", clients);
          create.get(sys.name)!.push(f);
          written.set(sys.name, written.get(sys.name)! + f.ops);
          out[`create r${r} ${sys.name}`] = `${describe(f)}, ${fmt(written.get(sys.name)!)} written`;
        }
      }
      await oneProcessRound("last");
      for (const sys of systems) {
        const rss = sys.pids().map(rssMiBOf);
        rssAfterCreates.set(sys.name, Math.max(...rss));
        out[`RSS after creates ${sys.name}`] = `${rss.map((r) => fmt(r)).join(" / ")} MiB (${fmt(written.get(sys.name)!)} written)`;
        if (sys.memoryDetail) out[`memory after creates ${sys.name}`] = await sys.memoryDetail();
      }
    }
    if (steps.has("read")) {
      for (const sys of measured) await measure(sys, "read", clients, warmSeconds);
      for (let r = 1; r <= rounds; r++) {
        for (const sys of measured) {
          const f = await measure(sys, "read", clients);
          reads.get(sys.name)!.push(f);
          out[`read r${r} ${sys.name}`] = describe(f);
        }
      }
    }

    // Idle: no load, the three meeting servers of convene still heartbeating (etcd has none).
    const idle = new Map<SystemLabel, number[]>();
    await sleep(3000);
    for (const sys of systems) {
      const pids = sys.pids();
      const cpu0 = pids.map(cpuSecondsOf);
      const t0 = performance.now();
      await sleep(IDLE_SECONDS * 1000);
      const secs = (performance.now() - t0) / 1000;
      idle.set(sys.name, pids.map((p, k) => (cpuSecondsOf(p) - cpu0[k]!) / secs));
      out[`idle CPU per member ${sys.name}`] = idle.get(sys.name)!.map((c) => `${fmt(c * 100, 1)}%`).join(" / ");
    }
    const kills = new Map<SystemLabel, number[]>(systems.map((s) => [s.name, []]));
    // Killed member started again → every member has applied what the leader had committed.
    const restarts = new Map<SystemLabel, number[]>(systems.map((s) => [s.name, []]));
    const warmMs = 1500;
    for (let t = 1; t <= trials; t++) {
      for (const sys of systems) {
        const leader = await sys.leaderIndex();
        const jobs = Array.from({ length: clients }, (_, p): Job => ({
          system: sys.protocol, op: "create", addresses: sys.addresses, start: leader, inFlight: share(clients, p),
          seconds: warmMs / 1000 + 15, deadlineMs, prefix: `${sys.protocol === "etcd" ? "/meetings/" : ""}${run}-kill${t}-${p}`,
          readKeys: [], keep: 0, afterFirstAckMs: 300,
        }));
        const results = await pool.run(jobs, async () => {
          await sleep(warmMs);
          const at = now();
          const killed = sys.kill9(leader);
          pool!.broadcast(clients, { type: "kill", at, member: leader });
          await killed;
        });
        const firsts = results.map((r) => r.firstAckAfterKillMs).filter((x): x is number => x !== null);
        // None acknowledged before the job ended counts as longer than any that was.
        const ms = firsts.length ? Math.min(...firsts) : Infinity;
        kills.get(sys.name)!.push(ms);
        const shown = firsts.length ? `${fmt(ms)} ms` : `no write acknowledged within ${warmMs / 1000 + 15} s`;
        out[`kill→write t${t} ${sys.name}`] = `${shown} (${describe(merge(results, NaN))})`;
        const restartedAt = performance.now();
        await sys.restart(leader);
        restarts.get(sys.name)!.push(performance.now() - restartedAt);
        await sleep(500);
      }
    }
    if (trials > 0) {
      const [e, c] = [median(kills.get("etcd")!), median(kills.get("convene")!)];
      out["kill→write etcd median ms"] = Math.round(e);
      out["kill→write convene median ms"] = Math.round(c);
      out["kill→write convene/etcd"] = ratio(c, e);
      out["kill→write target"] = `convene median ≤ 1,000 ms (${c <= 1000 ? "met" : "not met"})`;
      const [re, rc] = [median(restarts.get("etcd")!), median(restarts.get("convene")!)];
      out["killed member restarted → caught up"] = `etcd ${restarts.get("etcd")!.map((x) => fmt(x)).join(" / ")} ms, convene ${restarts.get("convene")!.map((x) => fmt(x)).join(" / ")} ms — target convene median ≤ etcd median: ${rc <= re ? "met" : "MISSED"}`;
    }
    // The figures of issue 21's table, each with its target.
    const verdict = (ok: boolean): string => (ok ? "met" : "MISSED");
    const [E, C, B] = ["etcd", "convene", "bare grpc-js"] as const;
    if (steps.has("create")) {
      const bareOne = createOne.get(B)!;
      const headroom = Math.min(...bareOne.map((f) => f.rate));
      out["load client: 1 process → do-nothing server"] = `${bareOne.map((f) => `${fmt(f.rate)}/s at ${fmt(f.clientCpuPerOpUs)} µs client CPU per call`).join("; ")} — target ≥ 8,000/s: ${verdict(headroom >= 8000)}`;
      const rate2 = ratio(m(create.get(C)!, "rate"), m(create.get(E)!, "rate"));
      out["creates/s, 2 processes (median of rounds)"] = `etcd ${fmt(m(create.get(E)!, "rate"))}, convene ${fmt(m(create.get(C)!, "rate"))} (${rate2}×) — target ≥ 2.0×: ${verdict(rate2 >= 2)}`;
      const rate1 = ratio(m(createOne.get(C)!, "rate"), m(createOne.get(E)!, "rate"));
      out["creates/s, 1 process (first and last)"] = `etcd ${createOne.get(E)!.map((f) => fmt(f.rate)).join(" / ")}, convene ${createOne.get(C)!.map((f) => fmt(f.rate)).join(" / ")} (${rate1}×) — target ≥ 1.5×: ${verdict(rate1 >= 1.5)}`;
      const p99Rounds = (name: SystemLabel) => create.get(name)!.map((f) => fmt(f.p99, 1)).join(" ");
      out["create p99 per 2-process round etcd"] = `${p99Rounds(E)} ms`;
      out["create p99 per 2-process round convene"] = `${p99Rounds(C)} ms`;
      const p2 = ratio(m(create.get(C)!, "p99"), m(create.get(E)!, "p99"));
      const p2last = ratio(last(create.get(C)!).p99, last(create.get(E)!).p99);
      const p1 = ratio(m(createOne.get(C)!, "p99"), m(createOne.get(E)!, "p99"));
      const p1last = ratio(last(createOne.get(C)!).p99, last(createOne.get(E)!).p99);
      out["create p99 convene/etcd"] = `2 processes ${p2}× (last round ${p2last}×), 1 process ${p1}× (last round ${p1last}×) — target ≤ 0.7× in each: ${verdict(Math.max(p2, p2last, p1, p1last) <= 0.7)}`;
      const cpuRounds = (name: SystemLabel) => create.get(name)!.map((f) => fmt(perOpUs(f))).join(" ");
      out["member CPU per create, per round etcd"] = `${cpuRounds(E)} µs`;
      out["member CPU per create, per round convene"] = `${cpuRounds(C)} µs`;
      const cpuC = median(create.get(C)!.map(perOpUs));
      const cpuE = median(create.get(E)!.map(perOpUs));
      const cpuLast = perOpUs(last(create.get(C)!));
      const flat = cpuLast <= 1.2 * perOpUs(create.get(C)![0]!);
      out["member CPU per create convene"] = `median ${fmt(cpuC)} µs, last round ${fmt(cpuLast)} µs, ${ratio(cpuC, cpuE)}× etcd's — target ≤ 100 µs, ≤ 0.35× etcd, last round ≤ 1.2× first: ${verdict(cpuC <= 100 && cpuLast <= 100 && cpuC <= 0.35 * cpuE && flat)}`;
      const rss = (name: SystemLabel) => rssAfterCreates.get(name)!;
      out["largest member RSS after the creates"] = `etcd ${fmt(rss(E))} MiB, convene ${fmt(rss(C))} MiB (${ratio(rss(C), rss(E))}×) — target ≤ 1.2×: ${verdict(rss(C) <= 1.2 * rss(E))}`;
    }
    if (steps.has("read")) {
      const readE = median(reads.get(E)!.map(perOpUs));
      const readC = median(reads.get(C)!.map(perOpUs));
      out["member CPU per linearizable read"] = `etcd ${fmt(readE)} µs, convene ${fmt(readC)} µs (${ratio(readC, readE)}×) — target ≤ 0.5×: ${verdict(readC <= 0.5 * readE)}`;
    }
    const idleMax = (name: SystemLabel) => Math.max(...idle.get(name)!);
    out["idle CPU, busiest member"] = `etcd ${fmt(idleMax(E) * 100, 1)}%, convene ${fmt(idleMax(C) * 100, 1)}% — target ≤ etcd's: ${verdict(idleMax(C) <= idleMax(E))}`;
    // What a stall of convene's would be: its members' own account of event-loop blocks and leader changes.
    out["convene stalls"] = stallsIn(logDir, ids);
    out["load average at end"] = loadavg().map((l) => l.toFixed(2)).join(" ");
    return out;
  } catch (e) {
    if (interrupted) await new Promise(() => undefined); // the signal handler exits
    if (etcd) console.error(etcd.recentLogs());
    if (convene) console.error(convene.recentLogs());
    throw e;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await cleanup();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values } = parseArgs({ options: { clients: { type: "string" } } });
  const options = compareOptionsFromEnv();
  if (values.clients) options.clients = compareOptionsFromEnv({ COMPARE_ETCD_CLIENTS: values.clients }).clients;
  const figures = await benchCompareEtcd(options);
  for (const [k, v] of Object.entries(figures)) console.log(`  ${k.padEnd(28)} ${typeof v === "number" ? v.toLocaleString("en-US") : v}`);
}
