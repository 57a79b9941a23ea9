/**
 * HeartbeatStream (API.md): heartbeats as messages on one long-lived
 * stream. Each beat runs exactly as the unary Heartbeat does (the same
 * core call, forwarded to the leader by a follower) and is answered with
 * the status the unary call would have ended with, so an agent treats both
 * alike. A message on an open stream costs a member a fraction of a unary
 * call's CPU (no call set-up, no headers); with thousands of servers
 * beating twice a second that is most of the leader's work.
 *
 * What a careless or hostile client cannot do with it: make the member
 * hold more than MAX_BEATS_IN_PROGRESS beats of one stream at once (the
 * rest are answered RESOURCE_EXHAUSTED at once), or make it buffer answers
 * it does not read (the member stops reading the stream until the answers
 * drain, and HTTP/2 flow control holds the sender). A bad beat is answered
 * with its error and the stream goes on; an undecodable message ends it
 * (grpc-js, INTERNAL).
 */
import * as grpc from "@grpc/grpc-js";
import { toGrpcError } from "../../member/grpc-status.js";
import { type ForwardedCall, LeaderForwarder } from "../../member/leader-forwarder.js";
import { capDetails } from "../../member/member-server.js";
import { NotLeaderError } from "../../raft/errors.js";
import { type BeatForwardSlots, beatsForwardedDetails } from "./beat-forward-slots.js";
import type { AgentRequest, AgentTimings } from "./node-agent-core.js";

/** Answers of one stream waiting to be sent before the member stops reading its beats. */
export const MAX_ANSWERS_BUFFERED = 1024;

/** Beats of one stream being run or forwarded at once; a real agent has one in flight. */
export const MAX_BEATS_IN_PROGRESS = 256;

export interface HeartbeatAnswer {
  sequence: unknown;
  code: number;
  details: string;
  response?: unknown;
  leader: string;
}

export interface HeartbeatStreamDeps {
  /** NodeAgentCore.heartbeat: throws NotLeaderError on a follower. */
  heartbeat(req: AgentRequest): Promise<unknown>;
  readonly forwarder: Pick<LeaderForwarder, "forward" | "leaderAddress">;
  readonly timings: Pick<AgentTimings, "heartbeatIntervalMs" | "leaseTtlMs">;
  /** This member's forwarded beats, shared with the unary Heartbeat (beat-forward-slots.ts). */
  readonly forwardSlots: BeatForwardSlots;
}

/**
 * How long a follower waits for the leader's answer to one forwarded beat:
 * as long as the agent itself waits at most (heartbeat-loop.ts), past which
 * the beat is worth nothing.
 */
function forwardTimeoutMs(timings: HeartbeatStreamDeps["timings"]): number {
  return Math.max(timings.heartbeatIntervalMs, Math.floor(timings.leaseTtlMs / 3));
}

export function heartbeatStreamHandler(deps: HeartbeatStreamDeps): (call: grpc.ServerDuplexStream<AgentRequest, HeartbeatAnswer>) => void {
  return (call) => {
    let inProgress = 0;
    let ended = false;
    const answer = (a: HeartbeatAnswer): void => {
      if (ended || call.cancelled || call.destroyed) return;
      call.write(a);
      // Answers piling up unsent: the client is not reading them. Read no more of its beats until it does.
      // (Not at the stream's own mark of 16: a stream shared by many servers answers in bursts.)
      if (call.writableLength > MAX_ANSWERS_BUFFERED && !call.isPaused()) {
        call.pause();
        call.once("drain", () => call.resume());
      }
    };
    const finish = (): void => {
      ended = true;
    };
    call.on("cancelled", finish);
    call.on("close", finish);
    call.on("error", finish);
    // The client closed its side: answer what is in progress, then end.
    call.on("end", () => {
      if (inProgress === 0) call.end();
    });
    call.on("data", (req: AgentRequest) => {
      const sequence = req.sequence ?? 0;
      if (inProgress >= MAX_BEATS_IN_PROGRESS) {
        answer({ sequence, code: grpc.status.RESOURCE_EXHAUSTED, details: `more than ${MAX_BEATS_IN_PROGRESS} beats of this stream are unanswered; wait for their answers`, leader: "" });
        return;
      }
      inProgress++;
      run(deps, call, req).then(
        ({ response, leader }) => answer({ sequence, code: grpc.status.OK, details: "", response, leader }),
        (err: unknown) => {
          if (err instanceof SentToLeader) {
            answer({ sequence, code: grpc.status.UNAVAILABLE, details: err.message, leader: err.leaderAddress });
            return;
          }
          const { code, details } = toGrpcError(err);
          // Cut as every status's message is (member-server.ts): a beat may quote a huge hostile value.
          answer({ sequence, code, details: capDetails(details), leader: "" });
        },
      ).finally(() => {
        inProgress--;
        if (inProgress === 0 && call.readableEnded && !ended) call.end();
      });
    });
  };
}

/** A beat not forwarded because every forward slot was taken: the agent is sent to the leader. */
class SentToLeader extends Error {
  constructor(
    max: number,
    readonly leaderAddress: string,
  ) {
    super(beatsForwardedDetails(max, leaderAddress));
  }
}

/** One beat, here or at the leader; `leader` is set when it was forwarded. */
async function run(deps: HeartbeatStreamDeps, call: grpc.ServerDuplexStream<AgentRequest, HeartbeatAnswer>, req: AgentRequest): Promise<{ response: unknown; leader: string }> {
  try {
    return { response: await deps.heartbeat(req), leader: "" };
  } catch (err) {
    if (!(err instanceof NotLeaderError) || !LeaderForwarder.mayForward(call)) throw err;
    const forwarded = deps.forwardSlots.forward(err.leaderAddress, () => forwardBeat(deps, call, req));
    if (!forwarded) throw new SentToLeader(deps.forwardSlots.max, err.leaderAddress);
    return forwarded;
  }
}

async function forwardBeat(deps: HeartbeatStreamDeps, call: grpc.ServerDuplexStream<AgentRequest, HeartbeatAnswer>, req: AgentRequest): Promise<{ response: unknown; leader: string }> {
  const deadline = Date.now() + forwardTimeoutMs(deps.timings);
  const beat: ForwardedCall = {
    metadata: call.metadata,
    get cancelled() {
      return call.cancelled;
    },
    getDeadline: () => deadline,
    // The forwarded beat ends by its own deadline; a stream outlives many beats, so no listener is left on it per beat.
    once: () => undefined,
  };
  const response = await deps.forwarder.forward("Heartbeat", req, beat);
  return { response, leader: deps.forwarder.leaderAddress() };
}
