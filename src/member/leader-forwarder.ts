/**
 * Lets every member accept every call: a follower hands what needs the
 * leader to the leader, over the same gRPC service, and relays the answer.
 * Clients of each leader address are kept and reused.
 * A call that arrives while no leader is known is held (leader-hold.ts).
 */
import * as grpc from "@grpc/grpc-js";
import { NOT_LEADER_PREFIX } from "../raft/errors.js";
import type { RaftDriver } from "../raft-runtime/driver.js";
import { LeaderHold, holdsForLeader } from "./leader-hold.js";
import { AUTHORIZATION_HEADER, type ClientSecurity, PLAINTEXT } from "../security/client-security.js";
import { FORWARDED_HEADER, FORWARD_DEADLINE_HEADER, LEADER_HINT_HEADER } from "../wire/headers.js";


/**
 * The call a forwarded request came in on: its credentials and forwarding
 * marker (metadata), deadline and cancellation. A unary call is one; a beat
 * on HeartbeatStream passes one of its own (heartbeat-stream.ts).
 */
export interface ForwardedCall {
  readonly metadata: grpc.Metadata;
  readonly cancelled: boolean;
  getDeadline(): grpc.Deadline;
  once(event: "cancelled", listener: () => void): unknown;
}

type UnaryMethod = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => grpc.ClientUnaryCall;

/** The caller's deadline in epoch ms (Infinity when it set none). */
function callerDeadlineMs(caller: ForwardedCall | undefined): number {
  const deadline = caller?.getDeadline();
  if (deadline instanceof Date) return deadline.getTime();
  return typeof deadline === "number" && Number.isFinite(deadline) ? deadline : Infinity;
}

/** A forwarded call's answer that says its member did not lead (NotLeaderError, as grpc-status.ts sends it): it ran nothing. */
export function refusedAsNotLeader(err: unknown): boolean {
  const e = err as Partial<grpc.ServiceError>;
  return e.code === grpc.status.UNAVAILABLE && typeof e.details === "string" && e.details.startsWith(NOT_LEADER_PREFIX);
}

/** Whether a forwarded call arrived after the deadline its forwarder gave it. */
export function arrivedTooLate(call: grpc.ServerUnaryCall<unknown, unknown>): boolean {
  const value = call.metadata.get(FORWARD_DEADLINE_HEADER)[0];
  return typeof value === "string" && Number(value) > 0 && Date.now() > Number(value);
}

export class LeaderForwarder {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly hold: LeaderHold;

  constructor(
    private readonly node: RaftDriver,
    private readonly ClientCtor: grpc.ServiceClientConstructor,
    private readonly timeoutMs: number,
    /** How this member dials the leader: its TLS credentials and member token. */
    private readonly security: ClientSecurity = PLAINTEXT,
  ) {
    this.hold = new LeaderHold(node, node.scheduler);
  }

  /** Whether this call may be forwarded (it was not already). */
  static mayForward(call: Pick<ForwardedCall, "metadata">): boolean {
    return call.metadata.get(FORWARDED_HEADER).length === 0;
  }

  /**
   * Calls `method` on the leader; with a `caller`, holds the call while no
   * leader is known (leader-hold.ts) and rejects with NotLeaderError when
   * none is known by the hold's end. `caller` carries the original call's
   * deadline and cancellation over: a write its client gave up on must not
   * be applied seconds later. `timeoutMs` shortens this forwarder's deadline
   * for a call of its own that is better retried than waited for.
   */
  forward<Res>(method: string, request: unknown, caller?: ForwardedCall, timeoutMs = this.timeoutMs): Promise<Res> {
    return this.hold.call<Res>({
      send: (address) => this.send<Res>(address, method, request, caller, timeoutMs),
      refusedAsNotLeader,
      noLeader: () => this.node.notLeader(),
      hold: caller !== undefined && holdsForLeader(method),
      callerDeadlineMs: callerDeadlineMs(caller),
      cancelled: () => caller?.cancelled === true,
    });
  }

  private send<Res>(address: string, method: string, request: unknown, caller: ForwardedCall | undefined, timeoutMs: number): Promise<Res> {
    let client = this.clients.get(address);
    if (!client) {
      client = new this.ClientCtor(address, this.security.credentials);
      this.clients.set(address, client);
    }
    const fn = (client as unknown as Record<string, UnaryMethod>)[method];
    if (typeof fn !== "function") return Promise.reject(new Error(`invariant: no method ${method} to forward`));
    const meta = new grpc.Metadata();
    meta.set(FORWARDED_HEADER, this.node.id);
    // The caller's own token goes along and the leader checks it again,
    // rather than the leader trusting whatever an authenticated member
    // forwards: a follower then never widens what a call may do (a
    // member's credentials would allow member-only methods), the one rule
    // table is applied where the call runs, and a marker header alone
    // grants nothing. This member's token is sent only for calls it makes
    // itself (no caller: NodeConnection reports).
    const callerToken = caller?.metadata.get(AUTHORIZATION_HEADER)[0];
    if (typeof callerToken === "string") meta.set(AUTHORIZATION_HEADER, callerToken);
    else if (!caller && this.security.token !== undefined) meta.set(AUTHORIZATION_HEADER, `Bearer ${this.security.token}`);
    const deadline = Math.min(Date.now() + timeoutMs, callerDeadlineMs(caller));
    meta.set(FORWARD_DEADLINE_HEADER, String(deadline));
    return new Promise<Res>((resolve, reject) => {
      const call = fn.call(client, request, meta, { deadline }, (err, res) => (err ? reject(err) : resolve(res as Res)));
      caller?.once("cancelled", () => call.cancel());
    });
  }

  /** Where the leader is reached, or "" when none is known. */
  leaderAddress(): string {
    return this.node.leaderAddress();
  }

  /** Response metadata naming the leader, for the answer to a forwarded call; undefined when none is known. */
  leaderHint(): grpc.Metadata | undefined {
    const address = this.node.leaderAddress();
    if (!address) return undefined;
    const md = new grpc.Metadata();
    md.set(LEADER_HINT_HEADER, address);
    return md;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
