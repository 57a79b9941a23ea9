/**
 * `convene snapshot restore`: a new member data directory from a backup,
 * for a new group (a new cluster identity, as etcd's `snapshot restore`
 * makes one). Every member of the new group is restored from the same file
 * with the same --peers; each then starts as an ordinary member (without
 * --join) whose log begins with the backup's state as its snapshot, at the
 * backup's index and term, the voters being the --peers.
 *
 * Nothing is written unless the whole file checks out (readBackup: magic,
 * length, checksums; then the state must decode as a coordinator state),
 * and the directory appears at once or not at all: it is built beside the
 * target under a temporary name and renamed into place.
 */
import { mkdirSync, readdirSync, renameSync, rmSync, rmdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { decodeState } from "../coordinator/state-snapshot.js";
import { defaultStateConfig } from "../coordinator/state-config.js";
import type { CoordinatorState } from "../coordinator/state.js";
import { LevelStorage } from "../raft-runtime/level-storage.js";
import { type Backup, BackupFileError, syncDirectory } from "./backup-file.js";
import { restoredClusterId, writeClusterId } from "./cluster-identity.js";

export interface RestoreOptions {
  readonly dataDir: string;
  readonly id: string;
  /** Every member of the new group, this one included: id → host:port. */
  readonly peers: ReadonlyMap<string, string>;
  /** Mixed into the new cluster id: two groups restored from one file with one membership stay apart if their tokens differ. */
  readonly clusterToken?: string;
}

/** What the restore wrote. */
export interface RestoreResult {
  readonly clusterId: string;
  readonly index: number;
  readonly term: number;
  readonly voters: readonly string[];
}

/** A restore refused before anything was written: the message says which flag or file, and why. */
export class RestoreError extends Error {
  readonly code = "RESTORE";
}

/** The state a backup holds, decoded and checked; throws BackupFileError when it is not a coordinator state. */
export function decodeBackupState(backup: Backup, path: string): CoordinatorState {
  try {
    return decodeState(backup.state, defaultStateConfig());
  } catch (err) {
    throw new BackupFileError(`${path} holds a state this member cannot read: ${(err as Error).message}`, { cause: err });
  }
}

function isEmptyOrMissing(dir: string): boolean {
  try {
    if (!statSync(dir).isDirectory()) return false;
  } catch {
    return true;
  }
  return readdirSync(dir).length === 0;
}

export async function restoreDataDir(backup: Backup, path: string, options: RestoreOptions): Promise<RestoreResult> {
  const { dataDir, id, peers } = options;
  if (!peers.has(id)) throw new RestoreError(`--peers must include this member's own id ${id}`);
  if (!isEmptyOrMissing(dataDir)) throw new RestoreError(`--data ${dataDir} exists and is not an empty directory: a restore writes a new data directory, never over one`);
  decodeBackupState(backup, path);
  const voters = [...peers.keys()].sort();
  const clusterId = restoredClusterId(backup.header.stateSha256, peers, options.clusterToken);
  const parent = dirname(dataDir);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(dataDir)}.restoring-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    const storage = await LevelStorage.open(tmp);
    try {
      const { index, term } = backup.header;
      await storage.persist({
        entries: [],
        hardState: { term, vote: "", commit: index },
        snapshot: { metadata: { index, term, confState: { voters, learners: [] } }, data: backup.state },
      });
    } finally {
      await storage.close();
    }
    writeClusterId(tmp, clusterId);
    // An empty directory at the target (made by the operator) is replaced.
    try {
      rmdirSync(dataDir);
    } catch {
      // absent
    }
    syncDirectory(tmp);
    renameSync(tmp, dataDir);
    syncDirectory(parent);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return { clusterId, index: backup.header.index, term: backup.header.term, voters };
}
