/**
 * Real member processes on 127.0.0.1 for end-to-end tests: start, kill -9,
 * restart, and a gRPC client for their Kv and MemberAdmin services.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import type { MemberStatus } from "../../src/cli/render.js";
import { memberEnvironment } from "../../src/member/malloc-env.js";
import { loadProto, lookup } from "../../src/wire/proto.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const memberPkg = loadProto("member.proto");
const KvClient = lookup<grpc.ServiceClientConstructor>(memberPkg, "convene.member.v1.Kv");
const AdminClient = lookup<grpc.ServiceClientConstructor>(memberPkg, "convene.member.v1.MemberAdmin");

type Callback = (err: grpc.ServiceError | null, res?: unknown) => void;

export function unary<T>(client: grpc.Client, method: string, req: unknown, timeoutMs = 3000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fn = (client as unknown as Record<string, (r: unknown, o: grpc.CallOptions, cb: Callback) => void>)[method]!;
    fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as T)));
  });
}

/** Lock files of the port blocks this process holds; removed when it exits. */
const claimedBlocks: string[] = [];
const PORT_BLOCKS_DIR = join(tmpdir(), "convene-port-blocks");

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A block of 10 ports for one cluster, below Linux's ephemeral range
 * (32768–60999 by default: a port in it can already be held by one of the
 * many outgoing connections of the other test files). Each block is
 * claimed with a lock file, so test files (and benchmarks) running at once
 * never share one: two clusters on one port would answer each other's
 * calls, each member in the other's place (the likely cause of a test
 * that once saw a meeting server alive where it had killed it: another
 * file registers the same node ids). A lock whose process is gone is
 * taken over.
 */
