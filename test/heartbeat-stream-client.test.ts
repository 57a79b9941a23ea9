/**
 * The agent's HeartbeatStream client on its own, over a stream twin: each
 * beat settles by its own answer (matched by sequence, in any order), by
 * its deadline, or by the stream's end, exactly once; a new stream opens
 * after one ended; UNIMPLEMENTED marks the member as without the method.
 */
import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type BeatCall, HeartbeatStream, UNSUPPORTED_RECHECK_MS } from "../src/node-agent/heartbeat-stream.js";

class CallTwin extends EventEmitter implements BeatCall {
  readonly written: Record<string, unknown>[] = [];
  cancelled = false;
  write(message: unknown): boolean {
    this.written.push(message as Record<string, unknown>);
    return true;
  }
  cancel(): void {
    this.cancelled = true;
  }
  answer(sequence: unknown, fields: Record<string, unknown> = {}): void {
    this.emit("data", { sequence, code: 0, details: "", leader: "", response: { lease_ttl_ms: 1500, draining: false }, ...fields });
  }
  end(code: grpc.status, details = ""): void {
    if (code !== grpc.status.OK) this.emit("error", Object.assign(new Error(details), { code, details }));
    this.emit("status", { code, details, metadata: new grpc.Metadata() });
  }
}

function setup(): { stream: HeartbeatStream; calls: CallTwin[] } {
  const calls: CallTwin[] = [];
  const stream = new HeartbeatStream(() => {
    const c = new CallTwin();
    calls.push(c);
    return c;
  });
  return { stream, calls };
}

const beat = { node_id: "s1", generation: 3 };
const noHint = (): void => undefined;

afterEach(() => {
  vi.useRealTimers();
});

describe("HeartbeatStream (agent side)", () => {
  it("matches answers to beats by sequence, whatever their order, on one stream", async () => {
    const { stream, calls } = setup();
    const first = stream.beat(beat, 1000, noHint);
    const second = stream.beat({ ...beat, node_id: "s2" }, 1000, noHint);
    expect(calls).toHaveLength(1);
    const [a, b] = calls[0]!.written;
    expect(a).toMatchObject({ node_id: "s1", generation: 3 });
    expect(b).toMatchObject({ node_id: "s2" });
    expect(a!.sequence).not.toBe(b!.sequence);
    calls[0]!.answer(b!.sequence, { response: { lease_ttl_ms: 2 } });
    calls[0]!.answer(a!.sequence, { response: { lease_ttl_ms: 1 } });
    await expect(first).resolves.toEqual({ lease_ttl_ms: 1 });
    await expect(second).resolves.toEqual({ lease_ttl_ms: 2 });
    expect(stream.waiting).toBe(0);
  });

  it("rejects with the member's status and passes a forwarded answer's leader on", async () => {
    const { stream, calls } = setup();
    const hints: string[] = [];
    const p = stream.beat(beat, 1000, (l) => hints.push(l));
    calls[0]!.answer(calls[0]!.written[0]!.sequence, { code: grpc.status.FAILED_PRECONDITION, details: "stale generation", leader: "127.0.0.1:7001" });
    await expect(p).rejects.toEqual({ code: grpc.status.FAILED_PRECONDITION, details: "stale generation" });
    expect(hints).toEqual(["127.0.0.1:7001"]);
  });

  it("rejects DEADLINE_EXCEEDED when no answer comes in time, and ignores the late answer", async () => {
    vi.useFakeTimers();
    const { stream, calls } = setup();
    const p = stream.beat(beat, 500, noHint);
    const settled = vi.fn();
    p.then(settled, settled);
    await vi.advanceTimersByTimeAsync(499);
    expect(settled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    await expect(p).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    calls[0]!.answer(calls[0]!.written[0]!.sequence);
    expect(settled).toHaveBeenCalledTimes(1);
    expect(stream.waiting).toBe(0);
  });

  it("fails every waiting beat when the stream ends, and opens a new stream for the next", async () => {
    const { stream, calls } = setup();
    const a = stream.beat(beat, 1000, noHint);
    const b = stream.beat(beat, 1000, noHint);
    calls[0]!.end(grpc.status.UNAVAILABLE, "connection reset");
    await expect(a).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(b).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    // A stream ended OK by the member is still no answer: the agent tries again elsewhere.
    const c = stream.beat(beat, 1000, noHint);
    expect(calls).toHaveLength(2);
    calls[1]!.end(grpc.status.OK);
    await expect(c).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(stream.unsupported).toBe(false);
  });

  it("marks a member without the method for a while, then tries the stream again", async () => {
    vi.useFakeTimers();
    const { stream, calls } = setup();
    const p = stream.beat(beat, 1000, noHint);
    calls[0]!.end(grpc.status.UNIMPLEMENTED, "The server does not implement the method");
    await expect(p).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
    expect(stream.unsupported).toBe(true);
    vi.advanceTimersByTime(UNSUPPORTED_RECHECK_MS);
    expect(stream.unsupported).toBe(false);
  });

  it("ignores an answer to a sequence it never sent", async () => {
    const { stream, calls } = setup();
    const p = stream.beat(beat, 1000, noHint);
    calls[0]!.answer(999_999);
    calls[0]!.answer("garbage");
    expect(stream.waiting).toBe(1);
    calls[0]!.answer(calls[0]!.written[0]!.sequence);
    await expect(p).resolves.toMatchObject({ lease_ttl_ms: 1500 });
  });

  it("close cancels the stream, fails waiting beats and refuses new ones", async () => {
    const { stream, calls } = setup();
    const p = stream.beat(beat, 1000, noHint);
    stream.close();
    await expect(p).rejects.toMatchObject({ code: grpc.status.CANCELLED });
    expect(calls[0]!.cancelled).toBe(true);
    await expect(stream.beat(beat, 1000, noHint)).rejects.toMatchObject({ code: grpc.status.CANCELLED });
    expect(calls).toHaveLength(1);
  });
});
