/**
 * Backup and restore (README "Operating convene"):
 *
 *   snapshot save FILE      the whole replicated state, through any member (MemberAdmin.Snapshot)
 *   snapshot status FILE    checks a backup and says what it holds
 *   snapshot restore FILE --data DIR --id ID --peers LIST
 *                           a new member data directory from a backup, for a new group
 *
 * save writes FILE atomically (backup-file.ts): an interrupted save leaves
 * no file, or the previous one. status and restore read the whole file and
 * refuse it, saying why, when it is truncated, corrupted or not a backup;
 * restore then writes nothing.
 */
import * as grpc from "@grpc/grpc-js";
import type { Command } from "commander";
import { type BackupHeader, BackupWriter, readBackup } from "../member/backup-file.js";
import { parsePeers } from "../member/member-config.js";
import { decodeBackupState, restoreDataDir } from "../member/restore-data-dir.js";
import { isHostPort, memberIdArg } from "./arguments.js";
import { HOST_PORT_RULE, describeValue, idProblem } from "../wire/describe.js";
import type { ClusterClient } from "./cluster-client.js";
import { CallError, CommandError, CommandFailed, UsageError } from "./errors.js";
import { commandPath, runOperator, withClusterOptions } from "./operator.js";
import type { Rendered } from "./render.js";
import { formatFields } from "./table.js";

interface SnapshotChunk {
  index: number;
  term: number;
  cluster_id: string;
  member_id: string;
  voters: string[];
  learners: string[];
  size: number;
  sha256: Buffer;
  taken_at_ms: number;
  data: Buffer;
}

const TRY_NEXT = new Set<grpc.status>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

function headerOf(c: SnapshotChunk): BackupHeader {
  return {
    index: c.index,
    term: c.term,
    clusterId: c.cluster_id,
    member: c.member_id,
    takenAtMs: c.taken_at_ms,
    voters: c.voters,
    learners: c.learners,
    stateBytes: c.size,
    stateSha256: Buffer.from(c.sha256).toString("hex"),
  };
}

/**
 * Streams one member's backup into `file`. The first chunk must come within
 * `timeoutMs` (the member's ReadIndex round and the capture), and then no
 * gap between chunks may be longer: a stalled transfer is given up.
 */
