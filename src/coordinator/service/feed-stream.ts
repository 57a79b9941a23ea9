/**
 * What the member's resumable feeds (the gateways' route feed and the
 * applications' event feed) share about their server stream:
 *   - a watcher that cannot keep up (its unsent bytes pile past a bound)
 *     is ended with RESOURCE_EXHAUSTED and resumes from its last position,
 *     rather than growing this member's memory;
 *   - while this member hears a leader, a progress message every second:
 *     the watcher's proof that the stream is live and current (a member
 *     cut off from the others applies nothing, so its stream goes quiet
 *     and the watcher moves to another member after a few seconds);
 *   - one stop, however the stream ends (cancelled, closed, ended here),
 *     that unsubscribes and clears the timer.
 * It writes to a FeedSink, not to gRPC: `feedOnCall` adapts a server
 * stream, and the whole-product simulation gives its own sink; progress
 * runs on the injected scheduler (virtual time there).
 */
import * as grpc from "@grpc/grpc-js";
import { type Scheduler, type TimerHandle, realScheduler } from "../../time/scheduler.js";

/** An empty progress message this often while this member hears a leader. */
export const FEED_PROGRESS_MS = 1_000;
export const MAX_UNSENT_BYTES = 64 * 1024 * 1024;

/** Where a feed's messages go: a gRPC server stream, or the simulation's network. */
export interface FeedSink {
  write(message: Record<string, unknown>): void;
  /** Ends the stream with a status (and trailer metadata). */
  end(code: grpc.status, details: string, trailer?: grpc.Metadata): void;
  /** Bytes written but not yet sent (a watcher that cannot keep up). */
  unsentBytes(): number;
}

export interface FeedOptions {
  /** What the watcher is told when it falls too far behind. */
  readonly tooSlowMessage: string;
  /** Whether this member is in touch with a leader. */
  readonly hasLeader: () => boolean;
  /** Sends the progress message (through `send`); called every FEED_PROGRESS_MS while there is a leader. */
  readonly progress: () => void;
}

export class FeedStream {
  private readonly timer: TimerHandle;
  private readonly onStop: (() => void)[] = [];
  private ended = false;

  constructor(
    private readonly sink: FeedSink,
    private readonly options: FeedOptions,
    private readonly scheduler: Scheduler = realScheduler,
  ) {
    this.timer = scheduler.setInterval(() => {
      if (!this.ended && options.hasLeader()) options.progress();
    }, FEED_PROGRESS_MS);
  }

  get stopped(): boolean {
    return this.ended;
  }

  /** Runs `fn` once when the stream stops (e.g. an unsubscribe). */
  whenStopped(fn: () => void): void {
    if (this.ended) fn();
    else this.onStop.push(fn);
  }

  /** Writes a message, or ends the stream when the watcher is too far behind. */
  send(message: Record<string, unknown>): void {
    if (this.ended) return;
    if (this.sink.unsentBytes() > MAX_UNSENT_BYTES) {
      this.end(grpc.status.RESOURCE_EXHAUSTED, this.options.tooSlowMessage);
      return;
    }
    this.sink.write(message);
  }

  /** Ends the stream with a status (and trailer metadata). */
  end(code: grpc.status, details: string, trailer?: grpc.Metadata): void {
    if (this.ended) return;
    this.stop();
    this.sink.end(code, details, trailer);
  }

  /** The watcher went away (or the stream ended): unsubscribes and clears the timer. Idempotent. */
  stop(): void {
    if (this.ended) return;
    this.ended = true;
    this.scheduler.clearInterval(this.timer);
    for (const fn of this.onStop.splice(0)) fn();
  }
}

/** A gRPC server stream as a FeedSink. */
export function callFeedSink(call: grpc.ServerWritableStream<unknown, unknown>): FeedSink {
  return {
    write: (message) => void call.write(message),
    // grpc-js turns an 'error' event into the status trailer.
    end: (code, details, trailer) => void call.emit("error", { code, details, ...(trailer ? { metadata: trailer } : {}) }),
    unsentBytes: () => call.writableLength,
  };
}

/** A feed on a gRPC server stream: stops when the call is cancelled or closes. */
export function feedOnCall(call: grpc.ServerWritableStream<unknown, unknown>, options: FeedOptions, scheduler: Scheduler = realScheduler): FeedStream {
  const feed = new FeedStream(callFeedSink(call), options, scheduler);
  call.on("cancelled", () => feed.stop());
  call.on("close", () => feed.stop());
  return feed;
}
