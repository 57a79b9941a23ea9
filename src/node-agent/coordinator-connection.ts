/**
 * The agent's client of the NodeAgent service over every coordinator
 * member. Any member accepts any call (followers forward to the leader), so
 * the agent never looks for the leader: it talks to one member, the
 * "current" one, and moves to the next when that member does not answer.
 *
 * Retry rule: a call that fails with a transport-like status (UNAVAILABLE,
 * DEADLINE_EXCEEDED, INTERNAL, or CANCELLED that we did not cause) is sent
 * again to the next member at once; after every member failed once, it
 * waits a jittered backoff (retryBaseMs doubling to retryMaxMs) before the
 * next round. Any other status is the coordinator's answer and is returned
 * to the caller as a CoordinatorCallError. Calls are bounded by `attempts`
 * (default: one round over the members; Infinity for Register).
 *
 * Created by NodeAgent; `close()` (from NodeAgent.stop) makes every pending
 * and later call reject with AgentStoppedError.
 */
import * as grpc from "@grpc/grpc-js";
import { MemberCursor } from "../wire/member-cursor.js";
import type { ClientSecurity } from "../security/client-security.js";
import { type Scheduler, realScheduler } from "../time/scheduler.js";
import { type AgentLink, type AgentService, type AgentStream, GrpcAgentLink } from "./agent-link.js";
import { AgentStoppedError, CoordinatorCallError, toCallError } from "./errors.js";

export type UnaryMethod = "Register" | "Heartbeat" | "SaveCheckpoint" | "Deregister" | "ListMeetings" | "HandOver" | "Drain";

/**
 * ListMeetings belongs to the Coordinator service: the agent uses it (for
 * its own node only) as a linearizable check of what it owns before it
 * releases meetings a watch stream did not re-announce.
 */
const COORDINATOR_METHODS: ReadonlySet<UnaryMethod> = new Set(["ListMeetings"]);

const RETRYABLE = new Set<grpc.status>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.INTERNAL, grpc.status.CANCELLED]);

/** Whether a failed call should be sent again to another member. */
export function isRetryable(err: unknown): boolean {
  return err instanceof CoordinatorCallError && RETRYABLE.has(err.status);
}

export interface ConnectionOptions {
  readonly rpcTimeoutMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Uniform in [0, 1); injected so tests can pin the jitter and the first member. */
  readonly random?: () => number;
  /** Told whenever a failure moves the current member (from → to, with the failed status). */
  readonly onRotate?: (from: string, to: string, status: grpc.status) => void;
  /** Told when a member's leader hint moves the current member (from → the leader). */
  readonly onLeaderHint?: (from: string, leader: string) => void;
  /** TLS credentials and the agent's token; default loopback plaintext. */
  readonly security?: ClientSecurity;
  /** How calls reach a member; default gRPC (the simulation gives its network twin). */
  readonly link?: AgentLink;
  /** Time and timers (the backoff's sleeps); default the machine's. */
  readonly scheduler?: Scheduler;
}

export interface UnaryOptions {
  /** Deadline of each attempt; default rpcTimeoutMs. */
  readonly timeoutMs?: number;
  /** Attempts over all members; default one per member. */
  readonly attempts?: number;
}

export class CoordinatorConnection {
  private readonly cursor: MemberCursor;
  private readonly link: AgentLink;

  constructor(
    private readonly addresses: readonly string[],
    private readonly options: ConnectionOptions,
  ) {
    this.cursor = new MemberCursor(addresses, options, options.random, options.scheduler ?? realScheduler);
    this.link = options.link ?? new GrpcAgentLink(options.security);
  }

  /** The member calls go to now. */
  get address(): string {
    return this.cursor.address;
  }

  get memberCount(): number {
    return this.addresses.length;
  }

  get isClosed(): boolean {
    return this.cursor.closed;
  }

  /**
   * Moves to the next member, unless another failure already moved away
   * from `failed` (two calls failing on one member rotate once, not twice).
   */
  rotateFrom(failed: string, status: grpc.status = grpc.status.UNAVAILABLE): void {
    if (this.cursor.rotateFrom(failed)) this.options.onRotate?.(failed, this.address, status);
  }

  /**
   * A member answered a forwarded call and named the leader: send the next
   * calls there directly (heartbeats and checkpoints need the leader; a
   * follower only relays them). Only an address from this agent's own list
   * is followed, and only a hint from the current member.
   */
  followLeaderHint(from: string, leader: string): void {
    if (this.cursor.closed || from !== this.address) return;
    if (this.cursor.moveTo(leader)) this.options.onLeaderHint?.(from, leader);
  }

  /** Jittered exponential backoff for `round` ≥ 1 full rounds of failures: in [d/2, d). */
  backoffMs(round: number): number {
    return this.cursor.backoffMs(round);
  }

  /** Resolves after `ms`, or rejects with AgentStoppedError as soon as the connection closes. */
  sleep(ms: number): Promise<void> {
    return this.cursor.sleep(ms, () => new AgentStoppedError("the agent stopped"));
  }

  /** One unary call, sent to member after member per the retry rule; resolves with the raw response. */
  async unary(method: UnaryMethod, request: unknown, opts: UnaryOptions = {}): Promise<unknown> {
    const attempts = opts.attempts ?? this.addresses.length;
    const timeoutMs = opts.timeoutMs ?? this.options.rpcTimeoutMs;
    let last: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0 && attempt % this.addresses.length === 0) await this.sleep(this.backoffMs(attempt / this.addresses.length));
      if (this.cursor.closed) throw new AgentStoppedError(`${method} abandoned: the agent stopped`);
      const address = this.address;
      try {
        return await this.callOnce(address, method, request, timeoutMs);
      } catch (err) {
        if (this.cursor.closed) throw new AgentStoppedError(`${method} abandoned: the agent stopped`, { cause: err });
        if (!isRetryable(err)) throw err;
        last = err;
        this.rotateFrom(address, (err as CoordinatorCallError).status);
      }
    }
    throw last ?? new Error(`invariant: ${method} made no attempt`);
  }

  /** Opens the WatchAssignments stream on the current member (no deadline: it stays open). */
  openWatch(request: unknown): { stream: AgentStream; address: string } {
    if (this.cursor.closed) throw new AgentStoppedError("WatchAssignments abandoned: the agent stopped");
    const address = this.address;
    return { stream: this.link.watch(address, request), address };
  }

  /** Cancels nothing by itself: callers cancel their streams. Closes every channel and wakes every sleeper. */
  close(): void {
    if (this.cursor.closed) return;
    this.cursor.close();
    this.link.close();
  }

  private callOnce(address: string, method: UnaryMethod, request: unknown, timeoutMs: number): Promise<unknown> {
    const service: AgentService = COORDINATOR_METHODS.has(method) ? "Coordinator" : "NodeAgent";
    return this.link
      .unary(address, service, method, request, timeoutMs, (leader) => this.followLeaderHint(address, leader))
      .catch((err: unknown) => {
        throw toCallError(err, method, address);
      });
  }
}
