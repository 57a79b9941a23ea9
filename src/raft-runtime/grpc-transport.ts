/**
 * The gRPC transport between members (proto/raft.proto), implementing the
 * Transport contract of transport.ts. Towards each peer: one long-lived
 * client stream, opened lazily, carrying one batch per tick of all the
 * messages for that peer; and one call per Snap message, on a connection of
 * its own, carrying the snapshot in chunks. Incoming: the RaftTransport
 * service, added by start() to the member's own grpc.Server, which the
 * caller creates (with peerServerOptions()), binds and shuts down.
 *
 * Called by the member's driver: send() with each Ready's messages; what
 * arrives goes to handlers.onMessage, which validates and steps it.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ConfigError } from "../raft/errors.js";
import {
  BATCH_OVERHEAD_BOUND, MessageDecodeError, SnapshotAssembler, decodeMessages, encodeMessages, encodedSizeBound,
  splitSnapMessage, type SnapshotParts,
} from "./message-codec.js";
import { PeerOutbox } from "./peer-outbox.js";
import type { Transport, TransportHandlers } from "./transport.js";
import type { Message, NodeId } from "../raft/types.js";
import { MessageType } from "../raft/types.js";

/** The shape of pino's methods, so a pino logger can be passed as is. */
export interface TransportLogger {
  debug(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface GrpcTransportOptions {
  readonly selfId: NodeId;
  /** Peer id → "host:port". An entry for selfId is ignored. */
  readonly peers: ReadonlyMap<NodeId, string>;
  /** The member's server, shared with its other services. */
  readonly server: grpc.Server;
  /** The Raft group; a member refuses traffic from another group. Default "convene". */
  readonly clusterId?: string;
  /** Largest gRPC message, both ways; the server must accept it too. Default 4 MiB (gRPC's default). */
  readonly maxMessageBytes?: number;
  /** Snapshot data per chunk. Default 1 MiB. */
  readonly snapshotChunkBytes?: number;
  /** Messages waiting for a slow peer beyond this are dropped, oldest first. Default 32 MiB (Raft's default maxInflightBytes). */
  readonly maxQueuedBytesPerPeer?: number;
  /** Largest snapshot accepted from a peer. Default 1 GiB. */
  readonly maxSnapshotBytes?: number;
  readonly logger?: TransportLogger;
  /** How peers are dialed; default plaintext. The member's TLS credentials, with its own certificate when peers require one. */
  readonly credentials?: grpc.ChannelCredentials;
  /** Sent as "authorization: Bearer <token>" on every call to a peer (the member role's token), when set. */
  readonly token?: string;
  /**
   * How peer `id` is dialed, when it differs per peer (a TLS check that the
   * server's certificate names `id`); default `credentials` for every peer.
   */
  readonly credentialsFor?: (peer: NodeId) => grpc.ChannelCredentials;
  /**
   * Which member an incoming call authenticated as (by its token or
   * certificate), from the call's metadata. When given, a stream or a
   * snapshot whose sender (`from`) is another member, or that did not
   * authenticate as a member, is refused with PERMISSION_DENIED: a member's
   * credential cannot speak for another member. Absent where members do
   * not authenticate each other (loopback without a tokens file).
   */
  readonly callingMember?: (metadata: grpc.Metadata) => NodeId | undefined;
}

const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const MIN_MESSAGE_BYTES = 64 * 1024;
/** Room left in each gRPC message for the fields around the payload (ids, tags, lengths). */
const WIRE_RESERVE_BYTES = 16 * 1024;
// A dead peer is noticed within time + timeout while a call is open; a
// member's election timeout is of the same order, so Raft never waits longer.
const KEEPALIVE_TIME_MS = 1000;
const KEEPALIVE_TIMEOUT_MS = 1000;
/** Writes the connection has not taken for this long mean a stuck peer (a black hole while connecting, or a peer that stopped reading). */
const STALL_TIMEOUT_MS = 2000;
const RECONNECT_BASE_MS = 50;
const RECONNECT_MAX_MS = 1000;
const RECONNECT_JITTER = 0.2;
/** A snapshot call may take this long, plus one second per MiB. */
const SNAPSHOT_BASE_TIMEOUT_MS = 10_000;
/** close() lets each stream deliver what it holds for this long, then cancels it. */
const CLOSE_GRACE_MS = 200;
const EMPTY = new Uint8Array(0);
const PROTO_PATH = fileURLToPath(new URL("../../proto/raft.proto", import.meta.url));
const SERVICE_NAME = "convene.raft.v1.RaftTransport";

interface MessageBatchWire { clusterId: string; from: string; to: string; messages: Uint8Array }
interface SnapshotChunkWire { clusterId: string; from: string; to: string; header: Uint8Array; data: Uint8Array }
type AckWire = Record<string, never>;
interface RaftService {
  readonly definition: grpc.ServiceDefinition;
  readonly stream: grpc.MethodDefinition<MessageBatchWire, AckWire>;
  readonly snapshot: grpc.MethodDefinition<SnapshotChunkWire, AckWire>;
}

let raftService: RaftService | undefined;
/** Loads proto/raft.proto once, on first use (not at import). */
function loadRaftService(): RaftService {
  if (raftService) return raftService;
  const definitions = protoLoader.loadSync(PROTO_PATH, { keepCase: false, longs: Number, enums: Number, defaults: true });
  const definition = definitions[SERVICE_NAME] as unknown as grpc.ServiceDefinition;
  raftService = { definition, stream: definition["Stream"]!, snapshot: definition["SendSnapshot"]! };
  return raftService;
}

/** Options for the member's grpc.Server, so that it takes the transport's messages and notices dead senders. */
export function peerServerOptions(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): grpc.ServerOptions {
  return {
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
    "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
  };
}

function channelOptions(maxMessageBytes: number): grpc.ChannelOptions {
  return {
    "grpc.max_send_message_length": maxMessageBytes,
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
    // gRPC's own redial backoff grows to 120 s: a restarted peer would stay unreached that long.
    "grpc.initial_reconnect_backoff_ms": RECONNECT_BASE_MS,
    "grpc.max_reconnect_backoff_ms": RECONNECT_MAX_MS,
    // Raft retransmits. And a retry buffer acknowledges writes before they leave, hiding a stuck peer.
    "grpc.enable_retries": 0,
    "grpc.per_rpc_retry_buffer_size": 0,
    // A connection per channel: snapshots never share the stream's TCP connection.
    "grpc.use_local_subchannel_pool": 1,
  };
}

const silentLogger: TransportLogger = { debug() {}, warn() {}, error() {} };

function positiveInteger(field: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new ConfigError(`${field} must be an integer of at least ${min}, got ${value}`);
  return value;
}

/** What a PeerLink needs from its transport. */
interface LinkContext {
  readonly selfId: NodeId;
  readonly clusterId: string;
  readonly maxMessageBytes: number;
  readonly snapshotChunkBytes: number;
  readonly maxQueuedBytes: number;
  readonly service: RaftService;
  readonly logger: TransportLogger;
  credentialsFor(peer: NodeId): grpc.ChannelCredentials;
  /** Metadata for each call to a peer: the member's token, if any. */
  callMetadata(): grpc.Metadata;
  reportUnreachable(peer: NodeId): void;
  /** The connection itself was lost (refused, reset, dropped), not merely slow. */
  reportPeerDown(peer: NodeId): void;
  reportSnapshot(peer: NodeId, ok: boolean): void;
}

export class GrpcTransport implements Transport {
  private readonly selfId: NodeId;
  private readonly clusterId: string;
  private readonly maxSnapshotBytes: number;
  private readonly server: grpc.Server;
  private readonly logger: TransportLogger;
  private readonly context: LinkContext;
  private readonly links = new Map<NodeId, PeerLink>();
  private handlers: TransportHandlers | undefined;
  private started = false;
  private closed = false;
  /** What send() collected this tick, per peer, in send order: flushed together in one microtask. */
  private readonly outbox = new PeerOutbox((peer, messages) => this.deliver(peer, messages));
  // Incoming side.
  private readonly inbound = new Set<InboundCall>();
  /** Per sender, the generation of its newest stream: older streams are stale (see proto). */
  private readonly newestStream = new Map<NodeId, number>();
  private streamGenerations = 0;
  private readonly callingMember: ((metadata: grpc.Metadata) => NodeId | undefined) | undefined;

  /** @throws ConfigError naming the field and value that is wrong. */
  constructor(options: GrpcTransportOptions) {
    if (!options.selfId) throw new ConfigError("selfId must be a non-empty member id");
    const maxMessageBytes = positiveInteger("maxMessageBytes", options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, MIN_MESSAGE_BYTES);
    const snapshotChunkBytes = positiveInteger("snapshotChunkBytes", options.snapshotChunkBytes ?? 1024 * 1024, 1);
    if (snapshotChunkBytes > maxMessageBytes - WIRE_RESERVE_BYTES) {
      throw new ConfigError(`snapshotChunkBytes (${snapshotChunkBytes}) must leave ${WIRE_RESERVE_BYTES} bytes under maxMessageBytes (${maxMessageBytes})`);
    }
    const maxQueuedBytes = positiveInteger("maxQueuedBytesPerPeer", options.maxQueuedBytesPerPeer ?? 32 * 1024 * 1024, maxMessageBytes);
    this.maxSnapshotBytes = positiveInteger("maxSnapshotBytes", options.maxSnapshotBytes ?? 1024 ** 3, 0);
    this.selfId = options.selfId;
    this.clusterId = options.clusterId ?? "convene";
    this.server = options.server;
    this.logger = options.logger ?? silentLogger;
    this.callingMember = options.callingMember;
    const credentials = options.credentials ?? grpc.credentials.createInsecure();
    this.context = {
      selfId: this.selfId, clusterId: this.clusterId, maxMessageBytes, snapshotChunkBytes, maxQueuedBytes,
      service: loadRaftService(), logger: this.logger,
      credentialsFor: options.credentialsFor ?? (() => credentials),
      callMetadata: () => {
        const metadata = new grpc.Metadata();
        if (options.token !== undefined) metadata.set("authorization", `Bearer ${options.token}`);
        return metadata;
      },
      reportUnreachable: (peer) => this.report((h) => h.onUnreachable(peer)),
      reportPeerDown: (peer) => this.report((h) => h.onPeerDown?.(peer)),
      reportSnapshot: (peer, ok) => this.report((h) => h.onSnapshotStatus(peer, ok)),
    };
    for (const [id, address] of options.peers) {
      if (id !== this.selfId && !address) throw new ConfigError(`peers: member ${id} has no address`);
      this.addPeer(id, address);
    }
  }

  async start(handlers: TransportHandlers): Promise<void> {
    if (this.started) throw new Error("GrpcTransport.start() may be called only once");
    this.started = true;
    this.handlers = handlers;
    this.server.addService(this.context.service.definition, {
      Stream: (call: grpc.ServerReadableStream<MessageBatchWire, AckWire>, callback: grpc.sendUnaryData<AckWire>) =>
        this.serveStream(call, callback),
      SendSnapshot: (call: grpc.ServerReadableStream<SnapshotChunkWire, AckWire>, callback: grpc.sendUnaryData<AckWire>) =>
        this.serveSnapshot(call, callback),
    });
    // Each peer hears at once that this member is up (see PeerLink.announce).
    for (const link of this.links.values()) link.announce();
  }

  send(messages: readonly Message[]): void {
    if (this.closed) return;
    this.outbox.add(messages);
  }

  addPeer(id: NodeId, address: string): void {
    if (id === this.selfId || this.closed) return;
    const existing = this.links.get(id);
    if (existing?.address === address) return;
    if (existing) {
      this.links.delete(id);
      void existing.close();
    }
    try {
      this.links.set(id, new PeerLink(id, address, this.context));
    } catch (error) {
      // An address gRPC cannot parse: the peer stays unreachable until a usable one comes.
      this.logger.error({ peer: id, address, err: error }, "peer address is unusable");
    }
  }

  removePeer(id: NodeId): void {
    const link = this.links.get(id);
    if (!link) return;
    this.links.delete(id);
    void link.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.started) this.server.removeService(this.context.service.definition);
    for (const [peer, messages] of this.outbox.takeAll()) {
      for (const m of messages) if (m.type === MessageType.Snap) this.context.reportSnapshot(peer, false);
    }
    for (const call of [...this.inbound]) call.answer({ code: grpc.status.UNAVAILABLE, details: `member ${this.selfId} is closing` });
    const links = [...this.links.values()];
    this.links.clear();
    await Promise.all(links.map((link) => link.close()));
    this.handlers = undefined;
  }

  /** Reports run in a microtask of their own: never inside a call into the transport, never inside gRPC. */
  private report(notify: (handlers: TransportHandlers) => void): void {
    const handlers = this.handlers;
    if (handlers) queueMicrotask(() => notify(handlers));
  }

  private deliver(peer: NodeId, messages: Message[]): void {
    const link = this.links.get(peer);
    if (!link) {
      this.logger.debug({ peer }, "dropped messages to a member that is not a peer");
      const snapshots = messages.filter((m) => m.type === MessageType.Snap).length;
      for (let i = 0; i < snapshots; i++) this.context.reportSnapshot(peer, false);
      if (snapshots < messages.length) this.context.reportUnreachable(peer);
      return;
    }
    for (const m of messages) {
      if (m.type === MessageType.Snap) link.sendSnapshot(m);
      else link.enqueue(m);
    }
    link.flush();
  }

  // ---- incoming ------------------------------------------------------------

  private serveStream(call: grpc.ServerReadableStream<MessageBatchWire, AckWire>, callback: grpc.sendUnaryData<AckWire>): void {
    const inbound = new InboundCall(call, callback, this.inbound);
    let sender: NodeId | undefined;
    let generation = 0;
    call.on("data", (batch: MessageBatchWire) => {
      if (inbound.done) return;
      const refusal = this.refusal(batch.clusterId, batch.to);
      if (refusal) {
        this.logger.warn({ from: batch.from, refusal }, "refused a message stream");
        return inbound.answer({ code: grpc.status.FAILED_PRECONDITION, details: refusal });
      }
      if (sender === undefined) {
        const impostor = this.impostor(call.metadata, batch.from);
        if (impostor) {
          this.logger.warn({ from: batch.from, impostor }, "refused a message stream");
          return inbound.answer({ code: grpc.status.PERMISSION_DENIED, details: impostor });
        }
        sender = batch.from;
        generation = ++this.streamGenerations;
        this.newestStream.set(sender, generation);
        // A stream from a peer means it is up: no need to wait out a redial backoff towards it.
        this.links.get(sender)?.peerIsUp();
      }
      if (this.newestStream.get(sender) !== generation) {
        // The sender has redialled: what still comes here may be older than what came there.
        return inbound.answer({ code: grpc.status.ABORTED, details: "replaced by a newer stream" });
      }
      if (batch.from !== sender) {
        this.logger.warn({ from: batch.from, sender }, "dropped a batch from another sender than the stream's");
        return;
      }
      this.receiveBatch(batch);
    });
    call.on("end", () => {
      if (sender !== undefined && this.newestStream.get(sender) === generation) this.newestStream.delete(sender);
      inbound.answer();
    });
  }

  private receiveBatch(batch: MessageBatchWire): void {
    const handlers = this.handlers;
    if (!handlers || this.closed) return;
    let messages: Message[];
    try {
      messages = decodeMessages(batch.messages);
    } catch (error) {
      this.logger.warn({ from: batch.from, bytes: batch.messages.length, err: error }, "dropped a batch that does not decode");
      return;
    }
    for (const m of messages) {
      if (m.from !== batch.from || m.to !== this.selfId) {
        this.logger.warn({ from: batch.from, claimedFrom: m.from, to: m.to }, "dropped a batch with a message not from its sender to this member");
        return;
      }
    }
    for (const m of messages) if (!deliver(handlers, m)) return;
  }

  private serveSnapshot(call: grpc.ServerReadableStream<SnapshotChunkWire, AckWire>, callback: grpc.sendUnaryData<AckWire>): void {
    const inbound = new InboundCall(call, callback, this.inbound);
    let assembler: SnapshotAssembler | undefined;
    const refuse = (error: unknown) => {
      this.logger.warn({ from: assembler?.header.from, err: error }, "refused a snapshot");
      inbound.answer({ code: grpc.status.INVALID_ARGUMENT, details: (error as Error).message });
    };
    call.on("data", (chunk: SnapshotChunkWire) => {
      if (inbound.done) return;
      try {
        if (!assembler) {
          const refusal = this.refusal(chunk.clusterId, chunk.to);
          if (refusal) return inbound.answer({ code: grpc.status.FAILED_PRECONDITION, details: refusal });
          const impostor = this.impostor(call.metadata, chunk.from);
          if (impostor) return inbound.answer({ code: grpc.status.PERMISSION_DENIED, details: impostor });
          assembler = new SnapshotAssembler(chunk.header, this.maxSnapshotBytes);
          const { from, to } = assembler.header;
          if (from !== chunk.from || to !== this.selfId) throw new MessageDecodeError(`a snapshot from ${from} to ${to} came from ${chunk.from}`);
        }
        if (chunk.data.length > 0) assembler.add(chunk.data);
      } catch (error) {
        refuse(error);
      }
    });
    call.on("end", () => {
      if (inbound.done) return;
      let m: Message;
      try {
        if (!assembler) throw new MessageDecodeError("a snapshot call ended before its header");
        m = assembler.finish();
      } catch (error) {
        return refuse(error);
      }
      const handlers = this.handlers;
      if (!handlers || this.closed) return inbound.answer({ code: grpc.status.UNAVAILABLE, details: "transport closed" });
      deliver(handlers, m);
      inbound.answer();
    });
  }

  /** Why a call whose sender says it is `from` may not speak for it, or undefined when it may. */
  private impostor(metadata: grpc.Metadata, from: string): string | undefined {
    if (!this.callingMember) return undefined;
    const caller = this.callingMember(metadata);
    if (caller === from) return undefined;
    return caller === undefined
      ? `a stream from member ${JSON.stringify(from)} must authenticate as that member`
      : `member ${caller}'s credentials may not send as member ${JSON.stringify(from)}`;
  }

  /** Why a call addressed to (clusterId, to) is not for this member, or undefined if it is. */
  private refusal(clusterId: string, to: string): string | undefined {
    if (clusterId !== this.clusterId) return `cluster "${clusterId}" is not this member's cluster "${this.clusterId}"`;
    if (to !== this.selfId) return `this is member "${this.selfId}", not "${to}"`;
    return undefined;
  }
}

/**
 * Hands one message to the driver. A throwing handler is the driver's bug:
 * it is raised again outside gRPC (an uncaught exception, as anywhere else
 * in the driver) rather than thrown into gRPC's stream machinery.
 */
function deliver(handlers: TransportHandlers, m: Message): boolean {
  try {
    handlers.onMessage(m);
    return true;
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
    return false;
  }
}

/** One incoming call, answered at most once, and listed so that close() can end it. */
class InboundCall {
  private answered = false;

