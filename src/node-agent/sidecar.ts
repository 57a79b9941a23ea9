/**
 * The node agent as a separate process, for meeting servers not written in
 * Node.js (`convene agent`, wired by src/cli.ts through runAgentSidecar):
 *
 *   convene agent --coordinators 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 \
 *     --node-id m1 --address 127.0.0.1:9001 --capacity 100 \
 *     --listen 127.0.0.1:7400 --webhook http://127.0.0.1:9001/convene/events
 *
 * The host learns of assignments from the webhook (webhook.ts) or by
 * polling GET /meetings, PUTs each meeting's state whenever it likes (the
 * periodic checkpoint saves the last one PUT), and may POST a checkpoint
 * now (sidecar-http.ts). A planned move of a meeting is a "handover"
 * notice: the host stops writing to it and POSTs its final state to
 * /meetings/{id}/handover; a host that does not answer within
 * --handover-wait-ms hands over the last state it PUT. Load figures PUT to
 * /load go with every heartbeat.
 *
 * On SIGTERM/SIGINT the sidecar stops the way NodeAgent.shutdown does: the
 * node drains, meetings that end within --drain-deadline (default 0) end
 * here, the rest are handed over, then it deregisters and exits.
 */
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { SecurityConfigError } from "../security/errors.js";
import { readTlsFiles } from "../security/tls-files.js";
import type { FieldNames } from "../wire/describe.js";
import { type AgentLogger, type AgentOptions, type LoadSample, type RawAgentOptions, intField, isHostPort, shown, validateAgentConfig } from "./agent-config.js";
import { parseDuration } from "./duration.js";
import { AgentConfigError } from "./errors.js";
import type { ShutdownOptions, StopOptions } from "./agent-events.js";
import { NodeAgent } from "./node-agent.js";
import { type HeldState, sidecarHandler } from "./sidecar-http.js";
import { WebhookNotifier } from "./webhook.js";

export interface SidecarOptions {
  /** The agent's options but its callbacks, which the sidecar supplies. */
  readonly agent: Omit<AgentOptions, "onAssigned" | "onRevoked" | "getState" | "onHandover" | "reportLoad">;
  /** Loopback "host:port" of the HTTP API; port 0 picks a free one. */
  readonly listen: string;
  /** Where assignment changes are POSTed; none: the host polls GET /meetings. */
  readonly webhookUrl?: string;
  /** Largest state a PUT accepts; default 256 KiB (the coordinator's default limit). */
  readonly maxStateBytes?: number;
  readonly webhookTimeoutMs?: number;
  readonly webhookAttempts?: number;
  /** How long a hand-over waits for the host's final state before using the last one PUT; default 5,000. */
  readonly handoverWaitMs?: number;
  /** On SIGTERM/SIGINT: meetings still here after this many ms are handed over; default 0 (at once). */
  readonly drainDeadlineMs?: number;
}

export const sidecarDefaults = {
  listen: "127.0.0.1:7400",
  maxStateBytes: 256 * 1024,
  webhookTimeoutMs: 2000,
  webhookAttempts: 3,
  handoverWaitMs: 5000,
  drainDeadlineMs: 0,
} as const;

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** The options as `convene agent` spells them, for messages (`--node-id is required`). */
const SIDECAR_FLAGS: Readonly<Record<string, string>> = {
  coordinators: "--coordinators",
  nodeId: "--node-id",
  address: "--address",
  capacity: "--capacity",
  region: "--region",
  labels: "--label",
  listen: "--listen",
  webhook: "--webhook",
  checkpointIntervalMs: "--checkpoint-interval-ms",
  rpcTimeoutMs: "--rpc-timeout-ms",
  maxStateBytes: "--max-state-bytes",
  token: "--token",
  insecure: "--insecure",
  handoverWaitMs: "--handover-wait-ms",
  drainDeadlineMs: "--drain-deadline",
  limits: "--limit-*",
};
export const sidecarFlagNames: FieldNames = (field) => SIDECAR_FLAGS[field] ?? field;

