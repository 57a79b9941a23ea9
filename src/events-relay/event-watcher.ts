/**
 * Follows Coordinator.WatchEvents across members, exactly: every batch
 * after the starting index reaches `handle` once, in index order, however
 * often the stream breaks or moves to another member.
 *
 * The position is the last index received (a batch of events or a
 * progress mark). A stream that ends for any reason but the ones below is
 * reopened on the next member from that position; after a full round of
 * members failed in a row, with a jittered backoff. A stream silent for
 * `silenceMs` while nothing is being handled (a member cut off from the
 * others sends no progress marks) is abandoned for the next member.
 *
 * Batches are handled one at a time, awaited; the stream is paused while
 * too many wait, so a slow handler (a webhook retrying) holds the member's
 * stream back instead of piling up here.
 *
 * Fatal, and thrown from `run`: OUT_OF_RANGE (TooFarBehindError: the
 * events after the position are no longer kept), and refusals no other
 * member would answer differently (UNAUTHENTICATED, PERMISSION_DENIED,
 * INVALID_ARGUMENT, UNIMPLEMENTED).
 */
import * as grpc from "@grpc/grpc-js";
import { MemberCursor } from "../wire/member-cursor.js";
import { loadProto, lookup } from "../wire/proto.js";
import { type ClientSecurity, makeClient } from "../security/client-security.js";
import { BadEventError, type EventBatchJson, parseBatch } from "./event-json.js";

/** The trailer of an OUT_OF_RANGE end (src/coordinator/service/event-feed-service.ts). */
const OLDEST_INDEX_TRAILER = "convene-oldest-index";

export class TooFarBehindError extends Error {
  readonly code = "TOO_FAR_BEHIND";
  constructor(
    readonly fromIndex: number,
    /** The index a watcher can resume from now (events after it are kept). */
    readonly oldestIndex: number,
    details: string,
  ) {
    super(details);
    this.name = "TooFarBehindError";
  }
}

export class WatchRefusedError extends Error {
  readonly code = "WATCH_REFUSED";
  constructor(
    readonly status: grpc.status,
    details: string,
  ) {
    super(`${grpc.status[status]}: ${details}`);
    this.name = "WatchRefusedError";
  }
}

class StoppedError extends Error {}

const FATAL = new Set<grpc.status>([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED, grpc.status.INVALID_ARGUMENT, grpc.status.UNIMPLEMENTED]);

export interface WatcherLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface EventWatcherOptions {
  readonly coordinators: readonly string[];
  readonly security: ClientSecurity;
  /** The last index already handled; 0: from the oldest kept. */
  readonly fromIndex: number;
  /** Default 5,000. */
  readonly silenceMs?: number;
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  readonly log?: WatcherLog;
  readonly random?: () => number;
}

/** Batches waiting to be handled before the stream is paused. */
const HIGH_WATER = 64;

type StreamFn = (req: unknown, opts?: grpc.CallOptions) => grpc.ClientReadableStream<unknown>;

type StreamOutcome = { readonly kind: "ended"; readonly progressed: boolean; readonly reason: string } | { readonly kind: "fatal"; readonly error: Error };

export class EventWatcher {
  private position: number;
  private readonly cursor: MemberCursor;
  private readonly clients = new Map<string, grpc.Client>();
  private stream: grpc.ClientReadableStream<unknown> | undefined;

  constructor(private readonly options: EventWatcherOptions) {
    this.position = options.fromIndex;
    this.cursor = new MemberCursor(options.coordinators, { retryBaseMs: options.retryBaseMs ?? 100, retryMaxMs: options.retryMaxMs ?? 5_000 }, options.random);
  }

  /** The last index handled (a batch or a progress mark). */
  get index(): number {
    return this.position;
  }

