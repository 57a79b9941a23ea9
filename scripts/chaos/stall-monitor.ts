/**
 * Notices when this process's event loop stood still (a loaded or frozen
 * machine: every process here stalls alike), so bounds on how fast the
 * cluster reacts can allow for time in which nothing ran. A tick every
 * TICK_MS; a gap over STALL_MS between ticks is recorded as a stall.
 */
const TICK_MS = 100;
const STALL_MS = 500;

export class StallMonitor {
  readonly stalls: { readonly from: number; readonly to: number }[] = [];
  private last = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => {
      const now = Date.now();
      if (now - this.last > STALL_MS) this.stalls.push({ from: this.last + TICK_MS, to: now });
      this.last = now;
    }, TICK_MS);
    this.timer.unref();
  }

  /** Stalled time within [from, to], ms. */
  overlap(from: number, to: number): number {
    let ms = 0;
    for (const s of this.stalls) ms += Math.max(0, Math.min(to, s.to) - Math.max(from, s.from));
    return ms;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
