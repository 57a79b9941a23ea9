/**
 * The simulated network between meeting servers (and gateways) and the
 * members, and the members' calls to each other above Raft (forwarding to
 * the leader, stream reports): the twin of their gRPC channels. A unary
 * call is a request and an answer, each delayed, either lost (the caller
 * waits for its deadline) or refused at once (UNAVAILABLE) when the link is
 * cut or the target is down. A server stream is ordered and loses nothing
 * while it lives; it breaks when its link is cut or an end crashes, and
 * each side notices as gRPC would (a reset at once, a silent peer only
 * after keepalive). Every callback runs as its process (ProcessClock.run):
 * a paused process answers late, a killed one never.
 */
import * as grpc from "@grpc/grpc-js";
import type { SeededRandom } from "../../src/raft/index.js";
import type { ProcessClock } from "../../src/time/process-clock.js";
import type { VirtualScheduler } from "../../src/time/virtual-scheduler.js";

export interface RpcError {
  readonly code: grpc.status;
  readonly details: string;
}

export function rpcError(code: grpc.status, details: string): RpcError {
  return { code, details };
}

export function isRpcError(err: unknown): err is RpcError {
  return typeof err === "object" && err !== null && typeof (err as RpcError).code === "number";
}

/** The agent's keepalive (2 s ping, 1 s timeout): how long a silent member goes unnoticed. */
const KEEPALIVE_MS = 3000;
const BASE_LATENCY_MS = 1;

export interface StreamHandlers {
  data(message: Record<string, unknown>): void;
  end(err: RpcError): void;
}

/** The server side of a stream, as the member's code sees it. */
export interface ServerSink {
  write(message: Record<string, unknown>): void;
  end(code: grpc.status, details: string): void;
}

interface Stream {
  readonly client: string;
  readonly clientIncarnation: number;
  readonly server: string;
  readonly serverIncarnation: number;
  readonly handlers: StreamHandlers;
  clientDone: boolean;
  serverDone: boolean;
  serverClose: (() => void) | undefined;
  lastArrival: number;
}

export class RpcNetwork {
  private readonly cut = new Set<string>();
  private readonly streams = new Set<Stream>();
  dropRate = 0;
  /** Chance that a request reaches its member a second time, 0.3 to 3 s later (a retransmission); that answer goes nowhere. */
  replayRate = 0;
  maxJitterMs = 0;
  /** Chance that an answer is slow (0.1 to 1.5 s: a loaded member or link). */
  slowAnswerRate = 0;
  replays = 0;
  calls = 0;
  streamBreaks = 0;

  constructor(
    private readonly world: VirtualScheduler,
    private readonly rng: SeededRandom,
    /** Whether two members reach each other now (the Raft network's partitions). */
    private readonly membersConnected: (a: string, b: string) => boolean,
    /** The running process of an id, with its incarnation; undefined when it is down. */
    private readonly processOf: (id: string) => { clock: ProcessClock; incarnation: number } | undefined,
    private readonly isMember: (id: string) => boolean,
  ) {}

  connected(from: string, to: string): boolean {
    if (this.isMember(from) && this.isMember(to)) return this.membersConnected(from, to);
    return !this.cut.has(`${from}>${to}`);
  }

  /** Cuts a meeting server or gateway from a member, both ways: the streams over it break. */
  cutBoth(a: string, b: string): void {
    this.cut.add(`${a}>${b}`);
    this.cut.add(`${b}>${a}`);
    for (const s of this.streams) {
      if ((s.client === a && s.server === b) || (s.client === b && s.server === a)) this.breakSilently(s);
    }
  }

  healAll(): void {
    this.cut.clear();
  }

  isCut(): boolean {
    return this.cut.size > 0;
  }

  private delay(): number {
    return BASE_LATENCY_MS + (this.maxJitterMs > 0 ? this.rng.intBelow(this.maxJitterMs + 1) : 0);
  }

