/**
 * The operator commands of the Coordinator service (API.md), plus the
 * audit log: each is one call to any member, its answer rendered by
 * render.ts.
 *
 *   status                  ClusterStatus
 *   nodes                   ListNodes
 *   meetings [--node ID]    ListMeetings
 *   route MEETING [--create] [--region R] [--prefer NODE] [--require K=V] [--exclude K=V]   GetRoute
 *   checkpoint MEETING      GetCheckpoint (metadata and size, not the bytes)
 *   end MEETING             EndMeeting
 *   drain NODE [--migrate | --deadline D]   DrainNode
 *   transfer-leader [ID]    TransferLeadership
 *   log [--limit N]         MemberAdmin.AuditLog
 */
import { type Command, Option } from "commander";
import { durationArg, intArg, labelArg, meetingIdArg, memberIdArg, nodeIdArg } from "./arguments.js";
import { type ClusterClient, auditLog, listMeetings } from "./cluster-client.js";
import { CommandError } from "./errors.js";
import { runOperator, withClusterOptions } from "./operator.js";
import {
  type AuditEntry,
  type Checkpoint,
  type ClusterStatus,
  type DrainResult,
  type NodeInfo,
  type Route,
  renderAuditLog,
  renderCheckpoint,
  renderClusterStatus,
  renderDrain,
  renderMeetings,
  renderNodes,
  renderRoute,
} from "./render.js";

/** The node as ListNodes has it; a CommandError naming the registered ones when it is not there. */
async function knownNode(client: ClusterClient, nodeId: string): Promise<NodeInfo> {
  const { nodes } = await client.call<{ nodes: NodeInfo[] }>("coordinator", "ListNodes", {});
  const node = nodes.find((n) => n.node_id === nodeId);
  if (node) return node;
  const known = nodes.map((n) => n.node_id).sort();
  throw new CommandError(`no meeting server ${nodeId} is registered (registered: ${known.length === 0 ? "none" : known.join(", ")})`);
}

