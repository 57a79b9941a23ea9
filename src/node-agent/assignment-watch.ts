/**
 * Keeps one WatchAssignments stream open for the node's current
 * generation, on whichever member answers.
 *
 * A stream that breaks for any reason but fencing (the member died, was
 * restarted, ended the stream, or keepalive noticed it froze) is reopened on
 * the next member at once; once every member failed in a row without a
 * stream that lasted, reopening waits the connection's jittered backoff.
 * A stream refused or ended with FAILED_PRECONDITION or NOT_FOUND (stale
 * generation, node declared dead, unknown node) is not reopened: the
 * handler's `fenced` is called and the agent registers again.
 *
 * Each stream is one "session"; whatever arrives from an older session
 * (events racing a cancel, late errors) is dropped here, so handlers only
 * ever hear about the current stream.
 */
import * as grpc from "@grpc/grpc-js";
import { type Scheduler, type TimerHandle, realScheduler } from "../time/scheduler.js";
import type { AgentLogger } from "./agent-config.js";
import type { AgentStream } from "./agent-link.js";
import type { CoordinatorConnection } from "./coordinator-connection.js";
import { type CoordinatorCallError, isFenced, toCallError } from "./errors.js";

export interface WatchHandlers {
  /** A stream was opened for `session`; the server will (re)send ASSIGNED for every held meeting. */
  opened(session: number, address: string): void;
  /** One raw message of the current stream. Must not throw (the watch catches and reports anyway). */
  event(raw: unknown, session: number): void;
  /** The current stream broke and will be reopened. */
  broken(session: number, err: CoordinatorCallError): void;
  /** The stream was refused or ended by fencing; it is not reopened. */
  fenced(err: CoordinatorCallError, generation: number): void;
  /** A handler threw; reported, never raised into grpc-js. */
  failed(err: unknown): void;
}

/** A stream that lived this long counts as healthy: the next break reopens at once again. */
const STABLE_MS = 1000;

export class AssignmentWatch {
  private session = 0;
  private stream: AgentStream | undefined;
  private streamAddress: string | undefined;
  private generation = 0;
  private failures = 0;
  private reopenTimer: TimerHandle | undefined;

  constructor(
    private readonly connection: CoordinatorConnection,
    private readonly nodeId: string,
    private readonly handlers: WatchHandlers,
    private readonly log: AgentLogger,
    private readonly scheduler: Scheduler = realScheduler,
  ) {}

  /** The member the open stream is on, if one is open. */
  get address(): string | undefined {
    return this.stream ? this.streamAddress : undefined;
  }

  /** Opens (or replaces) the stream for `generation`. Called after every Register. */
  open(generation: number): void {
    this.close();
    this.generation = generation;
    this.failures = 0;
    this.connect();
  }

  /** Drops the stream and reopens it on the connection's current member (used when its member stopped answering calls). */
  restart(): void {
    if (this.generation === 0) return;
    this.close();
    this.connect();
  }

  /** Cancels the stream and any pending reopen. Nothing more reaches the handlers until `open`. */
  close(): void {
    this.session += 1;
    if (this.reopenTimer) this.scheduler.clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    const stream = this.stream;
    this.stream = undefined;
    this.streamAddress = undefined;
    stream?.cancel();
  }

  private connect(): void {
    const session = ++this.session;
    let opened: { stream: AgentStream; address: string };
    try {
      opened = this.connection.openWatch({ node_id: this.nodeId, generation: this.generation });
    } catch (err) {
      if (!this.connection.isClosed) this.handlers.failed(err);
      return;
    }
    const { stream, address } = opened;
    this.stream = stream;
    this.streamAddress = address;
    const openedAt = this.scheduler.monotonic();
    let ended = false;
    const end = (err: CoordinatorCallError): void => {
      if (ended) return;
      ended = true;
      if (session !== this.session) return;
      this.stream = undefined;
      this.streamAddress = undefined;
      this.session += 1;
      if (isFenced(err)) {
        this.handlers.fenced(err, this.generation);
        return;
      }
      this.call(() => this.handlers.broken(session, err));
      if (this.scheduler.monotonic() - openedAt >= STABLE_MS) this.failures = 0;
      this.failures += 1;
      this.connection.rotateFrom(address, err.status);
      const rounds = Math.floor((this.failures - 1) / this.connection.memberCount);
      const delay = rounds === 0 ? 0 : this.connection.backoffMs(rounds);
      this.log.debug({ address, err: err.message, delay }, "assignment watch broke; reopening");
      this.reopenTimer = this.scheduler.setTimeout(() => {
        this.reopenTimer = undefined;
        if (!this.connection.isClosed) this.connect();
      }, delay);
      this.reopenTimer.unref?.();
    };
    // grpc-js emits 'status' once at every end (OK, errors, cancels); 'error' also on non-OK ends,
    // and an 'error' without a listener would throw into the host, so one is always attached.
    stream.on("error", () => undefined);
    stream.on("status", (status: grpc.StatusObject) => {
      // An OK end is still a break: the stream is meant to stay open.
      const ok = status.code === grpc.status.OK;
      const code = ok ? grpc.status.UNAVAILABLE : status.code;
      end(toCallError({ code, details: ok ? "the member ended the stream" : status.details }, "WatchAssignments", address));
    });
    stream.on("data", (raw: unknown) => {
      if (session !== this.session) return;
      this.failures = 0;
      this.call(() => this.handlers.event(raw, session));
    });
    this.call(() => this.handlers.opened(session, address));
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.handlers.failed(err);
    }
  }
}