  /** Runs `fn` as process `id` after `delayMs`, if it is still the same incarnation then. */
  private deliver(id: string, delayMs: number, fn: () => void, incarnation?: number): void {
    this.world.setTimeout(() => {
      const p = this.processOf(id);
      if (!p || (incarnation !== undefined && p.incarnation !== incarnation)) return;
      p.clock.run(fn);
    }, delayMs);
  }

  /**
   * A unary call from `from` to `to`: `serve` runs as `to` and its answer
   * (or its RpcError) comes back, unless the deadline, on the caller's
   * clock, passes first (DEADLINE_EXCEEDED).
   */
  call<T>(from: string, to: string, serve: () => Promise<T>, timeoutMs: number): Promise<T> {
    this.calls++;
    const caller = this.processOf(from);
    if (!caller) return new Promise(() => undefined);
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        caller.clock.clearTimeout(deadline);
        fn();
      };
      const deadline = caller.clock.setTimeout(() => settle(() => reject(rpcError(grpc.status.DEADLINE_EXCEEDED, `call to ${to} timed out`))), timeoutMs);
      const answer = (fn: () => void): void => {
        if (!this.connected(to, from) || this.rng.chance(this.dropRate)) return;
        const slow = this.rng.chance(this.slowAnswerRate) ? 100 + this.rng.intBelow(1400) : 0;
        this.deliver(from, this.delay() + slow, () => settle(fn), caller.incarnation);
      };
      const target = this.processOf(to);
      if (!this.connected(from, to)) {
        // A cut link: sometimes the connection is refused, sometimes the request vanishes.
        if (this.rng.chance(0.5)) this.deliver(from, this.delay(), () => settle(() => reject(rpcError(grpc.status.UNAVAILABLE, `${to} unreachable`))), caller.incarnation);
        return;
      }
      if (this.rng.chance(this.dropRate)) return;
      if (!target) {
        this.deliver(from, 2 * this.delay(), () => settle(() => reject(rpcError(grpc.status.UNAVAILABLE, `${to} is down`))), caller.incarnation);
        return;
      }
      if (this.rng.chance(this.replayRate)) {
        this.replays++;
        this.deliver(to, 300 + this.rng.intBelow(2700), () => void serve().catch(() => undefined), undefined);
      }
      this.deliver(
        to,
        this.delay(),
        () => {
          serve().then(
            (value) => answer(() => resolve(value)),
            (err: unknown) => answer(() => reject(isRpcError(err) ? err : rpcError(grpc.status.INTERNAL, String(err)))),
          );
        },
        target.incarnation,
      );
    });
  }

  /**
   * Opens a server stream from `client` on member `server`: `open` runs as
   * the member with the sink it writes to and returns what to call when the
   * client goes away. Returns the client's cancel.
   */
  openStream(client: string, server: string, open: (sink: ServerSink) => () => void, handlers: StreamHandlers): () => void {
    const target = this.processOf(server);
    const stream: Stream = {
      client,
      clientIncarnation: this.processOf(client)?.incarnation ?? -1,
      server,
      serverIncarnation: target?.incarnation ?? -1,
      handlers,
      clientDone: false,
      serverDone: false,
      serverClose: undefined,
      lastArrival: 0,
    };
    const cancel = (): void => {
      if (stream.clientDone) return;
      stream.clientDone = true;
      this.streams.delete(stream);
      // The cancel reaches the member (late if it is paused) unless the link is gone.
      if (this.connected(client, server)) this.deliver(server, this.delay(), () => this.closeServer(stream), stream.serverIncarnation);
    };
    if (!target || !this.connected(client, server)) {
      this.toClientEnd(stream, rpcError(grpc.status.UNAVAILABLE, `${server} unreachable`), 2 * this.delay());
      return cancel;
    }
    this.streams.add(stream);
    const sink: ServerSink = {
      write: (message) => {
        if (stream.serverDone) return;
        this.toClient(stream, () => stream.handlers.data(message));
      },
      end: (code, details) => {
        if (stream.serverDone) return;
        this.toClientEnd(stream, rpcError(code, details));
        // grpc-js closes the call after its error: the handler's 'close' follows.
        this.deliver(server, 0, () => this.closeServer(stream), stream.serverIncarnation);
      },
    };
    this.deliver(
      server,
      this.delay(),
      () => {
        if (stream.clientDone && !this.streams.has(stream)) return;
        stream.serverClose = open(sink);
        if (stream.clientDone) this.closeServer(stream);
      },
      stream.serverIncarnation,
    );
    return cancel;
  }

  private closeServer(stream: Stream): void {
    if (stream.serverDone) return;
    stream.serverDone = true;
    stream.serverClose?.();
  }

  /** In order, after the messages before it. */
  private toClient(stream: Stream, fn: () => void, extraMs = 0): void {
    const now = this.world.now();
    const arrival = Math.max(now + this.delay() + extraMs, stream.lastArrival);
    stream.lastArrival = arrival;
    this.world.setTimeout(() => {
      if (stream.clientDone) return;
      const p = this.processOf(stream.client);
      if (p?.incarnation !== stream.clientIncarnation) return;
      p.clock.run(() => {
        if (!stream.clientDone) fn();
      });
    }, arrival - now);
  }

  private toClientEnd(stream: Stream, err: RpcError, extraMs = 0): void {
    this.toClient(
      stream,
      () => {
        stream.clientDone = true;
        this.streams.delete(stream);
        stream.handlers.end(err);
      },
      extraMs,
    );
  }

  /** The link went silent: the client notices at its keepalive, the member when its own side times out. */
  private breakSilently(stream: Stream): void {
    if (stream.clientDone) return;
    this.streamBreaks++;
    this.streams.delete(stream);
    const lost = rpcError(grpc.status.UNAVAILABLE, "keepalive timeout");
    this.world.setTimeout(() => {
      if (stream.clientDone) return;
      stream.clientDone = true;
      const p = this.processOf(stream.client);
      if (p?.incarnation === stream.clientIncarnation) p.clock.run(() => stream.handlers.end(lost));
    }, this.rng.intBelow(KEEPALIVE_MS) + 1);
    this.deliver(server(stream), this.rng.intBelow(2 * KEEPALIVE_MS) + 1, () => this.closeServer(stream), stream.serverIncarnation);
  }

  /** A member died: its connections reset, clients notice at once. */
  memberCrashed(id: string): void {
    for (const s of [...this.streams]) {
      if (s.server !== id) continue;
      s.serverDone = true;
      this.streams.delete(s);
      this.toClientEnd(s, rpcError(grpc.status.UNAVAILABLE, `${id} closed the connection`));
    }
  }

  /** A member stopped for `ms`: its clients' keepalives notice after about 3 s (if it is still stopped). */
  memberPaused(id: string, ms: number): void {
    if (ms < KEEPALIVE_MS) return;
    for (const s of [...this.streams]) {
      if (s.server !== id) continue;
      this.world.setTimeout(() => {
        if (s.clientDone) return;
        s.clientDone = true;
        this.streams.delete(s);
        const p = this.processOf(s.client);
        if (p?.incarnation === s.clientIncarnation) p.clock.run(() => s.handlers.end(rpcError(grpc.status.UNAVAILABLE, "keepalive timeout")));
        // The client's cancel reaches the member when it runs again.
        this.deliver(id, this.delay(), () => this.closeServer(s), s.serverIncarnation);
      }, KEEPALIVE_MS + this.rng.intBelow(500));
    }
  }

  /** A client process died: the members see its connections reset. */
  clientCrashed(id: string): void {
    for (const s of [...this.streams]) {
      if (s.client !== id) continue;
      s.clientDone = true;
      this.streams.delete(s);
      this.deliver(s.server, this.delay(), () => this.closeServer(s), s.serverIncarnation);
    }
  }
}

function server(stream: Stream): string {
  return stream.server;
}