  constructor(
    call: grpc.ServerReadableStream<unknown, AckWire>,
    private readonly callback: grpc.sendUnaryData<AckWire>,
    private readonly live: Set<InboundCall>,
  ) {
    live.add(this);
    call.on("cancelled", () => this.forget());
    call.on("error", () => this.forget());
  }

  get done(): boolean {
    return this.answered;
  }

  answer(error?: grpc.StatusObject | Pick<grpc.StatusObject, "code" | "details">): void {
    if (this.answered) return;
    this.forget();
    if (error) this.callback(error);
    else this.callback(null, {});
  }

  private forget(): void {
    this.answered = true;
    this.live.delete(this);
  }
}

interface OutboundStream {
  readonly call: grpc.ClientWritableStream<MessageBatchWire>;
  readonly openedAt: number;
  unackedWrites: number;
  unackedBytes: number;
  /** When a write was last taken by the connection (or the first of the current run was made). */
  lastProgressAt: number;
  waitingForDrain: boolean;
}

/** The sending side towards one peer: its stream, its queue, its redial backoff, its snapshot calls. */
class PeerLink {
  private client: grpc.Client;
  private snapshotClient: grpc.Client | undefined;
  private stream: OutboundStream | undefined;
  private queue: Message[] = [];
  private queueSizes: number[] = [];
  private queuedBytes = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private readonly snapshotCancels = new Set<() => void>();
  private readonly batchBudget: number;

