/**
 * gRPC clients of the members for the chaos run: Coordinator (API.md),
 * MemberAdmin (proto/member.proto) and NodeAgent (the zombie probes), one
 * channel per address and service, kept until `close`. Every channel uses
 * the security it is given (TLS credentials, the caller's bearer token on
 * every call: security.ts). Every call has a deadline; failures come back
 * as RpcError with the gRPC status.
 */
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { type ClientSecurity, makeClient } from "../../src/security/client-security.js";

export type Service = "Coordinator" | "MemberAdmin" | "NodeAgent";

const CTORS: Record<Service, () => grpc.ServiceClientConstructor> = {
  Coordinator: () => lookup(loadProto("convene.proto"), "convene.v1.Coordinator"),
  NodeAgent: () => lookup(loadProto("convene.proto"), "convene.v1.NodeAgent"),
  MemberAdmin: () => lookup(loadProto("member.proto"), "convene.member.v1.MemberAdmin"),
};

/** Like the node agent's: a restarted member is redialled within a second, a frozen one noticed in ~3 s. */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.keepalive_time_ms": 2000,
  "grpc.keepalive_timeout_ms": 1000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
  "grpc.enable_retries": 0,
};

export class RpcError extends Error {
  override readonly name = "RpcError";
  constructor(
    readonly method: string,
    readonly address: string,
    /** The gRPC status code. */
    readonly status: number,
    readonly details: string,
  ) {
    super(`${method} at ${address}: ${grpc.status[status] ?? status}: ${details}`);
  }
}

export const Status = grpc.status;


export interface RouteMessage {
  meeting_id: string;
  node_id: string;
  address: string;
  epoch: number;
  created: boolean;
}

export interface CheckpointMessage {
  meeting_id: string;
  node_id: string;
  epoch: number;
  sequence: number;
  state: Buffer;
  saved_at_ms: number;
}

export interface NodeInfoMessage {
  node_id: string;
  address: string;
  state: number;
  meetings: number;
  generation: number;
}

type UnaryFn = (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => grpc.ClientUnaryCall;

export class Rpc {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly ctors = new Map<Service, grpc.ServiceClientConstructor>();

  /** `security`: how every channel is secured and which token its calls carry. */
  constructor(private readonly security: ClientSecurity) {}

  private client(service: Service, address: string): grpc.Client {
    const key = `${service}@${address}`;
    let c = this.clients.get(key);
    if (!c) {
      let Ctor = this.ctors.get(service);
      if (!Ctor) this.ctors.set(service, (Ctor = CTORS[service]()));
      c = makeClient(Ctor, address, this.security, CHANNEL_OPTIONS);
      this.clients.set(key, c);
    }
    return c;
  }

  call<T>(service: Service, address: string, method: string, request: unknown, timeoutMs: number): Promise<T> {
    const client = this.client(service, address);
    const fn = (client as unknown as Record<string, UnaryFn>)[method];
    if (typeof fn !== "function") return Promise.reject(new Error(`invariant: ${service} has no method ${method}`));
    return new Promise<T>((resolve, reject) => {
      fn.call(client, request, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(new RpcError(method, address, typeof err.code === "number" ? err.code : grpc.status.UNKNOWN, err.details ?? err.message));
        else resolve(res as T);
      });
    });
  }

  /** Tries the addresses in order until one answers without a transport-like failure. */
  async any<T>(service: Service, addresses: readonly string[], method: string, request: unknown, timeoutMs: number): Promise<T> {
    let last: unknown;
    for (const address of addresses) {
      try {
        return await this.call<T>(service, address, method, request, timeoutMs);
      } catch (err) {
        last = err;
        if (!(err instanceof RpcError) || !isTransient(err.status)) throw err;
      }
    }
    throw last ?? new Error("no address to call");
  }

  /** Drops the channels to one address (e.g. a member replaced for good). */
  forget(address: string): void {
    for (const [key, c] of this.clients) {
      if (key.endsWith(`@${address}`)) {
        c.close();
        this.clients.delete(key);
      }
    }
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/** Statuses that say nothing about the request: try elsewhere or later. */
export function isTransient(status: number): boolean {
  return status === grpc.status.UNAVAILABLE || status === grpc.status.DEADLINE_EXCEEDED || status === grpc.status.CANCELLED || status === grpc.status.INTERNAL;
}

export function statusName(status: number): string {
  return grpc.status[status] ?? String(status);
}
