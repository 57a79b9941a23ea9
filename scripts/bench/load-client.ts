/**
 * One load-generating process for the compare-etcd benchmark, run as
 * `node --import tsx scripts/bench/load-client.ts` by compare-etcd.ts.
 *
 * Protocol, one JSON object per line. The parent writes to stdin:
 *   {"type":"job", ...Job}   connect (one channel per member), then answer
 *                            {"type":"ready"}
 *   {"type":"go"}            run the job; answer {"type":"result", ...}
 *   {"type":"kill","at":T,"member":i}   during a job: member i was sent
 *                            SIGKILL at T (ms since the epoch, sub-ms)
 *   {"type":"exit"}          close every channel and exit
 * Jobs run one at a time; the process is reused across jobs. `LoadPool`
 * below is the parent's end: compare-etcd.ts spawns the processes once,
 * runs jobs on them, and closes them in a finally block.
 *
 * The client is the same for both systems: it starts at the member the
 * parent names (the leader) and, on UNAVAILABLE, DEADLINE_EXCEEDED or an
 * etcd "leader changed"/"no leader" message, moves every worker on to the
 * next member and retries the same operation there.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as hdr from "hdr-histogram-js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { loadEtcdProto } from "./etcd-cluster.js";

export type SystemName = "etcd" | "convene";

export interface Job {
  system: SystemName;
  op: "create" | "read";
  /** Member addresses; the client keeps one channel to each. */
  addresses: string[];
  /** Index of the member to call first (the leader). */
  start: number;
  inFlight: number;
  /** Longest the job runs; a kill job ends sooner (see `afterFirstAckMs`). */
  seconds: number;
  /** Per-call deadline. */
  deadlineMs: number;
  /** Create: prefix of new keys / meeting ids, unique per job and process. */
  prefix: string;
  /** Read: the keys / meeting ids to read, cycled. */
  readKeys: string[];
  /** Create: how many acknowledged keys to send back (for the read step). */
  keep: number;
  /** Kill jobs: stop this long after the first acknowledged write after the kill. */
  afterFirstAckMs: number;
}

export interface JobResult {
  type: "result";
  /** Operations acknowledged (with retries folded in). */
  ops: number;
  /** Operations that ended in an error that is not retried, or ran out of attempts. */
  errors: number;
  /** Failed attempts that were retried at the next member. */
  retries: number;
  /** Distinct error texts with counts (at most 8). */
  errorKinds: Record<string, number>;
  seconds: number;
  /** This process's CPU (user + system) during the job. */
  cpuSeconds: number;
  /** Latency of each acknowledged operation in µs, encodeIntoCompressedBase64. */
  histogram: string;
  created: string[];
  /** Kill jobs: ms from the SIGKILL to the first acknowledgement from another member of an attempt sent after it. */
  firstAckAfterKillMs: number | null;
}

/**
 * The client retries on its own (next member), so grpc-js's retry buffer
 * would only copy every message; channelz would count every call.
 */
const LEAN_CHANNEL: grpc.ChannelOptions = { "grpc.enable_retries": 0, "grpc.enable_channelz": 0 };

const root = fileURLToPath(new URL("../../", import.meta.url));
const MAX_ATTEMPTS = 100;
const MAX_KILL_ACKS = 1_000_000;
const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Callback = (err: grpc.ServiceError | null, res?: unknown) => void;
function unary<T>(client: grpc.Client, method: string, req: unknown, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fn = (client as unknown as Record<string, (r: unknown, o: grpc.CallOptions, cb: Callback) => void>)[method]!;
    fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as T)));
  });
}

/** Whether a failed attempt should move on to the next member (the same rule for both systems). */
export function retryable(err: unknown): boolean {
  const e = err as Partial<grpc.ServiceError>;
  if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) return true;
  return /leader changed|no leader/i.test(e.details ?? e.message ?? "");
}

/** One operation of the workload against one member's channel. */
type Operation = (client: grpc.Client, key: string, deadlineMs: number) => Promise<void>;

const ROUTE_VALUE = Buffer.from(JSON.stringify({ node_id: "m1", address: "127.0.0.1:9301", epoch: 1 }));

