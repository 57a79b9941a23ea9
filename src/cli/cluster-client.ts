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
import { inWords } from "../wire/describe.js";
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
    const failures: { address: string; error: grpc.ServiceError }[] = [];
    for (const address of this.options.coordinators) {
      try {
        return (await this.callOne(service, address, method, request)) as T;
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (!TRY_NEXT.has(e.code)) throw new CallError(e.code, e.details || e.message, { cause: err });
        failures.push({ address, error: e });
      }
    }
    const last = failures.at(-1)!.error;
    throw new CallError(last.code, noMemberAnswered(failures, this.options.timeoutMs), { cause: last });
  }

  /** The members this client tries, in order. */
  get coordinators(): readonly string[] {
    return this.options.coordinators;
  }

  /** Opens a server-streaming call of `method` on one member (the caller tries the members and reads the stream). */
  openStream<T>(service: Service, address: string, method: string, request: object): grpc.ClientReadableStream<T> {
    const client = this.client(service, address);
    const fn = (client as unknown as Record<string, ((request: unknown) => grpc.ClientReadableStream<T>) | undefined>)[method];
    if (!fn) throw new Error(`invariant: ${serviceNames[service].name} has no method ${method}`);
    return fn.call(client, request);
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

/** Why one member did not answer, in words. */
function whyNoAnswer(error: grpc.ServiceError, timeoutMs: number): { reason: string; unreachable: boolean } {
  if (error.code === grpc.status.DEADLINE_EXCEEDED) return { reason: `no answer within ${timeoutMs} ms`, unreachable: true };
  const details = error.details || error.message;
  // grpc-js's own text when no connection could be made: "No connection established. Last error: Error: connect ECONNREFUSED ...".
  const code = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)\b/.exec(details)?.[1];
  const known: Record<string, string> = {
    ECONNREFUSED: "connection refused: nothing listens there",
    ECONNRESET: "the connection was reset",
    ETIMEDOUT: "the connection timed out",
    EHOSTUNREACH: "the host is unreachable",
    ENETUNREACH: "the network is unreachable",
    ENOTFOUND: "the host name is unknown",
    EAI_AGAIN: "the host name could not be resolved",
  };
  if (code) return { reason: known[code]!, unreachable: true };
  if (/^No connection established|Name resolution failed|Connection dropped/.test(details)) {
    return { reason: details.replace(/\s*Resolution note:\s*$/, "").replace(/^No connection established\.\s*/, "no connection: "), unreachable: true };
  }
  // The member answered, but cannot serve the call now (no quorum, no leader).
  return { reason: details, unreachable: false };
}

/**
 * The message when every member failed with UNAVAILABLE or a timeout:
 * which addresses were tried and why each did not answer, grouped, and,
 * when none could even be reached, how to start a cluster or point at one.
 */
export function noMemberAnswered(failures: readonly { address: string; error: grpc.ServiceError }[], timeoutMs: number): string {
  const byReason = new Map<string, string[]>();
  let reachable = false;
  for (const { address, error } of failures) {
    const { reason, unreachable } = whyNoAnswer(error, timeoutMs);
    reachable ||= !unreachable;
    byReason.set(reason, [...(byReason.get(reason) ?? []), address]);
  }
  const reasons = [...byReason].map(([reason, addresses]) => `${inWords(addresses)}: ${reason}`).join("; ");
  if (reachable) return `no coordinator member could answer (${reasons})`;
  return (
    `no coordinator member answered at the addresses tried (${reasons}). ` +
    "Start a local cluster with `convene start` (`npm start` in a clone of the repository), " +
    "or name running members with --coordinators host:port,... (or $CONVENE_COORDINATORS)"
  );
}
