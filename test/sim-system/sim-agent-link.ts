/**
 * The node agent's AgentLink in the simulation: its unary calls and its
 * WatchAssignments stream cross the RPC network to a member's real
 * handlers (NodeAgentCore, through the member's forwarding). What the wire
 * acknowledges (heartbeats answered, checkpoints saved, with the exact
 * bytes) goes to the checker, as an outside observer of the wire would see it.
 */
import { EventEmitter } from "node:events";
import type { AgentLink, AgentStream } from "../../src/node-agent/agent-link.js";
import type { MemberMethod, SimCoordinatorMember } from "./coordinator-member.js";
import type { RpcNetwork } from "./rpc-network.js";

export interface WireObserver {
  heartbeatAcked(nodeId: string, generation: number): void;
  leaderHinted(): void;
  saveAcked(nodeId: string, generation: number, meetingId: string, epoch: number, sequence: number, state: string): void;
}

class SimAgentStream extends EventEmitter implements AgentStream {
  cancelCall: (() => void) | undefined;

  cancel(): void {
    this.cancelCall?.();
  }
}

const decoder = new TextDecoder();

/** The address a member's gRPC port has in the agents' configuration (loopback: no TLS needed). */
export function memberAddress(memberIds: readonly string[], id: string): string {
  return `127.0.0.1:${17001 + memberIds.indexOf(id)}`;
}

export function simAgentLink(processName: string, rpc: RpcNetwork, memberIds: readonly string[], member: (id: string) => SimCoordinatorMember | undefined, observer: WireObserver): AgentLink {
  const memberIdOf = (address: string): string => memberIds[Number(address.slice(address.lastIndexOf(":") + 1)) - 17001]!;
  return {
    unary: async (address, _service, method, request, timeoutMs, onLeaderHint) => {
      const id = memberIdOf(address);
      const req = request as Record<string, unknown>;
      // The hint rides with the answer (gRPC sends it as the answer's metadata).
      let hint: string | undefined;
      const answer = await rpc.call(processName, id, () => member(id)!.serve(method as MemberMethod, req, false, timeoutMs, (lead) => (hint = lead)), timeoutMs);
      if (hint !== undefined) {
        observer.leaderHinted();
        onLeaderHint(memberAddress(memberIds, hint));
      }
      const nodeId = String(req.node_id);
      if (method === "Heartbeat") observer.heartbeatAcked(nodeId, Number(req.generation));
      if (method === "SaveCheckpoint") {
        const sequence = Number((answer as Record<string, unknown>).sequence);
        observer.saveAcked(nodeId, Number(req.generation), String(req.meeting_id), Number(req.epoch), sequence, decoder.decode(req.state as Uint8Array));
      }
      return answer;
    },
    watch: (address, request) => {
      const id = memberIdOf(address);
      const stream = new SimAgentStream();
      stream.cancelCall = rpc.openStream(
        processName,
        id,
        (sink) => member(id)!.core!.agents.watch(request as Record<string, unknown>, sink),
        {
          data: (message) => stream.emit("data", message),
          end: (err) => {
            stream.emit("error", err);
            stream.emit("status", { code: err.code, details: err.details, metadata: undefined });
          },
        },
      );
      return stream;
    },
    close: () => undefined,
  };
}
