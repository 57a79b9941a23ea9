/**
 * Linearizability checker for a key-value register history.
 *
 * Algorithm: Wing & Gong's backtracking search with Lowe's memoisation
 * ("Testing for linearizability", Gavin Lowe 2016), structured like Porcupine:
 * the history is a doubly linked list of call/return events; linearizing an
 * operation "lifts" its call and return out of the list, backtracking
 * "unlifts" them back in (dancing-links style, so undo is O(1)). A memo set of
 * (linearized-ops bitset, model state) prunes configurations already explored.
 *
 * The history is partitioned by key and each key checked on its own: a register
 * per key is P-compositional, so the whole history is linearizable iff every
 * key's sub-history is, and small searches are exponentially cheaper than one
 * big one.
 *
 * Beyond Porcupine: ops that cannot change the state (reads, failed cas) are
 * linearized eagerly with no backtracking alternatives (see preservesState),
 * and memo keys encode only the ragged part of the bitset (see memoKey).
 *
 * The search is iterative (explicit stack) so long histories cannot overflow
 * the JS call stack.
 */

export type KvOp =
  | { readonly kind: "write"; readonly key: string; readonly value: string }
  | { readonly kind: "read"; readonly key: string }
  | { readonly kind: "cas"; readonly key: string; readonly expected: string | null; readonly value: string };

export type KvResult =
  | { readonly kind: "write" }
  | { readonly kind: "read"; readonly value: string | null }
  | { readonly kind: "cas"; readonly ok: boolean };

/** One client operation. `ret === undefined` means the client never learned the outcome (timeout, crash): it may have taken effect at any time after `call`, or never. */
export interface HistoryOp {
  readonly client: number;
  readonly call: number; // time the client invoked it (any monotonic number: a tick or a counter)
  readonly ret?: number; // time the client got the answer; must be >= call
  readonly op: KvOp;
  readonly result?: KvResult; // present iff ret is present
}

export type LinearizabilityVerdict =
  | { readonly ok: true; readonly keys: number; readonly ops: number }
  | { readonly ok: false; readonly key: string; readonly reason: string; readonly ops: readonly HistoryOp[] } // ops: that key's history, for the report
  | { readonly ok: "unknown"; readonly key: string; readonly reason: string }; // search budget exhausted

const DEFAULT_MAX_STEPS = 5_000_000;

export function checkLinearizable(
  history: readonly HistoryOp[],
  options?: { readonly maxSteps?: number },
): LinearizabilityVerdict {
  const maxSteps = options?.maxSteps ?? DEFAULT_MAX_STEPS;
  const historyByKey = new Map<string, HistoryOp[]>();
  for (const op of history) {
    validate(op);
    let ops = historyByKey.get(op.op.key);
    if (ops === undefined) historyByKey.set(op.op.key, (ops = []));
    ops.push(op);
  }

  // A definite violation on any key beats "unknown" on another, so keep going
  // after a budget exhaustion and only report it if nothing worse turns up.
  let firstUnknown: LinearizabilityVerdict | undefined;
  for (const [key, keyHistory] of historyByKey) {
    const outcome = checkSingleKey(keyHistory, maxSteps);
    if (outcome.kind === "violation") return { ok: false, key, reason: outcome.reason, ops: keyHistory };
    if (outcome.kind === "budget-exhausted") firstUnknown ??= { ok: "unknown", key, reason: outcome.reason };
  }
  return firstUnknown ?? { ok: true, keys: historyByKey.size, ops: history.length };
}

/** Malformed input is a bug in the test harness, not a linearizability violation, so it throws. */
function validate(entry: HistoryOp): void {
  const where = `client ${entry.client} ${entry.op.kind}(${JSON.stringify(entry.op.key)}) called at ${entry.call}`;
  if (!Number.isFinite(entry.call)) throw new Error(`${where}: call time must be a finite number`);
  if (entry.ret === undefined) {
    if (entry.result !== undefined) throw new Error(`${where}: has a result but no return time`);
    return;
  }
  if (!Number.isFinite(entry.ret) || entry.ret < entry.call) throw new Error(`${where}: bad return time ${entry.ret}`);
  if (entry.result === undefined) throw new Error(`${where}: returned but has no result`);
  if (entry.result.kind !== entry.op.kind) throw new Error(`${where}: result kind ${entry.result.kind} does not match`);
}

type KeyOutcome =
  | { readonly kind: "linearizable" }
  | { readonly kind: "violation"; readonly reason: string }
  | { readonly kind: "budget-exhausted"; readonly reason: string };

/**
 * An operation compiled for the search. Register values are interned to small
 * integers (NULL_VALUE for null) so states compare with === and embed cheaply
 * in memo keys. `outcome === undefined` means the client never saw a result.
 */
type CompiledOp =
  | { readonly kind: "write"; readonly value: number }
  | { readonly kind: "read"; readonly observed: number }
  | { readonly kind: "cas"; readonly expected: number; readonly value: number; readonly outcome: boolean | undefined };

const NULL_VALUE = 0;
const REJECTED = -1;

