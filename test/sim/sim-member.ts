/**
 * One simulated member: the real RaftDriver, on its own process clock, with
 * its disk (SimDisk) and transport (SimTransport) twins and the key-value
 * state machine. A crash kills its clock (nothing it scheduled runs),
 * closes its transport and loses its writes in flight; a restart builds a
 * new driver from what is on the disk, as a real member process does.
 */
import { type Entry, EntryType, type NodeId, type RaftConfig, StateRole } from "../../src/raft/index.js";
import { type DriverBugs, RaftDriver } from "../../src/raft-runtime/driver.js";
import type { StateMachine } from "../../src/raft-runtime/state-machine.js";
import { ProcessClock } from "../../src/time/process-clock.js";
import type { VirtualScheduler } from "../../src/time/virtual-scheduler.js";
import type { KvResult } from "../support/linearizability.js";
import { KvMachine, decodeCommand } from "./kv-machine.js";
import { type SimNetwork, SimTransport } from "./network.js";
import type { SimDisk } from "./sim-disk.js";

export const TICK_MS = 10;

/** The key-value store as the driver's StateMachine; tells the simulation what it applies. */
export class SimKvMachine implements StateMachine {
  kv = new KvMachine();

  constructor(private readonly onApply: (index: number, data: Uint8Array) => void) {}

  apply(command: Uint8Array, index: number): KvResult | undefined {
    this.onApply(index, command);
    return this.kv.apply(decodeCommand(command));
  }

  snapshot(): Uint8Array {
    return this.kv.snapshot();
  }

  restore(data: Uint8Array): void {
    this.kv = KvMachine.restore(data);
  }
}

export interface MemberSetup {
  readonly world: VirtualScheduler;
  readonly network: SimNetwork;
  readonly config: (id: NodeId) => RaftConfig;
  readonly peers: () => ReadonlyMap<NodeId, string>;
  readonly snapshotEvery: number;
  /** Each member's RaftDriverOptions.snapshotOffset; none: 0. */
  readonly snapshotOffset?: (id: NodeId) => number;
  readonly catchUpEntries: number;
  readonly requestTimeoutMs: number;
  readonly driverBugs?: DriverBugs;
  readonly onApplied: (id: NodeId, entry: Entry) => void;
  readonly onFatal: (id: NodeId, err: unknown) => void;
  readonly onSnapshot: () => void;
}

export class SimMember {
  driver: RaftDriver | undefined;
  clock: ProcessClock | undefined;
  private transport: SimTransport | undefined;
  machine: SimKvMachine | undefined;
  /** Bumped on every start and crash, so clients and pending starts notice. */
  incarnation = 0;
  /** The highest commit index this member announced as leader and the simulation checked. */
  checkedCommit = 0;
  checkedTerm = 0;
  checkedVoters = "";
  /** This member's clock against virtual time (set by the simulation). */
  rate = 1;
  skewMs = 0;
  pausedUntil = 0;

  constructor(
    readonly id: NodeId,
    readonly disk: SimDisk,
  ) {}

  get up(): boolean {
    return this.driver !== undefined;
  }

  get role(): StateRole | undefined {
    return this.driver?.core.raft.role;
  }

  /** Starts a driver from what is on disk. Resolves when it runs (or at once if the member crashed meanwhile). */
  async start(setup: MemberSetup): Promise<void> {
    if (this.clock) this.crash();
    const incarnation = ++this.incarnation;
    const clock = new ProcessClock(setup.world, { rate: this.rate, skewMs: this.skewMs });
    const storage = this.disk.open(clock);
    const transport = new SimTransport(this.id, setup.network, clock);
    const machine = new SimKvMachine((index, data) => {
      const term = this.driver?.core.raft.log.term(index);
      if (term !== undefined) setup.onApplied(this.id, { index, term, type: EntryType.Normal, data });
    });
    this.clock = clock;
    this.transport = transport;
    this.machine = machine;
    this.checkedCommit = 0;
    const driver = await RaftDriver.start({
      config: setup.config(this.id),
      tickMs: TICK_MS,
      storage,
      transport,
      stateMachine: machine,
      peers: setup.peers(),
      snapshotEvery: setup.snapshotEvery,
      snapshotOffset: setup.snapshotOffset?.(this.id) ?? 0,
      catchUpEntries: setup.catchUpEntries,
      requestTimeoutMs: setup.requestTimeoutMs,
      scheduler: clock,
      onFatal: (err) => setup.onFatal(this.id, err),
      ...(setup.driverBugs ? { bugs: setup.driverBugs } : {}),
    });
    if (incarnation !== this.incarnation) return;
    driver.on("snapshot", () => setup.onSnapshot());
    this.driver = driver;
  }

  /** kill -9: nothing of this process runs again; writes in flight are lost. */
  crash(): void {
    this.incarnation++;
    this.clock?.kill();
    void this.transport?.close();
    this.disk.crash();
    this.driver = undefined;
    this.clock = undefined;
    this.transport = undefined;
    this.machine = undefined;
    this.checkedCommit = 0;
    this.pausedUntil = 0;
  }

  /** SIGSTOP for `ms` of virtual time: its timers and deliveries wait. */
  pause(world: VirtualScheduler, ms: number): void {
    const clock = this.clock;
    if (!clock || clock.isPaused) return;
    clock.pause();
    this.pausedUntil = world.now() + ms;
    world.setTimeout(() => {
      if (this.clock === clock) this.pausedUntil = 0;
      clock.resume();
    }, ms);
  }

  resume(): void {
    this.clock?.resume();
    this.pausedUntil = 0;
  }
}
