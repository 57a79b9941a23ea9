/**
 * Recovery from a lost majority (etcd's --force-new-cluster): the one member
 * left rewrites its own disk so that it starts as the only voter of its
 * group, keeping everything it has.
 *
 * What it writes, in one synced persist, before the driver starts:
 *   - a membership change for every other member it knows (RemoveNode), and
 *     AddVoter for itself first if it was a learner, appended after its log
 *     at its current term;
 *   - the hard state with the commit index at the new last entry.
 * The driver then replays the log as committed: the state machine applies
 * every entry the member holds, and the membership changes leave it alone.
 *
 * Unlike etcd, which drops the entries past the survivor's commit index,
 * every entry the survivor holds is kept and applied: an entry it holds
 * but had not yet learned was committed may well have been acknowledged to
 * its client (the commit index reaches a follower with the next message),
 * and dropping it would lose an acknowledged write. An entry that was in
 * fact never committed had no acknowledgement (its client saw an error or
 * a timeout, an unknown outcome), so applying it breaks no promise. What
 * is lost is what the survivor never received.
 *
 * Called by Member.start only when the operator passed --force-new-cluster.
 */
import { decodeConfChange, encodeConfChange } from "../raft/conf-change.js";
import { ConfigError } from "../raft/errors.js";
import { ConfChangeType, type Entry, EntryType, type NodeId } from "../raft/types.js";
import type { DurableStorage } from "./durable-storage.js";

export interface ForcedNewCluster {
  /** The members it removed (every one but itself). */
  readonly removed: readonly NodeId[];
  /** The commit index it had, and its last index before the change (entries in between are kept and applied). */
  readonly commitBefore: number;
  readonly lastIndexBefore: number;
  /** The last index after the membership changes: all of it committed. */
  readonly lastIndex: number;
}

/** The membership at the end of the log: the snapshot's, then every change in the log, as the core applies them. */
function membershipAtEnd(storage: DurableStorage): { voters: Set<NodeId>; learners: Set<NodeId> } {
  const { confState } = storage.snapshot().metadata;
  const voters = new Set(confState.voters);
  const learners = new Set(confState.learners);
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const entries: Entry[] = last >= first ? storage.entries(first, last + 1, Infinity) : [];
  for (const e of entries) {
    if (e.type !== EntryType.ConfChange) continue;
    const cc = decodeConfChange(e.data);
    switch (cc.type) {
      case ConfChangeType.AddVoter:
        learners.delete(cc.nodeId);
        voters.add(cc.nodeId);
        break;
      case ConfChangeType.AddLearner:
        if (!voters.has(cc.nodeId)) learners.add(cc.nodeId);
        break;
      case ConfChangeType.RemoveNode:
        // The core never removes the last voter.
        if (!(voters.size === 1 && voters.has(cc.nodeId))) voters.delete(cc.nodeId);
        learners.delete(cc.nodeId);
        break;
    }
  }
  return { voters, learners };
}

/**
 * Makes `selfId` the only member of the group stored in `storage`, keeping
 * its whole log (see the file comment). Throws ConfigError, writing
 * nothing, when the storage holds no group.
 */
export async function forceNewCluster(storage: DurableStorage, selfId: NodeId): Promise<ForcedNewCluster> {
  const { hardState } = storage.initialState();
  const lastIndexBefore = storage.lastIndex();
  if (lastIndexBefore === 0) throw new ConfigError("--force-new-cluster needs this member's data: its data directory holds no log and no snapshot");
  const { voters, learners } = membershipAtEnd(storage);
  const removed = [...new Set([...voters, ...learners])].filter((id) => id !== selfId).sort();
  const changes = [
    ...(voters.has(selfId) ? [] : [{ type: ConfChangeType.AddVoter, nodeId: selfId }]),
    ...removed.map((nodeId) => ({ type: ConfChangeType.RemoveNode, nodeId })),
  ];
  const term = Math.max(hardState.term, storage.term(lastIndexBefore));
  const entries: Entry[] = changes.map((cc, i) => ({ term, index: lastIndexBefore + 1 + i, type: EntryType.ConfChange, data: encodeConfChange(cc) }));
  const lastIndex = lastIndexBefore + entries.length;
  await storage.persist({ entries, hardState: { term, vote: hardState.vote, commit: lastIndex } });
  return { removed, commitBefore: hardState.commit, lastIndexBefore, lastIndex };
}