  constructor(
    readonly peer: NodeId,
    readonly address: string,
    private readonly ctx: LinkContext,
  ) {
    this.batchBudget = ctx.maxMessageBytes - WIRE_RESERVE_BYTES;
    // A channel connects only on its first call; creating it here just checks the address.
    this.client = new grpc.Client(address, ctx.credentialsFor(peer), channelOptions(ctx.maxMessageBytes));
  }

  enqueue(m: Message): void {
    const size = encodedSizeBound(m);
    this.queue.push(m);
    this.queueSizes.push(size);
    this.queuedBytes += size;
  }

  /**
   * Opens the stream with an empty batch, which tells the peer this member
   * is up: a member that restarts is then dialled back at once, not after
   * the leader's redial backoff towards it (up to RECONNECT_MAX_MS) runs out.
   */
  announce(): void {
    if (this.backoffTimer || this.stream) return;
    const stream = this.openStream();
    stream.call.write({ clusterId: this.ctx.clusterId, from: this.ctx.selfId, to: this.peer, messages: encodeMessages([]) });
  }

  /**
   * The peer opened a stream to this member, so it is up: unless a stream
   * to it is open, the next message dials it at once, on a new channel
   * (which alone skips gRPC's own redial backoff), not after this link's
   * backoff runs out.
   */
  peerIsUp(): void {
    if (this.stream) return; // open (or opening) already
    clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    this.backoffMs = 0;
    this.client.close();
    this.client = new grpc.Client(this.address, this.ctx.credentialsFor(this.peer), channelOptions(this.ctx.maxMessageBytes));
    this.ctx.logger.debug({ peer: this.peer }, "peer is up again; redialling now");
  }

