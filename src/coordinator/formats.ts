/**
 * Cluster versions: which formats the group writes, so that members of two
 * adjacent releases run together during a rolling upgrade (as etcd's
 * cluster version does).
 *
 * Every member advertises the newest formats its binary understands (wire:
 * Raft message batches, command: the replicated commands, snapshot: the
 * state's encoding); a member of a release before advertising is taken to
 * understand BASELINE_FORMATS. The cluster version is replicated state: the
 * leader raises it (a setClusterVersion command) to the highest version
 * whose formats every member, voter or learner, understands, and never
 * lowers it. Every member writes the formats of the cluster version it has
 * applied, and reads every older format, so an entry or a snapshot is
 * always readable by every member that may receive it. Apply may also
 * branch on the cluster version: a change of what a command does must wait
 * for it, or members of two releases would apply one log differently.
 *
 * Adding a version: a row here, the new encoder behind `formatsAt(v)`, the
 * old decoders kept.
 */

/** The newest formats a binary understands: what a member advertises. */
export interface Formats {
  readonly wire: number;
  readonly command: number;
  readonly snapshot: number;
}

/** What a member that advertises nothing understands: the formats of every release before cluster versions. */
export const BASELINE_FORMATS: Formats = { wire: 1, command: 1, snapshot: 2 };

export interface ClusterVersion {
  readonly version: number;
  /** The formats every member writes at this version. */
  readonly formats: Formats;
  /** What it changes, for operators (`convene status`, README). */
  readonly changes: string;
}

/** Ascending; the first is what a group founded before cluster versions runs at. */
export const CLUSTER_VERSIONS: readonly ClusterVersion[] = [
  { version: 1, formats: BASELINE_FORMATS, changes: "the formats of every release before cluster versions" },
  {
    version: 2,
    formats: { wire: 1, command: 2, snapshot: 3 },
    changes:
      "commands carry the term of the leader that proposed them (the audit trail shows it); a register from the process already registered keeps its generation, and a re-registered node's meetings start a new tenure at a higher epoch; snapshots keep the cluster version, each audit entry's term and each node's incarnation",
  },
  {
    version: 3,
    formats: { wire: 1, command: 3, snapshot: 4 },
    changes:
      "planned moves, rebalancing, drains with a deadline and undrain (startMove, completeMove, expireMove, rebalance, scheduleDrain, drainDue, undrain), load figures written by the leader (reportLoad), limits declared at register, excluded labels and a preferred node at create; snapshots keep each node's limits, load and drain deadline, the meetings' hand-overs and excluded labels, and the event log",
  },
];

/** The first cluster version with planned moves, drains with a deadline, rebalancing and placement by load. */
export const MOVES_AND_LOAD_VERSION = 3;

export const NEWEST_CLUSTER_VERSION = CLUSTER_VERSIONS[CLUSTER_VERSIONS.length - 1]!.version;

/** The formats written at cluster version `version`; throws RangeError for a version this build does not know. */
export function formatsAt(version: number): Formats {
  const row = CLUSTER_VERSIONS.find((v) => v.version === version);
  if (!row) throw new RangeError(`cluster version ${version} is not one this build knows (1..${NEWEST_CLUSTER_VERSION})`);
  return row.formats;
}

function understands(member: Formats, needed: Formats): boolean {
  return member.wire >= needed.wire && member.command >= needed.command && member.snapshot >= needed.snapshot;
}

/** The highest cluster version every one of `members` understands (1 at least: every member reads the baseline). */
export function highestCommonVersion(members: readonly Formats[]): number {
  let best = CLUSTER_VERSIONS[0]!.version;
  for (const v of CLUSTER_VERSIONS) if (members.every((m) => understands(m, v.formats))) best = v.version;
  return best;
}

/** Whether a member advertising `member` may take part in a group at cluster version `version`. */
export function supportsVersion(member: Formats, version: number): boolean {
  return understands(member, formatsAt(version));
}

/** A member's advertisement as it arrives in MemberAdmin.Status: unset or zero fields mean the baseline. */
export function advertisedFormats(raw: { wire?: number; command?: number; snapshot?: number } | null | undefined): Formats {
  return {
    wire: raw?.wire || BASELINE_FORMATS.wire,
    command: raw?.command || BASELINE_FORMATS.command,
    snapshot: raw?.snapshot || BASELINE_FORMATS.snapshot,
  };
}
