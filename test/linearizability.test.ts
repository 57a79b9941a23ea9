import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { checkLinearizable } from "./support/linearizability.js";
import type { HistoryOp, KvOp, KvResult } from "./support/linearizability.js";

// ---- Builders for hand-written histories: (client, call, ret, key, ...) ----

const write = (client: number, call: number, ret: number, key: string, value: string): HistoryOp => ({
  client, call, ret, op: { kind: "write", key, value }, result: { kind: "write" },
});
const read = (client: number, call: number, ret: number, key: string, value: string | null): HistoryOp => ({
  client, call, ret, op: { kind: "read", key }, result: { kind: "read", value },
});
const cas = (
  client: number, call: number, ret: number, key: string, expected: string | null, value: string, ok: boolean,
): HistoryOp => ({ client, call, ret, op: { kind: "cas", key, expected, value }, result: { kind: "cas", ok } });
const pending = (client: number, call: number, op: KvOp): HistoryOp => ({ client, call, op });

describe("checkLinearizable: hand-written histories", () => {
  it("accepts an empty history", () => {
    expect(checkLinearizable([])).toEqual({ ok: true, keys: 0, ops: 0 });
  });

  it("accepts a sequential history and counts keys and ops", () => {
    const history = [read(1, 0, 1, "x", null), write(1, 2, 3, "x", "a"), read(2, 4, 5, "x", "a"), write(2, 6, 7, "y", "b")];
    expect(checkLinearizable(history)).toEqual({ ok: true, keys: 2, ops: 4 });
  });

  it("accepts a read concurrent with a write seeing either the old or the new value", () => {
    expect(checkLinearizable([write(1, 0, 10, "x", "a"), read(2, 2, 5, "x", null)]).ok).toBe(true);
    expect(checkLinearizable([write(1, 0, 10, "x", "a"), read(2, 2, 5, "x", "a")]).ok).toBe(true);
  });

  it("rejects a stale read after a completed write, reporting the key and its ops", () => {
    const history = [write(1, 0, 1, "x", "a"), read(2, 2, 3, "x", null), write(3, 0, 1, "other", "z")];
    const verdict = checkLinearizable(history);
    expect(verdict.ok).toBe(false);
    if (verdict.ok !== false) return;
    expect(verdict.key).toBe("x");
    expect(verdict.ops).toEqual(history.slice(0, 2));
    expect(verdict.reason).toMatch(/no linearization/);
  });

  it("treats a return and a call at the same instant as concurrent (only ret < call orders ops)", () => {
    expect(checkLinearizable([write(1, 0, 5, "x", "a"), read(2, 5, 6, "x", null)]).ok).toBe(true);
    expect(checkLinearizable([write(1, 0, 5, "x", "a"), read(2, 6, 7, "x", null)]).ok).toBe(false);
  });

  it("rejects two reads that see values in an order impossible for one register", () => {
    // "a" is fully written before "b" starts, so once "b" is seen, "a" can never come back.
    const prefix = [write(1, 0, 1, "x", "a"), write(2, 2, 20, "x", "b")];
    expect(checkLinearizable([...prefix, read(3, 3, 4, "x", "a"), read(3, 5, 6, "x", "b")]).ok).toBe(true);
    expect(checkLinearizable([...prefix, read(3, 3, 4, "x", "b"), read(3, 5, 6, "x", "a")]).ok).toBe(false);
  });

  it("rejects concurrent readers that disagree on the order of two concurrent writes", () => {
    const writes = [write(1, 0, 10, "x", "a"), write(2, 0, 10, "x", "b")];
    const readerSeesAThenB = [read(3, 1, 2, "x", "a"), read(3, 3, 4, "x", "b")];
    const readerSeesBThenA = [read(4, 1, 2, "x", "b"), read(4, 3, 4, "x", "a")];
    expect(checkLinearizable([...writes, ...readerSeesAThenB]).ok).toBe(true);
    expect(checkLinearizable([...writes, ...readerSeesAThenB, ...readerSeesBThenA]).ok).toBe(false);
  });

  it("checks compare-and-set success and failure against the current value", () => {
    expect(checkLinearizable([cas(1, 0, 1, "x", null, "a", true), read(1, 2, 3, "x", "a")]).ok).toBe(true);
    expect(checkLinearizable([cas(1, 0, 1, "x", null, "a", false)]).ok).toBe(false); // null === expected: must succeed
    expect(checkLinearizable([write(1, 0, 1, "x", "a"), cas(1, 2, 3, "x", "b", "c", true)]).ok).toBe(false);
    const failedCas = [write(1, 0, 1, "x", "a"), cas(1, 2, 3, "x", "b", "c", false)];
    expect(checkLinearizable([...failedCas, read(1, 4, 5, "x", "a")]).ok).toBe(true);
    expect(checkLinearizable([...failedCas, read(1, 4, 5, "x", "c")]).ok).toBe(false); // a failed cas changes nothing
  });

  it("lets only one of two concurrent cas(null -> ...) succeed", () => {
    const one = cas(1, 0, 10, "x", null, "a", true);
    expect(checkLinearizable([one, cas(2, 0, 10, "x", null, "b", false)]).ok).toBe(true);
    expect(checkLinearizable([one, cas(2, 0, 10, "x", null, "b", true)]).ok).toBe(false);
  });

  it("accepts a pending write observed by a later read, but not one observed before it was invoked", () => {
    const pendingWrite = pending(1, 0, { kind: "write", key: "x", value: "p" });
    expect(checkLinearizable([pendingWrite, read(2, 100, 101, "x", "p")]).ok).toBe(true);
    const invokedLater = pending(1, 5, { kind: "write", key: "x", value: "p" });
    expect(checkLinearizable([invokedLater, read(2, 0, 1, "x", "p")]).ok).toBe(false);
  });

  it("accepts a pending write that never takes effect, but it cannot take effect and then un-happen", () => {
    const pendingWrite = pending(1, 0, { kind: "write", key: "x", value: "p" });
    expect(checkLinearizable([pendingWrite, read(2, 1, 2, "x", null), read(2, 3, 4, "x", null)]).ok).toBe(true);
    expect(checkLinearizable([pendingWrite, read(2, 1, 2, "x", "p"), read(2, 3, 4, "x", null)]).ok).toBe(false);
  });

  it("allows either outcome of a pending cas, and ignores pending reads", () => {
    const pendingCas = pending(1, 0, { kind: "cas", key: "x", expected: null, value: "c" });
    expect(checkLinearizable([pendingCas, read(2, 1, 2, "x", "c")]).ok).toBe(true);
    expect(checkLinearizable([pendingCas, read(2, 1, 2, "x", null)]).ok).toBe(true);
    const pendingRead = pending(3, 0, { kind: "read", key: "x" });
    expect(checkLinearizable([pendingRead, read(2, 1, 2, "x", null)])).toEqual({ ok: true, keys: 1, ops: 2 });
  });

  it("rejects a read of a value nobody wrote", () => {
    expect(checkLinearizable([write(1, 0, 10, "x", "a"), read(2, 1, 2, "x", "ghost")]).ok).toBe(false);
  });

  it("checks keys independently", () => {
    // Were keys conflated, reading null from y after x was written would be a stale read.
    const history = [write(1, 0, 1, "x", "a"), read(2, 2, 3, "y", null), read(2, 4, 5, "x", "a")];
    expect(checkLinearizable(history)).toEqual({ ok: true, keys: 2, ops: 3 });
    const broken = [...history, write(3, 6, 7, "y", "b"), read(3, 8, 9, "y", null)];
    const verdict = checkLinearizable(broken);
    expect(verdict.ok === false && verdict.key).toBe("y");
  });

  it("returns unknown when the step budget runs out, but still reports a violation on another key", () => {
    const concurrent = Array.from({ length: 12 }, (_, i) => write(i, 0, 10, "x", `v${i}`));
    const verdict = checkLinearizable([...concurrent, read(99, 11, 12, "x", "v3")], { maxSteps: 5 });
    expect(verdict.ok).toBe("unknown");
    const withViolation = [...concurrent, write(1, 0, 1, "y", "a"), read(1, 2, 3, "y", null)];
    expect(checkLinearizable(withViolation, { maxSteps: 5 }).ok).toBe(false);
  });

  it("rejects malformed histories instead of judging them", () => {
    expect(() => checkLinearizable([write(1, 5, 4, "x", "a")])).toThrow(/return time/);
    expect(() => checkLinearizable([{ client: 1, call: 0, op: { kind: "read", key: "x" }, result: { kind: "read", value: null } }])).toThrow();
  });
});

