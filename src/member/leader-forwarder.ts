/**
 * Lets every member accept every call: a follower hands what needs the
 * leader to the leader, over the same gRPC service, and relays the answer.
 * Clients of each leader address are kept and reused.
 *
 * A call that arrives while no leader is known (an election under way) is
 * held until one is, for at most LEADER_HOLD_MS and never past the
 * caller's deadline, as Consul holds RPCs for its rpc_hold_timeout: an
 * election here takes a second or two, and a caller answered UNAVAILABLE
 * at once would only retry into the same election.
 */
import * as grpc from "@grpc/grpc-js";
import { NOT_LEADER_PREFIX, NotLeaderError } from "../raft/errors.js";
import type { RaftDriver } from "../raft-runtime/driver.js";
import { AUTHORIZATION_HEADER, type ClientSecurity, PLAINTEXT } from "../security/client-security.js";
import { FORWARDED_HEADER, FORWARD_DEADLINE_HEADER, LEADER_HINT_HEADER } from "../wire/headers.js";

/** The longest a call waits for a leader to be elected before it is answered UNAVAILABLE. */
export const LEADER_HOLD_MS = 3_000;

type UnaryMethod = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => grpc.ClientUnaryCall;

/** The caller's deadline in epoch ms (Infinity when it set none). */
function callerDeadlineMs(caller: grpc.ServerUnaryCall<unknown, unknown> | undefined): number {
  const deadline = caller?.getDeadline();
  if (deadline instanceof Date) return deadline.getTime();
  return typeof deadline === "number" && Number.isFinite(deadline) ? deadline : Infinity;
}

/** A forwarded call's answer that says its member did not lead (NotLeaderError, as grpc-status.ts sends it): it ran nothing. */
function refusedAsNotLeader(err: unknown): boolean {
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

  constructor(
    private readonly node: RaftDriver,
    private readonly ClientCtor: grpc.ServiceClientConstructor,
    private readonly timeoutMs: number,
    /** How this member dials the leader: its TLS credentials and member token. */
    private readonly security: ClientSecurity = PLAINTEXT,
  ) {}

  /** Whether this call may be forwarded (it was not already). */
  static mayForward(call: grpc.ServerUnaryCall<unknown, unknown>): boolean {
    return call.metadata.get(FORWARDED_HEADER).length === 0;
  }

  /**
   * Calls `method` on the leader; with a `caller`, waits for one to be
   * elected (up to LEADER_HOLD_MS, ending 100 ms before the caller's
   * deadline); rejects with NotLeaderError when none is known by then.
   * `caller` carries the original call's deadline and cancellation over: a
   * write its client gave up on must not be applied seconds later.
   */
  async forward<Res>(method: string, request: unknown, caller?: grpc.ServerUnaryCall<unknown, unknown>): Promise<Res> {
    const until = caller ? Math.min(Date.now() + LEADER_HOLD_MS, callerDeadlineMs(caller) - 100) : 0;
    for (;;) {
      // The leader may be this member, elected since the call failed here: the call then comes back here, marked forwarded, and runs.
      let address = this.node.leaderAddress();
      // Held while an election is under way.
      if (address === "") address = await this.leaderElectedBy(until);
      if (!address) throw new NotLeaderError(this.node.status().lead);
      try {
        return await this.send<Res>(address, method, request, caller);
      } catch (err) {
        // The member it went to no longer led (the election went on): nothing ran there, so the
        // call goes to the next leader while the hold lasts. Any other failure is the caller's answer.
        if (!refusedAsNotLeader(err) || Date.now() >= until || caller?.cancelled) throw err;
        await this.leaderChangeBy(Math.min(until, Date.now() + 250));
      }
    }
  }

  /** The leader's address once one is known, or "" at `untilMs`. */
  private async leaderElectedBy(untilMs: number): Promise<string> {
    while (this.node.leaderAddress() === "" && Date.now() < untilMs) await this.leaderChangeBy(untilMs);
    return this.node.leaderAddress();
  }

  /** Resolves at the next change of leader this member sees, or at `untilMs`. */
  private leaderChangeBy(untilMs: number): Promise<void> {
    const node = this.node;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        node.off("leader", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, untilMs - Date.now()));
      node.on("leader", done);
    });
  }

  private send<Res>(address: string, method: string, request: unknown, caller?: grpc.ServerUnaryCall<unknown, unknown>): Promise<Res> {
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
    const deadline = Math.min(Date.now() + this.timeoutMs, callerDeadlineMs(caller));
    meta.set(FORWARD_DEADLINE_HEADER, String(deadline));
    return new Promise<Res>((resolve, reject) => {
      const call = fn.call(client, request, meta, { deadline }, (err, res) => (err ? reject(err) : resolve(res as Res)));
      caller?.once("cancelled", () => call.cancel());
    });
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