  /** Writes what the stream takes now. Called after each tick's send(), and when the stream frees up. */
  flush(): void {
    if (this.queue.length === 0) return;
    if (this.backoffTimer) {
      this.dropQueue();
      this.ctx.reportUnreachable(this.peer);
      return;
    }
    const stream = this.stream ?? this.openStream();
    if (stream.unackedWrites > 0 && performance.now() - stream.lastProgressAt > STALL_TIMEOUT_MS) {
      return this.fail(stream, `no write taken for ${STALL_TIMEOUT_MS} ms`);
    }
    while (this.queue.length > 0 && !stream.waitingForDrain && stream.unackedBytes < 2 * this.ctx.maxMessageBytes) {
      this.writeBatch(stream);
    }
    if (this.queuedBytes > this.ctx.maxQueuedBytes) this.dropOldest();
  }

  sendSnapshot(m: Message): void {
    let parts: SnapshotParts;
    try {
      parts = splitSnapMessage(m, this.ctx.snapshotChunkBytes);
      if (parts.header.length > this.batchBudget) throw new RangeError(`snapshot header of ${parts.header.length} bytes is too large`);
    } catch (error) {
      this.ctx.logger.error({ peer: this.peer, err: error }, "cannot send snapshot");
      return this.ctx.reportSnapshot(this.peer, false);
    }
    const bytes = m.snapshot!.data.length;
    const { service, logger } = this.ctx;
    this.snapshotClient ??= new grpc.Client(this.address, this.ctx.credentialsFor(this.peer), channelOptions(this.ctx.maxMessageBytes));
    const deadline = Date.now() + SNAPSHOT_BASE_TIMEOUT_MS + bytes / 1024;
    let settled = false;
    const settle = (ok: boolean, why: string) => {
      if (settled) return;
      settled = true;
      this.snapshotCancels.delete(cancel);
      const fields = { peer: this.peer, index: m.snapshot!.metadata.index, bytes, why };
      if (ok) logger.debug(fields, "snapshot delivered");
      else logger.warn(fields, "snapshot not delivered");
      this.ctx.reportSnapshot(this.peer, ok);
    };
    const { path, requestSerialize, responseDeserialize } = service.snapshot;
    const call = this.snapshotClient.makeClientStreamRequest(path, requestSerialize, responseDeserialize, this.ctx.callMetadata(), { deadline },
      (error) => settle(!error, error ? `${grpc.status[error.code]}: ${error.details}` : "acknowledged"));
    const cancel = () => {
      settle(false, "link closed");
      call.cancel();
    };
    this.snapshotCancels.add(cancel);
    call.on("error", () => {}); // the outcome arrives through the callback above
    this.writeSnapshot(call, parts, () => settled).catch((error: unknown) => {
      logger.error({ peer: this.peer, err: error }, "snapshot write failed");
      cancel();
    });
  }

