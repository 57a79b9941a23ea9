/**
 * One gateway's WatchRoutes stream on this member, apart from gRPC: the
 * changes after the gateway's revision (or the whole table, in chunks,
 * when it is too old to resume), then every batch as it applies, and a
 * progress batch every second while this member hears a leader (the feed
 * stream's rules, feed-stream.ts). The gRPC handler
 * (route-feed-service.ts) adapts a call to the sink; the whole-product
 * simulation calls it directly, on virtual time.
 */
import * as grpc from "@grpc/grpc-js";
import type { Scheduler } from "../../time/scheduler.js";
import { type FeedSink, FeedStream } from "./feed-stream.js";
import type { RouteBatch, RouteChange, RouteLog } from "./route-log.js";

const TABLE_CHUNK = 5_000;

export type RouteSink = FeedSink;

function changeMessage(c: RouteChange): Record<string, unknown> {
  return { meeting_id: c.meetingId, node_id: c.nodeId, address: c.address, epoch: c.epoch };
}

function batchMessage(revision: number, reset: boolean, changes: readonly RouteChange[]): Record<string, unknown> {
  return { revision, reset, changes: changes.map(changeMessage) };
}

/** Starts the stream from `fromRevision`; returns what to call when the watcher goes away. */
export function watchRoutes(routes: RouteLog, fromRevision: number, sink: RouteSink, scheduler: Scheduler, hasLeader: () => boolean): () => void {
  let from = fromRevision;
  const feed = new FeedStream(
    sink,
    {
      tooSlowMessage: "route watcher too far behind; watch again from your last revision",
      // A member cut off from the others applies nothing new, so its stream
      // would go quiet but stay open: progress batches stop with the leader,
      // and the gateway moves on after a few seconds of silence.
      hasLeader,
      progress: () => {
        // Every change up to the applied index was delivered as it applied.
        from = Math.max(from, routes.revision);
        feed.send(batchMessage(from, false, []));
      },
    },
    scheduler,
  );
  const stop = (): void => feed.stop();
  const deliver = (batch: RouteBatch): void => {
    if (batch.revision > from) feed.send(batchMessage(batch.revision, false, batch.changes));
  };
  feed.whenStopped(routes.subscribe(deliver, () => feed.end(grpc.status.UNAVAILABLE, "state replaced by a snapshot; watch again")));
  if (routes.canResumeFrom(from)) {
    for (const batch of routes.since(from)) deliver(batch);
    return stop;
  }
  // Too old to resume (or a first watch): the whole table, then changes.
  const revision = routes.revision;
  const table = routes.fullTable();
  if (table.length === 0) feed.send(batchMessage(revision, true, []));
  for (let i = 0; i < table.length; i += TABLE_CHUNK) feed.send(batchMessage(revision, i === 0, table.slice(i, i + TABLE_CHUNK)));
  from = revision;
  return stop;
}
