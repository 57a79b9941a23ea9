/**
 * What the two hostile-input fuzz files (fuzz-grpc, fuzz-gateway) share:
 * the seed (fixed, printed, overridable by FUZZ_SEED so a failing CI run
 * can be replayed), deterministic case lists drawn with fast-check, a
 * bounded-concurrency runner, and the record of what each request got.
 *
 * Cases are drawn up front with `fc.sample` (seeded), not run inside
 * `fc.assert`: a failure is a request against live processes whose state
 * moves on, so shrinking would replay it against a different cluster.
 * Each failure is reported with the case that caused it instead.
 */
import { createServer } from "node:net";
import fc from "fast-check";
import { basePort } from "./member-cluster.js";

export const DEFAULT_FUZZ_SEED = 20_240_607;

/** The run's seed: FUZZ_SEED when set (any integer), else the fixed default. */
export function fuzzSeed(): number {
  const raw = process.env.FUZZ_SEED;
  if (raw === undefined || raw === "") return DEFAULT_FUZZ_SEED;
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return seed;
}

/** `count` values of `arb`, the same for the same (seed, stream): each stream of cases gets its own sub-seed. */
export function draw<T>(arb: fc.Arbitrary<T>, count: number, seed: number, stream: number): T[] {
  if (count <= 0) return [];
  // Mixed so that neighbouring streams do not share a prefix of values.
  const sub = (Math.imul(seed ^ 0x5bd1e995, 31) + Math.imul(stream + 1, 0x27d4eb2d)) | 0;
  return fc.sample(arb, { seed: sub, numRuns: count });
}

/**
 * `draw` in chunks, yielding to the event loop between them: drawing
 * thousands of cases (huge strings among them) in one go blocks the
 * process for seconds, and a test process that plays meeting servers
 * would miss their heartbeats and have them declared dead.
 */
export async function drawPatiently<T>(arb: fc.Arbitrary<T>, count: number, seed: number, stream: number, chunk = 20): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i * chunk < count; i++) {
    out.push(...draw(arb, Math.min(chunk, count - i * chunk), seed, stream * 10_000 + i));
    await new Promise((resolve) => setImmediate(resolve));
  }
  return out;
}

/** Runs `work` over `items` with at most `concurrency` in flight; resolves when all are done. */
export async function runPool<T>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** What went wrong with one request: the case, shortened for the report. */
export interface FuzzFailure {
  readonly target: string;
  readonly problem: string;
  readonly request: string;
}

/** Counts and failures of one fuzz file. */
export class FuzzLedger {
  requests = 0;
  readonly targets = new Set<string>();
  readonly byOutcome = new Map<string, number>();
  readonly failures: FuzzFailure[] = [];

  record(target: string, outcome: string): void {
    this.requests++;
    this.targets.add(target);
    const key = `${target} ${outcome}`;
    this.byOutcome.set(key, (this.byOutcome.get(key) ?? 0) + 1);
  }

  fail(target: string, problem: string, request: unknown): void {
    this.failures.push({ target, problem, request: describeRequest(request) });
  }

  /** The first failures, one per line, for an assertion message. */
  report(limit = 15): string {
    const lines = this.failures.slice(0, limit).map((f) => `- ${f.target}: ${f.problem}\n    request: ${f.request}`);
    if (this.failures.length > limit) lines.push(`... and ${this.failures.length - limit} more`);
    return lines.join("\n");
  }
}

/** A short printable form of a request: long strings and buffers cut, so a report stays readable. */
export function describeRequest(value: unknown): string {
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === "string" && v.length > 500) return `${v.slice(0, 400)}…(${v.length} chars)`;
    if (v instanceof Uint8Array) return `<${v.length} bytes: ${Buffer.from(v.subarray(0, 24)).toString("hex")}${v.length > 24 ? "…" : ""}>`;
    if (v && typeof v === "object" && (v as { type?: unknown }).type === "Buffer" && Array.isArray((v as { data?: unknown }).data)) {
      const data = (v as { data: number[] }).data;
      return `<${data.length} bytes: ${Buffer.from(data.slice(0, 24)).toString("hex")}${data.length > 24 ? "…" : ""}>`;
    }
    if (typeof v === "bigint") return `${v}n`;
    return v;
  });
  return text === undefined ? String(value) : text.length > 1000 ? `${text.slice(0, 1000)}…` : text;
}

/** Whether a process is still there (signal 0 checks without touching it). */
export function processAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A base port (see basePort) whose `span` ports are all free now: other
 * test files pick theirs at random too, and a member that finds its port
 * taken fails the whole run. (A race remains, but a narrow one.)
 */
export async function freeBasePort(span: number): Promise<number> {
  const free = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = basePort();
    let ok = true;
    for (let p = base; p < base + span && ok; p++) ok = await free(p);
    if (ok) return base;
  }
  throw new Error(`no ${span} free ports in a row after 50 tries`);
}

/** The longest the event loop was blocked while it ran (a heartbeat that waits longer is late). */
export class LoopLag {
  maxMs = 0;
  private timer: NodeJS.Timeout | undefined;

  start(everyMs = 50): this {
    let last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      this.maxMs = Math.max(this.maxMs, now - last - everyMs);
      last = now;
    }, everyMs);
    return this;
  }

  stop(): number {
    clearInterval(this.timer);
    return Math.round(this.maxMs);
  }
}