function operations(system: SystemName): { ctor: grpc.ServiceClientConstructor; create: Operation; read: Operation } {
  if (system === "etcd") {
    return {
      ctor: loadEtcdProto().KV,
      // if create_revision(key) == 0 then Put(key, value) else Range(key)
      create: async (c, key, ms) => {
        const k = Buffer.from(key);
        await unary(c, "Txn", {
          compare: [{ result: 0, target: 1, key: k, create_revision: 0 }],
          success: [{ request_put: { key: k, value: ROUTE_VALUE } }],
          failure: [{ request_range: { key: k } }],
        }, ms);
      },
      read: async (c, key, ms) => {
        const r = await unary<{ kvs: unknown[] }>(c, "Range", { key: Buffer.from(key) }, ms);
        if (r.kvs.length !== 1) throw new Error(`etcd Range ${key}: ${r.kvs.length} kvs`);
      },
    };
  }
  return {
    ctor: lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator"),
    create: async (c, key, ms) => {
      await unary(c, "GetRoute", { meeting_id: key, create: true, region: "" }, ms);
    },
    read: async (c, key, ms) => {
      await unary(c, "GetRoute", { meeting_id: key, create: false, region: "" }, ms);
    },
  };
}

class Runner {
  private readonly channels = new Map<string, grpc.Client>();
  private job: Job | undefined;
  private kill: { at: number; member: number } | undefined;

  private channel(ctor: grpc.ServiceClientConstructor, system: SystemName, address: string): grpc.Client {
    const k = `${system} ${address}`;
    let c = this.channels.get(k);
    if (!c) {
      c = new ctor(address, grpc.credentials.createInsecure(), LEAN_CHANNEL);
      this.channels.set(k, c);
    }
    return c;
  }

  /**
   * Opens fresh channels for the job (none carries a reconnect backoff from
   * a member killed earlier) and connects each member that answers in 3 s.
   */
  async prepare(job: Job): Promise<void> {
    this.close();
    this.job = job;
    this.kill = undefined;
    const { ctor } = operations(job.system);
    await Promise.all(
      job.addresses.map((a) => new Promise<void>((resolve) => this.channel(ctor, job.system, a).waitForReady(Date.now() + 3000, () => resolve()))),
    );
  }

  noteKill(at: number, member: number): void {
    this.kill = { at, member };
  }

  async run(): Promise<JobResult> {
    const job = this.job;
    if (!job) throw new Error("go before job");
    const ops = operations(job.system);
    const op = job.op === "create" ? ops.create : ops.read;
    const clients = job.addresses.map((a) => this.channel(ops.ctor, job.system, a));
    const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    const errorKinds: Record<string, number> = {};
    const created: string[] = [];
    // Kill jobs: (attempt sent, acknowledged, member) of every acknowledged operation.
    const acks: { sent: number; at: number; member: number }[] = [];
    let current = job.start;
    let errors = 0;
    let retries = 0;
    let seq = 0;
    let stopAt = Date.now() + job.seconds * 1000;
    const hardStop = stopAt + 2 * job.deadlineMs;
    let firstAfterKill: number | null = null;
    const noteError = (e: unknown): void => {
      // "4 Deadline exceeded", "14 No connection established. Last error: Error: connect ECONNREFUSED": timings and addresses cut off.
      const details = String((e as grpc.ServiceError).details ?? (e as Error).message)
        .replace(/ after [\d.]+s.*$/, "")
        .replace(/\. Resolution note.*$/, "")
        .replace(/ ?\d+\.\d+\.\d+\.\d+:\d+/g, "");
      const text = `${(e as grpc.ServiceError).code ?? "?"} ${details.slice(0, 80)}`;
      if (errorKinds[text] !== undefined || Object.keys(errorKinds).length < 8) errorKinds[text] = (errorKinds[text] ?? 0) + 1;
    };
    const checkKill = (sent: number, at: number, member: number): void => {
      const k = this.kill;
      if (!k || member === k.member || sent < k.at) return;
      if (firstAfterKill === null || at < firstAfterKill) {
        if (firstAfterKill === null) stopAt = Math.min(stopAt, Date.now() + job.afterFirstAckMs);
        firstAfterKill = at;
      }
    };
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: job.inFlight }, async (_, worker) => {
        let readAt = Math.floor((worker * job.readKeys.length) / job.inFlight);
        while (Date.now() < stopAt) {
          const key = job.op === "create" ? `${job.prefix}-${seq++}` : job.readKeys[readAt++ % job.readKeys.length]!;
          const started = process.hrtime.bigint();
          for (let attempt = 1; ; attempt++) {
            const member = current;
            const timed = job.afterFirstAckMs > 0;
            const sent = timed ? now() : 0;
            try {
              await op(clients[member]!, key, job.deadlineMs);
              const at = timed ? now() : 0;
              histogram.recordValue(Math.max(1, Number((process.hrtime.bigint() - started) / 1000n)));
              if (job.op === "create" && created.length < job.keep) created.push(key);
              if (this.kill) checkKill(sent, at, member);
              else if (job.afterFirstAckMs > 0 && acks.length < MAX_KILL_ACKS) acks.push({ sent, at, member });
              break;
            } catch (e) {
              noteError(e);
              if (!retryable(e) || attempt >= MAX_ATTEMPTS || Date.now() >= hardStop) {
                errors++;
                break;
              }
              retries++;
              if (current === member) current = (member + 1) % clients.length;
              await sleep(10);
            }
          }
          // A kill noted while this worker waited: acknowledgements recorded before it count too.
          if (this.kill && acks.length > 0) {
            for (const a of acks.splice(0)) checkKill(a.sent, a.at, a.member);
          }
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const kill = this.kill;
    return {
      type: "result",
      ops: histogram.totalCount,
      errors,
      retries,
      errorKinds,
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      histogram: hdr.encodeIntoCompressedBase64(histogram),
      created,
      firstAckAfterKillMs: kill && firstAfterKill !== null ? firstAfterKill - kill.at : null,
    };
  }

  close(): void {
    for (const c of this.channels.values()) c.close();
    this.channels.clear();
  }
}

/** The load processes: spawned once, reused for every job, closed in a finally block. */
export class LoadPool {
  private readonly children: ChildProcess[] = [];
  private readonly inbox: { type: string }[][] = [];
  private readonly waiters: (() => void)[] = [];

  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      const child = spawn(process.execPath, ["--import", "tsx", "scripts/bench/load-client.ts"], { cwd: root, stdio: ["pipe", "pipe", "inherit"] });
      this.inbox.push([]);
      createInterface({ input: child.stdout! }).on("line", (line) => {
        try {
          this.inbox[i]!.push(JSON.parse(line) as { type: string });
        } catch {
          return; // not a protocol line
        }
        this.wake();
      });
      child.on("exit", () => this.wake());
      this.children.push(child);
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(i: number, msg: object): void {
    this.children[i]!.stdin!.write(`${JSON.stringify(msg)}\n`);
  }

