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
import { durationArg, intArg, labelArg, meetingIdArg, nodeIdArg } from "./arguments.js";
import { auditLog, listMeetings } from "./cluster-client.js";
import { formatDuration } from "../node-agent/index.js";
import { runOperator, withClusterOptions } from "./operator.js";
import {
  type AuditEntry,
  type Checkpoint,
  type ClusterStatus,
  type NodeInfo,
  type Route,
  renderAuditLog,
  renderCheckpoint,
  renderClusterStatus,
  renderMeetings,
  renderNodes,
  renderRoute,
} from "./render.js";

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
    runOperator(command, async (client) =>
      renderMeetings({ meetings: await listMeetings<Route>(client, opts.node ?? "") }, opts.node ?? ""),
    ),
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
      const migrate = opts.migrate === true;
      await client.call("coordinator", "DrainNode", { node_id: node, migrate, deadline_ms: opts.deadline ?? 0 });
      const text = migrate
        ? `${node} is draining; its meetings are moving to other nodes\n`
        : opts.deadline !== undefined
          ? `${node} is draining: no new meetings; in ${formatDuration(opts.deadline)} the meetings still there are handed over (\`convene undrain ${node}\` puts it back)\n`
          : `${node} is draining: it gets no new meetings; its meetings stay until they end (--migrate moves them)\n`;
      return { text, json: { node_id: node, draining: true, migrate, deadline_ms: opts.deadline ?? 0 } };
    }),
  );

  withClusterOptions(
    program
      .command("transfer-leader")
      .description("hand Raft leadership to a member (none given: the best caught-up one)")
      .argument("[id]", "member id", nodeIdArg),
  ).action(async (id: string | undefined, _opts: unknown, command: Command) =>
    runOperator(command, async (client) => {
      const r = await client.call<{ leader_id: string }>("coordinator", "TransferLeadership", { target_id: id ?? "" });
      return { text: `leader is now ${r.leader_id}\n`, json: r };
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
