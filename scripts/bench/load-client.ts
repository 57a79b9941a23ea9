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
/** Whether a failed attempt should move on to the next member (the same rule for both systems). */
export function retryable(err: unknown): boolean {
  const e = err as Partial<grpc.ServiceError>;
  if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) return true;
  return /leader changed|no leader/i.test(e.details ?? e.message ?? "");
}

const ROUTE_VALUE = Buffer.from(JSON.stringify({ node_id: "m1", address: "127.0.0.1:9301", epoch: 1 }));

/*
 * The requests are encoded by hand, byte for byte what the proto-loader
 * clients send for the same objects (checked against them when a job is
 * prepared, see `checkEncoding`), and answers are decoded only as far as
 * the workload looks at them: that is most of a call's cost in this
 * process after grpc-js itself.
 */
const varintSize = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);
function putVarint(b: Buffer, at: number, n: number): number {
  while (n > 0x7f) {
    b[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  b[at++] = n;
  return at;
}
/** A length-delimited field's tag and length. */
function putHead(b: Buffer, at: number, tag: number, len: number): number {
  b[at++] = tag;
  return putVarint(b, at, len);
}

/** convene.v1.GetRouteRequest{meeting_id: key, create, region: ""}. */
function encodeGetRoute(key: string, create: boolean): Buffer {
  const n = Buffer.byteLength(key);
  const b = Buffer.allocUnsafe(1 + varintSize(n) + n + 4);
  let at = putHead(b, 0, 0x0a, n);
  at += b.write(key, at);
  b[at++] = 0x10; // create
  b[at++] = create ? 1 : 0;
  b[at++] = 0x1a; // region ""
  b[at] = 0;
  return b;
}

/**
 * etcdserverpb.TxnRequest: compare [{result: EQUAL, target: CREATE, key,
 * create_revision: 0}], success [{request_put: {key, value: ROUTE_VALUE}}],
 * failure [{request_range: {key}}].
 */
function encodeTxnCreate(key: string): Buffer {
  const n = Buffer.byteLength(key);
  const keyField = 1 + varintSize(n) + n;
  const compare = 4 + keyField + 2;
  const put = keyField + 1 + varintSize(ROUTE_VALUE.length) + ROUTE_VALUE.length;
  const success = 1 + varintSize(put) + put;
  const failure = 1 + varintSize(keyField) + keyField;
  const b = Buffer.allocUnsafe(1 + varintSize(compare) + compare + 1 + varintSize(success) + success + 1 + varintSize(failure) + failure);
  let at = putHead(b, 0, 0x0a, compare);
  b[at++] = 0x08; // result EQUAL
  b[at++] = 0;
  b[at++] = 0x10; // target CREATE
  b[at++] = 1;
  at = putHead(b, at, 0x1a, n);
  at += b.write(key, at);
  b[at++] = 0x28; // create_revision 0
  b[at++] = 0;
  at = putHead(b, at, 0x12, success);
  at = putHead(b, at, 0x12, put); // request_put
  at = putHead(b, at, 0x0a, n);
  at += b.write(key, at);
  at = putHead(b, at, 0x12, ROUTE_VALUE.length);
  at += ROUTE_VALUE.copy(b, at);
  at = putHead(b, at, 0x1a, failure);
  at = putHead(b, at, 0x0a, keyField); // request_range
  at = putHead(b, at, 0x0a, n);
  b.write(key, at);
  return b;
}

/** etcdserverpb.RangeRequest{key}. */
function encodeRange(key: string): Buffer {
  const n = Buffer.byteLength(key);
  const b = Buffer.allocUnsafe(1 + varintSize(n) + n);
  b.write(key, putHead(b, 0, 0x0a, n));
  return b;
}

function readVarint(b: Buffer, at: number): [value: number, next: number] {
  let value = 0;
  for (let shift = 0; ; shift += 7) {
    if (at >= b.length || shift > 63) throw new Error("truncated varint");
    const byte = b[at++]!;
    if (shift < 53) value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, at];
  }
}

/** How many kvs (field 2) an etcdserverpb.RangeResponse holds; the other fields are skipped. */
function countKvs(b: Buffer): number {
  let count = 0;
  let at = 0;
  while (at < b.length) {
    let tag: number;
    [tag, at] = readVarint(b, at);
    switch (tag & 7) {
      case 0:
        at = readVarint(b, at)[1];
        break;
      case 1:
        at += 8;
        break;
      case 2: {
        let len: number;
        [len, at] = readVarint(b, at);
        at += len;
        if (tag === 0x12) count++;
        break;
      }
      case 5:
        at += 4;
        break;
      default:
        throw new Error(`unexpected wire type ${tag & 7}`);
    }
    if (at > b.length) throw new Error("truncated field");
  }
  return count;
}

type GrpcCall = ReturnType<grpc.Channel["createCall"]>;
const NO_CONTEXT = {};
/** The error grpc-js's client gives a call that ended with this status (without its stack "for call at"). */
function statusError(s: grpc.StatusObject): grpc.ServiceError {
  return Object.assign(new Error(`${s.code} ${grpc.status[s.code]}: ${s.details}`), s);
}

/** An answer that is not looked at (grpc-js takes a null answer for none). */
const ANSWERED = (): unknown => true;
const asIs = ((b: Buffer): Buffer => b) as Serialize;

/** How one operation of the workload is sent: the request is a key (serialize encodes it) or an encoded request. */
type Serialize = (req: unknown) => Buffer;
interface Workload {
  path: string;
  serialize: Serialize;
  deserialize: (b: Buffer) => unknown;
  /** Reads: the request of each read key, encoded once per job (serialize passes them on). */
  encodeRead: ((key: string) => Buffer) | undefined;
  /** An answer that fails the operation (etcd read: not exactly one kv). */
  check: ((res: unknown, key: string) => Error | undefined) | undefined;
}

function workload(system: SystemName, op: Job["op"]): Workload {
  if (system === "etcd") {
    // if create_revision(key) == 0 then Put(key, value) else Range(key)
    if (op === "create") return { path: "/etcdserverpb.KV/Txn", serialize: encodeTxnCreate as Serialize, deserialize: ANSWERED, encodeRead: undefined, check: undefined };
    return {
      path: "/etcdserverpb.KV/Range",
      serialize: asIs,
      deserialize: countKvs,
      encodeRead: encodeRange,
      check: (n, key) => (n === 1 ? undefined : new Error(`etcd Range ${key}: ${n as number} kvs`)),
    };
  }
  const path = "/convene.v1.Coordinator/GetRoute";
  if (op === "create") return { path, serialize: ((key: string) => encodeGetRoute(key, true)) as Serialize, deserialize: ANSWERED, encodeRead: undefined, check: undefined };
  return { path, serialize: asIs, deserialize: ANSWERED, encodeRead: (key) => encodeGetRoute(key, false), check: undefined };
}

/**
 * The hand encoders against the proto-loader serializers (and the kv count
 * against its encoding of a RangeResponse), once a process and system: a
 * mismatch fails the job rather than measure a different workload.
 */
const checked = new Set<SystemName>();
function checkEncoding(system: SystemName): void {
  if (checked.has(system)) return;
  const same = (what: string, mine: Buffer, theirs: Buffer): void => {
    if (!mine.equals(theirs)) throw new Error(`load-client: hand-encoded ${what} ${mine.toString("hex")} differs from proto-loader's ${theirs.toString("hex")}`);
  };
  for (const key of ["k", "bench-3-17-12345", `é${"x".repeat(200)}`]) {
    if (system === "etcd") {
      const kv = loadEtcdProto().KV.service;
      const k = Buffer.from(key);
      same("Txn", encodeTxnCreate(key), kv.Txn!.requestSerialize({
        compare: [{ result: 0, target: 1, key: k, create_revision: 0 }],
        success: [{ request_put: { key: k, value: ROUTE_VALUE } }],
        failure: [{ request_range: { key: k } }],
      }));
      same("Range", encodeRange(key), kv.Range!.requestSerialize({ key: k }));
      for (const n of [0, 1, 3]) {
        const kv1 = { key: k, create_revision: 12345678901, mod_revision: 7, version: 1, value: ROUTE_VALUE, lease: 0 };
        const answer = kv.Range!.responseSerialize({ header: { cluster_id: 2 ** 60, member_id: 5, revision: 99, raft_term: 3 }, kvs: Array(n).fill(kv1), more: true, count: n });
        if (countKvs(answer) !== n) throw new Error(`load-client: countKvs ${countKvs(answer)} != ${n}`);
      }
    } else {
      const getRoute = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator").service.GetRoute!;
      for (const create of [true, false]) same("GetRoute", encodeGetRoute(key, create), getRoute.requestSerialize({ meeting_id: key, create, region: "" }));
    }
  }
  checked.add(system);
}

class Runner {
  private readonly channels = new Map<string, grpc.Client>();
  private job: Job | undefined;
  private kill: { at: number; member: number } | undefined;

  private channel(address: string): grpc.Client {
    let c = this.channels.get(address);
    if (!c) {
      c = new grpc.Client(address, grpc.credentials.createInsecure(), LEAN_CHANNEL);
      this.channels.set(address, c);
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
    checkEncoding(job.system);
    await Promise.all(job.addresses.map((a) => new Promise<void>((resolve) => this.channel(a).waitForReady(Date.now() + 3000, () => resolve()))));
  }

  noteKill(at: number, member: number): void {
    this.kill = { at, member };
  }

  async run(): Promise<JobResult> {
    const job = this.job;
    if (!job) throw new Error("go before job");
    const w = workload(job.system, job.op);
    const clients = job.addresses.map((a) => this.channel(a));
    const channels = clients.map((c) => c.getChannel());
    const readRequests = w.encodeRead ? job.readKeys.map(w.encodeRead) : [];
    const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    const errorKinds: Record<string, number> = {};
    const created: string[] = [];
    // Kill jobs: (attempt sent, acknowledged, member) of every acknowledged operation.
    const acks: { sent: number; at: number; member: number }[] = [];
    const timed = job.afterFirstAckMs > 0;
    const creating = job.op === "create";
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

    /**
     * One of `inFlight` workers: an operation at a time, each tried at the
     * current member and retried at the next as before. Callbacks rather
     * than promises, and made once a worker, not once a call.
     */
    const worker = (index: number, done: () => void): void => {
      let readAt = Math.floor((index * job.readKeys.length) / job.inFlight);
      let key = "";
      let request: unknown;
      let started = 0;
      let attempt = 0;
      let member = 0;
      let sent = 0;
      let sending = false;

      const next = (): void => {
        if (Date.now() >= stopAt) {
          done();
          return;
        }
        if (creating) {
          key = `${job.prefix}-${seq++}`;
          request = key;
        } else {
          const i = readAt++ % job.readKeys.length;
          key = job.readKeys[i]!;
          request = readRequests[i];
        }
        started = performance.now();
        attempt = 1;
        send();
      };
      // The call in flight and its answer: grpc-js's unary client path (client.js makeUnaryRequest) without
      // its interceptor layers, event emitter and caller stack, which cost more than the workload's own work.
      let call: GrpcCall | undefined;
      let message: unknown = null;
      let readError: grpc.StatusObject | null = null;
      const listener: grpc.InterceptingListener = {
        onReceiveMetadata: () => undefined,
        onReceiveMessage: (buf: Buffer) => {
          if (message !== null) {
            call!.cancelWithStatus(grpc.status.UNIMPLEMENTED, "Too many responses received");
            return;
          }
          try {
            message = w.deserialize(buf);
          } catch (e) {
            readError = { code: grpc.status.INTERNAL, details: `Response message parsing error: ${String((e as Error).message ?? e)}`, metadata: new grpc.Metadata() };
            call!.cancelWithStatus(readError.code, readError.details);
          }
        },
        onReceiveStatus: (status: grpc.StatusObject) => {
          const s = readError ?? status;
          const res = message;
          call = undefined;
          if (s.code !== grpc.status.OK) answered(statusError(s), undefined);
          else if (res === null) answered(statusError({ code: grpc.status.UNIMPLEMENTED, details: "No message received", metadata: s.metadata }), undefined);
          else answered(null, res);
        },
      };
      const send = (): void => {
        member = current;
        sent = timed ? now() : 0;
        message = null;
        readError = null;
        sending = true;
        try {
          const c = channels[member]!.createCall(w.path, Date.now() + job.deadlineMs, undefined, null, undefined);
          call = c;
          c.start(new grpc.Metadata(), listener);
          c.startRead();
          let body: Buffer;
          try {
            body = w.serialize(request);
          } catch (e) {
            c.cancelWithStatus(grpc.status.INTERNAL, `Request message serialization failure: ${String((e as Error).message ?? e)}`);
            return;
          }
          c.sendMessageWithContext(NO_CONTEXT, body);
          c.halfClose();
        } catch (e) {
          queueMicrotask(() => finish(e, undefined));
        } finally {
          sending = false;
        }
      };
      const answered = (err: grpc.ServiceError | null, res: unknown): void => {
        if (sending) queueMicrotask(() => finish(err, res));
        else finish(err, res);
      };
      const finish = (err: unknown, res: unknown): void => {
        const fail = err ?? (w.check ? w.check(res, key) : undefined);
        if (!fail) {
          const at = timed ? now() : 0;
          histogram.recordValue(Math.max(1, Math.floor((performance.now() - started) * 1000)));
          if (creating && created.length < job.keep) created.push(key);
          if (this.kill) checkKill(sent, at, member);
          else if (timed && acks.length < MAX_KILL_ACKS) acks.push({ sent, at, member });
        } else {
          noteError(fail);
          if (retryable(fail) && attempt < MAX_ATTEMPTS && Date.now() < hardStop) {
            retries++;
            if (current === member) current = (member + 1) % clients.length;
            attempt++;
            setTimeout(send, 10);
            return;
          }
          errors++;
        }
        // A kill noted while this worker waited: acknowledgements recorded before it count too.
        if (this.kill && acks.length > 0) {
          for (const a of acks.splice(0)) checkKill(a.sent, a.at, a.member);
        }
        next();
      };
      next();
    };

    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      let running = job.inFlight;
      const done = (): void => {
        if (--running === 0) resolve();
      };
      if (running <= 0) resolve();
      for (let i = 0; i < job.inFlight; i++) worker(i, done);
    });
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
      // A call allocates ~35 KB in grpc-js and http2, and many of those objects outlive a small young
      // generation: a 128 MB one from the start makes scavenges rarer and cheaper per call
      // (measured at 64 in flight against the noop server: 102 µs of CPU a call, 16 MB 125 µs, default 150 µs).
      const child = spawn(process.execPath, ["--max-semi-space-size=128", "--min-semi-space-size=128", "--import", "tsx", "scripts/bench/load-client.ts"], {
        cwd: root,
        stdio: ["pipe", "pipe", "inherit"],
      });
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