  /**
   * Hands every batch (progress marks included: `events` empty) to
   * `handle`, in order, until `stop`. Resolves when stopped; rejects with
   * TooFarBehindError, WatchRefusedError, or what `handle` threw.
   */
  async run(handle: (batch: EventBatchJson) => Promise<void>): Promise<void> {
    let failures = 0;
    try {
      while (!this.cursor.closed) {
        const address = this.cursor.address;
        const outcome = await this.follow(address, handle);
        if (this.cursor.closed) return;
        if (outcome.kind === "fatal") throw outcome.error;
        failures = outcome.progressed ? 1 : failures + 1;
        this.options.log?.debug({ address, reason: outcome.reason, index: this.position }, "event stream ended; watching another member");
        this.cursor.rotateFrom(address);
        const rounds = Math.floor((failures - 1) / this.options.coordinators.length);
        if (rounds > 0) await this.cursor.sleep(this.cursor.backoffMs(rounds), () => new StoppedError());
      }
    } catch (err) {
      if (err instanceof StoppedError) return;
      throw err;
    } finally {
      this.close();
    }
  }

  stop(): void {
    this.cursor.close();
    this.stream?.cancel();
  }

  private close(): void {
    this.stream?.cancel();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  /** One stream on one member, until it ends; every batch it delivered is handled before this resolves. */
  private follow(address: string, handle: (batch: EventBatchJson) => Promise<void>): Promise<StreamOutcome> {
    return new Promise((resolve) => {
      const client = this.client(address);
      const stream = (client as unknown as Record<string, StreamFn>)["WatchEvents"]!.call(client, { from_index: this.position });
      this.stream = stream;
      const queue: unknown[] = [];
      let busy = false;
      /** How the server ended the stream, once it has. */
      let serverEnd: { fatal?: Error; reason: string } | undefined;
      /** What `handle` (or parsing) threw: nothing more is handled. */
      let handlerError: Error | undefined;
      let progressed = false;
      let silence: NodeJS.Timeout | undefined;
      const armSilence = (): void => {
        clearTimeout(silence);
        silence = setTimeout(() => stream.cancel(), this.options.silenceMs ?? 5_000);
        silence.unref();
      };
      const finish = (): void => {
        if (busy || !(handlerError || (serverEnd && queue.length === 0))) return;
        clearTimeout(silence);
        if (this.stream === stream) this.stream = undefined;
        const fatal = handlerError ?? serverEnd?.fatal;
        resolve(fatal ? { kind: "fatal", error: fatal } : { kind: "ended", progressed, reason: serverEnd!.reason });
      };
      const drain = async (): Promise<void> => {
        if (busy) return;
        busy = true;
        clearTimeout(silence);
        try {
          while (queue.length > 0 && !handlerError) {
            const batch = parseBatch(queue.shift());
            if (stream.isPaused() && queue.length < HIGH_WATER / 4) stream.resume();
            // A batch at or before the position was handled already; never expected on an exact stream.
            if (batch.index < this.position || (batch.index === this.position && batch.events.length > 0)) continue;
            await handle(batch);
            this.position = batch.index;
            progressed = true;
          }
        } catch (err) {
          handlerError = err instanceof BadEventError ? new WatchRefusedError(grpc.status.INTERNAL, err.message) : (err as Error);
          stream.cancel();
        } finally {
          busy = false;
        }
        if (!serverEnd && !handlerError) armSilence();
        finish();
      };
      stream.on("data", (raw: unknown) => {
        if (handlerError) return;
        queue.push(raw);
        if (queue.length >= HIGH_WATER) stream.pause();
        void drain();
      });
      stream.on("error", () => undefined);
      stream.on("status", (status: grpc.StatusObject) => {
        if (status.code === grpc.status.OUT_OF_RANGE) {
          const oldest = Number(status.metadata.get(OLDEST_INDEX_TRAILER)[0] ?? Number.NaN);
          serverEnd = { fatal: new TooFarBehindError(this.position, oldest, status.details), reason: "out of range" };
        } else if (FATAL.has(status.code)) {
          serverEnd = { fatal: new WatchRefusedError(status.code, status.details), reason: grpc.status[status.code] };
        } else {
          serverEnd = { reason: `${grpc.status[status.code]}: ${status.details}` };
        }
        clearTimeout(silence);
        finish();
      });
      armSilence();
    });
  }

  private client(address: string): grpc.Client {
    let c = this.clients.get(address);
    if (!c) {
      const Ctor = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");
      c = makeClient(Ctor, address, this.options.security, {
        "grpc.keepalive_time_ms": 2000,
        "grpc.keepalive_timeout_ms": 1000,
        "grpc.keepalive_permit_without_calls": 1,
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1000,
      });
      this.clients.set(address, c);
    }
    return c;
  }
}
