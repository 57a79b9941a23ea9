/**
 * Three real etcd members on 127.0.0.1 for the compare-etcd benchmark, and
 * the subset of etcd's v3 gRPC API that the benchmark calls.
 *
 * Who calls it, in order: `ensureEtcd()` (installs Debian's etcd-server when
 * `etcd` is missing), then `new EtcdCluster()`, `start(i)` for each member,
 * `waitForLeader()`; between trials `kill9(i)` and `start(i)` again (the
 * data dir is kept, so a restarted member rejoins); `close()` in a finally
 * block kills every member and removes the temp dir. `loadEtcdProto()` is
 * also called by load-client.ts in the load processes.
 *
 * Members run with etcd's default tuning: only the flags a static
 * three-member cluster needs. Ports come from 40000–49990, away from the
 * range MemberCluster picks (20000–39990) and from a system etcd on 2379.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { protoLoaderOptions } from "../../src/wire/proto.js";

/**
 * The messages and services of etcd's api/etcdserverpb/rpc.proto and
 * mvccpb/kv.proto that the benchmark uses, with etcd's field numbers (a
 * subset decodes etcd's answers; unknown fields are skipped).
 */
export const ETCD_PROTO = `
syntax = "proto3";
package etcdserverpb;

message KeyValue {
  bytes key = 1;
  int64 create_revision = 2;
  int64 mod_revision = 3;
  int64 version = 4;
  bytes value = 5;
  int64 lease = 6;
}

message ResponseHeader {
  uint64 cluster_id = 1;
  uint64 member_id = 2;
  int64 revision = 3;
  uint64 raft_term = 4;
}

message RangeRequest {
  bytes key = 1;
  bytes range_end = 2;
  int64 limit = 3;
  int64 revision = 4;
  int32 sort_order = 5;
  int32 sort_target = 6;
  bool serializable = 7;
  bool keys_only = 8;
  bool count_only = 9;
}

message RangeResponse {
  ResponseHeader header = 1;
  repeated KeyValue kvs = 2;
  bool more = 3;
  int64 count = 4;
}

message PutRequest {
  bytes key = 1;
  bytes value = 2;
  int64 lease = 3;
  bool prev_kv = 4;
}

message PutResponse {
  ResponseHeader header = 1;
}

message RequestOp {
  oneof request {
    RangeRequest request_range = 1;
    PutRequest request_put = 2;
  }
}

message ResponseOp {
  oneof response {
    RangeResponse response_range = 1;
    PutResponse response_put = 2;
  }
}

message Compare {
  enum CompareResult {
    EQUAL = 0;
    GREATER = 1;
    LESS = 2;
    NOT_EQUAL = 3;
  }
  enum CompareTarget {
    VERSION = 0;
    CREATE = 1;
    MOD = 2;
    VALUE = 3;
    LEASE = 4;
  }
  CompareResult result = 1;
  CompareTarget target = 2;
  bytes key = 3;
  oneof target_union {
    int64 version = 4;
    int64 create_revision = 5;
    int64 mod_revision = 6;
    bytes value = 7;
    int64 lease = 8;
  }
}

message TxnRequest {
  repeated Compare compare = 1;
  repeated RequestOp success = 2;
  repeated RequestOp failure = 3;
}

message TxnResponse {
  ResponseHeader header = 1;
  bool succeeded = 2;
  repeated ResponseOp responses = 3;
}

message StatusRequest {}

message StatusResponse {
  ResponseHeader header = 1;
  string version = 2;
  int64 dbSize = 3;
  uint64 leader = 4;
  uint64 raftIndex = 5;
  uint64 raftTerm = 6;
  uint64 raftAppliedIndex = 7;
  repeated string errors = 8;
}

service KV {
  rpc Range(RangeRequest) returns (RangeResponse);
  rpc Put(PutRequest) returns (PutResponse);
  rpc Txn(TxnRequest) returns (TxnResponse);
}

service Maintenance {
  rpc Status(StatusRequest) returns (StatusResponse);
}
`;

let loaded: { KV: grpc.ServiceClientConstructor; Maintenance: grpc.ServiceClientConstructor } | undefined;

/**
 * The KV and Maintenance client constructors, loaded with the same loader
 * options as the project's own protos (so both systems' clients decode
 * alike). The text is written to a temp file, loaded, and the file removed.
 */
