/**
 * Which Raft group a member's data belongs to: the cluster id that every
 * peer message carries, so that members of two groups never take each
 * other's messages (GrpcTransport refuses a stream of another cluster id).
 *
 * It lives in `<data>/cluster-id` (one line), beside the LevelDB files,
 * which LevelDB leaves alone and older releases ignore. No file means
 * LEGACY_CLUSTER_ID: every group founded with `convene member` (and every
 * group of a release before this file existed) has that id, so members of
 * both releases keep talking during a rolling upgrade.
 *
 * A restored group gets a new identity, as etcd gives one (`snapshot
 * restore`): derived from the backup's checksum, the new membership and an
 * optional token, so the three separate restores of one group agree on it
 * without talking, and none of them will ever take a message from a
 * member of the group the backup came from.
 */
import { createHash } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CorruptStateError } from "../raft/errors.js";

export const LEGACY_CLUSTER_ID = "convene";
export const CLUSTER_ID_FILE = "cluster-id";
const CLUSTER_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The cluster id of the data in `dataDir` (LEGACY_CLUSTER_ID without a file); throws CorruptStateError for a malformed file. */
export function readClusterId(dataDir: string): string {
  let text: string;
  try {
    text = readFileSync(join(dataDir, CLUSTER_ID_FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return LEGACY_CLUSTER_ID;
    throw new CorruptStateError(`${join(dataDir, CLUSTER_ID_FILE)} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  const id = text.trim();
  if (!CLUSTER_ID.test(id)) throw new CorruptStateError(`${join(dataDir, CLUSTER_ID_FILE)} does not hold a cluster id (1-64 letters, digits, '.', '_' or '-')`);
  return id;
}

/** Whether `dataDir` names its cluster id in a file (a restored group, or a member that joined one). */
export function hasClusterIdFile(dataDir: string): boolean {
  try {
    readFileSync(join(dataDir, CLUSTER_ID_FILE));
    return true;
  } catch {
    return false;
  }
}

/** Writes the cluster id file (the data directory must exist). The legacy id needs no file. */
export function writeClusterId(dataDir: string, id: string): void {
  if (!CLUSTER_ID.test(id)) throw new CorruptStateError(`cluster id ${JSON.stringify(id.slice(0, 80))} is not 1-64 letters, digits, '.', '_' or '-'`);
  if (id === LEGACY_CLUSTER_ID) return;
  const fd = openSync(join(dataDir, CLUSTER_ID_FILE), "w", 0o644);
  try {
    writeFileSync(fd, `${id}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The identity of a group restored from a backup: the same for every member
 * restored from the same file into the same membership (and token).
 */
export function restoredClusterId(backupSha256: string, peers: ReadonlyMap<string, string>, token = ""): string {
  const members = [...peers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([id, address]) => `${id}=${address}`);
  const digest = createHash("sha256").update(`${backupSha256}\n${members.join(",")}\n${token}`).digest("hex");
  return `convene-${digest.slice(0, 16)}`;
}

/** Whether `id` is a well-formed cluster id. */
export function isClusterId(id: string): boolean {
  return CLUSTER_ID.test(id);
}