  /** Drops what is queued, fails snapshots in flight, ends the stream (briefly letting it deliver) and closes the channels. */
  async close(): Promise<void> {
    clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    this.dropQueue();
    for (const cancel of [...this.snapshotCancels]) cancel();
    const stream = this.stream;
    this.stream = undefined;
    if (stream) await endGracefully(stream.call);
    this.client.close();
    this.snapshotClient?.close();
  }

  private openStream(): OutboundStream {
    const { service } = this.ctx;
    const call = this.client.makeClientStreamRequest(service.stream.path, service.stream.requestSerialize, service.stream.responseDeserialize,
      this.ctx.callMetadata(), {}, (error) => {
        if (this.stream?.call !== call) return; // closed or replaced on purpose
        // UNAVAILABLE: the connection was refused, reset or dropped, as when
        // the peer's process died (a stall is caught by flush, not here).
        this.fail(this.stream, error ? `${grpc.status[error.code]}: ${error.details}` : "the peer ended the stream", error?.code === grpc.status.UNAVAILABLE);
      });
    call.on("error", () => {}); // the outcome arrives through the callback above
    const now = performance.now();
    this.stream = { call, openedAt: now, unackedWrites: 0, unackedBytes: 0, lastProgressAt: now, waitingForDrain: false };
    return this.stream;
  }