// ---- Simulated atomic register: produces histories that are linearizable by construction ----

interface PlannedOp {
  readonly kind: "write" | "read" | "cas";
  readonly key: number;
  readonly value: number;
  readonly expected: number | null;
  readonly gapBefore: number; // idle time since the client's previous op returned (or timed out)
  readonly duration: number; // call -> ret (or -> timeout, if pending)
  readonly effectOffset: number; // linearization point = call + offset (clamped into [call, ret] if completed)
  readonly isPending: boolean;
  readonly takesEffect: boolean; // pending only: some pending ops never reach the register
}

const KEYS = ["k0", "k1", "k2", "k3", "k4"];
const valueName = (v: number): string => `v${v}`;

/**
 * Runs every client's ops against one real atomic register per key. Each op takes effect
 * at its linearization point; results are computed in linearization-point order, so the
 * history is linearizable by construction. Pending ops may take effect after the client
 * gave up on them (even after its later ops), or never.
 */
function simulate(clients: readonly (readonly PlannedOp[])[]): HistoryOp[] {
  const scheduled: { client: number; call: number; ret: number; effectAt: number; plan: PlannedOp }[] = [];
  clients.forEach((plans, client) => {
    let now = 0;
    for (const plan of plans) {
      const call = now + plan.gapBefore;
      const ret = call + plan.duration;
      const effectAt = call + (plan.isPending ? plan.effectOffset : Math.min(plan.effectOffset, plan.duration));
      scheduled.push({ client, call, ret, effectAt, plan });
      now = ret;
    }
  });
  // Stable sort: ties keep creation order, and any tie order respects real time anyway
  // (if a.ret < b.call then a.effectAt < b.effectAt strictly).
  const inEffectOrder = [...scheduled].sort((a, b) => a.effectAt - b.effectAt);
  const registers = new Map<string, string | null>();
  const results = new Map<(typeof scheduled)[number], KvResult>();
  for (const entry of inEffectOrder) {
    const { plan } = entry;
    if (plan.isPending && !plan.takesEffect) continue;
    const key = KEYS[plan.key]!;
    const current = registers.get(key) ?? null;
    if (plan.kind === "write") {
      registers.set(key, valueName(plan.value));
      results.set(entry, { kind: "write" });
    } else if (plan.kind === "read") {
      results.set(entry, { kind: "read", value: current });
    } else {
      const expected = plan.expected === null ? null : valueName(plan.expected);
      if (current === expected) registers.set(key, valueName(plan.value));
      results.set(entry, { kind: "cas", ok: current === expected });
    }
  }
  return scheduled.map((entry) => {
    const { client, call, ret, plan } = entry;
    const key = KEYS[plan.key]!;
    const op: KvOp =
      plan.kind === "write" ? { kind: "write", key, value: valueName(plan.value) }
      : plan.kind === "read" ? { kind: "read", key }
      : { kind: "cas", key, expected: plan.expected === null ? null : valueName(plan.expected), value: valueName(plan.value) };
    return plan.isPending ? { client, call, op } : { client, call, ret, op, result: results.get(entry)! };
  });
}

