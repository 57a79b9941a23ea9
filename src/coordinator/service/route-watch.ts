/**
 * One gateway's WatchRoutes stream on this member, apart from gRPC: the
 * changes after the gateway's revision (or the whole table, in chunks,
 * when it is too old to resume), then every batch as it applies, and a
 * progress batch every second while this member hears a leader. The gRPC
 * handler (route-feed-service.ts) adapts a call to the sink; the
 * whole-product simulation calls it directly, on virtual time.
 */
import * as grpc from "@grpc/grpc-js";
import type { Scheduler } from "../../time/scheduler.js";
import type { RouteBatch, RouteChange, RouteLog } from "./route-log.js";

const TABLE_CHUNK = 5_000;
/** An empty batch this often while this member hears a leader: the watcher's proof the stream is live and current. */
export const FEED_PROGRESS_MS = 1_000;
const MAX_UNSENT_BYTES = 64 * 1024 * 1024;

export interface RouteSink {
  write(message: Record<string, unknown>): void;
  end(code: grpc.status, details: string): void;
  /** Bytes written but not yet sent (a watcher that cannot keep up). */
  unsentBytes(): number;
}

function changeMessage(c: RouteChange): Record<string, unknown> {
  return { meeting_id: c.meetingId, node_id: c.nodeId, address: c.address, epoch: c.epoch };
}

function batchMessage(revision: number, reset: boolean, changes: readonly RouteChange[]): Record<string, unknown> {
  return { revision, reset, changes: changes.map(changeMessage) };
}

/** Starts the stream from `fromRevision`; returns what to call when the watcher goes away. */
export function watchRoutes(routes: RouteLog, fromRevision: number, sink: RouteSink, scheduler: Scheduler, hasLeader: () => boolean): () => void {
  let from = fromRevision;
  const send = (message: Record<string, unknown>): void => {
    if (sink.unsentBytes() > MAX_UNSENT_BYTES) {
      stop();
      sink.end(grpc.status.RESOURCE_EXHAUSTED, "route watcher too far behind; watch again from your last revision");
      return;
    }
    sink.write(message);
  };
  const deliver = (batch: RouteBatch): void => {
    if (batch.revision > from) send(batchMessage(batch.revision, false, batch.changes));
  };
  const unsubscribe = routes.subscribe(deliver, () => {
    stop();
    sink.end(grpc.status.UNAVAILABLE, "state replaced by a snapshot; watch again");
  });
  // A member cut off from the others applies nothing new, so its stream
  // would go quiet but stay open: progress batches stop with the leader,
  // and the gateway moves on after a few seconds of silence.
  const progress = scheduler.setInterval(() => {
    if (!hasLeader()) return;
    // Every change up to the applied index was delivered as it applied.
    from = Math.max(from, routes.revision);
    send(batchMessage(from, false, []));
  }, FEED_PROGRESS_MS);
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    scheduler.clearInterval(progress);
    unsubscribe();
  };
  if (routes.canResumeFrom(from)) {
    for (const batch of routes.since(from)) deliver(batch);
    return stop;
  }
  // Too old to resume (or a first watch): the whole table, then changes.
  const revision = routes.revision;
  const table = routes.fullTable();
  if (table.length === 0) send(batchMessage(revision, true, []));
  for (let i = 0; i < table.length; i += TABLE_CHUNK) send(batchMessage(revision, i === 0, table.slice(i, i + TABLE_CHUNK)));
  from = revision;
  return stop;
}