  private writeBatch(stream: OutboundStream): void {
    let count = 0;
    let bytes = BATCH_OVERHEAD_BOUND;
    while (count < this.queue.length && bytes + this.queueSizes[count]! <= this.batchBudget) bytes += this.queueSizes[count++]!;
    if (count === 0) {
      // One message larger than a gRPC message: Raft's maxSizePerMsg is set above maxMessageBytes.
      const [m] = this.queue.splice(0, 1);
      this.queuedBytes -= this.queueSizes.splice(0, 1)[0]!;
      this.ctx.logger.error({ peer: this.peer, type: m!.type, budget: this.batchBudget }, "dropped a message larger than maxMessageBytes");
      return;
    }
    const batch = this.queue.splice(0, count);
    this.queueSizes.splice(0, count);
    this.queuedBytes -= bytes - BATCH_OVERHEAD_BOUND;
    const messages = encodeMessages(batch);
    const size = messages.length;
    if (stream.unackedWrites === 0) stream.lastProgressAt = performance.now();
    stream.unackedWrites++;
    stream.unackedBytes += size;
    const wire: MessageBatchWire = { clusterId: this.ctx.clusterId, from: this.ctx.selfId, to: this.peer, messages };
    const accepted = stream.call.write(wire, () => {
      stream.unackedWrites--;
      stream.unackedBytes -= size;
      stream.lastProgressAt = performance.now();
      if (this.stream === stream && this.queue.length > 0) this.flush();
    });
    if (!accepted) {
      stream.waitingForDrain = true;
      stream.call.once("drain", () => {
        stream.waitingForDrain = false;
        if (this.stream === stream) this.flush();
      });
    }
  }