/** Sequential register semantics: the state after `op`, or REJECTED if `op`'s recorded result is impossible in `state`. */
function step(state: number, op: CompiledOp): number {
  switch (op.kind) {
    case "write":
      return op.value;
    case "read":
      return op.observed === state ? state : REJECTED;
    case "cas": {
      const succeeds = state === op.expected;
      // A pending cas has no recorded outcome: whichever the state dictates is fine.
      if (op.outcome !== undefined && op.outcome !== succeeds) return REJECTED;
      return succeeds ? op.value : state;
    }
  }
}

/** A call or return event in the search's doubly linked list. */
interface Entry {
  readonly opIndex: number;
  readonly isCall: boolean;
  /** For a call: its return entry, or null if the op is pending (it has no return; see compile). */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

function compile(keyHistory: readonly HistoryOp[]): { ops: CompiledOp[]; sources: HistoryOp[]; head: Entry } {
  const interned = new Map<string, number>();
  const intern = (value: string | null): number => {
    if (value === null) return NULL_VALUE;
    let id = interned.get(value);
    if (id === undefined) interned.set(value, (id = interned.size + 1));
    return id;
  };

  const ops: CompiledOp[] = [];
  const sources: HistoryOp[] = [];
  const events: { time: number; entry: Entry }[] = [];
  // Number ops in call order: see memoKey for why.
  for (const source of [...keyHistory].sort((a, b) => a.call - b.call)) {
    const { op, result } = source;
    let compiled: CompiledOp;
    if (op.kind === "read") {
      // A pending read has no effect and no observed value: nothing to check.
      if (result?.kind !== "read") continue;
      compiled = { kind: "read", observed: intern(result.value) };
    } else if (op.kind === "write") {
      compiled = { kind: "write", value: intern(op.value) };
    } else {
      const outcome = result?.kind === "cas" ? result.ok : undefined;
      compiled = { kind: "cas", expected: intern(op.expected), value: intern(op.value), outcome };
    }
    const opIndex = ops.length;
    ops.push(compiled);
    sources.push(source);
    const call: Entry = { opIndex, isCall: true, match: null, prev: null, next: null };
    events.push({ time: source.call, entry: call });
    // A pending write/cas gets no return entry at all: its return is at
    // +infinity, so it never forces a backtrack, and the search may finish
    // with it still in the list (it "never took effect").
    if (source.ret !== undefined) {
      call.match = { opIndex, isCall: false, match: null, prev: null, next: null };
      events.push({ time: source.ret, entry: call.match });
    }
  }

  // Equal timestamps: a return and a call at the same time t are treated as
  // concurrent, because the clock's resolution can't tell us which came first.
  // Only ret < call (strictly) orders one op before another. Sorting calls
  // before returns at equal times achieves exactly that: it can only add
  // overlaps, never invent a real-time order the history doesn't prove.
  events.sort((a, b) => a.time - b.time || (a.entry.isCall ? 0 : 1) - (b.entry.isCall ? 0 : 1));

  const head: Entry = { opIndex: -1, isCall: false, match: null, prev: null, next: null };
  let tail = head;
  for (const { entry } of events) {
    entry.prev = tail;
    tail.next = entry;
    tail = entry;
  }
  return { ops, sources, head };
}

function unlink(entry: Entry): void {
  entry.prev!.next = entry.next;
  if (entry.next !== null) entry.next.prev = entry.prev;
}

/** Reverses unlink; valid because entries are relinked in exactly the reverse order they were unlinked. */
function relink(entry: Entry): void {
  entry.prev!.next = entry;
  if (entry.next !== null) entry.next.prev = entry;
}

/** Remove an op (its call and, if completed, its return) from the list: it has been linearized. */
function lift(call: Entry): void {
  unlink(call);
  if (call.match !== null) unlink(call.match);
}

function unlift(call: Entry): void {
  if (call.match !== null) relink(call.match);
  relink(call);
}

/**
 * Memo key for (set of linearized ops, register state). Ops are numbered in
 * call order and get linearized roughly in that order, so the bitset is mostly
 * a run of all-ones words, then a short ragged window, then zeros: only the
 * window is encoded, keeping keys short even for long histories. Its 16-bit
 * words become UTF-16 code units, giving a compact exact string (lone
 * surrogates are fine in JS strings used as Set keys). Chunked because
 * `fromCharCode.apply` has an argument-count limit.
 */
function memoKey(bitset: Uint32Array, state: number): string {
  let start = 0;
  while (start < bitset.length && bitset[start] === 0xffffffff) start++;
  let end = bitset.length;
  while (end > start && bitset[end - 1] === 0) end--;
  const window = new Uint16Array(bitset.buffer, start * 4, (end - start) * 2);
  let key = `${state}:${start}:`;
  const chunk = 8192;
  for (let offset = 0; offset < window.length; offset += chunk) {
    key += String.fromCharCode.apply(null, window.subarray(offset, offset + chunk) as unknown as number[]);
  }
  return key;
}

function checkSingleKey(keyHistory: readonly HistoryOp[], maxSteps: number): KeyOutcome {
  const { ops, sources, head } = compile(keyHistory);
  let completedRemaining = sources.filter((source) => source.ret !== undefined).length;

  const bitset = new Uint32Array(Math.ceil(ops.length / 32) || 1);
  const explored = new Set<string>();

  // The explicit recursion stack: which call was linearized, the state before
  // it, and whether it was a committed move (see preservesState).
  const linearizedCalls: Entry[] = [];
  const statesBefore: number[] = [];
  const committed: boolean[] = [];

  // For the failure report: the deepest partial linearization found, and the
  // return event that blocked it (the op that could not be fitted in).
  let deepest = 0;
  let blockedBy: HistoryOp | undefined;

  let state = NULL_VALUE;
  let entry = committableCandidate(head, state, ops) ?? head.next;
  let steps = 0;
  for (;;) {
    // Success once every completed op is linearized: pending ops still in the
    // list are allowed to never have happened.
    if (completedRemaining === 0 || entry === null) return { kind: "linearizable" };
    if (++steps > maxSteps) {
      return { kind: "budget-exhausted", reason: `search exceeded ${maxSteps} steps over ${ops.length} ops` };
    }

    if (entry.isCall) {
      const opIndex = entry.opIndex;
      const op = ops[opIndex];
      const nextState = step(state, op);
      let configurationIsDead = false;
      if (nextState !== REJECTED) {
        bitset[opIndex >>> 5] |= 1 << (opIndex & 31);
        const key = memoKey(bitset, nextState);
        if (!explored.has(key)) {
          explored.add(key);
          linearizedCalls.push(entry);
          statesBefore.push(state);
          committed.push(preservesState(op));
          state = nextState;
          lift(entry);
          if (entry.match !== null) completedRemaining--;
          entry = committableCandidate(head, state, ops) ?? head.next;
          continue;
        }
        // Already explored from this exact configuration: undo and try the next
        // candidate, unless this was a committed move, whose failure dooms the
        // current configuration too.
        bitset[opIndex >>> 5] &= ~(1 << (opIndex & 31));
        configurationIsDead = preservesState(op);
      }
      if (!configurationIsDead) {
        entry = entry.next;
        continue;
      }
    } else if (linearizedCalls.length >= deepest) {
      // Reached a return: that op must be linearized before anything later,
      // but no candidate before it worked.
      deepest = linearizedCalls.length;
      blockedBy = sources[entry.opIndex];
    }

    // Backtrack past every committed move: each one's failure means the
    // configuration it was made from has no solution either.
    let undone: Entry | undefined;
    let wasCommitted: boolean;
    do {
      undone = linearizedCalls.pop();
      if (undone === undefined) {
        return {
          kind: "violation",
          reason:
            `no linearization of these ${sources.length} op(s) exists: at most ${deepest} could be linearized ` +
            `before getting stuck at the return of ${blockedBy ? describe(blockedBy) : "?"}`,
        };
      }
      wasCommitted = committed.pop()!;
      state = statesBefore.pop()!;
      unlift(undone);
      if (undone.match !== null) completedRemaining++;
      bitset[undone.opIndex >>> 5] &= ~(1 << (undone.opIndex & 31));
    } while (wasCommitted);
    entry = undone.next;
  }
}

/**
 * A completed read, or a completed cas that failed, never changes the state.
 * If such an op fits the current state and nothing must precede it (its call
 * is before every remaining return), then linearizing it right now is never
 * wrong: in any valid completion it could be moved to the front without
 * changing any other op's state. So the search commits to it (no alternatives
 * from this configuration), and if that fails, the configuration itself is
 * dead. This cuts most of the branching that concurrent reads would cause.
 */
function preservesState(op: CompiledOp): boolean {
  return op.kind === "read" || (op.kind === "cas" && op.outcome === false);
}

/** Prefer a committable op among the current candidates (the calls before the first return), if any. */
function committableCandidate(head: Entry, state: number, ops: readonly CompiledOp[]): Entry | null {
  for (let candidate = head.next; candidate !== null && candidate.isCall; candidate = candidate.next) {
    const op = ops[candidate.opIndex];
    if (preservesState(op) && step(state, op) !== REJECTED) return candidate;
  }
  return null;
}

function describe(entry: HistoryOp): string {
  const { op, result } = entry;
  const args =
    op.kind === "write"
      ? JSON.stringify(op.value)
      : op.kind === "cas"
        ? `${JSON.stringify(op.expected)} -> ${JSON.stringify(op.value)}`
        : "";
  const outcome =
    result === undefined
      ? "pending"
      : result.kind === "read"
        ? JSON.stringify(result.value)
        : result.kind === "cas"
          ? String(result.ok)
          : "ok";
  const span = `[${entry.call}, ${entry.ret ?? "∞"}]`;
  return `client ${entry.client} ${op.kind}(${JSON.stringify(op.key)}${args ? `, ${args}` : ""}) => ${outcome} ${span}`;
}
