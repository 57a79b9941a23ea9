/**
 * A member that joins a group with an empty data directory does not know
 * the group's cluster id yet (a restored group has its own, not the legacy
 * one): it asks the members of --peers (MemberAdmin.Status) and keeps the
 * answer in its data directory, as etcd's joining member fetches the
 * cluster from its peers. Called by Member.start before the storage opens.
 */
import * as grpc from "@grpc/grpc-js";
import { type ClientSecurity, makeClient } from "../security/client-security.js";
import { loadProto, lookup } from "../wire/proto.js";
import { LEGACY_CLUSTER_ID, isClusterId } from "./cluster-identity.js";

/** No member of --peers answered: the joiner cannot know which group it joins. */
export class ClusterIdUnknownError extends Error {
  readonly code = "CLUSTER_ID_UNKNOWN";
}

type StatusCall = (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { cluster_id?: string }) => void) => void;

/**
 * The cluster id of the first of `peers` (other than `selfId`) to answer,
 * asking them all at once, again every second until `timeoutMs`.
 */
export async function learnClusterId(peers: ReadonlyMap<string, string>, selfId: string, security: ClientSecurity, timeoutMs = 30_000): Promise<string> {
  const Admin = lookup<grpc.ServiceClientConstructor>(loadProto("member.proto"), "convene.member.v1.MemberAdmin");
  const others = [...peers].filter(([id]) => id !== selfId).map(([, address]) => address);
  if (others.length === 0) throw new ClusterIdUnknownError("--peers names no other member to ask for the cluster id (a joiner needs at least one member of the group)");
  const clients = others.map((address) => makeClient(Admin, address, security));
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      const answers = await Promise.all(
        clients.map(
          (client) =>
            new Promise<string | undefined>((resolve) => {
              (client as unknown as { Status: StatusCall }).Status({}, { deadline: Date.now() + 1_000 }, (err, res) =>
                resolve(err || !res ? undefined : res.cluster_id || LEGACY_CLUSTER_ID),
              );
            }),
        ),
      );
      const found = answers.find((a) => a !== undefined && isClusterId(a));
      if (found !== undefined) return found;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  } finally {
    for (const c of clients) c.close();
  }
  throw new ClusterIdUnknownError(`no member of --peers (${others.join(", ")}) answered within ${timeoutMs} ms: a joiner learns the group's cluster id from them; start it once the group runs`);
}
