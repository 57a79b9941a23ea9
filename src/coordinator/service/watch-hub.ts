/**
 * The WatchAssignments streams open on this member. Every member applies
 * the same commands, so any member can serve any node's stream: it sends
 * ASSIGNED for everything the node holds, then each change as it is
 * applied here. A stream whose node is declared dead or re-registers ends
 * with FAILED_PRECONDITION (the agent must register again); a snapshot
 * install (no event list) ends every stream with UNAVAILABLE, and agents
 * resubscribe for a fresh list.
 */
import * as grpc from "@grpc/grpc-js";
import type { StateMachineNotice } from "../coordinator-state-machine.js";
import type { AssignmentEvent, CheckpointView } from "../model.js";

/** Where a watch stream's messages go: the gRPC call, or the simulation's twin of it. */
export interface WatchSink {
  write(message: Record<string, unknown>): void;
  /** Ends the stream with a status (the agent registers again on FAILED_PRECONDITION). */
  end(code: grpc.status, details: string): void;
}

export interface WatchStream {
  readonly nodeId: string;
  readonly generation: number;
  readonly sink: WatchSink;
}

export const ASSIGNMENT_TYPE = { ASSIGNED: 1, REVOKED: 2, HANDOVER: 3 } as const;

export function checkpointMessage(c: CheckpointView): Record<string, unknown> {
  return {
    meeting_id: c.meetingId,
    node_id: c.nodeId,
    epoch: c.epoch,
    sequence: c.sequence,
    state: c.state,
    saved_at_ms: c.savedAtMs,
  };
}

export function eventMessage(type: keyof typeof ASSIGNMENT_TYPE, meetingId: string, epoch: number, checkpoint?: CheckpointView): Record<string, unknown> {
  return {
    type: ASSIGNMENT_TYPE[type],
    meeting_id: meetingId,
    epoch,
    ...(checkpoint ? { checkpoint: checkpointMessage(checkpoint) } : {}),
  };
}

/** Ends a server stream with a status (grpc-js turns an 'error' event into the trailer). */
export function endStream(call: grpc.ServerWritableStream<unknown, unknown>, code: grpc.status, details: string): void {
  call.emit("error", { code, details });
}

/** A gRPC server stream as a WatchSink. */
export function callSink(call: grpc.ServerWritableStream<unknown, unknown>): WatchSink {
  return { write: (message) => void call.write(message), end: (code, details) => endStream(call, code, details) };
}

export class WatchHub {
  private readonly byNode = new Map<string, Set<WatchStream>>();

  add(stream: WatchStream): void {
    let set = this.byNode.get(stream.nodeId);
    if (!set) this.byNode.set(stream.nodeId, (set = new Set()));
    set.add(stream);
  }

  remove(stream: WatchStream): void {
    const set = this.byNode.get(stream.nodeId);
    set?.delete(stream);
    if (set && set.size === 0) this.byNode.delete(stream.nodeId);
  }

  /** Called synchronously after every apply or restore on this member. */
  onNotice(notice: StateMachineNotice): void {
    if (this.byNode.size === 0) return;
    if (notice.kind === "restored") {
      for (const set of this.byNode.values()) {
        for (const s of set) s.sink.end(grpc.status.UNAVAILABLE, "state replaced by a snapshot; watch again");
      }
      this.byNode.clear();
      return;
    }
    for (const e of notice.outcome.events) this.deliver(e);
    const r = notice.outcome.result;
    if (r.ok && r.type === "setLiveness" && r.liveness === "DEAD") this.endStale(r.nodeId, Infinity);
    if (r.ok && r.type === "register") this.endStale(r.nodeId, r.generation);
  }

  private deliver(e: AssignmentEvent): void {
    const set = this.byNode.get(e.nodeId);
    if (!set) return;
    for (const s of set) {
      if (s.generation !== e.generation) continue;
      s.sink.write(eventMessage(e.type, e.meetingId, e.epoch, e.checkpoint));
    }
  }

  /** Ends the node's streams of a generation below `current` (all of them for Infinity). */
  private endStale(nodeId: string, current: number): void {
    const set = this.byNode.get(nodeId);
    if (!set) return;
    for (const s of [...set]) {
      if (s.generation >= current) continue;
      set.delete(s);
      s.sink.end(grpc.status.FAILED_PRECONDITION, `node ${nodeId} generation ${s.generation} is no longer current: register again`);
    }
  }

  size(): number {
    let n = 0;
    for (const set of this.byNode.values()) n += set.size;
    return n;
  }
}