  private async next(i: number, type: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.inbox[i]!.findIndex((m) => m.type === type || m.type === "failed");
      if (at >= 0) {
        const m = this.inbox[i]!.splice(at, 1)[0] as Record<string, unknown>;
        if (m.type === "failed") throw new Error(`load client ${i} failed: ${String(m.message)}`);
        return m;
      }
      const child = this.children[i]!;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`load client ${i} exited (${child.exitCode ?? child.signalCode})`);
      if (Date.now() > deadline) throw new Error(`load client ${i}: no "${type}" within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Runs one job per given process at once; `during` runs after "go". */
  async run(jobs: Job[], during?: () => Promise<void>): Promise<JobResult[]> {
    jobs.forEach((job, i) => this.send(i, { type: "job", ...job }));
    await Promise.all(jobs.map((_, i) => this.next(i, "ready", 30_000)));
    jobs.forEach((_, i) => this.send(i, { type: "go" }));
    const results = Promise.all(jobs.map((job, i) => this.next(i, "result", (job.seconds + 30) * 1000) as unknown as Promise<JobResult>));
    results.catch(() => undefined); // awaited below; `during` may throw first
    if (during) await during();
    return await results;
  }

  broadcast(count: number, msg: object): void {
    for (let i = 0; i < count; i++) this.send(i, msg);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((r) => child.once("exit", r));
        child.stdin!.end(`${JSON.stringify({ type: "exit" })}\n`);
        const t = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(t);
      }),
    );
  }
}

async function main(): Promise<void> {
  const runner = new Runner();
  const send = (msg: object): void => {
    process.stdout.write(`${JSON.stringify(msg)}\n`);
  };
  let running: Promise<void> = Promise.resolve();
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const msg = JSON.parse(line) as { type: string } & Record<string, unknown>;
    switch (msg.type) {
      case "job":
        await running;
        await runner.prepare(msg as unknown as Job);
        send({ type: "ready" });
        break;
      case "go":
        running = runner.run().then(send, (e: unknown) => send({ type: "failed", message: String((e as Error).stack ?? e) }));
        break;
      case "kill":
        runner.noteKill(msg.at as number, msg.member as number);
        break;
      case "exit":
        await running;
        runner.close();
        process.exit(0);
        break;
      default:
        throw new Error(`load-client: unknown message ${JSON.stringify(msg.type)}`);
    }
  }
  // stdin closed: the parent is gone.
  runner.close();
  process.exit(0);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
}
