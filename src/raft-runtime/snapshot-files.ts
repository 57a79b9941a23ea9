/**
 * Snapshot data in files beside the LevelDB log, as etcd keeps its .snap
 * files: LevelDB holds only a reference (file name, length, CRC-32).
 *
 * A coordinator snapshot can be hundreds of MB (100,000 checkpoints). As a
 * LevelDB value it would be copied into the write-ahead log, held in the
 * memtable, and rewritten by every compaction; as a file it is written once.
 *
 * Crash safety: a snapshot is written to a temporary name, fsynced, renamed
 * and the directory fsynced before the LevelDB batch that references it is
 * written; so a reference never points at a missing or partial file. Files
 * no reference points at (a crash between the two writes, or snapshots the
 * next one replaced) are deleted at open and after each new snapshot.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { CorruptStateError } from "../raft/errors.js";

export interface SnapshotFileRef {
  readonly file: string;
  readonly length: number;
  readonly crc: number;
}

const FILE_NAME = /^[0-9a-f]{16}-[0-9a-f]{16}\.snap$/;

export class SnapshotFiles {
  /** Files written but not yet referenced or given up: `removeAllBut` leaves them. */
  private readonly held = new Set<string>();

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /**
   * Writes `data` durably under a name from its term and index; returns the
   * reference to store. The file is held (safe from `removeAllBut`, which
   * may run for another write meanwhile) until `release`.
   */
  async write(term: number, index: number, data: Uint8Array): Promise<SnapshotFileRef> {
    const file = `${term.toString(16).padStart(16, "0")}-${index.toString(16).padStart(16, "0")}.snap`;
    const tmp = join(this.dir, `${file}.tmp`);
    this.held.add(file);
    try {
      const handle = await open(tmp, "w");
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, join(this.dir, file));
      await this.syncDir();
    } catch (err) {
      this.held.delete(file);
      throw err;
    }
    return { file, length: data.length, crc: crc32(data) };
  }

  /** The file may now be removed once no reference points at it. */
  release(file: string): void {
    this.held.delete(file);
  }

  /** The data a stored reference points at; throws CorruptStateError if it is missing or not what was written. */
  read(ref: SnapshotFileRef): Uint8Array {
    if (!FILE_NAME.test(ref.file)) throw new CorruptStateError(`snapshot file name ${JSON.stringify(ref.file)} is not one this storage writes`);
    let data: Buffer;
    try {
      data = readFileSync(join(this.dir, ref.file));
    } catch (err) {
      throw new CorruptStateError(`snapshot file ${ref.file} cannot be read: ${(err as Error).message}`, { cause: err });
    }
    if (data.length !== ref.length) throw new CorruptStateError(`snapshot file ${ref.file} has ${data.length} bytes, ${ref.length} were written`);
    if (crc32(data) !== ref.crc) throw new CorruptStateError(`snapshot file ${ref.file} does not match its checksum`);
    return data;
  }

  /** Deletes every snapshot file but `keep` (and leftover temporaries). */
  async removeAllBut(keep: string | undefined): Promise<void> {
    for (const name of readdirSync(this.dir)) {
      if (name === keep || this.held.has(name.replace(/\.tmp$/, ""))) continue;
      if (FILE_NAME.test(name) || name.endsWith(".snap.tmp")) await rm(join(this.dir, name), { force: true });
    }
  }

  /** Same, at open, before anything else runs. */
  removeAllButSync(keep: string | undefined): void {
    for (const name of readdirSync(this.dir)) {
      if (name !== keep && (FILE_NAME.test(name) || name.endsWith(".snap.tmp"))) rmSync(join(this.dir, name), { force: true });
    }
  }

  private async syncDir(): Promise<void> {
    // The rename is durable only once the directory entry is. Off the
    // event loop: on a busy disk an fsync can take tens of milliseconds.
    const handle = await open(this.dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
