/**
 * The last lines of a child's log, for the terminal when it dies: pino's
 * JSON lines shortened to "LEVEL message (error)", anything else (a stack
 * trace of an uncaught error) as it is, each cut to one screen line.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

const LEVELS: Readonly<Record<number, string>> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
const WIDTH = 200;

/** The last `count` non-empty lines of `file` (reading at most its last `maxBytes`); none when it cannot be read. */
export function lastLines(file: string, count = 10, maxBytes = 32 * 1024): string[] {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const size = fstatSync(fd).size;
    const length = Math.min(size, maxBytes);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    const lines = buf.toString("utf8").split("\n").filter((l) => l.trim() !== "");
    // The first line may be cut by the window: dropped unless it is all there is.
    if (length < size && lines.length > 1) lines.shift();
    return lines.slice(-count);
  } catch {
    return [];
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** One log line as the terminal shows it. */
export function renderLogLine(line: string): string {
  let out = line;
  if (line.startsWith("{")) {
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string; code?: string } };
      const level = LEVELS[entry.level ?? 30] ?? String(entry.level);
      const err = entry.err ? ` (${entry.err.code ?? entry.err.message ?? "error"}${entry.err.code && entry.err.message ? `: ${entry.err.message}` : ""})` : "";
      out = `${level.padEnd(5)} ${entry.msg ?? ""}${err}`;
    } catch {
      // Not JSON after all: shown as it is.
    }
  }
  return out.length > WIDTH ? `${out.slice(0, WIDTH - 1)}…` : out;
}
