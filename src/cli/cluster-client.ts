/**
 * The operator commands' way into the cluster: unary calls to the
 * Coordinator and MemberAdmin services of any member. Every member accepts
 * every call (followers forward to the leader), so the client tries the
 * listed members in order and moves on only when one cannot answer
 * (UNAVAILABLE: down, or no quorum behind it; DEADLINE_EXCEEDED: too slow).
 * Any other status is the cluster's answer and is returned at once.
 *
 * Each member gets the whole --timeout-ms: a hung first member costs one
 * timeout, then the next is asked. A call that timed out may still have
 * taken effect; retrying it elsewhere is safe for reads and for the
 * idempotent writes (route, drain); `end` may then answer NOT_FOUND.
 */
import * as grpc from "@grpc/grpc-js";
import { pageThrough } from "../wire/paging.js";
import { loadProto, lookup } from "../wire/proto.js";
import { type ClientSecurity, PLAINTEXT, makeClient } from "../security/client-security.js";
import { CallError } from "./errors.js";

export type Service = "coordinator" | "admin";

const serviceNames: Record<Service, { file: string; name: string }> = {
  coordinator: { file: "convene.proto", name: "convene.v1.Coordinator" },
  admin: { file: "member.proto", name: "convene.member.v1.MemberAdmin" },
};

/** Statuses after which another member may still answer. */
const TRY_NEXT = new Set<grpc.status>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

type UnaryMethod = (request: unknown, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response?: unknown) => void) => void;

export interface ClusterClientOptions {
  /** Members to try, in order (host:port). */
  readonly coordinators: readonly string[];
  /** Deadline of each attempt, in ms. */
  readonly timeoutMs: number;
  /** TLS credentials and the operator's token; default loopback plaintext. */
  readonly security?: ClientSecurity;
}

export class ClusterClient {
  private readonly clients = new Map<string, grpc.Client>();

  constructor(private readonly options: ClusterClientOptions) {
    if (options.coordinators.length === 0) throw new Error("invariant: ClusterClient needs at least one coordinator address");
  }

  /** Calls `method` on the first member that answers; rejects with CallError. */
  async call<T>(service: Service, method: string, request: object): Promise<T> {
    let last: grpc.ServiceError | undefined;
    const tried: string[] = [];
    for (const address of this.options.coordinators) {
      tried.push(address);
      try {
        return (await this.callOne(service, address, method, request)) as T;
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (!TRY_NEXT.has(e.code)) throw new CallError(e.code, e.details || e.message, { cause: err });
        last = e;
      }
    }
    const details = last!.details || last!.message;
    throw new CallError(last!.code, tried.length > 1 ? `${details} (tried ${tried.join(", ")})` : details, { cause: last });
  }

  /** Closes every channel opened; the process can then exit. */
  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private callOne(service: Service, address: string, method: string, request: object): Promise<unknown> {
    const client = this.client(service, address);
    const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
    if (!fn) throw new Error(`invariant: ${serviceNames[service].name} has no method ${method}`);
    return new Promise((resolve, reject) => {
      fn.call(client, request, { deadline: Date.now() + this.options.timeoutMs }, (err, response) => (err ? reject(err) : resolve(response)));
    });
  }

  private client(service: Service, address: string): grpc.Client {
    const key = `${service} ${address}`;
    let client = this.clients.get(key);
    if (!client) {
      const { file, name } = serviceNames[service];
      const Client = lookup<grpc.ServiceClientConstructor>(loadProto(file), name);
      client = makeClient(Client, address, this.options.security ?? PLAINTEXT);
      this.clients.set(key, client);
    }
    return client;
  }
}

/** Every meeting (on `nodeId` when not empty), page by page (`pageSize` 0: the server's maximum). */
export function listMeetings<R>(client: ClusterClient, nodeId: string, pageSize = 0): Promise<R[]> {
  return pageThrough(async (pageToken) => {
    const r = await client.call<{ meetings?: R[]; next_page_token?: string }>("coordinator", "ListMeetings", { node_id: nodeId, page_size: pageSize, page_token: pageToken });
    return { items: r.meetings ?? [], nextPageToken: r.next_page_token };
  });
}

/** The audit log (its newest `limit` entries; 0: all that are kept), page by page (`pageSize` 0: the server's maximum). */
export function auditLog<E>(client: ClusterClient, limit: number, pageSize = 0): Promise<E[]> {
  return pageThrough(async (pageToken) => {
    const r = await client.call<{ entries?: E[]; next_page_token?: string }>("admin", "AuditLog", { limit, page_size: pageSize, page_token: pageToken });
    return { items: r.entries ?? [], nextPageToken: r.next_page_token };
  });
}
