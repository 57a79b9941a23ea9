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
 */
import * as grpc from "@grpc/grpc-js";

/** An empty progress message this often while this member hears a leader. */
export const FEED_PROGRESS_MS = 1_000;
export const MAX_UNSENT_BYTES = 64 * 1024 * 1024;

export interface FeedOptions {
  /** What the watcher is told when it falls too far behind. */
  readonly tooSlowMessage: string;
  /** Whether this member is in touch with a leader. */
  readonly hasLeader: () => boolean;
  /** Sends the progress message (through `send`); called every FEED_PROGRESS_MS while there is a leader. */
  readonly progress: () => void;
}

export class FeedStream {
  private readonly timer: NodeJS.Timeout;
  private readonly onStop: (() => void)[] = [];
  private ended = false;

  constructor(
    private readonly call: grpc.ServerWritableStream<unknown, unknown>,
    private readonly options: FeedOptions,
  ) {
    this.timer = setInterval(() => {
      if (!this.ended && options.hasLeader()) options.progress();
    }, FEED_PROGRESS_MS);
    call.on("cancelled", () => this.stop());
    call.on("close", () => this.stop());
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
  send(message: unknown): void {
    if (this.ended) return;
    if (this.call.writableLength > MAX_UNSENT_BYTES) {
      this.end(grpc.status.RESOURCE_EXHAUSTED, this.options.tooSlowMessage);
      return;
    }
    this.call.write(message);
  }

  /** Ends the stream with a status (and trailer metadata). */
  end(code: grpc.status, details: string, trailer?: grpc.Metadata): void {
    if (this.ended) return;
    this.stop();
    // grpc-js turns an 'error' event into the status trailer.
    this.call.emit("error", { code, details, ...(trailer ? { metadata: trailer } : {}) });
  }

  private stop(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    for (const fn of this.onStop.splice(0)) fn();
  }
}
