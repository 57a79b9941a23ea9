/**
 * Sends Heartbeat every interval, one at a time, and keeps the lease and
 * draining flag the answers carry. A tick that finds a beat still in
 * flight is not dropped but sent as soon as that beat is answered: a
 * coordinator answering in 600 ms of a 500 ms interval then hears this
 * node every 600 ms, not every 1,000 (two intervals, where its detector
 * suspects a node), and still gets at most one beat at a time. Each beat's
 * deadline follows how fast the coordinator answers, up to the lease (timeoutMs): a beat
 * given up is sent on to another member, which forwards it to the same
 * leader, so a fleet that gave up on a slow leader at a fixed deadline
 * multiplied its load (the 10,000-server scale run collapsed that way).
 * Owned by NodeAgent: `start(intervalMs)` after every
 * Register (the interval may change), `beat()` for an extra beat at once,
 * `stop()` before Deregister and in stop.
 */
import * as grpc from "@grpc/grpc-js";
import { type Scheduler, type TimerHandle, realScheduler } from "../time/scheduler.js";
import type { LoadSample } from "./agent-config.js";
import type { CoordinatorConnection } from "./coordinator-connection.js";
import { parseHeartbeatResponse } from "./coordinator-responses.js";
import { CoordinatorCallError } from "./errors.js";

function isDeadline(err: unknown): boolean {
  return err instanceof CoordinatorCallError && err.status === grpc.status.DEADLINE_EXCEEDED;
}

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
  /** Smoothed time the coordinator took to answer a beat, ms (0: none answered yet). */
  private answerMs = 0;
  /** Beats given up in a row: each doubles the next one's deadline. */
  private givenUp = 0;

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
   * Each attempt's deadline. While the coordinator answers quickly, a third
   * of the lease (but at least one interval, never more than rpcTimeoutMs):
   * a member that froze is left in time for the beat to reach another
   * before the lease runs out. A coordinator that answers slowly is given
   * three times its smoothed answer time, and each beat given up doubles
   * the next one's deadline, up to one lease: a beat given up is sent to
   * another member that forwards it to the same leader, and one still
   * queued there renews the lease anyway. Not beyond the lease: a slow
   * leader that then froze is replaced after an election timeout, and its
   * successor judges every server a lease after it took over, so a beat
   * must leave the frozen one within a lease to reach the new one in time.
   */
  timeoutMs(): number {
    const quick = Math.min(this.host.rpcTimeoutMs, Math.max(this.intervalMs, Math.floor(this.leaseTtlMs / 3)));
    const slow = Math.max(3 * this.answerMs, quick * 2 ** Math.min(this.givenUp, 8));
    return Math.max(quick, Math.min(Math.round(slow), this.leaseTtlMs));
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
    const sentAt = this.scheduler.now();
    try {
      const raw = await this.connection.unary(
        "Heartbeat",
        { node_id: this.host.nodeId, generation, active_meetings: active, load: Math.min(1, active / this.host.capacity), ...figures },
        { timeoutMs: this.timeoutMs() },
      );
      const tookMs = this.scheduler.now() - sentAt;
      this.answerMs = this.answerMs === 0 ? tookMs : 0.8 * this.answerMs + 0.2 * tookMs;
      this.givenUp = 0;
      const answer = parseHeartbeatResponse(raw);
      if (answer.leaseTtlMs > 0) this.leaseTtlMs = answer.leaseTtlMs;
      this.host.answered(this.leaseTtlMs, answer.draining);
    } catch (err) {
      if (isDeadline(err)) this.givenUp++;
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
