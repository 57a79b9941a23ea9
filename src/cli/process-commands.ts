/**
 * The commands that run a long-lived process: a coordinator member, the
 * node agent sidecar, a gateway, a demo meeting server, and `start` (the
 * whole embedded default of docs/api.md in one process tree).
 *
 * Each reads its config file (YAML or JSON) first, lays the flags typed on
 * the command line over it, hands the result to its module's validator
 * (which refuses unknown keys, naming them), then starts the process and
 * closes it on SIGINT/SIGTERM (signals.ts; `start` and `agent` handle
 * their signals themselves).
 * Gateway, demo server and start are imported only when run, so the
 * operator commands do not load (or depend on) their code.
 */
import { type Command, Option } from "commander";
import { pino } from "pino";
import { Member } from "../member/member.js";
import { checkMemberConfigKeys, validateMemberConfig } from "../member/member-config.js";
import { AgentConfigError, agentUsage, runAgentSidecar } from "../node-agent/index.js";
import { ConfigFileError, configAndNames, configWithFlags, fieldNamer, flagsOf, readConfigFile } from "./config-file.js";
import { CommandFailed, EXIT_FAILED, UsageError, isConfigError } from "./errors.js";
import { writeOut } from "./operator.js";
import { stopOnSignals } from "./signals.js";

/**
 * Runs one step of starting `command`; a config error (of any module) becomes a UsageError of
 * `command` (exit 2), anything else a failure of `command` (exit 1).
 */
async function step<T>(command: string, run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof UsageError || err instanceof CommandFailed) throw err;
    if (err instanceof ConfigFileError || isConfigError(err)) throw new UsageError(command, err.message, { cause: err });
    const message = err instanceof Error ? err.message : String(err);
    throw new CommandFailed(command, EXIT_FAILED, message, { cause: err });
  }
}

/** Validation failures are usage errors whatever the validator throws: nothing has started yet. */
function validate<T>(command: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    throw new UsageError(command, err instanceof Error ? err.message : String(err), { cause: err });
  }
}

function addMember(program: Command): void {
  program
    .command("member")
    .description("run a coordinator member (one of the Raft group)")
    .option("--id <id>", "this member's id")
    .option("--listen <host:port>", "gRPC address to bind")
    .option("--peers <list>", "founding members: id=host:port,...")
    .option("--data <dir>", "LevelDB directory")
    .option("--join", "join an existing group (added with `convene members add`) instead of founding one")
    .option("--force-new-cluster", "recovery after losing a majority: start as the only member, keeping this member's data (README: Losing a majority)")
    .option("--tick-ms <n>", "Raft tick")
    .option("--election-ticks <n>", "election timeout, in ticks")
    .option("--heartbeat-ticks <n>", "heartbeat interval, in ticks")
    .option("--snapshot-every <n>", "applied entries between snapshots")
    .option("--snapshot-catch-up-entries <n>", "entries kept in memory behind each snapshot for followers a little behind (default 0; etcd keeps 5000)")
    .option("--request-timeout-ms <n>", "deadline of a proposal")
    .option("--app <app>", "replicated application: coordinator (default) or kv")
    .option("--placement-weights <list>", "placement's weights, e.g. meetings=1,cpu=2,netIn=1,netOut=1,participants=1 (the same on every member)")
    .option("--event-log-size <n>", "events kept for WatchEvents (default 20000; the same on every member)")
    .option("--log-level <level>", "pino level")
    .option("--metrics-listen <host:port>", "HTTP address of /metrics, /livez, /readyz (default 127.0.0.1:<gRPC port + 1000>; off for none)")
    .option("--cert <file>", "TLS: this member's certificate (PEM); with --key and --ca")
    .option("--key <file>", "TLS: the certificate's private key (PEM)")
    .option("--ca <file>", "TLS: the CA that signed the members' (and clients') certificates")
    .option("--require-client-cert", "mutual TLS: refuse clients without a certificate signed by --ca")
    .option("--tokens <file>", "tokens file (YAML): who may call, with which role; required with TLS or beyond loopback")
    .option("--insecure", "serve plaintext on a non-loopback address anyway")
    .option("--node-address-allow <cidrs>", "networks meeting servers' registered addresses must be in, e.g. 10.0.0.0/8,fd00::/8 (default: any address not refused always)")
    .option("--config <file>", "YAML or JSON file with the same fields (dataDir for --data, tokensFile for --tokens); flags override it")
    .action(async (opts: { config?: string }, command: Command) => {
      const config = await step("member", () => {
        const rename = { data: "dataDir", tokens: "tokensFile" };
        const fromFile = opts.config === undefined ? {} : checkMemberConfigKeys(readConfigFile(opts.config), opts.config);
        return validateMemberConfig({ ...fromFile, ...flagsOf(command, rename) }, fieldNamer(command, rename, fromFile));
      });
      const logger = pino({ level: config.logLevel, base: { member: config.id } });
      const member = await step("member", () => Member.start(config, logger));
      stopOnSignals(() => member.stop(), logger);
    });
}