const plannedOp = (keyCount: number, valueCount: number): fc.Arbitrary<PlannedOp> =>
  fc.record({
    kind: fc.constantFrom("write" as const, "read" as const, "cas" as const),
    key: fc.integer({ min: 0, max: keyCount - 1 }),
    value: fc.integer({ min: 0, max: valueCount - 1 }),
    expected: fc.option(fc.integer({ min: 0, max: valueCount - 1 }), { freq: 3 }),
    gapBefore: fc.integer({ min: 0, max: 3 }),
    duration: fc.integer({ min: 0, max: 8 }),
    effectOffset: fc.integer({ min: 0, max: 12 }),
    isPending: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
    takesEffect: fc.boolean(),
  });

// size "max": fast-check's default size would keep most histories tiny and barely concurrent.
const simulatedHistory = (opts: { clients: number; opsPerClient: number; keys: number; values: number }) => {
  const clientOps = fc.array(plannedOp(opts.keys, opts.values), { minLength: 1, maxLength: opts.opsPerClient, size: "max" });
  return fc.array(clientOps, { minLength: 1, maxLength: opts.clients, size: "max" }).map(simulate);
};

const completedReadIndices = (history: readonly HistoryOp[]): number[] =>
  history.flatMap((op, i) => (op.op.kind === "read" && op.ret !== undefined ? [i] : []));

