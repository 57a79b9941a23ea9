/**
 * Sends Heartbeat every interval, one at a time, and keeps the lease and
 * draining flag the answers carry. A tick that finds a beat still in
 * flight is not dropped but sent as soon as that beat is answered: a
 * coordinator answering in 600 ms of a 500 ms interval then hears this
 * node every 600 ms, not every 1,000 (two intervals, where its detector
 * suspects a node), and still gets at most one beat at a time. Owned by NodeAgent: `start(intervalMs)` after every
 * Register (the interval may change), `beat()` for an extra beat at once,
 * `stop()` before Deregister and in stop.
 */
import { type Scheduler, type TimerHandle, realScheduler } from "../time/scheduler.js";
import type { LoadSample } from "./agent-config.js";
import type { CoordinatorConnection } from "./coordinator-connection.js";
import { parseHeartbeatResponse } from "./coordinator-responses.js";

export interface HeartbeatHost {
  readonly nodeId: string;
  readonly capacity: number;
  readonly rpcTimeoutMs: number;
  /** Whether a beat may be sent now (registered, not re-registering, not stopped). */
  mayBeat(): boolean;
  generation(): number;
  activeMeetings(): number;
  /** The host's load figures for this beat, checked; undefined sends none. */
  loadSample(): Required<LoadSample> | undefined;
  /** Every answer, checked. */
  answered(leaseTtlMs: number, draining: boolean): void;
  /** The call failed (after trying the members); `generation` is the one it carried. */
  failed(err: unknown, generation: number): void;
}

export class HeartbeatLoop {
  private timer: TimerHandle | undefined;
  private inFlight = false;
  /** A tick came while a beat was in flight: beat again once it is answered. */
  private tickMissed = false;
  private intervalMs = 0;
  private leaseTtlMs = 0;

  constructor(
    private readonly connection: CoordinatorConnection,
    private readonly host: HeartbeatHost,
    private readonly scheduler: Scheduler = realScheduler,
  ) {}

  /** (Re)starts the beats with the interval and lease of the latest Register. */
  start(intervalMs: number, leaseTtlMs: number): void {
    this.stop();
    this.intervalMs = intervalMs;
    this.leaseTtlMs = leaseTtlMs;
    this.tickMissed = false;
    this.timer = this.scheduler.setInterval(() => this.tick(), intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) this.scheduler.clearInterval(this.timer);
    this.timer = undefined;
    this.tickMissed = false;
  }

  private tick(): void {
    if (this.inFlight) this.tickMissed = true;
    else void this.beat();
  }

  /**
   * Each attempt's deadline: a heartbeat must not outlive the lease it
   * renews, so at most a third of the lease (but at least one interval),
   * and never more than rpcTimeoutMs.
   */
  timeoutMs(): number {
    return Math.min(this.host.rpcTimeoutMs, Math.max(this.intervalMs, Math.floor(this.leaseTtlMs / 3)));
  }

  /** One beat now, unless one is in flight or the host says not to. Never rejects. */
  async beat(): Promise<void> {
    if (this.inFlight || !this.host.mayBeat()) return;
    this.inFlight = true;
    const generation = this.host.generation();
    const active = this.host.activeMeetings();
    const sample = this.host.loadSample();
    const figures = sample
      ? { cpu: sample.cpu, net_in_bytes_per_sec: sample.netInBytesPerSec, net_out_bytes_per_sec: sample.netOutBytesPerSec, participants: sample.participants }
      : {};
    try {
      const raw = await this.connection.unary(
        "Heartbeat",
        { node_id: this.host.nodeId, generation, active_meetings: active, load: Math.min(1, active / this.host.capacity), ...figures },
        { timeoutMs: this.timeoutMs() },
      );
      const answer = parseHeartbeatResponse(raw);
      if (answer.leaseTtlMs > 0) this.leaseTtlMs = answer.leaseTtlMs;
      this.host.answered(this.leaseTtlMs, answer.draining);
    } catch (err) {
      this.host.failed(err, generation);
    } finally {
      this.inFlight = false;
    }
    if (this.tickMissed && this.timer) {
      this.tickMissed = false;
      // Not awaited: on a slow coordinator the catch-ups go on as long as it stays slow.
      void this.beat();
    }
  }
}
