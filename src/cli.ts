#!/usr/bin/env node
/**
 * The convene command line.
 *   convene member --id n1 --listen 127.0.0.1:7001 \
 *     --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003 --data ./data/n1
 *   convene member --config member.json   (same fields; flags override the file)
 */
import { parseArgs } from "node:util";
import { pino } from "pino";
import { ConfigError } from "./raft/errors.js";
import { runAdmin } from "./member/admin-cli.js";
import { AgentConfigError, agentUsage, runAgentSidecar } from "./node-agent/index.js";
import { Member } from "./member/member.js";
import { type RawMemberConfig, loadConfigFile, validateMemberConfig } from "./member/member-config.js";

const usage = `usage:
  convene member --id ID --listen HOST:PORT --peers ID=HOST:PORT,... --data DIR
                 [--join] [--tick-ms N] [--election-ticks N] [--heartbeat-ticks N]
                 [--snapshot-every N] [--request-timeout-ms N] [--log-level LEVEL]
                 [--app coordinator|kv]
                 [--config FILE]
  convene admin [--server HOST:PORT] status | add-learner ID HOST:PORT | promote ID | remove ID | transfer ID
  convene log [--server HOST:PORT] [LIMIT]   the audit trail of assignments and moves
  convene agent ...   (the node agent sidecar; see below)

${agentUsage}`;

async function runMember(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      id: { type: "string" },
      listen: { type: "string" },
      peers: { type: "string" },
      data: { type: "string" },
      join: { type: "boolean" },
      "tick-ms": { type: "string" },
      "election-ticks": { type: "string" },
      "heartbeat-ticks": { type: "string" },
      "snapshot-every": { type: "string" },
      "request-timeout-ms": { type: "string" },
      "log-level": { type: "string" },
      config: { type: "string" },
      app: { type: "string" },
    },
  });
  const fromFile: RawMemberConfig = values.config ? loadConfigFile(values.config) : {};
  const flags: RawMemberConfig = {
    id: values.id,
    listen: values.listen,
    peers: values.peers,
    dataDir: values.data,
    join: values.join,
    tickMs: values["tick-ms"],
    electionTicks: values["election-ticks"],
    heartbeatTicks: values["heartbeat-ticks"],
    snapshotEvery: values["snapshot-every"],
    requestTimeoutMs: values["request-timeout-ms"],
    logLevel: values["log-level"],
    app: values.app,
  };
  const merged: RawMemberConfig = { ...fromFile };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  const config = validateMemberConfig(merged);
  const logger = pino({ level: config.logLevel, base: { member: config.id } });
  const member = await Member.start(config, logger);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping");
    member.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "stop failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  switch (command) {
    case "member":
      await runMember(rest);
      return;
    case "admin":
      await runAdmin(rest);
      return;
    case "log":
      await runAdmin(["log", ...rest]);
      return;
    case "agent":
      await runAgentSidecar(rest, { handleSignals: true });
      return;
    default:
      console.error(usage);
      process.exit(command === undefined || command === "--help" ? 0 : 2);
  }
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof AgentConfigError || (err instanceof Error && "code" in err && err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION")) {
    console.error(`convene: ${err.message}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