export function loadEtcdProto(): { KV: grpc.ServiceClientConstructor; Maintenance: grpc.ServiceClientConstructor } {
  if (loaded) return loaded;
  const dir = mkdtempSync(join(tmpdir(), "convene-etcd-proto-"));
  try {
    const file = join(dir, "etcd-rpc-subset.proto");
    writeFileSync(file, ETCD_PROTO);
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(file, protoLoaderOptions)) as unknown as {
      etcdserverpb: { KV: grpc.ServiceClientConstructor; Maintenance: grpc.ServiceClientConstructor };
    };
    loaded = { KV: pkg.etcdserverpb.KV, Maintenance: pkg.etcdserverpb.Maintenance };
    return loaded;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface EtcdStatus {
  header: { member_id: number };
  version: string;
  leader: number;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
}

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, timeout: 300_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/**
 * Makes sure an `etcd` binary is on PATH, installing Debian's etcd-server
 * (apt-get, as root) when it is not. The package may enable a system etcd
 * on 2379: when this call installed it and such a service runs, it is
 * stopped; the benchmark never uses 2379 either way. Returns the binary.
 */
export function ensureEtcd(): string {
  const found = run("sh", ["-c", "command -v etcd"]);
  if (found.ok) return found.out.trim();
  let install = run("apt-get", ["install", "-y", "etcd-server"]);
  if (!install.ok) {
    run("apt-get", ["update"]);
    install = run("apt-get", ["install", "-y", "etcd-server"]);
  }
  if (!install.ok) throw new Error(`apt-get install -y etcd-server failed:\n${install.out.slice(-2000)}`);
  if (run("systemctl", ["is-active", "--quiet", "etcd"]).ok) run("systemctl", ["stop", "etcd"]);
  const after = run("sh", ["-c", "command -v etcd"]);
  if (!after.ok) throw new Error("etcd-server is installed but no etcd binary is on PATH");
  return after.out.trim();
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** A base port whose client (base+0..2) and peer (base+5..7) ports are free now. */
export async function freeEtcdBasePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10_000 + Math.floor(Math.random() * 900) * 10; // below the ephemeral range (32768+), where outgoing connections hold ports
    const ports = [0, 1, 2, 5, 6, 7].map((d) => base + d);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
  throw new Error("no free port range for etcd in 40000–49990 after 50 tries");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function unary<T>(client: grpc.Client, method: string, req: unknown, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fn = (client as unknown as Record<string, (r: unknown, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: unknown) => void) => void>)[method]!;
    fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as T)));
  });
}

export class EtcdCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "convene-etcd-"));
  readonly names = ["e1", "e2", "e3"];
  /** Client addresses ("127.0.0.1:port"), by member index. */
  readonly addresses: string[];
  private readonly peerUrls: string[];
  private readonly processes = new Map<number, ChildProcess>();
  private readonly status = new Map<number, grpc.Client>();

  constructor(
    private readonly binary: string,
    base: number,
  ) {
    this.addresses = this.names.map((_, i) => `127.0.0.1:${base + i}`);
    this.peerUrls = this.names.map((_, i) => `http://127.0.0.1:${base + 5 + i}`);
  }

  logFile(i: number): string {
    return join(this.dir, `${this.names[i]}.log`);
  }

  /** Starts (or restarts, on its kept data dir) member `i`. */
  start(i: number): void {
    if (this.processes.has(i)) throw new Error(`etcd member ${this.names[i]} is already running`);
    const name = this.names[i]!;
    const clientUrl = `http://${this.addresses[i]}`;
    const args = [
      "--name", name,
      "--data-dir", join(this.dir, name),
      "--listen-client-urls", clientUrl,
      "--advertise-client-urls", clientUrl,
      "--listen-peer-urls", this.peerUrls[i]!,
      "--initial-advertise-peer-urls", this.peerUrls[i]!,
      "--initial-cluster", this.names.map((n, j) => `${n}=${this.peerUrls[j]}`).join(","),
      "--initial-cluster-state", "new",
      "--initial-cluster-token", `convene-bench-${process.pid}`,
    ];
    // Our flags only: no ETCD_* settings leak in from the environment.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ETCD_")));
    const log = openSync(this.logFile(i), "a");
    try {
      this.processes.set(i, spawn(this.binary, args, { env, stdio: ["ignore", log, log] }));
    } finally {
      closeSync(log);
    }
  }

  pid(i: number): number | undefined {
    return this.processes.get(i)?.pid;
  }

  /** kill -9; resolves once the process has exited. */
  async kill9(i: number): Promise<void> {
    const child = this.processes.get(i);
    if (!child) return;
    this.processes.delete(i);
    this.status.get(i)?.close();
    this.status.delete(i);
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  }

  memberStatus(i: number): Promise<EtcdStatus> {
    let c = this.status.get(i);
    if (!c) {
      c = new (loadEtcdProto().Maintenance)(this.addresses[i]!, grpc.credentials.createInsecure());
      this.status.set(i, c);
    }
    return unary<EtcdStatus>(c, "Status", {}, 1000);
  }

  /**
   * The index of the member that is leader: the one whose own member_id
   * equals the leader its Status reports. Polls every running member.
   */
  async waitForLeader(timeoutMs = 30_000, pollMs = 100): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const i of this.processes.keys()) {
        try {
          const s = await this.memberStatus(i);
          if (s.leader !== 0 && s.leader === s.header.member_id) return i;
        } catch {
          // not serving yet
        }
      }
      await sleep(pollMs);
    }
    throw new Error(`no etcd leader within ${timeoutMs} ms\n${this.recentLogs()}`);
  }

  /** Waits until every running member has applied what the leader has committed now. */
  async waitForCaughtUp(timeoutMs = 30_000, pollMs = 100): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const leader = await this.waitForLeader(timeoutMs, pollMs);
    const target = (await this.memberStatus(leader)).raftIndex;
    for (const i of this.processes.keys()) {
      for (;;) {
        try {
          const s = await this.memberStatus(i);
          if (s.leader !== 0 && s.raftAppliedIndex >= target) break;
        } catch {
          // restarting
        }
        if (Date.now() > deadline) throw new Error(`etcd ${this.names[i]} did not apply ${target} within ${timeoutMs} ms\n${this.recentLogs()}`);
        await sleep(pollMs);
      }
    }
  }

  recentLogs(): string {
    return this.names
      .map((n, i) => {
        let text = "";
        try {
          text = readFileSync(this.logFile(i), "utf8");
        } catch {
          // never started
        }
        return `--- ${n}\n${text.split("\n").slice(-15).join("\n")}`;
      })
      .join("\n");
  }

  async close(): Promise<void> {
    await Promise.all([...this.processes.keys()].map((i) => this.kill9(i)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
