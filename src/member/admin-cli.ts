/**
 * `convene admin`: an operator's view of a running group, through any
 * member (followers forward to the leader).
 *   convene admin --server HOST:PORT status
 *   convene admin --server HOST:PORT add-learner ID HOST:PORT
 *   convene admin --server HOST:PORT promote ID
 *   convene admin --server HOST:PORT remove ID
 *   convene admin --server HOST:PORT transfer ID
 *   convene admin --server HOST:PORT log [LIMIT]   (also: convene log)
 */
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { ConfigError } from "../raft/errors.js";
import { loadProto, lookup } from "./proto.js";

const commands: Record<string, { method: string; args: ("id" | "address")[] }> = {
  status: { method: "Status", args: [] },
  "add-learner": { method: "AddLearner", args: ["id", "address"] },
  promote: { method: "Promote", args: ["id"] },
  remove: { method: "Remove", args: ["id"] },
  transfer: { method: "TransferLeadership", args: ["id"] },
  log: { method: "AuditLog", args: [] },
};

export async function runAdmin(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { server: { type: "string", default: "127.0.0.1:7001" }, "timeout-ms": { type: "string", default: "10000" } },
  });
  const [name, ...rest] = positionals;
  const command = name ? commands[name] : undefined;
  if (!command) throw new ConfigError(`admin command must be one of ${Object.keys(commands).join(", ")}, got ${JSON.stringify(name)}`);
  const request: Record<string, string | number> = { id: "", address: "" };
  if (name === "log") {
    const limit = rest.length === 0 ? 0 : Number(rest[0]);
    if (rest.length > 1 || !Number.isInteger(limit) || limit < 0) throw new ConfigError(`admin log takes an optional LIMIT (a non-negative integer), got ${rest.join(" ")}`);
    rest.length = 0;
    request.limit = limit;
  }
  if (rest.length !== command.args.length) {
    throw new ConfigError(`admin ${name} takes ${command.args.map((a) => a.toUpperCase()).join(" ") || "no arguments"}`);
  }
  command.args.forEach((a, i) => (request[a] = rest[i]!));
  const Admin = lookup<grpc.ServiceClientConstructor>(loadProto("member.proto"), "convene.member.v1.MemberAdmin");
  const client = new Admin(values.server!, grpc.credentials.createInsecure());
  try {
    const response = await new Promise<unknown>((resolve, reject) => {
      const fn = (client as unknown as Record<string, (r: unknown, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: unknown) => void) => void>)[command.method]!;
      fn.call(client, request, { deadline: Date.now() + Number(values["timeout-ms"]) }, (err, res) => (err ? reject(err) : resolve(res)));
    });
    console.log(JSON.stringify(response, null, 2));
  } catch (err) {
    const e = err as grpc.ServiceError;
    console.error(`convene admin ${name}: ${grpc.status[e.code] ?? "ERROR"}: ${e.details ?? e.message}`);
    process.exitCode = 1;
  } finally {
    client.close();
  }
}
