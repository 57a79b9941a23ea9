/**
 * Coordinator.WatchEvents (proto/convene.proto): the events of the
 * replicated state (../event-log.ts) as a stream any member serves from
 * its own applied state.
 *
 * Exactly once per stream, in order: the watcher's position `from` is the
 * last index sent; after each apply (and at the start) everything kept
 * after `from` is sent, one batch per index. The log is replicated, so
 * another member holds the same events under the same indexes and a
 * watcher resumes there from its last index. A snapshot install replaces
 * the state, log included: the stream goes on from the new log unless it
 * no longer reaches back to `from`.
 */
import * as grpc from "@grpc/grpc-js";
import { toGrpcError } from "../../member/grpc-status.js";
import type { CoordinatorStateMachine } from "../coordinator-state-machine.js";
import { InvalidArgumentError } from "../errors.js";
import type { CoordinatorEvent } from "../event-log.js";
import { eventTypeNumber, moveReasonNumber } from "../../wire/event-types.js";
import { type Scheduler, realScheduler } from "../../time/scheduler.js";
import { feedOnCall } from "./feed-stream.js";

/** Trailer of an OUT_OF_RANGE end: the index a watcher can resume from. */
export const OLDEST_INDEX_TRAILER = "convene-oldest-index";

/** Events sent per turn of the event loop while catching up. */
const CATCH_UP_EVENTS = 2_000;

export function eventMessage(e: CoordinatorEvent): Record<string, unknown> {
  return {
    id: `${e.index}:${e.position}`,
    index: e.index,
    position: e.position,
    at_ms: e.atMs,
    type: eventTypeNumber(e.type),
    meeting_id: e.meetingId,
    node_id: e.nodeId,
    from_node_id: e.fromNodeId,
    to_node_id: e.toNodeId,
    epoch: e.epoch,
    reason: moveReasonNumber(e.reason),
    checkpoint_sequence: e.checkpointSequence,
    final_checkpoint: e.finalCheckpoint,
    generation: e.generation,
    drain_deadline_ms: e.drainDeadlineMs,
  };
}

function validateFromIndex(value: unknown): number {
  const n = value ?? 0;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgumentError(`from_index must be a non-negative integer, got ${String(value)}`);
  }
  return n;
}

export function eventFeedHandlers(deps: {
  machine: CoordinatorStateMachine;
  /** Whether this member is in touch with a leader. */
  hasLeader: () => boolean;
  /** The progress messages' timer (virtual time in tests). */
  scheduler?: Scheduler;
}): grpc.UntypedServiceImplementation {
  const q = () => deps.machine.queries;
  return {
    WatchEvents: (call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) => {
      let from: number;
      try {
        from = validateFromIndex(call.request.from_index);
      } catch (err) {
        call.emit("error", toGrpcError(err));
        return;
      }
      // 0: from the oldest kept, whatever that is.
      if (from === 0) from = q().eventFloor;
      const feed = feedOnCall(call as grpc.ServerWritableStream<unknown, unknown>, {
        tooSlowMessage: "event watcher too far behind; watch again from the last index received",
        hasLeader: deps.hasLeader,
        progress: () => {
          // Every event up to the applied index was sent as it applied.
          from = Math.max(from, q().appliedIndex);
          feed.send({ index: from, events: [] });
        },
      }, deps.scheduler ?? realScheduler);
      /** Ends the stream if events after `from` are gone; whether it did. */
      const outOfReach = (): boolean => {
        const floor = q().eventFloor;
        if (from >= floor) return false;
        const trailer = new grpc.Metadata();
        trailer.set(OLDEST_INDEX_TRAILER, String(floor));
        feed.end(
          grpc.status.OUT_OF_RANGE,
          `from_index ${from} is too far behind: events after index ${floor} are kept, the ones between are not; ` +
            `watch again from ${floor} (or 0 for the oldest kept) and reconcile what you missed from ListMeetings and ListNodes`,
          trailer,
        );
        return true;
      };
      let pumping = false;
      const pump = (): void => {
        if (pumping || feed.stopped) return;
        pumping = true;
        try {
          for (;;) {
            const events = q().eventsSince(from, CATCH_UP_EVENTS);
            if (events.length === 0 || feed.stopped) return;
            for (let i = 0; i < events.length; ) {
              const index = events[i]!.index;
              let end = i + 1;
              while (end < events.length && events[end]!.index === index) end++;
              feed.send({ index, events: events.slice(i, end).map(eventMessage) });
              from = index;
              i = end;
            }
          }
        } finally {
          pumping = false;
        }
      };
      feed.whenStopped(
        deps.machine.subscribe((notice) => {
          if (notice.kind === "restored" && outOfReach()) return;
          pump();
        }),
      );
      if (!outOfReach()) pump();
    },
  };
}
