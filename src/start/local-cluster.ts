/**
 * The processes of a local cluster (`convene start`): coordinator members,
 * a gateway and demo meeting servers, each a child process running this
 * same CLI, so a `kill -9` of one is a real crash the others must survive.
 * Their logs go to <dataDir>/logs/<id>.log; the terminal shows only what
 * happens to the processes.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, openSync, closeSync } from "node:fs";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { memberEnvironment } from "../member/malloc-env.js";
import { isLoopbackHost } from "../security/listen-policy.js";
import { loadProto, lookup } from "../wire/proto.js";
import { lastLines, renderLogLine } from "./log-tail.js";
import type { StartConfig } from "./start-config.js";

export type ProcessKind = "member" | "gateway" | "demo-server";

export interface ProcessSpec {
  readonly id: string;
  readonly kind: ProcessKind;
  /** Where it serves: gRPC for members, HTTP otherwise. */
  readonly address: string;
  readonly args: readonly string[];
}

export interface RunningProcess extends ProcessSpec {
  readonly child: ChildProcess;
  readonly logFile: string;
  /** When it was spawned (Date.now()). */
  readonly startedAt: number;
  exited: boolean;
}

export type ExitListener = (proc: RunningProcess, code: number | null, signal: NodeJS.Signals | null) => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The processes `config` describes, in start order. */
export function clusterSpecs(config: StartConfig): ProcessSpec[] {
  const members = config.memberPorts.map((port, i) => ({ id: `n${i + 1}`, address: `${config.host}:${port}` }));
  const coordinators = members.map((m) => m.address).join(",");
  const peers = members.map((m) => `${m.id}=${m.address}`).join(",");
  const logLevel = ["--log-level", config.logLevel];
  const specs: ProcessSpec[] = members.map((m) => ({
    id: m.id,
    kind: "member",
    address: m.address,
    args: ["member", "--id", m.id, "--listen", m.address, "--peers", peers, "--data", join(config.dataDir, m.id), ...logLevel],
  }));
  const gateway = `${config.host}:${config.gatewayPort}`;
  // The walkthrough's dashboard: open to whoever reaches a gateway on loopback; beyond, this host's clients only.
  const dashboardAccess = isLoopbackHost(config.host) ? "open" : "loopback";
  specs.push({ id: "gateway", kind: "gateway", address: gateway, args: ["gateway", "--listen", gateway, "--coordinators", coordinators, "--operator-pages", dashboardAccess, ...logLevel] });
  for (const [i, port] of config.demoPorts.entries()) {
    const address = `${config.host}:${port}`;
    specs.push({
      id: `m${i + 1}`,
      kind: "demo-server",
      address,
      args: [
        "demo-server", "--node-id", `m${i + 1}`, "--listen", address, "--coordinators", coordinators,
        "--capacity", String(config.demoCapacity), "--checkpoint-interval-ms", String(config.checkpointIntervalMs), ...logLevel,
      ],
    });
  }
  return specs;
}

export class LocalCluster {
  readonly processes = new Map<string, RunningProcess>();
  private readonly logDir: string;

  constructor(
    readonly config: StartConfig,
    private readonly onExit: ExitListener,
    /** How to run this CLI again: node, its flags (e.g. tsx's loader) and the script. */
    private readonly command: readonly string[] = [process.execPath, ...process.execArgv, process.argv[1]!],
  ) {
    this.logDir = resolve(config.dataDir, "logs");
  }

  /** Starts every process and waits until each serves; throws if one exits or is not ready within `timeoutMs`. */
  async start(timeoutMs = 60_000): Promise<void> {
    mkdirSync(this.logDir, { recursive: true });
    const specs = clusterSpecs(this.config);
    const deadline = Date.now() + timeoutMs;
    for (const spec of specs.filter((s) => s.kind === "member")) this.spawn(spec);
    await this.waitFor("a coordinator leader", deadline, () => this.hasLeader());
    for (const spec of specs.filter((s) => s.kind !== "member")) this.spawn(spec);
    for (const spec of specs.filter((s) => s.kind !== "member")) {
      await this.waitFor(`${spec.id} on ${spec.address}`, deadline, () => httpOk(`http://${spec.address}/healthz`));
    }
  }

  spawn(spec: ProcessSpec): RunningProcess {
    const logFile = join(this.logDir, `${spec.id}.log`);
    const fd = openSync(logFile, "a");
    const [node, ...prefix] = this.command;
    const env = spec.kind === "member" ? memberEnvironment() : process.env;
    const child = spawn(node!, [...prefix, ...spec.args], { stdio: ["ignore", fd, fd], env });
    closeSync(fd);
    const proc: RunningProcess = { ...spec, child, logFile, startedAt: Date.now(), exited: false };
    this.processes.set(spec.id, proc);
    child.on("exit", (code, signal) => {
      proc.exited = true;
      this.onExit(proc, code, signal);
    });
    return proc;
  }

  /** SIGTERM to the edge processes first (gateway, meeting servers), then the members; SIGKILL after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    const all = [...this.processes.values()];
    await stopAll(all.filter((p) => p.kind !== "member"), graceMs);
    await stopAll(all.filter((p) => p.kind === "member"), graceMs);
  }

  private async waitFor(what: string, deadline: number, ready: () => Promise<boolean>): Promise<void> {
    while (!(await ready())) {
      const dead = [...this.processes.values()].find((p) => p.exited);
      if (dead) {
        const tail = lastLines(dead.logFile, 8).map((line) => `\n  | ${renderLogLine(line)}`).join("");
        throw new Error(`${dead.id} exited while starting; the last lines of ${dead.logFile}:${tail}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; logs are in ${this.logDir}`);
      await sleep(100);
    }
  }

  private async hasLeader(): Promise<boolean> {
    const Coordinator = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");
    const first = [...this.processes.values()].find((p) => p.kind === "member")!;
    const client = new Coordinator(first.address, grpc.credentials.createInsecure());
    try {
      const status = await new Promise<{ leader_id: string }>((resolve, reject) => {
        (client as unknown as Record<string, (r: unknown, o: grpc.CallOptions, cb: (e: Error | null, r?: unknown) => void) => void>).ClusterStatus!.call(
          client, {}, { deadline: Date.now() + 1000 }, (err, res) => (err ? reject(err) : resolve(res as { leader_id: string })),
        );
      });
      return status.leader_id !== "";
    } catch {
      return false;
    } finally {
      client.close();
    }
  }
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

async function stopAll(procs: RunningProcess[], graceMs: number): Promise<void> {
  const live = procs.filter((p) => !p.exited);
  const exits = live.map((p) => new Promise<void>((resolve) => (p.exited ? resolve() : p.child.once("exit", () => resolve()))));
  for (const p of live) p.child.kill("SIGTERM");
  const timer = setTimeout(() => live.forEach((p) => p.exited || p.child.kill("SIGKILL")), graceMs);
  await Promise.all(exits);
  clearTimeout(timer);
}