export function basePort(): number {
  mkdirSync(PORT_BLOCKS_DIR, { recursive: true });
  for (let attempt = 0; attempt < 1_000; attempt++) {
    const block = Math.floor(Math.random() * 1_270);
    const lock = join(PORT_BLOCKS_DIR, String(block));
    try {
      writeFileSync(lock, String(process.pid), { flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = Number(readFileSync(lock, "utf8"));
      if (Number.isInteger(holder) && holder > 0 && processAlive(holder)) continue;
      rmSync(lock, { force: true }); // stale: its process is gone; claim it on a later attempt
      continue;
    }
    if (claimedBlocks.length === 0) process.once("exit", () => claimedBlocks.forEach((f) => rmSync(f, { force: true })));
    claimedBlocks.push(lock);
    return 20_000 + block * 10;
  }
  throw new Error(`no free block of ports: every lock in ${PORT_BLOCKS_DIR} is held`);
}

export interface MemberProcessOptions {
  readonly snapshotEvery?: number;
  /** --snapshot-catch-up-entries (0: a follower behind the snapshot always gets the snapshot). */
  readonly snapshotCatchUpEntries?: number;
  /** The replicated application; "kv" (the Raft layer's tests) unless given. */
  readonly app?: "coordinator" | "kv";
  readonly extraArgs?: readonly string[];
  /** Flags for node itself, e.g. --cpu-prof when profiling a benchmark. */
  readonly nodeArgs?: readonly string[];
  /** Flags of one member (e.g. its own --cert and --key), after extraArgs. */
  readonly argsFor?: (id: string) => readonly string[];
  /** How this harness's own Kv and MemberAdmin clients connect (TLS, token); default plaintext. */
  readonly clientCredentials?: grpc.ChannelCredentials;
  readonly clientOptions?: grpc.ClientOptions;
  /**
   * Run the compiled build (dist/cli.js, as `npm start` and operators do)
   * instead of the sources through tsx, whose loader adds about a second to
   * every start. The caller builds first (`buildOnce()`).
   */
  readonly compiled?: boolean;
}

/** Builds dist/ (tsconfig.build.json) once per process, for clusters of `compiled` members. */
let built = false;
export function buildOnce(): void {
  if (built) return;
  execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
  built = true;
}

export class MemberCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "convene-members-"));
  readonly addresses = new Map<string, string>();
  private readonly processes = new Map<string, ChildProcess>();
  private readonly kvClients = new Map<string, grpc.Client>();
  private readonly adminClients = new Map<string, grpc.Client>();
  readonly logs = new Map<string, string[]>();

  constructor(
    ids: readonly string[],
    port = basePort(),
    private readonly options: MemberProcessOptions = {},
  ) {
    ids.forEach((id, i) => this.addresses.set(id, `127.0.0.1:${port + i}`));
  }

  peersArg(ids: readonly string[] = [...this.addresses.keys()]): string {
    return ids.map((id) => `${id}=${this.addresses.get(id)}`).join(",");
  }

  dataDir(id: string): string {
    return join(this.dir, id);
  }

  /** Flags for node itself: the option, else CONVENE_MEMBER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=DIR"). */
  private nodeArgs(): readonly string[] {
    return this.options.nodeArgs ?? (process.env.CONVENE_MEMBER_NODE_ARGS ? process.env.CONVENE_MEMBER_NODE_ARGS.split(" ") : []);
  }

  /**
   * Starts (or restarts) a member; `join` members start without founding a
   * group; `args` are more flags for this start only; `cli` runs another
   * build's command line (e.g. ["/old/dist/cli.js"], run in `cwd`).
   */
  start(id: string, opts: { join?: boolean; peers?: readonly string[]; args?: readonly string[]; cli?: readonly string[]; cwd?: string } = {}): void {
    if (this.processes.has(id)) throw new Error(`${id} is already running`);
    const args = [
      ...this.nodeArgs(),
      ...(opts.cli ?? (this.options.compiled ? ["dist/cli.js"] : ["--import", "tsx", "src/cli.ts"])),
      "member",
      "--id",
      id,
      "--listen",
      this.addresses.get(id)!,
      "--peers",
      this.peersArg(opts.peers),
      "--data",
      this.dataDir(id),
      "--log-level",
      process.env.CONVENE_CLUSTER_LOG_LEVEL ?? "warn",
      "--app",
      this.options.app ?? "kv",
      ...(opts.join ? ["--join"] : []),
      // Any free port: the default (the gRPC port + 1000) may be another cluster's. Not for another build, which may not know the flag.
      ...(opts.cli ? [] : ["--metrics-listen", "127.0.0.1:0"]),
      ...(this.options.snapshotEvery ? ["--snapshot-every", String(this.options.snapshotEvery)] : []),
      ...(this.options.snapshotCatchUpEntries !== undefined ? ["--snapshot-catch-up-entries", String(this.options.snapshotCatchUpEntries)] : []),
      ...(this.options.extraArgs ?? []),
      ...(this.options.argsFor?.(id) ?? []),
      ...(opts.args ?? []),
    ];
    const child = spawn(process.execPath, args, { cwd: opts.cwd ?? root, stdio: ["ignore", "pipe", "pipe"], env: memberEnvironment() });
    const log = this.logs.get(id) ?? [];
    this.logs.set(id, log);
    // CONVENE_CLUSTER_LOG_DIR keeps every member's whole log, for diagnosing a benchmark run.
    const logDir = process.env.CONVENE_CLUSTER_LOG_DIR;
    const keep = (b: Buffer): void => {
      if (logDir) appendFileSync(join(logDir, `${id}.log`), b);
      log.push(b.toString());
      if (log.length > 200) log.shift();
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    this.processes.set(id, child);
  }

  addMember(id: string, address: string): void {
    this.addresses.set(id, address);
  }

  /** kill -9: no chance to flush or clean up. */
  async kill9(id: string): Promise<void> {
    const child = this.processes.get(id);
    if (!child) return;
    this.processes.delete(id);
    this.dropClients(id);
    if (child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  }

  async terminate(id: string): Promise<number | null> {
    const child = this.processes.get(id);
    if (!child) return null;
    this.processes.delete(id);
    this.dropClients(id);
    return new Promise((resolve) => {
      child.once("exit", (code) => resolve(code));
      child.kill("SIGTERM");
    });
  }

  /** Waits for a started member to exit by itself (e.g. one that refuses to start); its exit code. */
  async waitForExit(id: string, timeoutMs = 30_000): Promise<number | null> {
    const child = this.processes.get(id);
    if (!child) throw new Error(`${id} was not started`);
    const code = child.exitCode ?? (await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${id} still runs after ${timeoutMs} ms`)), timeoutMs);
      child.once("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    }));
    this.processes.delete(id);
    this.dropClients(id);
    return code;
  }

  /** The OS process id of a running member. */
  pid(id: string): number | undefined {
    return this.processes.get(id)?.pid;
  }

  running(): string[] {
    return [...this.processes.keys()];
  }

  private dropClients(id: string): void {
    this.kvClients.get(id)?.close();
    this.adminClients.get(id)?.close();
    this.kvClients.delete(id);
    this.adminClients.delete(id);
  }

  kv(id: string): grpc.Client {
    let c = this.kvClients.get(id);
    if (!c) {
      c = new KvClient(this.addresses.get(id)!, this.options.clientCredentials ?? grpc.credentials.createInsecure(), this.clientOptions());
      this.kvClients.set(id, c);
    }
    return c;
  }

  /**
   * A client polling a member that is still starting fails to connect;
   * grpc-js's default redial backoff (1 s, growing by 1.6) would then add
   * up to seconds to every wait for a restarted member.
   */
  private clientOptions(): grpc.ClientOptions {
    return { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 200, ...this.options.clientOptions };
  }

  admin(id: string): grpc.Client {
    let c = this.adminClients.get(id);
    if (!c) {
      c = new AdminClient(this.addresses.get(id)!, this.options.clientCredentials ?? grpc.credentials.createInsecure(), this.clientOptions());
      this.adminClients.set(id, c);
    }
    return c;
  }

  status(id: string): Promise<MemberStatus> {
    return unary<MemberStatus>(this.admin(id), "Status", {}, 1000);
  }

  /**
   * Waits until every running member has applied cluster version `version`
   * (a group of this release raises it to the newest within a second or
   * two of forming, formats.ts; what it gates is refused until then).
   */
  async waitForClusterVersion(version: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const id of this.running()) {
      for (;;) {
        const applied = await this.status(id).then((s) => s.cluster_version ?? 0, () => 0);
        if (applied >= version) break;
        if (Date.now() > deadline) throw new Error(`${id} is at cluster version ${applied}, not ${version}, after ${timeoutMs} ms\n${this.recentLogs()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** The base URL of a running member's /metrics, /livez and /readyz. */
  async metricsUrl(id: string): Promise<string> {
    const address = (await this.status(id)).metrics_address;
    if (!address) throw new Error(`${id} serves no metrics`);
    return `http://${address}`;
  }

  /** Waits until a running member reports itself leader; returns its id. */
  async waitForLeader(timeoutMs = 20_000, among: readonly string[] = this.running(), pollMs = 100): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const id of among) {
        try {
          const s = await this.status(id);
          if (s.role === "leader") return id;
        } catch {
          // not up yet
        }
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
    throw new Error(`no leader among ${among.join(", ")} within ${timeoutMs} ms\n${this.recentLogs()}`);
  }

  /** Waits until every running member answers (each process is up and serving). */
  async waitForAll(timeoutMs = 20_000, pollMs = 100): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const id of this.running()) {
      for (;;) {
        try {
          await this.status(id);
          break;
        } catch {
          if (Date.now() > deadline) throw new Error(`${id} is not serving after ${timeoutMs} ms\n${this.recentLogs()}`);
          await new Promise((r) => setTimeout(r, pollMs));
        }
      }
    }
  }

  /** Waits until every listed member has applied at least `index`. */
  async waitForApplied(ids: readonly string[], index: number, timeoutMs = 20_000, pollMs = 100): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const id of ids) {
      for (;;) {
        try {
          if ((await this.status(id)).applied_index >= index) break;
        } catch {
          // restarting
        }
        if (Date.now() > deadline) throw new Error(`${id} did not apply ${index} within ${timeoutMs} ms\n${this.recentLogs()}`);
        await new Promise((r) => setTimeout(r, pollMs));
      }
    }
  }

  async dump(id: string): Promise<{ entries: { key: string; value: string }[]; applied_index: number }> {
    return unary(this.kv(id), "Dump", {}, 5000);
  }

  recentLogs(): string {
    return [...this.logs].map(([id, lines]) => `--- ${id}\n${lines.slice(-20).join("")}`).join("\n");
  }

  async close(): Promise<void> {
    // A profiled member writes its profile only when it exits by itself.
    const profiling = this.nodeArgs().includes("--cpu-prof");
    await Promise.all(this.running().map((id) => (profiling ? this.terminate(id) : this.kill9(id))));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
