/**
 * What a chaos meeting server (meeting-server.ts) records, one JSON object
 * per line, and the reader the checks use. Times are Date.now() of the
 * server's process: the same clock as the orchestrator's on this machine.
 *
 * A checkpoint's state is `{"w": writer, ...}`: `w` names the attempt
 * that wrote it ("m1.4242.17"), so whatever a reader gets back
 * (GetCheckpoint, an ASSIGNED's checkpoint) says exactly which write it is.
 */
import { readFileSync } from "node:fs";

export interface CheckpointSeen {
  readonly seq: number;
  readonly epoch: number;
  readonly node: string;
  /** The writer id decoded from the state, or "" when it is not ours. */
  readonly w: string;
}

export type ServerRecord =
  | { k: "start"; t: number; node: string; pid: number; address: string }
  | { k: "registered"; t: number; gen: number; leaseMs: number }
  | { k: "reregistered"; t: number; gen: number; prev: number; reason: string }
  | { k: "assigned"; t: number; m: string; e: number; gen: number; cp: CheckpointSeen | null }
  | { k: "revoked"; t: number; m: string; e: number; gen: number; reason: string }
  /** getState handed state `w` to the agent, which sends it unless the meeting moved meanwhile. */
  | { k: "attempt"; t: number; m: string; e: number; gen: number; w: string; raw?: boolean; seq?: number }
  /** The agent's 'checkpoint' event: the latest attempt of `m` in this process was committed. */
  | { k: "ack"; t: number; m: string; e: number; seq: number }
  | { k: "served"; t: number; m: string; e: number; gen: number; c: number }
  /** The event loop was stopped for gapMs (SIGSTOP); `gen` and `held` are from before. */
  | { k: "resume"; t: number; gapMs: number; gen: number; held: [string, number][] }
  /**
   * A save sent right after a resume, with the generation from before: by
   * the agent (saveNow) or raw (a SaveCheckpoint call of our own). result
   * is the coordinator's answer: ack, or the gRPC status name.
   */
  | { k: "probe"; t: number; tEnd: number; via: "agent" | "raw"; m: string; e: number; gen: number; w: string; result: string; detail?: string; tries?: number }
  | { k: "error"; t: number; msg: string };

export function writerOf(state: Uint8Array | undefined | null): string {
  if (!state || state.length === 0) return "";
  try {
    const parsed = JSON.parse(Buffer.from(state).toString("utf8")) as { w?: unknown };
    return typeof parsed.w === "string" ? parsed.w : "";
  } catch {
    return "";
  }
}

/** Every record of one log file; a line cut short by kill -9 is skipped. */
export function readServerLog(path: string): ServerRecord[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  const out: ServerRecord[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    try {
      out.push(JSON.parse(line) as ServerRecord);
    } catch {
      // the last line of a killed process may be partial
    }
  }
  return out;
}
