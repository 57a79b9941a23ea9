/** Latency recording for the benchmarks: an HDR histogram in microseconds. */
import * as hdr from "hdr-histogram-js";

export class Latencies {
  private readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });

  /** Records one operation that started at `startedNs` (process.hrtime.bigint()). */
  record(startedNs: bigint): void {
    const us = Number((process.hrtime.bigint() - startedNs) / 1000n);
    this.histogram.recordValue(Math.max(1, us));
  }

  count(): number {
    return this.histogram.totalCount;
  }

  /** Percentile in milliseconds. */
  ms(percentile: number): number {
    return Number((this.histogram.getValueAtPercentile(percentile) / 1000).toFixed(2));
  }
}

/** Runs `concurrency` loops of `op` for `seconds`; returns ops/s and latencies. */
export async function closedLoop(
  concurrency: number,
  seconds: number,
  op: (worker: number, seq: number) => Promise<unknown>,
): Promise<{ opsPerSecond: number; errors: number; latencies: Latencies }> {
  const latencies = new Latencies();
  let errors = 0;
  let seq = 0;
  const deadline = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (Date.now() < deadline) {
        const t = process.hrtime.bigint();
        try {
          await op(worker, seq++);
          latencies.record(t);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  return { opsPerSecond: latencies.count() / elapsed, errors, latencies };
}