function saveFrom(client: ClusterClient, address: string, file: string, timeoutMs: number): Promise<{ header: BackupHeader; sha256: string }> {
  const writer = new BackupWriter(file);
  const stream = client.openStream<SnapshotChunk>("admin", address, "Snapshot", {});
  return new Promise((resolve, reject) => {
    let header: BackupHeader | undefined;
    let settled = false;
    let idle: NodeJS.Timeout | undefined;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      writer.abort();
      stream.cancel();
      reject(err);
    };
    const arm = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => fail(new CallError(grpc.status.DEADLINE_EXCEEDED, `${address} sent nothing for ${timeoutMs} ms`)), timeoutMs);
    };
    arm();
    stream.on("data", (chunk: SnapshotChunk) => {
      if (settled) return;
      try {
        if (!header) {
          header = headerOf(chunk);
          writer.begin(header);
        }
        if (chunk.data.length > 0) writer.write(chunk.data);
        arm();
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    });
    stream.on("error", () => undefined); // the outcome comes with 'status'
    stream.on("status", (status: grpc.StatusObject) => {
      if (settled) return;
      if (status.code !== grpc.status.OK) return fail(new CallError(status.code, status.details));
      if (!header) return fail(new CommandError(`${address} ended the backup before sending anything`));
      try {
        const sha256 = writer.commit();
        settled = true;
        clearTimeout(idle);
        resolve({ header, sha256 });
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

async function save(client: ClusterClient, file: string, timeoutMs: number): Promise<Rendered> {
  const tried: string[] = [];
  let last: CallError | undefined;
  for (const address of client.coordinators) {
    tried.push(address);
    try {
      const { header, sha256 } = await saveFrom(client, address, file, timeoutMs);
      return {
        text: `saved ${file}: index ${header.index}, term ${header.term}, ${header.stateBytes} bytes of state from ${header.member}\nsha256 ${sha256}\n`,
        json: { file, index: header.index, term: header.term, cluster_id: header.clusterId, member: header.member, state_bytes: header.stateBytes, sha256 },
      };
    } catch (err) {
      if (!(err instanceof CallError) || !TRY_NEXT.has(err.code)) throw err;
      last = err;
    }
  }
  throw new CallError(last!.code, tried.length > 1 ? `${last!.details} (tried ${tried.join(", ")})` : last!.details);
}

function describe(file: string): Rendered {
  const backup = readBackup(file);
  const state = decodeBackupState(backup, file);
  const h = backup.header;
  const list = (ids: readonly string[]): string => (ids.length === 0 ? "none" : ids.join(", "));
  const json = {
    file,
    size_bytes: backup.size,
    sha256: backup.sha256,
    index: h.index,
    term: h.term,
    cluster_id: h.clusterId,
    member: h.member,
    taken_at_ms: h.takenAtMs,
    voters: h.voters,
    learners: h.learners,
    nodes: state.nodes.size,
    meetings: state.meetings.size,
    checkpoints: state.checkpoints.size,
    state_bytes: h.stateBytes,
  };
  const text = formatFields([
    ["file", file],
    ["size", `${backup.size} bytes`],
    ["checksum", `sha256 ${backup.sha256}`],
    ["index", String(h.index)],
    ["term", String(h.term)],
    ["cluster", h.clusterId],
    ["taken", `${new Date(h.takenAtMs).toISOString()} from ${h.member}`],
    ["members", `voters ${list(h.voters)}; learners ${list(h.learners)}`],
    ["nodes", String(json.nodes)],
    ["meetings", String(json.meetings)],
    ["checkpoints", String(json.checkpoints)],
  ]);
  return { text, json };
}

/** A local command (no cluster call): its failures are the file's or the flags', named after the command. */
async function runLocal(command: Command, body: () => Rendered | Promise<Rendered>, json: boolean): Promise<void> {
  let rendered: Rendered;
  try {
    rendered = await body();
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new CommandFailed(commandPath(command), 1, err instanceof Error ? err.message : String(err), { cause: err });
  }
  process.stdout.write(json ? `${JSON.stringify(rendered.json, null, 2)}\n` : rendered.text);
}

export function addSnapshotCommands(program: Command): void {
  const snapshot = program.command("snapshot").description("back up the replicated state, check a backup, restore a member from one");

  withClusterOptions(
    snapshot
      .command("save")
      .description("write the whole replicated state (linearizable, at one index) to FILE, atomically")
      .argument("<file>", "the backup file to write (replaced whole, or not at all)"),
  ).action(async (file: string, _opts: unknown, command: Command) => {
    const { timeoutMs } = command.optsWithGlobals<{ timeoutMs: number }>();
    await runOperator(command, (client) => save(client, file, timeoutMs));
  });

  snapshot
    .command("status")
    .description("check a backup file and show what it holds: checksum, index, term, counts, size")
    .argument("<file>", "a file written by `convene snapshot save`")
    .option("--json", "print as JSON")
    .action(async (file: string, opts: { json?: boolean }, command: Command) => runLocal(command, () => describe(file), opts.json === true));

  snapshot
    .command("restore")
    .description("build a new member's data directory from a backup: one group, a new cluster identity")
    .argument("<file>", "a file written by `convene snapshot save`")
    .requiredOption("--data <dir>", "the data directory to create (must not exist, or be empty)")
    .requiredOption("--id <id>", "this member's id in the new group", memberIdArg)
    .requiredOption("--peers <list>", "every member of the new group: id=host:port,... (the same on each restore)")
    .option("--cluster-token <token>", "mixed into the new cluster id (the same on each restore)")
    .option("--json", "print as JSON")
    .action(async (file: string, opts: { data: string; id: string; peers: string; clusterToken?: string; json?: boolean }, command: Command) => {
      let peers: Map<string, string>;
      try {
        peers = parsePeers(opts.peers);
      } catch (err) {
        throw new UsageError(commandPath(command), `--peers: ${(err as Error).message}`, { cause: err });
      }
      for (const [id, address] of peers) {
        const problem = idProblem("member", id);
        if (problem) throw new UsageError(commandPath(command), `--peers: each member's id ${problem}`);
        if (!isHostPort(address)) throw new UsageError(commandPath(command), `--peers: the address of ${id} must be ${HOST_PORT_RULE}; got ${describeValue(address)}`);
      }
      if (!peers.has(opts.id)) throw new UsageError(commandPath(command), `--peers must include --id ${opts.id}`);
      await runLocal(
        command,
        async () => {
          const backup = readBackup(file);
          const r = await restoreDataDir(backup, file, { dataDir: opts.data, id: opts.id, peers, ...(opts.clusterToken ? { clusterToken: opts.clusterToken } : {}) });
          const text =
            `restored ${opts.data} for member ${opts.id}: index ${r.index}, term ${r.term}, voters ${r.voters.join(", ")}\n` +
            `cluster id ${r.clusterId} (new: members of the backed-up group will not talk to this one)\n` +
            `start it: convene member --id ${opts.id} --listen ${peers.get(opts.id)} --peers ${opts.peers} --data ${opts.data}\n`;
          return { text, json: { data: opts.data, id: opts.id, index: r.index, term: r.term, voters: r.voters, cluster_id: r.clusterId } };
        },
        opts.json === true,
      );
    });
}
