/**
 * The backup file (src/member/backup-file.ts) and the restored group's
 * identity (src/member/cluster-identity.ts): a file that is not whole is
 * refused with the reason; the identity is the same for every member
 * restored from one file into one membership, and differs otherwise.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BACKUP_MAGIC, type BackupHeader, BackupWriter, readBackup } from "../src/member/backup-file.js";
import { LEGACY_CLUSTER_ID, readClusterId, restoredClusterId, writeClusterId } from "../src/member/cluster-identity.js";
const made: string[] = [];
const dirs = {
  make(): string {
    const dir = mkdtempSync(join(tmpdir(), "convene-backup-"));
    made.push(dir);
    return dir;
  },
};
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function header(state: Uint8Array): BackupHeader {
  return {
    index: 42,
    term: 3,
    clusterId: "convene",
    member: "n2",
    takenAtMs: 1_700_000_000_000,
    voters: ["n1", "n2", "n3"],
    learners: [],
    stateBytes: state.length,
    stateSha256: createHash("sha256").update(state).digest("hex"),
  };
}

function written(state: Uint8Array): string {
  const path = join(dirs.make(), "b.backup");
  const w = new BackupWriter(path);
  w.begin(header(state));
  w.write(state.subarray(0, 10));
  w.write(state.subarray(10));
  w.commit();
  return path;
}

describe("backup file", () => {
  const state = Buffer.from("the state of the whole cluster, as the state machine encodes it".repeat(20));

  it("reads back what was written, with its header and the checksum of the file", () => {
    const path = written(state);
    const b = readBackup(path);
    expect(b.header).toEqual(header(state));
    expect(Buffer.from(b.state).equals(state)).toBe(true);
    const bytes = readFileSync(path);
    expect(b.size).toBe(bytes.length);
    expect(b.sha256).toBe(createHash("sha256").update(bytes.subarray(0, bytes.length - 32)).digest("hex"));
    expect(bytes.subarray(0, BACKUP_MAGIC.length).toString()).toBe(BACKUP_MAGIC);
  });

  it("leaves nothing at the path when a write is aborted or the state does not match the member's checksum", () => {
    const dir = dirs.make();
    const path = join(dir, "b.backup");
    const w = new BackupWriter(path);
    w.begin(header(state));
    w.write(state.subarray(1)); // a byte short
    expect(() => w.commit()).toThrow(/announced \d+ bytes of state and sent \d+/);
    w.abort();
    const w2 = new BackupWriter(path);
    w2.begin(header(state));
    w2.write(Buffer.from(state).reverse());
    expect(() => w2.commit()).toThrow(/does not match the member's checksum/);
    w2.abort();
    expect(readdirSync(dir)).toEqual([]);
  });

  it.each([
    ["truncated anywhere", (b: Buffer) => b.subarray(0, b.length - 7), /is truncated: \d+ bytes, the header announces \d+/],
    ["cut inside its header", (b: Buffer) => b.subarray(0, BACKUP_MAGIC.length + 5), /header line does not end/],
    ["a flipped bit in the state", (b: Buffer) => flip(b, b.length - 100), /is corrupted: its SHA-256 checksum does not match/],
    ["a flipped bit in the checksum", (b: Buffer) => flip(b, b.length - 1), /is corrupted/],
    ["bytes appended", (b: Buffer) => Buffer.concat([b, Buffer.from("x")]), /1 bytes more than its header announces/],
    ["not a backup", () => Buffer.from("hello world\n"), /is not a convene backup/],
    ["a header that is not JSON", (b: Buffer) => Buffer.concat([Buffer.from(BACKUP_MAGIC), Buffer.from("{nope\n"), b.subarray(b.indexOf(0x0a, BACKUP_MAGIC.length) + 1)]), /header is not valid JSON/],
  ])("refuses a file with %s, saying so", (_what, damage, reason) => {
    const path = written(state);
    writeFileSync(path, damage(readFileSync(path)));
    expect(() => readBackup(path)).toThrow(reason);
  });

  it("names a missing file", () => {
    expect(() => readBackup(join(dirs.make(), "absent"))).toThrow(/cannot be read: ENOENT/);
  });
});

function flip(b: Buffer, at: number): Buffer {
  const copy = Buffer.from(b);
  copy[at]! ^= 0x10;
  return copy;
}

describe("cluster identity", () => {
  const peers = new Map([
    ["n1", "10.0.0.1:7001"],
    ["n2", "10.0.0.2:7001"],
    ["n3", "10.0.0.3:7001"],
  ]);

  it("is the same for every restore of one file into one membership, whatever the order of --peers", () => {
    const reordered = new Map([...peers].reverse());
    expect(restoredClusterId("ab".repeat(32), peers)).toBe(restoredClusterId("ab".repeat(32), reordered));
    expect(restoredClusterId("ab".repeat(32), peers)).toMatch(/^convene-[0-9a-f]{16}$/);
  });

  it("differs with another file, another membership or another token", () => {
    const id = restoredClusterId("ab".repeat(32), peers);
    expect(restoredClusterId("cd".repeat(32), peers)).not.toBe(id);
    expect(restoredClusterId("ab".repeat(32), new Map([...peers, ["n4", "10.0.0.4:7001"]]))).not.toBe(id);
    expect(restoredClusterId("ab".repeat(32), peers, "second")).not.toBe(id);
  });

  it("is the legacy id without a file, and what the file says with one", () => {
    const dir = dirs.make();
    expect(readClusterId(dir)).toBe(LEGACY_CLUSTER_ID);
    writeClusterId(dir, LEGACY_CLUSTER_ID);
    expect(existsSync(join(dir, "cluster-id"))).toBe(false);
    writeClusterId(dir, "convene-0123456789abcdef");
    expect(readClusterId(dir)).toBe("convene-0123456789abcdef");
    writeFileSync(join(dir, "cluster-id"), "not an id!\n");
    expect(() => readClusterId(dir)).toThrow(/does not hold a cluster id/);
  });
});
