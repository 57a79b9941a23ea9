/** Real directories under the OS temp dir for tests that touch the disk, removed afterwards. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export class TempDirs {
  private readonly dirs: string[] = [];

  /** A new empty directory, e.g. /tmp/convene-storage-Ab12Cd. */
  async make(prefix = "convene-"): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  async removeAll(): Promise<void> {
    const dirs = this.dirs.splice(0);
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }
}
