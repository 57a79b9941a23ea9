/**
 * The state a test meeting server (agent-fleet-child.ts) checkpoints: a
 * counter that grows with each save, self-describing, so any stored
 * checkpoint can be checked byte for byte.
 */
import { createHash } from "node:crypto";

/** The state of `meetingId` at `counter`: its id, the counter, and filler of a length that varies with both. */
export function meetingState(meetingId: string, counter: number): Buffer {
  const head = Buffer.from(JSON.stringify({ m: meetingId, c: counter }) + "\n");
  const seed = createHash("sha256").update(`${meetingId}:${counter}`).digest();
  const filler = Buffer.alloc(64 + (seed[0]! << 2), seed[1]!);
  return Buffer.concat([head, filler]);
}

/** The counter in a state made by meetingState, or undefined when it is not one. */
export function counterOf(state: Uint8Array, meetingId: string): number | undefined {
  const text = Buffer.from(state).toString("utf8");
  const line = text.slice(0, text.indexOf("\n"));
  try {
    const parsed = JSON.parse(line) as { m?: unknown; c?: unknown };
    if (parsed.m !== meetingId || typeof parsed.c !== "number") return undefined;
    return Buffer.from(state).equals(meetingState(meetingId, parsed.c)) ? parsed.c : undefined;
  } catch {
    return undefined;
  }
}