  /**
   * The stream broke: report the peer (as down too when the connection was
   * lost), drop what waits for it, and redial only after a jittered backoff.
   */
  private fail(stream: OutboundStream, reason: string, connectionLost = false): void {
    this.stream = undefined;
    stream.call.cancel();
    // A stream that outlived the longest backoff was healthy: this failure starts a new series.
    const firstOfSeries = this.backoffMs === 0 || performance.now() - stream.openedAt > RECONNECT_MAX_MS;
    this.backoffMs = firstOfSeries ? RECONNECT_BASE_MS : Math.min(RECONNECT_MAX_MS, this.backoffMs * 2);
    const delay = this.backoffMs * (1 - RECONNECT_JITTER + 2 * RECONNECT_JITTER * Math.random());
    this.backoffTimer = setTimeout(() => (this.backoffTimer = undefined), delay);
    this.backoffTimer.unref(); // a pending redial must not keep the process alive
    const fields = { peer: this.peer, address: this.address, reason, retryInMs: Math.round(delay) };
    if (firstOfSeries) this.ctx.logger.warn(fields, "stream to peer broke; redialling with backoff");
    else this.ctx.logger.debug(fields, "stream to peer broke again");
    this.dropQueue();
    this.ctx.reportUnreachable(this.peer);
    if (connectionLost) this.ctx.reportPeerDown(this.peer);
  }

