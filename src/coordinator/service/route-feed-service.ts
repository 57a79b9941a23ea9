/**
 * gRPC handlers of convene.routes.v1.RouteFeed (proto/routes.proto): the
 * stream that keeps gateways' route caches fresh, served by every member
 * from its own applied state, and the gateways' hint that a node did not
 * answer.
 *
 * A full table is sent in chunks so no message nears the gRPC size limit;
 * only the first chunk says reset. Bounds on a slow watcher and the
 * progress batches are the feed stream's (feed-stream.ts).
 */
import * as grpc from "@grpc/grpc-js";
import { toGrpcError } from "../../member/grpc-status.js";
import type { LeaderForwarder } from "../../member/leader-forwarder.js";
import { InvalidArgumentError } from "../errors.js";
import { validateNodeId } from "../ids.js";
import type { RouteBatch, RouteChange, RouteLog } from "./route-log.js";
import { FeedStream } from "./feed-stream.js";
import { unaryHandler } from "./handler.js";

export { FEED_PROGRESS_MS } from "./feed-stream.js";

const TABLE_CHUNK = 5_000;

type Req = Record<string, unknown>;

function changeMessage(c: RouteChange): Record<string, unknown> {
  return { meeting_id: c.meetingId, node_id: c.nodeId, address: c.address, epoch: c.epoch };
}

function batchMessage(revision: number, reset: boolean, changes: readonly RouteChange[]): Record<string, unknown> {
  return { revision, reset, changes: changes.map(changeMessage) };
}

function validateRevision(value: unknown): number {
  const n = value ?? 0;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgumentError(`from_revision must be a non-negative integer, got ${String(value)}`);
  }
  return n;
}

export function routeFeedHandlers(deps: {
  routes: RouteLog;
  forwarder: LeaderForwarder;
  /** A gateway could not reach `nodeId`: the leader's detector looks at it sooner. Throws NotLeaderError on a follower. */
  upstreamFailed: (nodeId: string) => void;
  /** Whether this member is in touch with a leader (a cut-off member stops vouching for its stream). */
  hasLeader: () => boolean;
}): grpc.UntypedServiceImplementation {
  const { routes } = deps;
  return {
    WatchRoutes: (call: grpc.ServerWritableStream<Req, unknown>) => {
      let from: number;
      try {
        from = validateRevision(call.request.from_revision);
      } catch (err) {
        call.emit("error", toGrpcError(err));
        return;
      }
      const feed = new FeedStream(call as grpc.ServerWritableStream<unknown, unknown>, {
        tooSlowMessage: "route watcher too far behind; watch again from your last revision",
        hasLeader: deps.hasLeader,
        progress: () => {
          // Every change up to the applied index was delivered as it applied.
          from = Math.max(from, routes.revision);
          send(batchMessage(from, false, []));
        },
      });
      const send = (message: Record<string, unknown>): void => feed.send(message);
      const deliver = (batch: RouteBatch): void => {
        if (batch.revision > from) send(batchMessage(batch.revision, false, batch.changes));
      };
      feed.whenStopped(routes.subscribe(deliver, () => feed.end(grpc.status.UNAVAILABLE, "state replaced by a snapshot; watch again")));
      if (routes.canResumeFrom(from)) {
        for (const batch of routes.since(from)) deliver(batch);
        return;
      }
      // Too old to resume (or a first watch): the whole table, then changes.
      const revision = routes.revision;
      const table = routes.fullTable();
      if (table.length === 0) send(batchMessage(revision, true, []));
      for (let i = 0; i < table.length; i += TABLE_CHUNK) send(batchMessage(revision, i === 0, table.slice(i, i + TABLE_CHUNK)));
      from = revision;
    },

    // The leader's detector judges; a follower forwards the hint to it.
    ReportUpstreamFailure: unaryHandler<Req>(deps.forwarder, "ReportUpstreamFailure", async (req) => {
      deps.upstreamFailed(validateNodeId(req.node_id));
      return {};
    }),
  };
}
