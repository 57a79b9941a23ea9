/**
 * How every unary handler of the coordinator runs: on this member, or —
 * when it needs the leader and this member is not it — forwarded to the
 * leader once, so callers never chase leaders. Errors become gRPC statuses
 * in one place (src/member/grpc-status.ts).
 */
import * as grpc from "@grpc/grpc-js";
import { toGrpcError } from "../../member/grpc-status.js";
import { LeaderForwarder, arrivedTooLate } from "../../member/leader-forwarder.js";
import { NotLeaderError } from "../../raft/errors.js";
import { type BeatForwardSlots, beatsForwardedDetails } from "./beat-forward-slots.js";

export type Unary = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

/**
 * Runs `run(request)`; if it throws NotLeaderError, forwards the call to the
 * leader as `method` (unless it was forwarded already). With `slots`, at
 * most that many such calls are forwarded at once; past them a call is
 * answered UNAVAILABLE at once with the leader's address in its metadata
 * (beat-forward-slots.ts).
 */
export function unaryHandler<Req>(forwarder: LeaderForwarder, method: string, run: (req: Req) => Promise<unknown>, slots?: BeatForwardSlots): Unary {
  return (call, callback) => {
    const req = call.request as Req;
    if (arrivedTooLate(call)) {
      callback({ code: grpc.status.DEADLINE_EXCEEDED, details: `forwarded ${method} arrived after its caller's deadline; not run` });
      return;
    }
    run(req).then(
      (res) => callback(null, res),
      (err: unknown) => {
        if (err instanceof NotLeaderError && LeaderForwarder.mayForward(call)) {
          const send = () => forwarder.forward(method, req, call);
          const forwarded = slots ? slots.forward(err.leaderAddress, send) : send();
          if (!forwarded) {
            const hint = forwarder.leaderHint();
            if (hint) call.sendMetadata(hint);
            callback({ code: grpc.status.UNAVAILABLE, details: beatsForwardedDetails(slots!.max, err.leaderAddress) });
            return;
          }
          forwarded.then(
            (res) => {
              const hint = forwarder.leaderHint();
              if (hint) call.sendMetadata(hint);
              callback(null, res);
            },
            (e: unknown) => callback(toGrpcError(e)),
          );
          return;
        }
        callback(toGrpcError(err));
      },
    );
  };
}
