/**
 * Whether the gateway can reach a quorum of the coordinator, for /healthz.
 *
 * Proof of a quorum is a recent linearizable read: the probe calls
 * Coordinator.ListNodes every `intervalMs` (a ReadIndex read: it succeeds
 * only when the leader confirmed its leadership with a majority), and any
 * GetRoute the gateway makes counts too. ClusterStatus is not used: a member
 * answers it from its own Raft status, with or without a quorum.
 *
 * Healthy while the last proof is younger than `freshMs`.
 * Started by startGateway; `stop()` from Gateway.close.
 */
import type { Logger } from "pino";
import { ClientClosedError, type CoordinatorClient } from "./coordinator-client.js";

export interface QuorumProbeOptions {
  readonly intervalMs: number;
  readonly freshMs: number;
}

export const defaultProbeOptions: QuorumProbeOptions = { intervalMs: 1000, freshMs: 3000 };

export class QuorumProbe {
  private lastProofMs = 0;
  private stopped = false;
  private running: Promise<void> | undefined;
  /** The last probe's failure, for /healthz's message. */
  lastError: string | undefined = "no probe answered yet";

  constructor(
    private readonly client: CoordinatorClient,
    private readonly logger: Logger,
    private readonly options: QuorumProbeOptions = defaultProbeOptions,
  ) {}

  /** A linearizable read succeeded now. */
  proved(nowMs: number = Date.now()): void {
    this.lastProofMs = nowMs;
    this.lastError = undefined;
  }

  healthy(nowMs: number = Date.now()): boolean {
    return nowMs - this.lastProofMs < this.options.freshMs;
  }

  /** Milliseconds since the last proof (Infinity: never). */
  ageMs(nowMs: number = Date.now()): number {
    return this.lastProofMs === 0 ? Infinity : nowMs - this.lastProofMs;
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.client.unary("Coordinator", "ListNodes", {}, { deadlineMs: this.options.intervalMs });
        this.proved();
      } catch (err) {
        if (err instanceof ClientClosedError) return;
        this.lastError = err instanceof Error ? err.message : String(err);
        this.logger.debug({ err }, "quorum probe failed");
      }
      if (this.stopped) return;
      try {
        await this.client.sleep(this.options.intervalMs);
      } catch {
        return;
      }
    }
  }
}