function withReadResult(history: readonly HistoryOp[], index: number, value: string): HistoryOp[] {
  return history.map((op, i) => (i === index ? { ...op, result: { kind: "read", value } } : op));
}

/** Reference oracle: plain Wing & Gong search over all orders, no memo, no linked list, no key split tricks. */
function bruteForceLinearizable(history: readonly HistoryOp[]): boolean {
  const keys = new Set(history.map((h) => h.op.key));
  return [...keys].every((key) => {
    const ops = history.filter((h) => h.op.key === key && !(h.op.kind === "read" && h.ret === undefined));
    const done = ops.map(() => false);
    const search = (state: string | null, completedLeft: number): boolean => {
      if (completedLeft === 0) return true;
      for (let i = 0; i < ops.length; i++) {
        const candidate = ops[i]!;
        if (done[i]) continue;
        const mustComeFirst = ops.some((o, j) => !done[j] && o.ret !== undefined && o.ret < candidate.call);
        if (mustComeFirst) continue;
        const { op, result } = candidate;
        let next: string | null;
        if (op.kind === "write") next = op.value;
        else if (op.kind === "read") {
          if (result?.kind !== "read" || result.value !== state) continue;
          next = state;
        } else {
          const succeeds = state === op.expected;
          if (result?.kind === "cas" && result.ok !== succeeds) continue;
          next = succeeds ? op.value : state;
        }
        done[i] = true;
        const found = search(next, completedLeft - (candidate.ret === undefined ? 0 : 1));
        done[i] = false;
        if (found) return true;
      }
      return false;
    };
    return search(null, ops.filter((o) => o.ret !== undefined).length);
  });
}

