/**
 * The gRPC handlers of the member's key-value service (proto/member.proto,
 * service Kv). Writes go through Raft on the leader (followers forward);
 * Get is a linearizable ReadIndex read on whichever member answers.
 */
import * as grpc from "@grpc/grpc-js";
import { NotLeaderError } from "../raft/errors.js";
import type { RaftDriver } from "../raft-runtime/driver.js";
import { InvalidArgumentError, toGrpcError } from "./grpc-status.js";
import { type KvApplyResult, type KvCommand, type KvStateMachine, encodeKvCommand } from "./kv-state-machine.js";
import { LeaderForwarder } from "./leader-forwarder.js";

interface PutRequest {
  key: string;
  value: string;
}

const MAX_KEY = 1024;
const MAX_VALUE = 64 * 1024;

function checkPut(req: PutRequest): void {
  if (typeof req.key !== "string" || req.key.length === 0 || req.key.length > MAX_KEY) {
    throw new InvalidArgumentError(`key must be 1 to ${MAX_KEY} characters`);
  }
  if (typeof req.value !== "string" || req.value.length > MAX_VALUE) {
    throw new InvalidArgumentError(`value must be at most ${MAX_VALUE} characters`);
  }
}

export function kvServiceHandlers(node: RaftDriver, kv: KvStateMachine, forwarder: LeaderForwarder): grpc.UntypedServiceImplementation {
  const write = (op: "put" | "create") =>
    async (call: grpc.ServerUnaryCall<PutRequest, unknown>, callback: grpc.sendUnaryData<unknown>): Promise<void> => {
      try {
        checkPut(call.request);
        const command: KvCommand = { op, key: call.request.key, value: call.request.value };
        let result: KvApplyResult;
        try {
          result = (await node.propose(encodeKvCommand(command))) as KvApplyResult;
        } catch (err) {
          if (!(err instanceof NotLeaderError) || !LeaderForwarder.mayForward(call)) throw err;
          callback(null, await forwarder.forward(op === "put" ? "Put" : "Create", call.request, call));
          return;
        }
        callback(null, { ok: result.ok, value: result.value ?? "", index: result.index });
      } catch (err) {
        callback(toGrpcError(err));
      }
    };

  return {
    Put: write("put"),
    Create: write("create"),
    Get: async (call: grpc.ServerUnaryCall<{ key: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      try {
        if (typeof call.request.key !== "string" || call.request.key.length === 0) {
          throw new InvalidArgumentError("key must not be empty");
        }
        const value = await node.read(() => kv.get(call.request.key));
        callback(null, { found: value !== null, value: value ?? "" });
      } catch (err) {
        callback(toGrpcError(err));
      }
    },
    Dump: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      callback(null, { entries: kv.dump().map(([key, value]) => ({ key, value })), applied_index: node.status().applied });
    },
  };
}