function splitHostPort(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(":");
  return { host: listen.slice(0, colon), port: Number(listen.slice(colon + 1)) };
}

function validateListen(value: unknown, names: FieldNames): string {
  if (!isHostPort(value, true) || !LOOPBACK_HOSTS.has(splitHostPort(value).host)) {
    throw new AgentConfigError(`${names("listen")} must be a loopback host:port (127.0.0.1, localhost or [::1]; port 0 picks a free one); got ${shown(value)}`);
  }
  return value;
}

function validateWebhook(value: unknown, names: FieldNames): string | undefined {
  if (value === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = typeof value === "string" ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new AgentConfigError(`${names("webhook")} must be an http:// or https:// URL; got ${shown(value)}`);
  }
  return url.toString();
}

export class AgentSidecar {
  readonly agent: NodeAgent;
  /** Per held meeting: the last state the host PUT, and the checkpoint it was restored from. */
  private readonly held = new Map<string, HeldState>();
  /** Hand-overs waiting for the host's final state: meeting id → resolve. */
  private readonly handovers = new Map<string, (state: Uint8Array | undefined) => void>();
  private load: Required<LoadSample> | undefined;
  readonly drainDeadlineMs: number;
  private readonly server: Server;
  private readonly webhook: WebhookNotifier | undefined;
  private readonly listen: string;

  /**
   * Validates everything (AgentConfigError names the field, as `names`
   * spells it: the option names by default, the flags for `convene agent`);
   * starts nothing.
   */
  constructor(options: SidecarOptions, names: FieldNames = (field) => field) {
    const callbacks = { onAssigned: () => undefined, onRevoked: () => undefined, getState: () => undefined };
    validateAgentConfig({ ...options.agent, ...callbacks }, names);
    this.listen = validateListen(options.listen, names);
    const webhookUrl = validateWebhook(options.webhookUrl, names);
    const maxStateBytes = intField("maxStateBytes", options.maxStateBytes ?? sidecarDefaults.maxStateBytes, 1, 64 * 1024 * 1024, names);
    const handoverWaitMs = intField("handoverWaitMs", options.handoverWaitMs ?? sidecarDefaults.handoverWaitMs, 0, 3_600_000, names);
    this.drainDeadlineMs = intField("drainDeadlineMs", options.drainDeadlineMs ?? sidecarDefaults.drainDeadlineMs, 0, 24 * 3_600_000, names);
    const log: AgentLogger = options.agent.logger ?? pino({ level: "silent" });
    this.webhook = webhookUrl
      ? new WebhookNotifier(
          {
            url: webhookUrl,
            timeoutMs: intField("webhookTimeoutMs", options.webhookTimeoutMs ?? sidecarDefaults.webhookTimeoutMs, 1, 600_000),
            attempts: intField("webhookAttempts", options.webhookAttempts ?? sidecarDefaults.webhookAttempts, 1, 100),
            retryMs: 100,
          },
          log,
        )
      : undefined;
    this.agent = new NodeAgent({
      ...options.agent,
      // A new tenure starts with no state from the host: an older PUT must not be saved under it.
      onAssigned: (meetingId, epoch, checkpoint) => void this.held.set(meetingId, { epoch, put: undefined, restored: checkpoint }),
      onRevoked: (meetingId) => void this.held.delete(meetingId),
      getState: (meetingId) => this.held.get(meetingId)?.put,
      onHandover: (meetingId, epoch) => this.awaitFinalState(meetingId, epoch, handoverWaitMs),
      reportLoad: () => this.load ?? {},
    });
    this.agent.on("assigned", ({ meetingId, epoch, checkpoint }) =>
      this.webhook?.notify({ type: "assigned", meetingId, epoch, checkpoint: checkpoint ? Buffer.from(checkpoint.state).toString("base64") : null }),
    );
    this.agent.on("revoked", ({ meetingId, epoch }) => {
      this.handovers.get(meetingId)?.(undefined);
      this.webhook?.notify({ type: "revoked", meetingId, epoch, checkpoint: null });
    });
    // Errors are logged by the agent; listening keeps them from being raised.
    this.agent.on("error", () => undefined);
    this.server = createServer(
      sidecarHandler({
        agent: this.agent,
        held: this.held,
        maxStateBytes,
        handOver: (meetingId, state) => {
          const resolve = this.handovers.get(meetingId);
          resolve?.(state);
          return resolve !== undefined;
        },
        setLoad: (sample) => (this.load = sample),
      }),
    );
  }

