/**
 * The backup file of `convene snapshot save`: the whole replicated state at
 * one index, in a file that says what it holds and proves it is whole.
 *
 *   convene-backup 1\n                        magic and file format
 *   {"index":..,"term":..,...}\n               BackupHeader as one JSON line
 *   <state bytes>                              the state machine's snapshot encoding
 *   <32 bytes>                                 SHA-256 of everything before
 *
 * `head -2 FILE` shows what it is; the trailing checksum covers the header
 * too, so a flipped bit anywhere, a truncated copy or a file that is not a
 * backup is refused by readBackup with the reason, before anything uses it.
 *
 * Written by BackupWriter atomically: to a temporary file in the same
 * directory, fsynced, renamed over the target, and the directory fsynced;
 * a crash leaves either the old file or the new one, never a part.
 */
import { createHash, type Hash } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export const BACKUP_MAGIC = "convene-backup 1\n";
const CHECKSUM_BYTES = 32;
/** A header longer than this is not one we wrote. */
const MAX_HEADER_BYTES = 64 * 1024;

export interface BackupHeader {
  /** The last applied log index the state covers. */
  readonly index: number;
  /** The term of that entry. */
  readonly term: number;
  /** The group it was taken from. */
  readonly clusterId: string;
  /** The member that answered. */
  readonly member: string;
  readonly takenAtMs: number;
  /** The membership at `index`. */
  readonly voters: readonly string[];
  readonly learners: readonly string[];
  /** Length and SHA-256 (hex) of the state bytes alone. */
  readonly stateBytes: number;
  readonly stateSha256: string;
}

/** A backup file that is not whole or not a backup: the message says why. Nothing was used. */
export class BackupFileError extends Error {
  readonly code = "BACKUP_FILE";
}

export interface Backup {
  readonly header: BackupHeader;
  readonly state: Uint8Array;
  /** SHA-256 (hex) of the file's contents before the checksum: what `snapshot status` shows. */
  readonly sha256: string;
  /** Size of the whole file in bytes. */
  readonly size: number;
}

function headerBytes(header: BackupHeader): Buffer {
  return Buffer.from(`${BACKUP_MAGIC}${JSON.stringify(header)}\n`, "utf8");
}

/**
 * Writes a backup as its state arrives in pieces: `begin` with the header,
 * `write` each piece, `commit` (checksum, fsync, rename). `abort` removes
 * the temporary file; nothing is ever left at the target path but a whole
 * file.
 */
export class BackupWriter {
  private readonly tmp: string;
  private fd: number | undefined;
  private readonly fileHash: Hash = createHash("sha256");
  private readonly stateHash: Hash = createHash("sha256");
  private stateBytes = 0;
  private header: BackupHeader | undefined;

  constructor(readonly path: string) {
    this.tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  }

  /** `header` as the member announced it: commit() checks the state's length and checksum against it. */
  begin(header: BackupHeader): void {
    this.header = header;
    this.fd = openSync(this.tmp, "w", 0o600);
    this.put(headerBytes(this.header));
  }

  write(piece: Uint8Array): void {
    this.stateHash.update(piece);
    this.stateBytes += piece.length;
    this.put(piece);
  }

  /** Checks length and checksum against the header, then makes the file durable under its name; returns the file's SHA-256. */
  commit(): string {
    const header = this.header;
    if (!header || this.fd === undefined) throw new Error("invariant: BackupWriter.commit before begin");
    const stateSha = this.stateHash.digest("hex");
    if (this.stateBytes !== header.stateBytes) throw new BackupFileError(`the member announced ${header.stateBytes} bytes of state and sent ${this.stateBytes}`);
    if (stateSha !== header.stateSha256) throw new BackupFileError("the state received does not match the member's checksum");
    const digest = this.fileHash.digest();
    writeAll(this.fd, digest);
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
    renameSync(this.tmp, this.path);
    syncDirectory(dirname(this.path));
    return digest.toString("hex");
  }

  abort(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.tmp, { force: true });
  }

  private put(bytes: Uint8Array): void {
    this.fileHash.update(bytes);
    writeAll(this.fd!, bytes);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
}

/** fsync of a directory: a rename or a new file in it is durable only once its entry is. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads and checks a whole backup file; throws BackupFileError naming what is wrong. */
export function readBackup(path: string): Backup {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new BackupFileError(`${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const magic = Buffer.from(BACKUP_MAGIC, "utf8");
  if (bytes.length < magic.length || !bytes.subarray(0, magic.length).equals(magic)) {
    throw new BackupFileError(`${path} is not a convene backup (it does not start with "${BACKUP_MAGIC.trim()}")`);
  }
  const lineEnd = bytes.indexOf(0x0a, magic.length);
  if (lineEnd < 0 || lineEnd - magic.length > MAX_HEADER_BYTES) {
    throw new BackupFileError(`${path} is truncated or damaged: its header line does not end within ${MAX_HEADER_BYTES} bytes`);
  }
  const header = parseHeader(path, bytes.subarray(magic.length, lineEnd).toString("utf8"));
  const stateStart = lineEnd + 1;
  const expected = stateStart + header.stateBytes + CHECKSUM_BYTES;
  if (bytes.length < expected) {
    throw new BackupFileError(`${path} is truncated: ${bytes.length} bytes, the header announces ${expected}`);
  }
  if (bytes.length > expected) {
    throw new BackupFileError(`${path} has ${bytes.length - expected} bytes more than its header announces (${expected}): not a backup as written`);
  }
  const body = bytes.subarray(0, expected - CHECKSUM_BYTES);
  const digest = createHash("sha256").update(body).digest();
  if (!digest.equals(bytes.subarray(expected - CHECKSUM_BYTES))) {
    throw new BackupFileError(`${path} is corrupted: its SHA-256 checksum does not match its contents`);
  }
  const state = bytes.subarray(stateStart, stateStart + header.stateBytes);
  if (header.stateSha256 !== createHash("sha256").update(state).digest("hex")) {
    throw new BackupFileError(`${path} is corrupted: the state does not match the checksum in its header`);
  }
  return { header, state, sha256: digest.toString("hex"), size: bytes.length };
}

function parseHeader(path: string, line: string): BackupHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new BackupFileError(`${path} is damaged: its header is not valid JSON`);
  }
  const h = raw as Record<string, unknown>;
  const bad = (field: string, rule: string): never => {
    throw new BackupFileError(`${path} is damaged: header field ${field} ${rule}`);
  };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) bad("(all)", "must be a JSON object");
  const uint = (field: string, min: number): number => {
    const v = h[field];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) bad(field, `must be an integer of at least ${min}`);
    return v as number;
  };
  const ids = (field: string): string[] => {
    const v = h[field];
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) bad(field, "must be a list of member ids");
    return v as string[];
  };
  const text = (field: string): string => {
    const v = h[field];
    if (typeof v !== "string") bad(field, "must be a string");
    return v as string;
  };
  const stateSha256 = text("stateSha256");
  if (!/^[0-9a-f]{64}$/.test(stateSha256)) bad("stateSha256", "must be 64 hex digits");
  return {
    index: uint("index", 1),
    term: uint("term", 1),
    clusterId: text("clusterId"),
    member: text("member"),
    takenAtMs: uint("takenAtMs", 0),
    voters: ids("voters"),
    learners: ids("learners"),
    stateBytes: uint("stateBytes", 0),
    stateSha256,
  };
}