  private dropOldest(): void {
    let count = 0;
    let bytes = 0;
    while (this.queuedBytes - bytes > this.ctx.maxQueuedBytes) bytes += this.queueSizes[count++]!;
    this.queue.splice(0, count);
    this.queueSizes.splice(0, count);
    this.queuedBytes -= bytes;
    this.ctx.logger.warn({ peer: this.peer, dropped: count }, "peer is too slow: dropped its oldest queued messages");
    this.ctx.reportUnreachable(this.peer);
  }

  private dropQueue(): void {
    this.queue = [];
    this.queueSizes = [];
    this.queuedBytes = 0;
  }

  private async writeSnapshot(call: grpc.ClientWritableStream<SnapshotChunkWire>, parts: SnapshotParts, settled: () => boolean): Promise<void> {
    const { clusterId, selfId } = this.ctx;
    const chunks: SnapshotChunkWire[] = [{ clusterId, from: selfId, to: this.peer, header: parts.header, data: EMPTY }];
    for (const data of parts.chunks) chunks.push({ clusterId: "", from: "", to: "", header: EMPTY, data });
    for (const chunk of chunks) {
      if (settled()) return;
      // write() false: wait for room, unless the call has already ended (then 'drain' never comes).
      if (!call.write(chunk) && (settled() || !(await drained(call)))) return;
    }
    call.end();
  }
}

/** Resolves true when the call can take more writes, false if it ended first. */
function drained<T>(call: grpc.ClientWritableStream<T>): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => () => {
      call.off("drain", onDrain);
      call.off("status", onStatus);
      resolve(ok);
    };
    const onDrain = done(true);
    const onStatus = done(false);
    call.once("drain", onDrain);
    call.once("status", onStatus);
  });
}

function endGracefully<T>(call: grpc.ClientWritableStream<T>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      call.cancel();
      resolve();
    }, CLOSE_GRACE_MS);
    call.once("status", () => {
      clearTimeout(timer);
      resolve();
    });
    call.end();
  });
}
