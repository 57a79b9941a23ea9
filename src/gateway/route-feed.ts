/**
 * Keeps the route cache fresh from RouteFeed.WatchRoutes (proto/routes.proto).
 * One stream at a time, on the coordinator client's current member. When it
 * ends or fails, the feed moves to the next member and asks for the changes
 * after the last revision it applied, so nothing is missed and nothing is
 * re-read in full unless that member cannot resume (then it sends a reset).
 * Reconnects back off from 100 ms to 1 s while members keep failing; a
 * delivered batch resets the backoff.
 *
 * Started by startGateway; `stop()` (from Gateway.close) cancels the stream
 * before the coordinator client closes.
 */
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { ClientClosedError, type CoordinatorClient } from "./coordinator-client.js";
import type { GatewayMetrics } from "./metrics.js";
import type { RouteCache, RouteChangeMessage } from "./route-cache.js";

interface RouteBatchMessage {
  revision?: unknown;
  reset?: unknown;
  changes?: unknown;
}

export const FEED_BACKOFF = { baseMs: 100, maxMs: 1000 } as const;
/**
 * Members send a progress batch every second while they hear a leader; a
 * stream silent this long is on a member cut off from the others (its
 * routes go stale), so the feed moves to the next member.
 */
export const FEED_SILENCE_MS = 3_500;

export class RouteFeed {
  private stream: grpc.ClientReadableStream<unknown> | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  /** When the last batch arrived (0: never); a live feed is one proof of a quorum. */
  lastBatchAtMs = 0;
  /** Batches applied since start (tests wait on it). */
  batches = 0;
  /** The member the stream is open on, if any. */
  member: string | undefined;

  constructor(
    private readonly client: CoordinatorClient,
    private readonly cache: RouteCache,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.running ??= this.loop().catch((err: unknown) => {
      if (!(err instanceof ClientClosedError)) this.logger.error({ err }, "route feed stopped on an unexpected error");
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stream?.cancel();
    await this.running;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    let first = true;
    while (!this.stopped) {
      if (!first) this.metrics.feedReconnects.inc();
      first = false;
      const delivered = await this.watchOnce();
      if (this.stopped) return;
      failures = delivered ? 1 : failures + 1;
      // A feed that delivered before it broke comes back after the base delay; one that keeps failing backs off.
      const d = Math.min(FEED_BACKOFF.maxMs, FEED_BACKOFF.baseMs * 2 ** Math.min(failures - 1, 10));
      await this.client.sleep(Math.floor(d / 2 + (Math.random() * d) / 2));
    }
  }

  /** Runs one stream to its end; resolves whether it delivered any batch. */
  private watchOnce(): Promise<boolean> {
    const from = this.cache.revision;
    const { stream, address } = this.client.openWatch({ from_revision: from });
    this.stream = stream;
    this.member = address;
    this.logger.debug({ member: address, fromRevision: from }, "route feed opened");
    let delivered = false;
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (why: string, err?: unknown): void => {
        if (done) return;
        done = true;
        clearInterval(watchdog);
        this.stream = undefined;
        this.member = undefined;
        if (!this.stopped) {
          this.logger.info({ member: address, err, revision: this.cache.revision }, `route feed ${why}; moving to the next member`);
          this.client.rotateFrom(address);
        }
        resolve(delivered);
      };
      let heardAtMs = Date.now();
      const watchdog = setInterval(() => {
        if (Date.now() - heardAtMs <= FEED_SILENCE_MS) return;
        finish(`silent for ${FEED_SILENCE_MS} ms`);
        stream.cancel();
      }, 500);
      stream.on("data", (batch: RouteBatchMessage) => {
        heardAtMs = Date.now();
        if (this.applyBatch(batch, address)) delivered = true;
      });
      stream.on("error", (err: unknown) => finish("failed", err));
      stream.on("end", () => finish("ended"));
      stream.on("status", (s: grpc.StatusObject) => finish(`closed with status ${s.code}`));
    });
  }

  private applyBatch(batch: RouteBatchMessage, member: string): boolean {
    const revision = batch.revision;
    if (typeof revision !== "number" || !Number.isSafeInteger(revision) || revision < 0 || !Array.isArray(batch.changes)) {
      this.logger.warn({ member, revision }, "route feed sent a batch without a valid revision or changes; ignored");
      return false;
    }
    const reset = batch.reset === true;
    const outcome = this.cache.applyBatch(revision, reset, batch.changes as RouteChangeMessage[]);
    this.lastBatchAtMs = Date.now();
    this.batches++;
    if (reset) this.metrics.feedResets.inc();
    if (outcome.applied > 0) this.metrics.routeChangesApplied.inc(outcome.applied);
    if (outcome.invalid.length > 0) this.logger.warn({ member, revision, invalid: outcome.invalid.slice(0, 5) }, "route feed sent changes outside the contract; left out");
    if (this.logger.isLevelEnabled("debug")) this.logger.debug({ member, revision, reset, changes: batch.changes.length, applied: outcome.applied }, "route batch applied");
    return true;
  }
}
