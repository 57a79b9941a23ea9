/**
 * gRPC handlers of convene.v1.NodeAgent (API.md), called by meeting
 * servers: thin adapters over NodeAgentCore (node-agent-core.ts), which
 * holds what each call does. Unary calls a follower cannot serve are
 * forwarded to the leader (handler.ts).
 */
import type * as grpc from "@grpc/grpc-js";
import type { LeaderForwarder } from "../../member/leader-forwarder.js";
import { BeatForwardSlots } from "./beat-forward-slots.js";
import { unaryHandler } from "./handler.js";
import { heartbeatStreamHandler } from "./heartbeat-stream.js";
import type { AgentRequest, AgentTimings, NodeAgentCore } from "./node-agent-core.js";
import { callSink } from "./watch-hub.js";

export type { AgentTimings } from "./node-agent-core.js";

export function nodeAgentHandlers(core: NodeAgentCore, forwarder: LeaderForwarder, timings: AgentTimings): grpc.UntypedServiceImplementation {
  const forwardSlots = new BeatForwardSlots();
  return {
    Register: unaryHandler<AgentRequest>(forwarder, "Register", (req) => core.register(req)),
    Heartbeat: unaryHandler<AgentRequest>(forwarder, "Heartbeat", (req) => core.heartbeat(req), forwardSlots),
    HeartbeatStream: heartbeatStreamHandler({ heartbeat: (req) => core.heartbeat(req), forwarder, timings, forwardSlots }),
    SaveCheckpoint: unaryHandler<AgentRequest>(forwarder, "SaveCheckpoint", (req) => core.saveCheckpoint(req)),
    Deregister: unaryHandler<AgentRequest>(forwarder, "Deregister", (req) => core.deregister(req)),
    HandOver: unaryHandler<AgentRequest>(forwarder, "HandOver", (req) => core.handOver(req)),
    Drain: unaryHandler<AgentRequest>(forwarder, "Drain", (req) => core.drain(req)),
    WatchAssignments: (call: grpc.ServerWritableStream<AgentRequest, unknown>) => {
      const closed = core.watch(call.request, callSink(call as grpc.ServerWritableStream<unknown, unknown>));
      call.on("cancelled", closed);
      call.on("close", closed);
    },
  };
}
