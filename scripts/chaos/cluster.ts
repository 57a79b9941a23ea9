/**
 * The processes under test and what the runner knows about them: the
 * coordinator members (by slot: see network.ts), the gateways and the
 * chaos meeting servers, each a real child process (processes.ts).
 *
 * Order: `start()` (members, a leader, then gateways and servers, each
 * serving) → faults call kill/restart/pause through here → `stopAll()`.
 * Membership changes (replacement.ts) update `members` and `spareSlot`.
 * Every process is started with TLS and its token (security.ts), which
 * must be written before the first start.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { MemberStatus } from "../../src/cli/render.js";
import { memberEnvironment } from "../../src/member/malloc-env.js";
import type { MemberNetwork } from "./network.js";
import { type ChaosOptions, serverName } from "./options.js";
import { type Child, type ProcessTable, commOf } from "./processes.js";
import type { Rpc } from "./rpc.js";
import { type ChaosSecurity, credentialsEnv } from "./security.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface MemberEntry {
  readonly id: string;
  readonly slot: number;
  readonly dataDir: string;
  /** Started with --join (a replacement), so restarts keep the flag. */
  readonly joined: boolean;
  child: Child | undefined;
}

export interface EdgeEntry {
  /** The slot name: g1.. or m1.. */
  readonly name: string;
  readonly address: string;
  /** The node id it registers (servers); changes when flap damping forces a fresh one. */
  nodeId: string;
  /** Fresh node ids taken so far (servers): the next is freshNodeId(name, freshIds + 1). */
  freshIds: number;
  incarnation: number;
  child: Child | undefined;
  /** Every log file it ever wrote (servers: one per process). */
  readonly logs: string[];
}

export class ChaosCluster {
  readonly members = new Map<string, MemberEntry>();
  readonly gateways: EdgeEntry[] = [];
  readonly servers: EdgeEntry[] = [];
  spareSlot: number;
  private nextMemberNumber: number;
  readonly logDir: string;
  readonly dataRoot: string;

  constructor(
    readonly options: ChaosOptions,
    readonly network: MemberNetwork,
    readonly processes: ProcessTable,
    readonly rpc: Rpc,
    readonly runDir: string,
    edgeBasePort: number,
    readonly security: ChaosSecurity,
  ) {
    this.logDir = join(runDir, "logs");
    this.dataRoot = join(runDir, "data");
    mkdirSync(this.logDir, { recursive: true });
    mkdirSync(this.dataRoot, { recursive: true });
    for (let i = 0; i < options.members; i++) {
      const id = `n${i + 1}`;
      this.members.set(id, { id, slot: i, dataDir: join(this.dataRoot, id), joined: false, child: undefined });
    }
    this.spareSlot = options.members;
    this.nextMemberNumber = options.members + 1;
    for (let i = 0; i < options.gateways; i++) {
      this.gateways.push({ name: `g${i + 1}`, address: `127.0.0.1:${edgeBasePort + i}`, nodeId: `g${i + 1}`, freshIds: 0, incarnation: 0, child: undefined, logs: [] });
    }
    for (let i = 0; i < options.servers; i++) {
      const name = serverName(i);
      this.servers.push({ name, address: `127.0.0.1:${edgeBasePort + 20 + i}`, nodeId: name, freshIds: 0, incarnation: 0, child: undefined, logs: [] });
    }
  }

  /** Every slot's client address, spare included: what gateways and servers are given. */
  coordinatorAddresses(): string[] {
    return Array.from({ length: this.options.members + 1 }, (_, k) => this.network.clientAddress(k));
  }

  memberAddress(id: string): string {
    return this.network.clientAddress(this.members.get(id)!.slot);
  }

  newMemberId(): string {
    return `n${this.nextMemberNumber++}`;
  }

  private node(): string[] {
    return [process.execPath, "--import", "tsx"];
  }

  startMember(id: string): Child {
    const m = this.members.get(id)!;
    if (m.child?.alive) throw new Error(`invariant: member ${id} is already running`);
    const peers = [...this.members.values()].map((p) => `${p.id}=${this.network.peerAddress(m.slot, p.slot)}`).join(",");
    const command = [
      ...this.network.commandPrefix(m.slot),
      ...this.node(),
      "src/cli.ts", "member", "--id", id, "--listen", this.network.listenAddress(m.slot), "--peers", peers,
      "--data", m.dataDir, "--log-level", "warn", ...(m.joined ? ["--join"] : []), ...this.security.memberFlags(id, m.slot),
      // Any free port: the default (gRPC port + 1000) may be another test's.
      "--metrics-listen", "127.0.0.1:0",
    ];
    m.child = this.processes.spawn(`member ${id}`, command, join(this.logDir, `${id}.log`), memberEnvironment());
    return m.child;
  }

  /** Adds a member entry in the spare slot (the caller starts it). */
  addJoiningMember(id: string): MemberEntry {
    const entry: MemberEntry = { id, slot: this.spareSlot, dataDir: join(this.dataRoot, id), joined: true, child: undefined };
    this.members.set(id, entry);
    return entry;
  }

