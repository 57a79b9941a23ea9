/**
 * Durations as people type them on command lines: "10m", "30s", "1500ms",
 * "1h", or a bare number of milliseconds. Used by the sidecar's
 * --drain-deadline and the operator commands' --deadline and --timeout.
 */

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;

/** Milliseconds, rounded; undefined when `text` is not a duration (the caller names the flag). */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const ms = Math.round(Number(match[1]) * UNIT_MS[match[2] ?? "ms"]!);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** "10m", "30s", "1500 ms": for messages. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms > 0) return `${ms / 1000}s`;
  return `${ms} ms`;
}
