/**
 * The relay's position, on disk: what the receiver has acknowledged. Read
 * at start, written (atomically: a temporary file, fsync, rename, then an
 * fsync of the directory) after every delivered event, so a relay killed
 * at any instant resumes at or before the first event not acknowledged:
 * at least once, never a gap.
 *
 *   {"index": I, "partial": P}
 *   every event with an index up to I was delivered, and the first P
 *   events of the next batch that has events (P = 0 between batches).
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface RelayCursor {
  readonly index: number;
  readonly partial: number;
}

export class CursorFileError extends Error {
  readonly code = "CURSOR_FILE";
}

/** The cursor in `path`; undefined when the file does not exist. Throws CursorFileError when it is not a cursor. */
export function readCursor(path: string): RelayCursor | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CursorFileError(`cursor file ${path} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CursorFileError(`cursor file ${path} is not JSON; remove it (and pass --from) to start again`, { cause: err });
  }
  const c = value as Record<string, unknown> | null;
  const ok = (n: unknown) => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
  if (!c || typeof c !== "object" || !ok(c["index"]) || !ok(c["partial"])) {
    throw new CursorFileError(`cursor file ${path} must hold {"index": N, "partial": N} with non-negative integers`);
  }
  return { index: c["index"] as number, partial: c["partial"] as number };
}

export function writeCursor(path: string, cursor: RelayCursor): void {
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, "w", 0o600);
  try {
    writeFileSync(fd, `${JSON.stringify(cursor)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  const dir = openSync(dirname(path), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