  /** The member is out of the group: its slot becomes the spare. */
  dropMember(id: string): void {
    const m = this.members.get(id);
    if (!m) return;
    this.members.delete(id);
    this.spareSlot = m.slot;
  }

  startGateway(g: EdgeEntry): Child {
    g.incarnation += 1;
    const log = join(this.logDir, `${g.name}.log`);
    if (!g.logs.includes(log)) g.logs.push(log);
    const c = this.security.gateway();
    g.child = this.processes.spawn(`gateway ${g.name}`, [
      ...this.node(), "src/cli.ts", "gateway", "--listen", g.address, "--coordinators", this.coordinatorAddresses().join(","),
      "--create-per-minute", "1000000", "--log-level", "warn", "--ca", c.ca, "--cert", c.cert, "--key", c.key,
    ], log, credentialsEnv(c));
    return g.child;
  }

  startServer(s: EdgeEntry): Child {
    const c = this.security.agent(s.name, s.nodeId);
    s.incarnation += 1;
    const log = join(this.logDir, `${s.name}-${s.incarnation}.jsonl`);
    s.logs.push(log);
    s.child = this.processes.spawn(`server ${s.nodeId}`, [
      ...this.node(), "scripts/chaos/meeting-server.ts", "--node-id", s.nodeId, "--listen", s.address,
      "--coordinators", this.coordinatorAddresses().join(","), "--capacity", String(Math.max(50, this.options.meetings * 4)),
      "--checkpoint-interval-ms", String(this.options.checkpointIntervalMs), "--log", log,
      "--ca", c.ca, "--cert", c.cert, "--key", c.key,
    ], join(this.logDir, `${s.name}.out`), credentialsEnv(c));
    return s.child;
  }

  /** Members, a leader, then gateways and servers, each serving; throws past `timeoutMs`. */
  async start(timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const id of this.members.keys()) this.startMember(id);
    while ((await this.leader()) === undefined) {
      const dead = [...this.members.values()].find((m) => !m.child!.alive);
      if (dead) throw new Error(`member ${dead.id} exited while starting; see ${dead.child!.logFile}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for a coordinator leader; logs are in ${this.logDir}`);
      await sleep(100);
    }
    for (const m of this.members.values()) {
      const comm = commOf(m.child!.pid);
      if (comm !== undefined && comm !== "node") throw new Error(`member ${m.id}'s pid ${m.child!.pid} is ${comm}, not node: kill -9 would miss it`);
    }
    for (const g of this.gateways) this.startGateway(g);
    for (const s of this.servers) this.startServer(s);
    for (const g of this.gateways) await this.waitUntil(`gateway ${g.name}`, deadline, () => this.gatewayHealthy(g), g.child);
    for (const s of this.servers) await this.waitUntil(`server ${s.name}`, deadline, () => this.serverRegistered(s), s.child);
  }

  /** Polls `ready` until true; throws past `deadline` or when `watch` (the process waited for) exits. */
  async waitUntil(what: string, deadline: number, ready: () => Promise<boolean>, watch?: Child): Promise<void> {
    for (;;) {
      if (await ready().catch(() => false)) return;
      if (watch && !watch.alive) throw new Error(`${watch.name} exited (${JSON.stringify(watch.exit)}) while waiting for ${what}; see ${watch.logFile}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; logs are in ${this.logDir}`);
      await sleep(100);
    }
  }

  async memberStatus(id: string, timeoutMs = 1000): Promise<MemberStatus | undefined> {
    const m = this.members.get(id);
    if (!m?.child?.alive || m.child.paused) return undefined;
    try {
      return await this.rpc.call<MemberStatus>("MemberAdmin", this.memberAddress(id), "Status", {}, timeoutMs);
    } catch {
      return undefined;
    }
  }

  /** The member that says it leads with the highest term, among those that answer. */
  async leader(): Promise<string | undefined> {
    const answers = await Promise.all([...this.members.keys()].map((id) => this.memberStatus(id)));
    let best: MemberStatus | undefined;
    for (const s of answers) if (s && s.role === "leader" && (!best || s.term > best.term)) best = s;
    return best?.id;
  }

  async waitForLeader(timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const id = await this.leader();
      if (id !== undefined || Date.now() > deadline) return id;
      await sleep(150);
    }
  }

  async gatewayHealthy(g: EdgeEntry): Promise<boolean> {
    if (!g.child?.alive) return false;
    try {
      const res = await fetch(`http://${g.address}/healthz`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }

  /** Whether the server answers and has registered (generation > 0). */
  async serverRegistered(s: EdgeEntry): Promise<boolean> {
    if (!s.child?.alive) return false;
    try {
      const res = await fetch(`http://${s.address}/healthz`, { signal: AbortSignal.timeout(1000) });
      const body = (await res.json()) as { generation?: number };
      return res.ok && (body.generation ?? 0) > 0;
    } catch {
      return false;
    }
  }

  /** The gateway instance id used in the record: name@pid. */
  gatewayInstance(g: EdgeEntry): string {
    return `${g.name}@${g.child?.pid ?? 0}`;
  }
}
