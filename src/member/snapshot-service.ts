/**
 * MemberAdmin.Snapshot: a backup of the whole replicated state, streamed to
 * `convene snapshot save`. Any member answers: the state is captured after
 * a ReadIndex round (RaftDriver.captureSnapshot), so it holds every write
 * acknowledged anywhere before the call, and it is the state at one applied
 * index (consistent: nothing half-applied). The bytes go out in chunks of
 * CHUNK_BYTES, as fast as the caller takes them.
 */
import { createHash } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import type { RaftDriver } from "../raft-runtime/driver.js";
import { toGrpcError } from "./grpc-status.js";

const CHUNK_BYTES = 1024 * 1024;

type Writable = grpc.ServerWritableStream<unknown, unknown>;

/** Resolves once the stream takes more writes, or false if the call ended first. */
function drained(call: Writable): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => () => {
      call.off("drain", onDrain);
      call.off("cancelled", onEnd);
      call.off("close", onEnd);
      resolve(ok);
    };
    const onDrain = done(true);
    const onEnd = done(false);
    call.once("drain", onDrain);
    call.once("cancelled", onEnd);
    call.once("close", onEnd);
  });
}

export function snapshotHandler(node: RaftDriver, clusterId: string): (call: Writable) => void {
  return (call) => {
    let cancelled = false;
    call.once("cancelled", () => (cancelled = true));
    const send = async (): Promise<void> => {
      const snap = await node.captureSnapshot();
      const sha256 = createHash("sha256").update(snap.data).digest();
      const first = {
        index: snap.index,
        term: snap.term,
        cluster_id: clusterId,
        member_id: node.id,
        voters: snap.confState.voters,
        learners: snap.confState.learners,
        size: snap.data.length,
        sha256,
        taken_at_ms: Date.now(),
      };
      if (!call.write({ ...first, data: snap.data.subarray(0, CHUNK_BYTES) }) && !(await drained(call))) return;
      for (let at = CHUNK_BYTES; at < snap.data.length; at += CHUNK_BYTES) {
        if (cancelled) return;
        if (!call.write({ data: snap.data.subarray(at, at + CHUNK_BYTES) }) && !(await drained(call))) return;
      }
      call.end();
    };
    send().catch((err: unknown) => {
      if (!cancelled) call.emit("error", toGrpcError(err));
    });
  };
}
