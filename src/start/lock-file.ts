/**
 * One `convene start` per data directory: <dataDir>/convene.lock holds the
 * pid of the run that owns it (and where its gateway listens, for the
 * message a second run prints). A second run finds the lock held by a live
 * process and stops before it starts anything or opens any log. A lock
 * whose process is gone (a run killed with kill -9, a reboot) is stale and
 * taken over. Acquire before anything else; release when everything has
 * stopped.
 *
 * Limits: two runs started within the same millisecond on a stale lock may
 * both take it over (the members' LevelDB locks then stop the second); a
 * pid reused by another program is told apart only on Linux, by its
 * command line.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ClusterRunningError } from "./errors.js";

export const LOCK_FILE = "convene.lock";

interface LockContent {
  readonly pid: number;
  readonly startedAt: string;
  readonly gateway: string;
}

function readLock(path: string): LockContent | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as Partial<LockContent>;
    if (typeof parsed.pid !== "number" || !Number.isInteger(parsed.pid) || parsed.pid <= 0) return undefined;
    return { pid: parsed.pid, startedAt: String(parsed.startedAt ?? "?"), gateway: String(parsed.gateway ?? "?") };
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live process that may be a `convene start` (not one that reused a dead run's pid). */
function runsConvene(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes("start");
  } catch {
    // No /proc (not Linux), or it just exited: trust the signal check.
    return true;
  }
}

export class DataDirLock {
  private constructor(private readonly path: string) {}

  /** Takes the lock of `dataDir` (creating the directory); throws ClusterRunningError when a live run holds it. */
  static acquire(dataDir: string, gateway: string): DataDirLock {
    mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, LOCK_FILE);
    const content: LockContent = { pid: process.pid, startedAt: new Date().toISOString(), gateway };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        writeFileSync(path, `${JSON.stringify(content)}\n`, { flag: "wx" });
        return new DataDirLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const holder = readLock(path);
      if (holder && runsConvene(holder.pid)) {
        throw new ClusterRunningError(
          holder.pid,
          `convene is already running on ${dataDir} (pid ${holder.pid}, since ${holder.startedAt}, gateway ${holder.gateway}); nothing was started. Stop it first (Ctrl-C in its terminal, or kill ${holder.pid}), or use another --data directory and ports.`,
        );
      }
      // Stale (its run is gone) or unreadable: take it over.
      rmSync(path, { force: true });
    }
    throw new Error(`could not take the lock ${path}: another run keeps taking it`);
  }

  /** Removes the lock if it is still ours. */
  release(): void {
    if (readLock(this.path)?.pid === process.pid) rmSync(this.path, { force: true });
  }
}
