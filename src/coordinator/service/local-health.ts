/**
 * How far the leader trusts its own ears: a multiplier of the failure
 * detector's timeouts that grows while this process's event loop is
 * saturated and shrinks back when it is not. A leader busy all of the time
 * reads its sockets late, so a heartbeat that arrived on time is heard
 * late, and the silence it measures is partly its own. Suspecting those
 * nodes costs Raft writes, which load the leader further: at 10,000 meeting
 * servers that feedback turned a busy leader into thousands of false
 * suspicions and deaths a second (BENCHMARKS.md, scale).
 *
 * This is Lifeguard's "local health multiplier" (Dadgar et al., 2018; the
 * awareness score of HashiCorp's memberlist): a member judges others more
 * slowly while it has evidence that it is itself the slow one. Here the
 * evidence is the share of wall time the event loop was busy (not waiting
 * for I/O), one window at a time; one saturated window raises the score by
 * one, one relaxed window lowers it by one, so a burst of work does not
 * blind the detector for long and a leader that recovers judges at full
 * speed within a few windows.
 *
 * Stretching timeouts only makes judgements later, never earlier, and
 * meetings are fenced by their epochs whenever they move, so nothing but
 * time is at stake: a server that really died while the leader is
 * saturated is declared dead up to `maxMultiplier` times later than usual.
 * A server whose connection breaks is still suspected at once.
 */
export interface LocalHealthOptions {
  /** A window whose busy share is at least this raises the score. */
  readonly saturated: number;
  /** A window whose busy share is below this lowers it. */
  readonly relaxed: number;
  /** The multiplier's ceiling (1 = never stretch). */
  readonly maxMultiplier: number;
}

export const LOCAL_HEALTH_DEFAULTS: LocalHealthOptions = { saturated: 0.95, relaxed: 0.8, maxMultiplier: 3 };

export class LocalHealth {
  private score = 0;

  constructor(private readonly options: LocalHealthOptions = LOCAL_HEALTH_DEFAULTS) {}

  /** The timeouts' multiplier now: 1 when healthy, up to maxMultiplier. */
  get multiplier(): number {
    return 1 + this.score;
  }

  /** One window's busy share (0..1); true when the multiplier changed. */
  observe(busyShare: number): boolean {
    const before = this.score;
    if (busyShare >= this.options.saturated) this.score = Math.min(this.options.maxMultiplier - 1, this.score + 1);
    else if (busyShare < this.options.relaxed) this.score = Math.max(0, this.score - 1);
    return this.score !== before;
  }

  reset(): void {
    this.score = 0;
  }
}