  /** The HTTP API's base URL, e.g. http://127.0.0.1:7400 (after start). */
  get url(): string {
    const address = this.server.address() as AddressInfo | null;
    if (!address) throw new Error("the sidecar is not listening");
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  /** Opens the HTTP API, then starts the agent (resolves once registered). */
  async start(): Promise<void> {
    const { host, port } = splitHostPort(this.listen);
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host.replace(/^\[|\]$/g, ""), () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    try {
      await this.agent.start();
    } catch (err) {
      await this.closeServer();
      throw err;
    }
  }

  /**
   * The final state of a meeting being handed over: what the host POSTs to
   * /meetings/{id}/handover, or after `waitMs` the last state it PUT (a
   * host that does not know about hand-overs loses nothing it had PUT).
   */
  private awaitFinalState(meetingId: string, epoch: number, waitMs: number): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => finish(undefined), waitMs);
      timer.unref();
      const finish = (state: Uint8Array | undefined): void => {
        if (this.handovers.get(meetingId) !== finish) return;
        clearTimeout(timer);
        this.handovers.delete(meetingId);
        const final = state ?? this.held.get(meetingId)?.put;
        if (final) resolve(final);
        else reject(new Error(`no state of meeting ${meetingId} was given: neither POSTed to /meetings/${meetingId}/handover nor PUT before`));
      };
      this.handovers.set(meetingId, finish);
      this.webhook?.notify({ type: "handover", meetingId, epoch, checkpoint: null });
    });
  }

  /** A planned stop (NodeAgent.shutdown), then the webhook and the HTTP API close. */
  async shutdown(options: ShutdownOptions = { deadlineMs: this.drainDeadlineMs }): Promise<void> {
    try {
      await this.agent.shutdown(options);
    } finally {
      await this.webhook?.close();
      await this.closeServer();
    }
  }

  /** Stops the agent (see NodeAgent.stop), delivers queued webhook notices, closes the HTTP API. */
  async stop(options: StopOptions = {}): Promise<void> {
    try {
      await this.agent.stop(options);
    } finally {
      await this.webhook?.close();
      await this.closeServer();
    }
  }

  /** Resolves once every webhook notice queued so far was delivered or given up (for tests). */
  webhookIdle(): Promise<void> {
    return this.webhook?.idle() ?? Promise.resolve();
  }

  private closeServer(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** `convene agent --help`: everything a host needs to integrate, also in docs/api.md ("The node agent sidecar"). */
export const agentUsage = `convene agent: the node agent as a sidecar process, for a meeting server not written
in Node.js. It registers the server with the coordinator, heartbeats, follows which
meetings the server must host, and saves each meeting's state as a checkpoint.

usage:
  convene agent --coordinators HOST:PORT,... --node-id ID --address HOST:PORT --capacity N [options]

required:
  --coordinators LIST      the coordinator members, comma-separated host:port (any one answers)
  --node-id ID             this meeting server's id: 1 to 64 letters, digits, ".", "_" or "-"
  --address HOST:PORT      where the meeting server itself serves meeting HTTP and WebSocket
                           traffic: gateways proxy the meeting's users there (not the sidecar)
  --capacity N             the most meetings the server hosts at once
options:
  --listen HOST:PORT       the sidecar's HTTP API, loopback only (default ${sidecarDefaults.listen}; port 0 picks one)
  --webhook URL            where assignment changes are POSTed (without it, poll GET /meetings)
  --region R               placement hint: meetings asking for region R prefer this server
  --label KEY=VALUE        a placement label (repeatable)
  --checkpoint-interval-ms N   how often each meeting's last PUT state is saved (default 2000)
  --rpc-timeout-ms N       deadline of each call to the coordinator (default 1000)
  --max-state-bytes N      largest state a PUT accepts (default ${sidecarDefaults.maxStateBytes}, the coordinator's default limit)
  --log-level LEVEL        fatal, error, warn, info (default), debug, trace or silent
  --ca FILE                TLS to the members: the CA that signed their certificates
  --cert FILE --key FILE   this server's certificate, for members that require client certificates
  --token TOKEN            bearer token of role agent for --node-id (better: $CONVENE_TOKEN)
  --insecure               send plaintext to members beyond loopback anyway
  --drain-deadline DURATION   on SIGTERM/SIGINT, meetings that end within it (e.g. 10m) end here;
                           the rest are then handed over with their final state (default 0: at once)
  --handover-wait-ms N     how long a hand-over waits for the host's final state before it hands
                           over the last state PUT (default ${sidecarDefaults.handoverWaitMs})
  --limit-cpu 0..1 --limit-net-in B/S --limit-net-out B/S --limit-participants N
                           hard limits for placement, against the figures the host PUTs to /load
                           (honoured from cluster version 3; before it, a register with limits is refused)

HTTP API on --listen (errors are JSON {"error": code, "message": text}):
  GET  /healthz                    200 {"nodeId","generation"} while registered, else 503
  GET  /meetings                   200 {"nodeId","generation","meetings":[{"meetingId","epoch","handingOver"}]}
  GET  /meetings/{id}/state        200, the state as bytes: the last one PUT, else the checkpoint the
                                   meeting was restored from (X-Convene-State-Source: put | checkpoint;
                                   X-Convene-Epoch; X-Convene-Sequence for a checkpoint);
                                   404 not_held, or no_state when there is neither
  PUT  /meetings/{id}/state        204; the body (any bytes, up to --max-state-bytes) is what the next
                                   checkpoint saves; 404 not_held, 413 too_large
  POST /meetings/{id}/checkpoint   200 {"meetingId","sequence"} once saved and committed; 409 no_state
                                   or moved (no longer this server's), moving (being handed over),
                                   503 unavailable (Retry-After)
  POST /meetings/{id}/handover     202 {"meetingId"}: the body is the final state of a meeting being
                                   handed over; the host accepts no more writes to it;
                                   409 not_handing_over when no hand-over of it is under way
  PUT  /load                       204; JSON {"cpu","netInBytesPerSec","netOutBytesPerSec","participants"}:
                                   the figures the next heartbeats carry (placement by load); 400 bad_load

Webhook: one POST per change, in order, each tried 3 times; JSON body
  {"type":"assigned","meetingId":"room-1","epoch":2,"checkpoint":"<state, base64>" or null}
  {"type":"revoked","meetingId":"room-1","epoch":2,"checkpoint":null}
  {"type":"handover","meetingId":"room-1","epoch":2,"checkpoint":null}
On "assigned" start serving the meeting from its checkpoint; on "revoked" stop serving it;
on "handover" stop accepting writes and POST its final state to /meetings/{id}/handover.

SIGTERM or SIGINT: the server drains (no new meetings); meetings that end within
--drain-deadline end here, the rest are handed over with their final state, then it
deregisters and exits. More: docs/api.md.`;

/** Parses `convene agent` flags into sidecar options (numbers checked later, by the validators). */
export function parseSidecarArgs(argv: readonly string[], logger?: AgentLogger): SidecarOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        coordinators: { type: "string" },
        "node-id": { type: "string" },
        address: { type: "string" },
        capacity: { type: "string" },
        region: { type: "string" },
        label: { type: "string", multiple: true },
        listen: { type: "string" },
        webhook: { type: "string" },
        "checkpoint-interval-ms": { type: "string" },
        "rpc-timeout-ms": { type: "string" },
        "max-state-bytes": { type: "string" },
        "log-level": { type: "string" },
        ca: { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        token: { type: "string" },
        insecure: { type: "boolean" },
        "drain-deadline": { type: "string" },
        "handover-wait-ms": { type: "string" },
        "limit-cpu": { type: "string" },
        "limit-net-in": { type: "string" },
        "limit-net-out": { type: "string" },
        "limit-participants": { type: "string" },
      },
    }));
  } catch (err) {
    throw new AgentConfigError(err instanceof Error ? err.message : String(err), { cause: err });
  }
  const labels: Record<string, string> = {};
  for (const label of values.label ?? []) {
    const eq = label.indexOf("=");
    if (eq <= 0) throw new AgentConfigError(`--label must be KEY=VALUE; got ${shown(label)}`);
    labels[label.slice(0, eq)] = label.slice(eq + 1);
  }
  let tls: RawAgentOptions["tls"];
  try {
    const files = readTlsFiles({ ca: values.ca, cert: values.cert, key: values.key });
    if (files && !files.ca) throw new SecurityConfigError("--ca is required with --cert and --key: TLS to the members is turned on by --ca");
    tls = files;
  } catch (err) {
    throw new AgentConfigError(err instanceof Error ? err.message : String(err), { cause: err });
  }
  let drainDeadlineMs: number | undefined;
  if (values["drain-deadline"] !== undefined) {
    drainDeadlineMs = parseDuration(values["drain-deadline"]);
    if (drainDeadlineMs === undefined) throw new AgentConfigError(`--drain-deadline must be a duration such as 10m, 30s or 500ms; got ${shown(values["drain-deadline"])}`);
  }
  const limits: Record<string, string> = {};
  for (const [flag, key] of [["limit-cpu", "cpu"], ["limit-net-in", "netInBytesPerSec"], ["limit-net-out", "netOutBytesPerSec"], ["limit-participants", "participants"]] as const) {
    const value = values[flag];
    if (value !== undefined) limits[key] = value;
  }
  // Numbers stay strings here: the validators convert them and name the field and the value as given.
  const agent: RawAgentOptions = {
    coordinators: values.coordinators?.split(",").map((s) => s.trim()).filter((s) => s !== ""),
    nodeId: values["node-id"],
    address: values.address,
    capacity: values.capacity,
    region: values.region,
    labels,
    checkpointIntervalMs: values["checkpoint-interval-ms"],
    rpcTimeoutMs: values["rpc-timeout-ms"],
    logger,
    tls,
    // The environment keeps the token out of `ps`; a flag overrides it.
    token: values.token ?? (process.env.CONVENE_TOKEN || undefined),
    insecure: values.insecure,
    limits,
  };
  return {
    agent: agent as unknown as SidecarOptions["agent"],
    listen: values.listen ?? sidecarDefaults.listen,
    webhookUrl: values.webhook,
    maxStateBytes: values["max-state-bytes"] as unknown as number | undefined,
    handoverWaitMs: values["handover-wait-ms"] as unknown as number | undefined,
    drainDeadlineMs,
  };
}

/**
 * `convene agent ARGS`: validates the flags, opens the HTTP API, registers,
 * and (unless told otherwise) leaves gracefully on SIGTERM/SIGINT, then
 * exits. Resolves with the running sidecar; rejects with AgentConfigError
 * for bad flags (the CLI prints `agentUsage`).
 */
export async function runAgentSidecar(argv: readonly string[], options: { readonly handleSignals?: boolean } = {}): Promise<AgentSidecar> {
  const level = parseArgs({ args: [...argv], options: { "log-level": { type: "string" } }, strict: false }).values["log-level"];
  const logger = pino({ level: typeof level === "string" ? level : "info", base: { component: "agent" } });
  const sidecar = new AgentSidecar(parseSidecarArgs(argv, logger), sidecarFlagNames);
  await sidecar.start();
  logger.info({ url: sidecar.url, node: sidecar.agent.config.nodeId, generation: sidecar.agent.generation }, "agent sidecar running");
  if (options.handleSignals !== false) {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, drainDeadlineMs: sidecar.drainDeadlineMs }, "stopping: draining, handing the meetings over, then deregistering");
      sidecar.shutdown().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, "graceful leave failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  }
  return sidecar;
}
