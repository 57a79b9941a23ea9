/**
 * Three members of the real RaftDriver on virtual time over a network with
 * no faults: what a test of one driver behaviour drives by hand (pauses,
 * crashes, partitions it makes itself), started and ready to run.
 */
import { type RaftConfig, SeededRandom, defaultConfig } from "../../src/raft/index.js";
import { MemoryDurableStorage } from "../../src/raft-runtime/memory-durable-storage.js";
import { VirtualScheduler, flushMicrotasks } from "../../src/time/virtual-scheduler.js";
import { NO_FAULTS, SimNetwork } from "./network.js";
import { SimDisk } from "./sim-disk.js";
import { type MemberSetup, SimMember, TICK_MS } from "./sim-member.js";

export const GROUP_IDS = ["n1", "n2", "n3"];
export const GROUP_ELECTION_MS = 10 * TICK_MS;

export interface FaultFreeGroupOptions {
  readonly seed: number;
  /** GROUP_IDS by default. */
  readonly ids?: readonly string[];
  readonly config?: Partial<RaftConfig>;
  readonly snapshotEvery?: number;
  readonly catchUpEntries?: number;
}

export async function faultFreeGroup(options: FaultFreeGroupOptions) {
  const world = new VirtualScheduler(0);
  const rng = new SeededRandom(options.seed);
  const network = new SimNetwork(world, rng.fork());
  network.faults = NO_FAULTS;
  const ids = options.ids ?? GROUP_IDS;
  const members = ids.map((id) => new SimMember(id, new SimDisk(id, MemoryDurableStorage.bootstrap(ids), rng.fork(), { persisted: () => undefined })));
  const setup: MemberSetup = {
    world,
    network,
    config: (id) => ({ ...defaultConfig(id, rng.fork()), electionTick: 10, heartbeatTick: 1, ...options.config }),
    peers: () => new Map(ids.map((id) => [id, id])),
    snapshotEvery: options.snapshotEvery ?? 1_000_000,
    catchUpEntries: options.catchUpEntries ?? 0,
    requestTimeoutMs: 20 * GROUP_ELECTION_MS,
    onApplied: () => undefined,
    onFatal: (id, err) => {
      throw new Error(`${id}: ${String(err)}`);
    },
    onSnapshot: () => undefined,
  };
  for (const m of members) await m.start(setup);
  const run = async (ms: number): Promise<void> => {
    await world.advance(ms);
    await flushMicrotasks();
  };
  return { world, network, members, setup, run };
}
