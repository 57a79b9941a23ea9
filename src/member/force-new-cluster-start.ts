/**
 * The member side of --force-new-cluster: runs the rewrite of
 * src/raft-runtime/force-new-cluster.ts once per data directory, and leaves
 * a marker so that a restart with the flag still set (a unit file not yet
 * edited) is refused instead of removing, again, the members added since.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { ConfigError } from "../raft/errors.js";
import type { DurableStorage } from "../raft-runtime/durable-storage.js";
import { forceNewCluster } from "../raft-runtime/force-new-cluster.js";

export const FORCED_MARKER_FILE = "forced-new-cluster";

function marker(dataDir: string): string | undefined {
  try {
    return readFileSync(join(dataDir, FORCED_MARKER_FILE), "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Throws ConfigError (nothing written) when this data directory was forced before. */
export async function forceNewClusterOnce(storage: DurableStorage, dataDir: string, selfId: string, logger: Pick<Logger, "warn">): Promise<void> {
  const before = marker(dataDir);
  if (before !== undefined) {
    throw new ConfigError(
      `--force-new-cluster: ${dataDir} became a new one-member group already (${before}); start without --force-new-cluster ` +
        `(to force again, on purpose, delete ${join(dataDir, FORCED_MARKER_FILE)})`,
    );
  }
  const forced = await forceNewCluster(storage, selfId);
  const note = `at ${new Date().toISOString()}, removing ${forced.removed.join(", ") || "nobody"}, log index ${forced.lastIndex}`;
  writeFileSync(join(dataDir, FORCED_MARKER_FILE), `${note}\n`);
  logger.warn(
    {
      removed: forced.removed,
      commitBefore: forced.commitBefore,
      lastIndexBefore: forced.lastIndexBefore,
      keptPastCommit: forced.lastIndexBefore - forced.commitBefore,
      lastIndex: forced.lastIndex,
    },
    "forced a new cluster: this member is now the only member of its group, with all of its data; grow it back with convene members add and promote",
  );
}
