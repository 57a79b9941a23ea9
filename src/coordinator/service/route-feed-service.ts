/**
 * gRPC handlers of convene.routes.v1.RouteFeed (proto/routes.proto): the
 * stream that keeps gateways' route caches fresh, served by every member
 * from its own applied state, and the gateways' hint that a node did not
 * answer.
 *
 * A full table is sent in chunks so no message nears the gRPC size limit;
 * only the first chunk says reset. A watcher that cannot keep up (its
 * unsent bytes pile past a bound) is ended with RESOURCE_EXHAUSTED and
 * resumes from its last revision, rather than growing this member's memory.
 */
import * as grpc from "@grpc/grpc-js";
import { toGrpcError } from "../../member/grpc-status.js";
import type { LeaderForwarder } from "../../member/leader-forwarder.js";
import { InvalidArgumentError } from "../errors.js";
import { validateNodeId } from "../ids.js";
import type { RouteBatch, RouteChange, RouteLog } from "./route-log.js";
import { unaryHandler } from "./handler.js";
import { endStream } from "./watch-hub.js";

const TABLE_CHUNK = 5_000;
/** An empty batch this often while this member hears a leader: the watcher's proof the stream is live and current. */
export const FEED_PROGRESS_MS = 1_000;
const MAX_UNSENT_BYTES = 64 * 1024 * 1024;

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
      const send = (message: Record<string, unknown>): void => {
        if (call.writableLength > MAX_UNSENT_BYTES) {
          stop();
          endStream(call, grpc.status.RESOURCE_EXHAUSTED, "route watcher too far behind; watch again from your last revision");
          return;
        }
        call.write(message);
      };
      const deliver = (batch: RouteBatch): void => {
        if (batch.revision > from) send(batchMessage(batch.revision, false, batch.changes));
      };
      const unsubscribe = routes.subscribe(deliver, () => {
        stop();
        endStream(call, grpc.status.UNAVAILABLE, "state replaced by a snapshot; watch again");
      });
      // A member cut off from the others applies nothing new, so its stream
      // would go quiet but stay open: progress batches stop with the leader,
      // and the gateway moves on after a few seconds of silence.
      const progress = setInterval(() => {
        if (!deps.hasLeader()) return;
        // Every change up to the applied index was delivered as it applied.
        from = Math.max(from, routes.revision);
        send(batchMessage(from, false, []));
      }, FEED_PROGRESS_MS);
      const stop = (): void => {
        clearInterval(progress);
        unsubscribe();
      };
      call.on("cancelled", stop);
      call.on("close", stop);
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