function addAgent(program: Command): void {
  program
    .command("agent")
    .description("run the node agent as a sidecar of a meeting server (`convene agent --help` lists its flags)")
    // The sidecar parses its own flags (parseSidecarArgs): hand it everything after `agent`.
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .passThroughOptions()
    .argument("[flags...]")
    .action(async (flags: string[], _opts: unknown, command: Command) => {
      if (flags.includes("--help") || flags.includes("-h")) {
        writeOut(command, `${agentUsage}\n`);
        return;
      }
      try {
        await runAgentSidecar(flags, { handleSignals: true });
      } catch (err) {
        if (err instanceof AgentConfigError) throw new UsageError("agent", `${err.message} (convene agent --help lists every flag and the sidecar's HTTP API)`, { cause: err });
        throw new CommandFailed("agent", EXIT_FAILED, err instanceof Error ? err.message : String(err), { cause: err });
      }
    });
}

function addGateway(program: Command): void {
  program
    .command("gateway")
    .description("run an HTTP gateway that routes meeting traffic to the meeting's server")
    .option("--listen <host:port>", "HTTP address to bind (default 127.0.0.1:8080)")
    .option("--coordinators <list>", "coordinator members, comma-separated host:port")
    .option("--no-create", "do not create meetings on first request (GET /route answers 404 for unknown ones)")
    .option("--create-per-minute <n>", "limit on new meetings per minute")
    .option("--log-level <level>", "pino level")
    .option("--ca <file>", "TLS to the members: the CA that signed their certificates")
    .option("--cert <file>", "mutual TLS: the gateway's certificate")
    .option("--key <file>", "mutual TLS: its private key")
    .addOption(new Option("--token <token>", "bearer token of role gateway (better from $CONVENE_TOKEN)").env("CONVENE_TOKEN"))
    .option("--insecure", "send plaintext to members beyond loopback anyway")
    .option("--tls-cert <file>", "HTTPS (and WSS) on the gateway's own port: its certificate (PEM); with --tls-key")
    .option("--tls-key <file>", "the certificate's private key (PEM)")
    .option("--node-ca <file>", "proxy to meeting servers over HTTPS, verifying their certificates against this CA")
    .option("--node-address-allow <cidrs>", "networks a meeting server's address must be in to be proxied to, e.g. 10.0.0.0/8,fd00::/8")
    .option("--gateway-id <id>", "this gateway's id in the Via mark of what it proxies (default: random per start)")
    .addOption(new Option("--operator-pages <access>", "who sees the dashboard and /dashboard.json").choices(["off", "loopback", "token", "open"]))
    .addOption(new Option("--metrics-access <access>", "who may read /metrics").choices(["off", "loopback", "token", "open"]))
    .addOption(new Option("--operator-token <token>", "the token of --operator-pages/--metrics-access token (better from $CONVENE_OPERATOR_TOKEN)").env("CONVENE_OPERATOR_TOKEN"))
    .option("--config <file>", "YAML or JSON file: the flags' names in camelCase (createPerMinute), plus connectTimeoutMs, responseTimeoutMs, moveWaitMs, maxBodyBytes; flags override it")
    .action(async (_opts: unknown, command: Command) => {
      const { raw, names } = await step("gateway", () => configAndNames(command));
      const { validateGatewayConfig, startGateway } = await step("gateway", () => import("../gateway/index.js"));
      const config = validate("gateway", () => validateGatewayConfig(raw, names));
      const gateway = await step("gateway", () => startGateway(config));
      stopOnSignals(async () => {
        await gateway.close();
      });
    });
}

