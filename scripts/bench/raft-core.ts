/**
 * raft-core: committed entries per second of three in-memory cores with no
 * faults, messages handed over directly, proposals in batches of 64
 * 100-byte commands. Measures the pure core (and MemoryStorage), nothing
 * of disks or sockets.
 */
import { EntryType, MemoryStorage, type Message, RawNode, SeededRandom, StateRole, decodeConfChange, defaultConfig } from "../../src/raft/index.js";

export interface RaftCoreResult {
  readonly entries: number;
  readonly seconds: number;
  readonly entriesPerSecond: number;
  readonly batch: number;
}

export function benchRaftCore(options: { entries?: number; batch?: number; inflightBatches?: number } = {}): RaftCoreResult {
  const total = options.entries ?? 2_000_000;
  const batch = options.batch ?? 64;
  const inflightBatches = options.inflightBatches ?? 8;
  const ids = ["n1", "n2", "n3"];
  const rng = new SeededRandom(7);
  const nodes = new Map<string, { raw: RawNode; disk: MemoryStorage }>();
  for (const id of ids) {
    const disk = MemoryStorage.bootstrap(ids);
    const raw = new RawNode({ ...defaultConfig(id, rng.fork()), maxInflightMsgs: 256, maxSizePerMsg: 1 << 20 }, disk);
    nodes.set(id, { raw, disk });
  }
  let queue: Message[] = [];
  const drain = (): number => {
    let committedEntries = 0;
    for (let round = 0; round < 100; round++) {
      let worked = false;
      for (const [id, n] of nodes) {
        if (!n.raw.hasReady()) continue;
        worked = true;
        const rd = n.raw.ready();
        for (const m of rd.messages) queue.push(m);
        if (rd.snapshot) n.disk.applySnapshot(rd.snapshot);
        n.disk.append(rd.entries);
        if (rd.hardState) n.disk.setHardState(rd.hardState);
        for (const m of rd.messagesAfterPersist) queue.push(m);
        for (const e of rd.committedEntries) if (e.type === EntryType.ConfChange) n.raw.applyConfChange(decodeConfChange(e.data));
        if (id === "n1") committedEntries += rd.committedEntries.length;
        n.raw.advance();
      }
      const deliver = queue;
      queue = [];
      for (const m of deliver) nodes.get(m.to)!.raw.step(m);
      if (!worked && deliver.length === 0) break;
    }
    return committedEntries;
  };
  const leader = nodes.get("n1")!.raw;
  drain(); // apply the bootstrap membership first
  leader.campaign();
  drain();
  if (leader.raft.role !== StateRole.Leader) throw new Error("n1 did not become leader");
  const command = new Uint8Array(100).fill(7);
  const commands = Array.from({ length: batch }, () => command);
  const start = process.hrtime.bigint();
  let committed = 0;
  let proposed = 0;
  while (committed < total) {
    for (let i = 0; i < inflightBatches && proposed - committed < batch * inflightBatches; i++) {
      leader.propose(...commands);
      proposed += batch;
    }
    committed += drain();
    // Heartbeats now and then, as a real leader would send.
    if ((committed / batch) % 64 === 0) leader.tick();
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { entries: committed, seconds, entriesPerSecond: committed / seconds, batch };
}