describe("checkLinearizable: properties", () => {
  const history = simulatedHistory({ clients: 5, opsPerClient: 20, keys: 2, values: 3 });

  it("accepts every history produced by a real atomic register", () => {
    fc.assert(
      fc.property(history, (h) => {
        expect(checkLinearizable(h)).toEqual({ ok: true, keys: new Set(h.map((o) => o.op.key)).size, ops: h.length });
      }),
      { numRuns: 500 },
    );
  });

  it("rejects a history where one completed read returns a never-written value", () => {
    fc.assert(
      fc.property(history, fc.nat(), (h, pick) => {
        const reads = completedReadIndices(h);
        fc.pre(reads.length > 0);
        const index = reads[pick % reads.length]!;
        const verdict = checkLinearizable(withReadResult(h, index, "never-written"));
        expect(verdict.ok).toBe(false);
        expect(verdict.ok === false && verdict.key).toBe(h[index]!.op.key);
      }),
      { numRuns: 500 },
    );
  });

  it("rejects a read that observes a write invoked only after the read returned", () => {
    fc.assert(
      fc.property(history, fc.nat(), (h, pick) => {
        const reads = completedReadIndices(h);
        fc.pre(reads.length > 0);
        const index = reads[pick % reads.length]!;
        const target = h[index]!;
        const futureWrite = write(99, target.ret! + 1, target.ret! + 2, target.op.key, "from-the-future");
        expect(checkLinearizable([...withReadResult(h, index, "from-the-future"), futureWrite]).ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it("agrees with a brute-force oracle on small, sometimes corrupted histories", () => {
    const small = simulatedHistory({ clients: 3, opsPerClient: 3, keys: 1, values: 2 });
    const corruption = fc.option(fc.record({ at: fc.nat(), value: fc.constantFrom(null, "v0", "v1"), flip: fc.boolean() }));
    fc.assert(
      fc.property(small, corruption, (h, corrupt) => {
        let history = h;
        if (corrupt !== null && h.length > 0) {
          const at = corrupt.at % h.length;
          history = h.map((op, i): HistoryOp => {
            if (i !== at || op.result === undefined) return op;
            if (op.result.kind === "read") return { ...op, result: { kind: "read", value: corrupt.value } };
            if (op.result.kind === "cas") return { ...op, result: { kind: "cas", ok: corrupt.flip !== op.result.ok } };
            return op;
          });
        }
        expect(checkLinearizable(history).ok).toBe(bruteForceLinearizable(history));
      }),
      { numRuns: 2000 },
    );
  });
});

// ---- Performance ----

/** Deterministic PRNG (mulberry32) so the performance history is the same every run. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function largeHistory(clients: number, opsPerClient: number, seed: number): HistoryOp[] {
  const random = seededRandom(seed);
  const int = (max: number) => Math.floor(random() * (max + 1));
  const kinds = ["write", "read", "cas"] as const;
  const plans = Array.from({ length: clients }, () =>
    Array.from({ length: opsPerClient }, (): PlannedOp => ({
      kind: kinds[int(2)]!,
      key: int(KEYS.length - 1),
      value: int(4),
      expected: int(5) === 5 ? null : int(4),
      gapBefore: int(2),
      duration: 1 + int(10),
      effectOffset: int(10),
      isPending: int(50) === 0,
      takesEffect: random() < 0.5,
    })),
  );
  return simulate(plans);
}

describe("checkLinearizable: performance", () => {
  it("checks ~2,000 ops over 5 keys from 5 concurrent clients quickly", () => {
    const history = largeHistory(5, 400, 42);
    const started = performance.now();
    const verdict = checkLinearizable(history);
    const elapsedMs = performance.now() - started;
    expect(verdict).toEqual({ ok: true, keys: 5, ops: 2000 });
    expect(elapsedMs).toBeLessThan(2000);
  });

  it("finds a violation buried at the end of a long history quickly", () => {
    const history = largeHistory(5, 400, 7);
    const lastRead = completedReadIndices(history).reduce((latest, i) => (history[i]!.call > history[latest]!.call ? i : latest));
    const started = performance.now();
    const verdict = checkLinearizable(withReadResult(history, lastRead, "never-written"));
    expect(verdict.ok).toBe(false);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("handles a long single-key history without recursion limits", () => {
    const history = Array.from({ length: 10_000 }, (_, i) =>
      i % 2 === 0 ? write(1, 2 * i, 2 * i + 1, "x", `v${i}`) : read(2, 2 * i, 2 * i + 1, "x", `v${i - 1}`),
    );
    expect(checkLinearizable(history)).toEqual({ ok: true, keys: 1, ops: 10_000 });
  });
});