export function addClusterCommands(program: Command): void {
  withClusterOptions(program.command("status").description("the coordinator group: leader, term, each member's role and progress")).action(
    async (_opts: unknown, command: Command) =>
      runOperator(command, async (client) => renderClusterStatus(await client.call<ClusterStatus>("coordinator", "ClusterStatus", {}))),
  );

  withClusterOptions(program.command("nodes").description("registered meeting servers: state, meetings/capacity, region, generation")).action(
    async (_opts: unknown, command: Command) =>
      runOperator(command, async (client) => renderNodes(await client.call<{ nodes: NodeInfo[] }>("coordinator", "ListNodes", {}))),
  );

  withClusterOptions(
    program
      .command("meetings")
      .description("meetings and where each lives")
      .option("--node <id>", "only the meetings on this meeting server", nodeIdArg),
  ).action(async (opts: { node?: string }, command: Command) =>
    runOperator(command, async (client) => {
      const node = opts.node ?? "";
      const meetings = await listMeetings<Route>(client, node);
      // The filter of an unknown node matches nothing; say so rather than "no meetings".
      if (node !== "" && meetings.length === 0) await knownNode(client, node);
      return renderMeetings({ meetings }, node);
    }),
  );

  withClusterOptions(
    program
      .command("route")
      .description("where a meeting lives (with --create: place it if new)")
      .argument("<meeting>", "meeting id", meetingIdArg)
      .option("--create", "assign the meeting to a node if it has none")
      .option("--region <region>", "placement hint for a new meeting")
      .option("--prefer <node>", "with --create: put a new meeting on this server when it can take it", nodeIdArg)
      .option("--require <key=value>", "with --create: only servers with this label (repeatable; kept for later moves)", labelArg)
      .option("--exclude <key=value>", "with --create: never servers with this label (repeatable; kept for later moves)", labelArg),
  ).action(
    async (
      meeting: string,
      opts: { create?: boolean; region?: string; prefer?: string; require?: Record<string, string>; exclude?: Record<string, string> },
      command: Command,
    ) =>
      runOperator(command, async (client) =>
        renderRoute(
          await client.call<Route>("coordinator", "GetRoute", {
            meeting_id: meeting,
            create: opts.create === true,
            region: opts.region ?? "",
            preferred_node_id: opts.prefer ?? "",
            required_labels: opts.require ?? {},
            excluded_labels: opts.exclude ?? {},
          }),
        ),
      ),
  );

  withClusterOptions(
    program
      .command("checkpoint")
      .description("a meeting's last committed checkpoint: who saved it, epoch, sequence, size")
      .argument("<meeting>", "meeting id", meetingIdArg),
  ).action(async (meeting: string, _opts: unknown, command: Command) =>
    runOperator(command, async (client) => renderCheckpoint(await client.call<Checkpoint>("coordinator", "GetCheckpoint", { meeting_id: meeting }))),
  );

  withClusterOptions(
    program.command("end").description("end a meeting: it is unassigned and its checkpoint dropped").argument("<meeting>", "meeting id", meetingIdArg),
  ).action(async (meeting: string, _opts: unknown, command: Command) =>
    runOperator(command, async (client) => {
      await client.call("coordinator", "EndMeeting", { meeting_id: meeting });
      return { text: `ended ${meeting}\n`, json: { meeting_id: meeting, ended: true } };
    }),
  );

  withClusterOptions(
    program
      .command("drain")
      .description("stop placing new meetings on a meeting server (with --migrate: move its meetings now; with --deadline: hand them over then)")
      .argument("<node>", "meeting server id", nodeIdArg)
      .option("--migrate", "move its meetings to other nodes now, with their last checkpoints")
      .addOption(
        new Option("--deadline <duration>", "meetings that end within it end there; then the rest are handed over, each with a final checkpoint (e.g. 10m)")
          .argParser(durationArg(1, 24 * 3_600_000))
          .conflicts("migrate"),
      ),
  ).action(async (node: string, opts: { migrate?: boolean; deadline?: number }, command: Command) =>
    runOperator(command, async (client) => {
      const before = await knownNode(client, node);
      const migrate = opts.migrate === true;
      const r = await client.call<DrainResult>("coordinator", "DrainNode", { node_id: node, migrate, deadline_ms: opts.deadline ?? 0 });
      return renderDrain(before, migrate, r, opts.deadline ?? 0);
    }),
  );

  withClusterOptions(
    program
      .command("transfer-leader")
      .description("hand Raft leadership to a member (none given: the best caught-up one)")
      .argument("[id]", "member id", memberIdArg),
  ).action(async (id: string | undefined, _opts: unknown, command: Command) =>
    runOperator(command, async (client) => {
      if (id !== undefined) {
        const status = await client.call<ClusterStatus>("coordinator", "ClusterStatus", {});
        if (status.leader_id === id) return { text: `${id} is the leader already; nothing to do\n`, json: { leader_id: id, changed: false } };
        if (!status.members.some((m) => m.id === id)) {
          throw new CommandError(`${id} is not a member of the group (members: ${status.members.map((m) => m.id).sort().join(", ")}); nothing changed`);
        }
      }
      const r = await client.call<{ leader_id: string }>("coordinator", "TransferLeadership", { target_id: id ?? "" });
      return { text: `leader is now ${r.leader_id}\n`, json: { ...r, changed: true } };
    }),
  );

  withClusterOptions(
    program
      .command("log")
      .description("the audit trail of assignments and moves (newest last)")
      .addOption(new Option("--limit <n>", "at most the newest N entries (0: all that are kept)").argParser(intArg(0, 4_294_967_295)))
      // The old spelling `convene log [LIMIT]`.
      .argument("[limit]", "same as --limit", intArg(0, 4_294_967_295)),
  ).action(async (positional: number | undefined, opts: { limit?: number }, command: Command) =>
    runOperator(command, async (client) =>
      renderAuditLog({ entries: await auditLog<AuditEntry>(client, opts.limit ?? positional ?? 0) }),
    ),
  );
}