function addDemoServer(program: Command): void {
  program
    .command("demo-server")
    .description("run a small real meeting server that uses the node agent")
    .option("--node-id <id>", "its node id (required here or in the config file)")
    .option("--listen <host:port>", "HTTP address to bind")
    .option("--advertise <host:port>", "address registered with the coordinator (default: --listen)")
    .option("--coordinators <list>", "coordinator members, comma-separated host:port")
    .option("--capacity <n>", "max meetings")
    .option("--region <region>", "its region")
    .option("--checkpoint-interval-ms <n>", "how often each meeting's state is checkpointed")
    .option("--log-level <level>", "pino level")
    .option("--ca <file>", "TLS to the members: the CA that signed their certificates")
    .option("--cert <file>", "mutual TLS: the agent's certificate")
    .option("--key <file>", "mutual TLS: its private key")
    .addOption(new Option("--token <token>", "bearer token of role agent for this node id (better from $CONVENE_TOKEN)").env("CONVENE_TOKEN"))
    .option("--insecure", "send plaintext to members beyond loopback anyway")
    .option("--tls-cert <file>", "HTTPS (and WSS) on its own port: its certificate (PEM); with --tls-key")
    .option("--tls-key <file>", "the certificate's private key (PEM)")
    .option("--config <file>", "YAML or JSON file: the flags' names in camelCase (nodeId, checkpointIntervalMs), plus assignmentWaitMs; flags override it")
    .action(async (_opts: unknown, command: Command) => {
      const { raw, names } = await step("demo-server", () => configAndNames(command));
      const { validateDemoServerConfig, startDemoServer } = await step("demo-server", () => import("../demo-server/index.js"));
      const config = validate("demo-server", () => validateDemoServerConfig(raw, names));
      const server = await step("demo-server", () => startDemoServer(config));
      stopOnSignals(async () => {
        await server.close();
      });
    });
}

function addStart(program: Command): void {
  program
    .command("start")
    .description("run the embedded default: members n1-n3, a gateway and demo servers m1, m2, restarting any that dies (docs/api.md, docs/architecture.md)")
    .option("--data <dir>", "where the members keep their data and every process its log (default ./data); one run per directory")
    .option("--gateway-port <port>", "the gateway's HTTP port (default 8080)")
    .option("--member-ports <ports>", "the members' gRPC ports: one per member (7001,7002,7003) or a base port (default 7001)")
    .option("--demo-ports <ports>", "the demo servers' HTTP ports: one per server (9001,9002) or a base port (default 9001)")
    .option("--config <file>", "YAML or JSON file: dataDir, host, members, memberPorts, gatewayPort, demoServers, demoPorts, demoCapacity, checkpointIntervalMs, logLevel; flags override it")
    .action(async (_opts: unknown, command: Command) => {
      const raw = await step("start", () => configWithFlags(command, { data: "dataDir" }));
      const { runStart } = await step("start", () => import("../start/index.js"));
      // runStart stops its processes on SIGINT/SIGTERM itself, and reports a failed start and exits.
      await step("start", () => runStart(raw));
    });
}

export function addProcessCommands(program: Command): void {
  addMember(program);
  addAgent(program);
  addGateway(program);
  addDemoServer(program);
  addStart(program);
}
