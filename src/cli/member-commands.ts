/**
 * Runtime membership of the coordinator group (MemberAdmin in
 * proto/member.proto), through any member: followers forward to the leader.
 *
 *   members add ID HOST:PORT   a new member joins as a learner (catches up, does not vote)
 *   members promote ID         a caught-up learner becomes a voter
 *   members remove ID          a voter or learner leaves the group
 *
 * Also the old `convene admin ...` spelling (hidden from help, JSON output
 * as it always had), which README.md still shows.
 */
import type { Command } from "commander";
import { coordinatorsArg, hostPortArg, intArg, memberIdArg } from "./arguments.js";
import type { ClusterClient } from "./cluster-client.js";
import { CommandError } from "./errors.js";
import { auditLog } from "./cluster-client.js";
import { runOperator, withClusterOptions } from "./operator.js";
import { type AuditEntry, type MemberStatus, type Rendered, renderAuditLog, renderMembership } from "./render.js";

async function addLearner(client: ClusterClient, id: string, address: string): Promise<Rendered> {
  const s = await client.call<MemberStatus>("admin", "AddLearner", { id, address });
  return renderMembership(`${id} (${address}) added as a learner; promote it once it has caught up`, s);
}

async function promote(client: ClusterClient, id: string): Promise<Rendered> {
  const s = await client.call<MemberStatus>("admin", "Promote", { id });
  return renderMembership(`${id} promoted to voter`, s);
}

/**
 * Raft applies the removal of an id it does not know as a no-op, which
 * would report success for a typo; so the id is checked against the
 * group first (as the answering member sees it).
 */
async function remove(client: ClusterClient, id: string): Promise<Rendered> {
  const before = await client.call<MemberStatus>("admin", "Status", {});
  if (!before.voters.includes(id) && !before.learners.includes(id)) {
    const list = (ids: string[]): string => (ids.length === 0 ? "none" : [...ids].sort().join(", "));
    throw new CommandError(`${id} is not a member of the group (voters: ${list(before.voters)}; learners: ${list(before.learners)})`);
  }
  const s = await client.call<MemberStatus>("admin", "Remove", { id });
  return renderMembership(`${id} removed from the group`, s);
}

export function addMemberCommands(program: Command): void {
  const members = program.command("members").description("add, promote or remove coordinator members");
  withClusterOptions(
    members
      .command("add")
      .description("add a member as a learner (start it first with `convene member --join`)")
      .argument("<id>", "the new member's id", memberIdArg)
      .argument("<address>", "its host:port", hostPortArg),
  ).action(async (id: string, address: string, _opts: unknown, command: Command) => runOperator(command, (client) => addLearner(client, id, address)));
  withClusterOptions(
    members.command("promote").description("make a caught-up learner a voter").argument("<id>", "member id", memberIdArg),
  ).action(async (id: string, _opts: unknown, command: Command) => runOperator(command, (client) => promote(client, id)));
  withClusterOptions(
    members.command("remove").description("remove a voter or learner from the group").argument("<id>", "member id", memberIdArg),
  ).action(async (id: string, _opts: unknown, command: Command) => runOperator(command, (client) => remove(client, id)));

  addAdminAlias(program);
}

/** `convene admin [--server HOST:PORT] status | add-learner ID HOST:PORT | promote ID | remove ID | transfer ID | log [LIMIT]`. */
function addAdminAlias(program: Command): void {
  // Made by program.command(), not new Command(), so it inherits exitOverride (exit codes stay src/cli.ts's).
  const admin = program
    .command("admin", { hidden: true })
    .description("old spelling of `members`, `transfer-leader` and `log` (JSON output)")
    .option("--server <address>", "the member to ask", coordinatorsArg)
    .option("--timeout-ms <n>", "deadline of the call", intArg(1, 600_000));
  const legacy = (command: Command): Command => withClusterOptions(command).setOptionValue("json", true);
  legacy(admin.command("status").description("this member's view: role, term, indexes, voters, learners")).action(
    async (_opts: unknown, command: Command) =>
      runOperator(command, async (client) => {
        const s = await client.call<MemberStatus>("admin", "Status", {});
        return { text: "", json: s };
      }),
  );
  legacy(admin.command("add-learner").argument("<id>", "", memberIdArg).argument("<address>", "", hostPortArg)).action(
    async (id: string, address: string, _opts: unknown, command: Command) => runOperator(command, (client) => addLearner(client, id, address)),
  );
  legacy(admin.command("promote").argument("<id>", "", memberIdArg)).action(async (id: string, _opts: unknown, command: Command) =>
    runOperator(command, (client) => promote(client, id)),
  );
  legacy(admin.command("remove").argument("<id>", "", memberIdArg)).action(async (id: string, _opts: unknown, command: Command) =>
    runOperator(command, (client) => remove(client, id)),
  );
  legacy(admin.command("transfer").argument("<id>", "", memberIdArg)).action(async (id: string, _opts: unknown, command: Command) =>
    runOperator(command, async (client) => {
      const s = await client.call<MemberStatus>("admin", "TransferLeadership", { id });
      return { text: "", json: s };
    }),
  );
  legacy(admin.command("log").argument("[limit]", "", intArg(0, 4_294_967_295))).action(
    async (limit: number | undefined, _opts: unknown, command: Command) =>
      runOperator(command, async (client) => renderAuditLog({ entries: await auditLog<AuditEntry>(client, limit ?? 0) })),
  );
}
