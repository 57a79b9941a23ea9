/**
 * The agent's side of HeartbeatStream (API.md): one stream per member,
 * opened with the first beat and reopened after it ends, each beat a
 * message matched to its answer by sequence. A beat settles as the unary
 * Heartbeat would: the member's answer, or a `{ code, details }` error
 * (its status; DEADLINE_EXCEEDED when no answer came by the deadline; the
 * stream's own status when it ended first), so CoordinatorConnection's
 * rules apply unchanged. A member that does not know the method (an older
 * version, mid-upgrade) answers UNIMPLEMENTED: the link then sends that
 * member unary calls for a minute before it tries the stream again.
 */
import * as grpc from "@grpc/grpc-js";

/** A bidirectional stream as grpc-js gives it (or a twin in tests). */
export interface BeatCall {
  write(message: unknown): unknown;
  on(event: "data" | "status" | "error", listener: (...args: any[]) => void): unknown;
  cancel(): void;
}

/** How long a member that answered UNIMPLEMENTED gets unary beats before the stream is tried again (it may have been upgraded). */
export const UNSUPPORTED_RECHECK_MS = 60_000;

export interface BeatError {
  readonly code: grpc.status;
  readonly details: string;
}

interface Pending {
  resolve(response: unknown): void;
  reject(err: BeatError): void;
  timer: ReturnType<typeof setTimeout>;
  onLeaderHint(leader: string): void;
}

interface Answer {
  sequence?: unknown;
  code?: unknown;
  details?: unknown;
  response?: unknown;
  leader?: unknown;
}

export class HeartbeatStream {
  private call: BeatCall | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextSequence = 1;
  private closed = false;
  private unsupportedUntilMs = 0;

  constructor(private readonly open: () => BeatCall) {}

  /** The member answered UNIMPLEMENTED less than UNSUPPORTED_RECHECK_MS ago: it has no HeartbeatStream. */
  get unsupported(): boolean {
    return Date.now() < this.unsupportedUntilMs;
  }

  /** Beats waiting for their answer (for tests). */
  get waiting(): number {
    return this.pending.size;
  }

  beat(request: Record<string, unknown>, timeoutMs: number, onLeaderHint: (leader: string) => void): Promise<unknown> {
    if (this.closed) return Promise.reject<unknown>({ code: grpc.status.CANCELLED, details: "the agent's link is closed" } satisfies BeatError);
    const call = this.call ?? this.start();
    const sequence = this.nextSequence++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.pending.delete(sequence)) return;
        reject({ code: grpc.status.DEADLINE_EXCEEDED, details: `no answer to heartbeat ${sequence} on the stream within ${timeoutMs} ms` } satisfies BeatError);
      }, timeoutMs);
      timer.unref?.();
      this.pending.set(sequence, { resolve, reject, timer, onLeaderHint });
      call.write({ ...request, sequence });
    });
  }

  /** Ends the stream and fails every waiting beat with CANCELLED. */
  close(): void {
    this.closed = true;
    const call = this.call;
    this.call = undefined;
    this.failAll({ code: grpc.status.CANCELLED, details: "the agent's link is closed" });
    call?.cancel();
  }

  private start(): BeatCall {
    const call = this.open();
    this.call = call;
    call.on("data", (answer: Answer) => this.answered(answer));
    // Every end of the stream comes as "status"; "error" repeats a non-OK one, and must have a listener.
    call.on("error", () => undefined);
    call.on("status", (status: grpc.StatusObject) => {
      if (this.call === call) this.call = undefined;
      if (status.code === grpc.status.UNIMPLEMENTED) this.unsupportedUntilMs = Date.now() + UNSUPPORTED_RECHECK_MS;
      const code = status.code === grpc.status.OK ? grpc.status.UNAVAILABLE : status.code;
      this.failAll({ code, details: `the heartbeat stream ended: ${status.details || grpc.status[status.code]}` });
    });
    return call;
  }

  private answered(answer: Answer): void {
    const sequence = Number(answer.sequence);
    const pending = this.pending.get(sequence);
    if (!pending) return; // its deadline passed, or the member echoed a sequence we never sent
    this.pending.delete(sequence);
    clearTimeout(pending.timer);
    if (typeof answer.leader === "string" && answer.leader !== "") pending.onLeaderHint(answer.leader);
    const code = Number(answer.code ?? 0);
    if (code === grpc.status.OK) pending.resolve(answer.response ?? {});
    else pending.reject({ code, details: typeof answer.details === "string" ? answer.details : "" });
  }

  private failAll(err: BeatError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}
