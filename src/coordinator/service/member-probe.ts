/**
 * Asks each member for its own status (MemberAdmin.Status), so ClusterStatus
 * reports every member's real commit and applied indexes and whether it
 * answers now, not what one member guesses about the others; and so the
 * leader learns which formats each member's binary understands (its part in
 * the cluster version, formats.ts).
 */
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../wire/proto.js";
import { type ClientSecurity, PLAINTEXT, makeClient } from "../../security/client-security.js";
import { type Formats, advertisedFormats } from "../formats.js";

export interface MemberIndexes {
  readonly commitIndex: number;
  readonly appliedIndex: number;
}

/** One member's answer. */
export interface ProbedMember extends MemberIndexes {
  /** What its binary understands (the baseline for a release that advertises nothing). */
  readonly formats: Formats;
  /** The cluster version it has applied (0 from a release before cluster versions). */
  readonly clusterVersion: number;
}

interface StatusAnswer {
  commit_index: number;
  applied_index: number;
  formats?: { wire?: number; command?: number; snapshot?: number } | null;
  cluster_version?: number;
}

type StatusCall = (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: StatusAnswer) => void) => void;

export class MemberProbe {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly Admin = lookup<grpc.ServiceClientConstructor>(loadProto("member.proto"), "convene.member.v1.MemberAdmin");

  constructor(
    private readonly timeoutMs = 500,
    /** This member's TLS credentials and member token (MemberAdmin.Status allows role member). */
    private readonly security: ClientSecurity = PLAINTEXT,
  ) {}

  /** The member's status, or undefined when it does not answer within the timeout. */
  status(address: string): Promise<ProbedMember | undefined> {
    let client = this.clients.get(address);
    if (!client) {
      client = makeClient(this.Admin, address, this.security);
      this.clients.set(address, client);
    }
    const status = (client as unknown as { Status: StatusCall }).Status.bind(client);
    return new Promise((resolve) => {
      status({}, { deadline: Date.now() + this.timeoutMs }, (err, res) =>
        resolve(
          err || !res
            ? undefined
            : { commitIndex: res.commit_index, appliedIndex: res.applied_index, formats: advertisedFormats(res.formats), clusterVersion: res.cluster_version ?? 0 },
        ),
      );
    });
  }

  /** The member's indexes, or undefined when it does not answer within the timeout. */
  indexes(address: string): Promise<MemberIndexes | undefined> {
    return this.status(address);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
