/**
 * The gateway's client of the coordinator group: convene.v1.Coordinator
 * (GetRoute, ListNodes, ClusterStatus), convene.routes.v1.RouteFeed and
 * MemberAdmin.AuditLog (the dashboard's timeline), over every member. Any member accepts any call (followers forward to the
 * leader), so calls go to one "current" member and move to the next when it
 * does not answer.
 *
 * Retry rule: a call failing with a transport-like status (UNAVAILABLE,
 * DEADLINE_EXCEEDED, INTERNAL, CANCELLED) goes again to the next member at
 * once; after a full round of failures it waits a jittered backoff
 * (retryBaseMs doubling to retryMaxMs). Every call is bounded by its
 * deadline: each attempt gets what is left of it (at most attemptTimeoutMs),
 * so a call never outlives the deadline. Other statuses are the
 * coordinator's answer and reject at once.
 *
 * Created by startGateway; `close()` (from Gateway.close) closes every
 * channel and makes pending and later calls reject.
 */
import * as grpc from "@grpc/grpc-js";
import { MemberCursor } from "../wire/member-cursor.js";
import { loadProto, lookup } from "../wire/proto.js";
import { type ClientSecurity, PLAINTEXT, makeClient } from "../security/client-security.js";
import { CoordinatorCallError, toCallError } from "./errors.js";

export type ServiceName = "Coordinator" | "RouteFeed" | "MemberAdmin";

const RETRYABLE = new Set<grpc.status>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.INTERNAL, grpc.status.CANCELLED]);

/** Whether a failed call may succeed at another member. */
export function isRetryable(err: unknown): boolean {
  return err instanceof CoordinatorCallError && RETRYABLE.has(err.status);
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // A member frozen with its connections open is noticed within ~3 s, even on an idle feed stream.
  "grpc.keepalive_time_ms": 2000,
  "grpc.keepalive_timeout_ms": 1000,
  "grpc.keepalive_permit_without_calls": 1,
  // gRPC's default redial backoff grows to 120 s: a restarted member would stay unused that long.
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
  // This class decides where a call goes again; no hidden retries.
  "grpc.enable_retries": 0,
};

export interface CoordinatorClientOptions {
  /** Bound on a whole call over all attempts. */
  readonly deadlineMs: number;
  /** Bound on one attempt at one member. */
  readonly attemptTimeoutMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Uniform in [0, 1); injected so tests can pin the jitter and the first member. */
  readonly random?: () => number;
  /** TLS credentials and the gateway's token; default loopback plaintext. */
  readonly security?: ClientSecurity;
}

type Callback = (err: grpc.ServiceError | null, res?: unknown) => void;
type UnaryFn = (req: unknown, opts: grpc.CallOptions, cb: Callback) => grpc.ClientUnaryCall;
type StreamFn = (req: unknown, opts?: grpc.CallOptions) => grpc.ClientReadableStream<unknown>;

let ctors: Record<ServiceName, grpc.ServiceClientConstructor> | undefined;
function serviceCtors(): Record<ServiceName, grpc.ServiceClientConstructor> {
  ctors ??= {
    Coordinator: lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator"),
    RouteFeed: lookup<grpc.ServiceClientConstructor>(loadProto("routes.proto"), "convene.routes.v1.RouteFeed"),
    // Only its AuditLog, for the dashboard's timeline.
    MemberAdmin: lookup<grpc.ServiceClientConstructor>(loadProto("member.proto"), "convene.member.v1.MemberAdmin"),
  };
  return ctors;
}

export class ClientClosedError extends Error {
  constructor(what: string) {
    super(`${what} abandoned: the gateway is closing`);
    this.name = "ClientClosedError";
  }
}

export class CoordinatorClient {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly cursor: MemberCursor;

  constructor(
    readonly addresses: readonly string[],
    private readonly options: CoordinatorClientOptions,
  ) {
    this.cursor = new MemberCursor(addresses, options, options.random);
  }

  /** The member calls go to now. */
  get address(): string {
    return this.cursor.address;
  }

  get isClosed(): boolean {
    return this.cursor.closed;
  }

  /** Moves to the next member, unless another failure already moved away from `failed`. */
  rotateFrom(failed: string): void {
    this.cursor.rotateFrom(failed);
  }

  /** Jittered exponential backoff after `round` ≥ 1 rounds of failures: in [d/2, d). */
  backoffMs(round: number): number {
    return this.cursor.backoffMs(round);
  }

  /** Resolves after `ms`, or rejects with ClientClosedError as soon as the client closes. */
  sleep(ms: number): Promise<void> {
    return this.cursor.sleep(ms, () => new ClientClosedError("sleep"));
  }

  /**
   * One unary call, sent member after member per the retry rule until the
   * deadline; resolves with the raw response (proto.ts options: keepCase,
   * longs and enums as numbers) or rejects with the last CoordinatorCallError.
   */
  async unary<T>(service: ServiceName, method: string, request: unknown, opts: { deadlineMs?: number } = {}): Promise<T> {
    const deadline = Date.now() + (opts.deadlineMs ?? this.options.deadlineMs);
    let last: unknown;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0 && attempt % this.addresses.length === 0) {
        const pause = this.backoffMs(attempt / this.addresses.length);
        if (Date.now() + pause >= deadline) break;
        await this.sleep(pause);
      }
      if (this.cursor.closed) throw new ClientClosedError(method);
      const left = deadline - Date.now();
      if (left <= 0) break;
      const address = this.address;
      try {
        return (await this.callAt(address, service, method, request, Math.min(left, this.options.attemptTimeoutMs))) as T;
      } catch (err) {
        if (this.cursor.closed) throw new ClientClosedError(method);
        if (!isRetryable(err)) throw err;
        last = err;
        this.rotateFrom(address);
      }
    }
    throw last ?? new CoordinatorCallError(method, this.address, grpc.status.DEADLINE_EXCEEDED, "no attempt fitted in the deadline");
  }

  /** One attempt at one member, no retry (the dashboard asks each member for its own view). */
  callAt(address: string, service: ServiceName, method: string, request: unknown, timeoutMs: number): Promise<unknown> {
    if (this.cursor.closed) return Promise.reject(new ClientClosedError(method));
    const client = this.client(address, service);
    const fn = (client as unknown as Record<string, UnaryFn>)[method];
    if (typeof fn !== "function") return Promise.reject(new Error(`invariant: ${service} has no method ${method}`));
    return new Promise<unknown>((resolve, reject) => {
      fn.call(client, request, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(toCallError(err, method, address));
        else resolve(res);
      });
    });
  }

  /** Opens RouteFeed.WatchRoutes on the current member (no deadline: it stays open). */
  openWatch(request: unknown): { stream: grpc.ClientReadableStream<unknown>; address: string } {
    if (this.cursor.closed) throw new ClientClosedError("WatchRoutes");
    const address = this.address;
    const client = this.client(address, "RouteFeed");
    const fn = (client as unknown as Record<string, StreamFn>)["WatchRoutes"]!;
    return { stream: fn.call(client, request, {}), address };
  }

  /** Closes every channel and wakes every sleeper; callers cancel their own streams first. */
  close(): void {
    if (this.cursor.closed) return;
    this.cursor.close();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private client(address: string, service: ServiceName): grpc.Client {
    const key = `${service} ${address}`;
    let c = this.clients.get(key);
    if (!c) {
      const Ctor = serviceCtors()[service];
      c = makeClient(Ctor, address, this.options.security ?? PLAINTEXT, CHANNEL_OPTIONS);
      this.clients.set(key, c);
    }
    return c;
  }
}
