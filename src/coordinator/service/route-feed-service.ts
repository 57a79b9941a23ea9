/**
 * gRPC handlers of convene.routes.v1.RouteFeed (proto/routes.proto): the
 * stream that keeps gateways' route caches fresh, served by every member
 * from its own applied state, and the gateways' hint that a node did not
 * answer.
 *
 * The stream itself (full table in chunks, changes, progress) is
 * route-watch.ts; bounds on a slow watcher and the progress batches are
 * the feed stream's (feed-stream.ts).
 */
import * as grpc from "@grpc/grpc-js";
import { toGrpcError } from "../../member/grpc-status.js";
import type { LeaderForwarder } from "../../member/leader-forwarder.js";
import { InvalidArgumentError } from "../errors.js";
import { validateNodeId } from "../ids.js";
import { type Scheduler, realScheduler } from "../../time/scheduler.js";
import { callFeedSink } from "./feed-stream.js";
import type { RouteLog } from "./route-log.js";
import { watchRoutes } from "./route-watch.js";
import { unaryHandler } from "./handler.js";

export { FEED_PROGRESS_MS } from "./feed-stream.js";

type Req = Record<string, unknown>;

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
  /** The progress batches' timer (virtual time in tests). */
  scheduler?: Scheduler;
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
      const stop = watchRoutes(routes, from, callFeedSink(call as grpc.ServerWritableStream<unknown, unknown>), deps.scheduler ?? realScheduler, deps.hasLeader);
      call.on("cancelled", stop);
      call.on("close", stop);
    },

    // The leader's detector judges; a follower forwards the hint to it.
    ReportUpstreamFailure: unaryHandler<Req>(deps.forwarder, "ReportUpstreamFailure", async (req) => {
      deps.upstreamFailed(validateNodeId(req.node_id));
      return {};
    }),
  };
}
