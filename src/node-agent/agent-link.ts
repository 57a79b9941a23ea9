/**
 * How the agent's calls reach one coordinator member: gRPC channels in
 * production (GrpcAgentLink), the simulation's network twin on virtual
 * time. CoordinatorConnection keeps the rules (which member, retries,
 * backoff, leader hints) above it, so both run the same rules.
 */
import * as grpc from "@grpc/grpc-js";
import { LEADER_HINT_HEADER } from "../wire/headers.js";
import { loadProto, lookup } from "../wire/proto.js";
import { type ClientSecurity, PLAINTEXT, makeClient } from "../security/client-security.js";
import { type BeatCall, HeartbeatStream } from "./heartbeat-stream.js";

export type AgentService = "NodeAgent" | "Coordinator";

/** A server stream as the agent uses it (a grpc-js ClientReadableStream, or a twin). */
export interface AgentStream {
  /** "data" carries a message, "status" a grpc.StatusObject at every end, "error" an error on a non-OK end. */
  on(event: "data" | "status" | "error", listener: (...args: any[]) => void): unknown;
  cancel(): void;
}

export interface AgentLink {
  /**
   * One unary call to `address`, answered or failed (a grpc.ServiceError-like
   * `{ code, details }`) by `deadlineMs` on the link's clock; a leader hint
   * in the answer's metadata goes to `onLeaderHint`.
   */
  unary(address: string, service: AgentService, method: string, request: unknown, timeoutMs: number, onLeaderHint: (leader: string) => void): Promise<unknown>;
  /** Opens WatchAssignments on `address` (no deadline: it stays open). */
  watch(address: string, request: unknown): AgentStream;
  /** Closes every channel. */
  close(): void;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // A member frozen with its connections open is noticed within ~3 s even on an idle watch stream.
  "grpc.keepalive_time_ms": 2000,
  "grpc.keepalive_timeout_ms": 1000,
  "grpc.keepalive_permit_without_calls": 1,
  // gRPC's default redial backoff grows to 120 s: a restarted member would stay unused that long.
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
  // CoordinatorConnection decides where a call goes again; no hidden retries.
  "grpc.enable_retries": 0,
};

type Callback = (err: grpc.ServiceError | null, res?: unknown) => void;
type UnaryFn = (req: unknown, opts: grpc.CallOptions, cb: Callback) => grpc.ClientUnaryCall;
type StreamFn = (req: unknown, opts?: grpc.CallOptions) => grpc.ClientReadableStream<unknown>;
type DuplexFn = (opts?: grpc.CallOptions) => grpc.ClientDuplexStream<unknown, unknown>;

const clientCtors = new Map<AgentService, grpc.ServiceClientConstructor>();
function serviceClient(service: AgentService): grpc.ServiceClientConstructor {
  let ctor = clientCtors.get(service);
  if (!ctor) clientCtors.set(service, (ctor = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), `convene.v1.${service}`)));
  return ctor;
}

/**
 * The agent's gRPC channels: one client per service and member. Heartbeats
 * go as messages on a HeartbeatStream per member (heartbeat-stream.ts), or
 * as unary calls to a member that has no such method.
 */
export class GrpcAgentLink implements AgentLink {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly beats = new Map<string, HeartbeatStream>();

  constructor(private readonly security: ClientSecurity = PLAINTEXT) {}

  unary(address: string, service: AgentService, method: string, request: unknown, timeoutMs: number, onLeaderHint: (leader: string) => void): Promise<unknown> {
    if (service === "NodeAgent" && method === "Heartbeat") {
      const stream = this.heartbeatStream(address);
      if (!stream.unsupported) {
        return stream.beat(request as Record<string, unknown>, timeoutMs, onLeaderHint).catch((err: unknown) => {
          if ((err as { code?: unknown }).code !== grpc.status.UNIMPLEMENTED) throw err;
          return this.call(address, service, method, request, timeoutMs, onLeaderHint);
        });
      }
    }
    return this.call(address, service, method, request, timeoutMs, onLeaderHint);
  }

  private call(address: string, service: AgentService, method: string, request: unknown, timeoutMs: number, onLeaderHint: (leader: string) => void): Promise<unknown> {
    const client = this.client(service, address);
    const fn = (client as unknown as Record<string, UnaryFn>)[method];
    if (typeof fn !== "function") return Promise.reject(new Error(`invariant: ${service} has no method ${method}`));
    return new Promise<unknown>((resolve, reject) => {
      const call = fn.call(client, request, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(err);
        else resolve(res);
      });
      call.on("metadata", (md: grpc.Metadata) => {
        const leader = md.get(LEADER_HINT_HEADER)[0];
        if (typeof leader === "string") onLeaderHint(leader);
      });
    });
  }

  watch(address: string, request: unknown): AgentStream {
    const client = this.client("NodeAgent", address);
    const fn = (client as unknown as Record<string, StreamFn>)["WatchAssignments"]!;
    return fn.call(client, request, {});
  }

  close(): void {
    for (const b of this.beats.values()) b.close();
    this.beats.clear();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private heartbeatStream(address: string): HeartbeatStream {
    let stream = this.beats.get(address);
    if (!stream) {
      const client = this.client("NodeAgent", address);
      const open = (client as unknown as Record<string, DuplexFn>)["HeartbeatStream"]!;
      stream = new HeartbeatStream(() => open.call(client, {}) as BeatCall);
      this.beats.set(address, stream);
    }
    return stream;
  }

  private client(service: AgentService, address: string): grpc.Client {
    const key = `${service} ${address}`;
    let c = this.clients.get(key);
    if (!c) {
      c = makeClient(serviceClient(service), address, this.security, CHANNEL_OPTIONS);
      this.clients.set(key, c);
    }
    return c;
  }
}
