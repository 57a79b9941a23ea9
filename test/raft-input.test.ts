/**
 * Bad input never corrupts state or throws out of `RawNode.step`: malformed
 * messages are refused with an InvalidMessageError naming the problem and
 * change nothing; well-formed but unexpected ones (unknown members, future
 * terms, stale logs) are handled by the rules; and a randomized fuzz of
 * arbitrary message objects leaves a group that still elects and commits.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ConfChangeError,
  ConfChangeType,
  EntryType,
  InvalidMessageError,
  type Message,
  MessageType,
  ReadOnlyOption,
  StateRole,
  encodeConfChange,
  isResponseMessage,
  message,
  validateMessage,
} from "../src/raft/index.js";
import { ELECTION_TICK, Harness, enc } from "./support/raft-harness.js";

const THREE = ["n1", "n2", "n3"];

/** Everything a refused message must leave alone. */
function stateOf(h: Harness, id: string) {
  const r = h.raft(id);
  return {
    term: r.term,
    vote: r.vote,
    lead: r.lead,
    role: r.role,
    commit: r.log.committed,
    applied: r.log.applied,
    terms: h.termsOf(id),
    voters: [...r.voters],
    learners: [...r.learners],
    hasReady: h.raw(id).hasReady(),
  };
}

/** A group with a leader (n1, term 2), a committed write, and n2/n3 following. */
function settled(config = {}): Harness {
  const h = new Harness(THREE, { config });
  h.elect("n1");
  h.propose("n1", "w");
  h.stabilize();
  return h;
}

function bad(fields: Record<string, unknown>): Message {
  return fields as unknown as Message;
}

// ====================================================================== malformed

describe("malformed messages are refused with InvalidMessageError and change nothing", () => {
  const base = { from: "n1", to: "n2", term: 2, logTerm: 2, index: 5, commit: 5, reject: false, rejectHint: 0, entries: [] };
  const entry = (index: number, term = 2, extra: Record<string, unknown> = {}) => ({ index, term, type: EntryType.Normal, data: enc("e"), ...extra });
  const snap = (metadata: Record<string, unknown>, data: unknown = enc("[]")) => ({ metadata: { index: 9, term: 2, confState: { voters: THREE, learners: [] }, ...metadata }, data });
  const cases: [string, unknown, RegExp][] = [
    ["not an object (null)", null, /not an object/],
    ["not an object (a number)", 42, /not an object/],
    ["an unknown type", { ...base, type: 99 }, /unknown type 99/],
    ["a negative type", { ...base, type: -1 }, /unknown type -1/],
    ["a type given by name", { ...base, type: "App" }, /unknown type App/],
    ["a local Hup from the network", { ...base, type: MessageType.Hup }, /Hup is local/],
    ["a local Beat from the network", { ...base, type: MessageType.Beat }, /Beat is local/],
    ["a local SnapStatus from the network", { ...base, type: MessageType.SnapStatus }, /SnapStatus is local/],
    ["a local Unreachable from the network", { ...base, type: MessageType.Unreachable }, /Unreachable is local/],
    ["a local CheckQuorum from the network", { ...base, type: MessageType.CheckQuorum }, /CheckQuorum is local/],
    ["an empty sender", { ...base, type: MessageType.App, from: "" }, /from must be/],
    ["a sender that is not a string", { ...base, type: MessageType.App, from: 1 }, /from must be/],
    ["a recipient that is not a string", { ...base, type: MessageType.App, to: 2 }, /to must be/],
    ["a negative term", { ...base, type: MessageType.App, term: -1 }, /term must be a non-negative integer, got -1/],
    ["a fractional term", { ...base, type: MessageType.Heartbeat, term: 2.5 }, /term must be a non-negative integer, got 2.5/],
    ["a NaN term", { ...base, type: MessageType.Vote, term: NaN }, /term must be a non-negative integer, got NaN/],
    ["an infinite term", { ...base, type: MessageType.Vote, term: Infinity }, /term must be a non-negative integer, got Infinity/],
    ["a term beyond 2^53", { ...base, type: MessageType.Vote, term: 2 ** 53 }, /term must be a non-negative integer/],
    ["a term given as a string", { ...base, type: MessageType.App, term: "3" }, /term must be a non-negative integer, got 3/],
    ["a negative logTerm", { ...base, type: MessageType.App, logTerm: -2 }, /logTerm must be a non-negative integer/],
    ["a NaN index", { ...base, type: MessageType.App, index: NaN }, /index must be a non-negative integer/],
    ["a fractional commit", { ...base, type: MessageType.Heartbeat, commit: 4.5 }, /commit must be a non-negative integer/],
    ["a negative rejectHint", { ...base, type: MessageType.AppResp, rejectHint: -1 }, /rejectHint must be a non-negative integer/],
    ["entries that are not a list", { ...base, type: MessageType.App, entries: null }, /entries must be a list/],
    ["an entry that is not an object", { ...base, type: MessageType.App, entries: [null] }, /entry is not an object/],
    ["entries not right after the prev index", { ...base, type: MessageType.App, entries: [entry(7)] }, /entry index 7 where 6 was expected/],
    ["entries with a gap", { ...base, type: MessageType.App, entries: [entry(6), entry(8)] }, /entry index 8 where 7 was expected/],
    ["entries out of order", { ...base, type: MessageType.App, entries: [entry(6), entry(6)] }, /entry index 6 where 7 was expected/],
    ["an entry with a term above the message term", { ...base, type: MessageType.App, entries: [entry(6, 3)] }, /entry 6 has term 3 past the message term 2/],
    ["an entry with a negative term", { ...base, type: MessageType.App, entries: [entry(6, -1)] }, /entry 6 has term -1/],
    ["an entry of an unknown type", { ...base, type: MessageType.App, entries: [entry(6, 2, { type: 7 })] }, /entry 6 has unknown type 7/],
    ["an entry whose data is a string", { ...base, type: MessageType.App, entries: [entry(6, 2, { data: "abc" })] }, /entry 6 data is not bytes/],
    ["an entry whose data is a number array", { ...base, type: MessageType.App, entries: [entry(6, 2, { data: [1, 2] })] }, /entry 6 data is not bytes/],
    ["a proposal entry with a term", { ...base, type: MessageType.Prop, term: 0, entries: [entry(0, 1)] }, /term 1 past the message term 0/],
    ["a snapshot message without a snapshot", { ...base, type: MessageType.Snap }, /snapshot is missing/],
    ["a snapshot without metadata", { ...base, type: MessageType.Snap, snapshot: { data: enc("") } }, /snapshot is missing/],
    ["a snapshot at index 0", { ...base, type: MessageType.Snap, snapshot: snap({ index: 0 }) }, /snapshot index must be positive/],
    ["a snapshot with a NaN term", { ...base, type: MessageType.Snap, snapshot: snap({ term: NaN }) }, /snapshot index 9 or term NaN/],
    ["a snapshot without a conf state", { ...base, type: MessageType.Snap, snapshot: snap({ confState: undefined }) }, /conf state must list voters and learners/],
    ["a snapshot conf state without learners", { ...base, type: MessageType.Snap, snapshot: snap({ confState: { voters: THREE } }) }, /conf state must list/],
    ["a snapshot conf state with an empty id", { ...base, type: MessageType.Snap, snapshot: snap({ confState: { voters: ["n1", ""], learners: [] } }) }, /member ids must be non-empty strings/],
    ["a snapshot whose data is a string", { ...base, type: MessageType.Snap, snapshot: snap({}, "[]") }, /snapshot data is not bytes/],
    ["a ReadIndex without a context", { ...base, type: MessageType.ReadIndex, term: 0 }, /read index message needs a context/],
    ["a ReadIndexResp whose context is a string", { ...base, type: MessageType.ReadIndexResp, context: "r" }, /read index message needs a context/],
  ];

  for (const target of ["n2", "n1"]) {
    it.each(cases)(`to the ${target === "n1" ? "leader" : "follower"}: %s`, (_name, raw, problem) => {
      const h = settled();
      const before = stateOf(h, target);
      const m = raw && typeof raw === "object" && typeof (raw as { to?: unknown }).to === "string" ? bad({ ...(raw as object), to: target }) : bad(raw as Record<string, unknown>);
      let err: unknown;
      expect(() => {
        err = h.raw(target).step(m);
      }).not.toThrow();
      expect(err).toBeInstanceOf(InvalidMessageError);
      expect((err as InvalidMessageError).code).toBe("INVALID_MESSAGE");
      expect((err as Error).message).toMatch(problem);
      expect(stateOf(h, target)).toEqual(before);
      // And the group carries on as if nothing happened.
      h.propose("n1", "after");
      h.stabilize();
      expect(h.appliedTexts(target)).toEqual(["w", "after"]);
    });
  }
});

// ====================================================================== unknown members

describe("messages from an unknown member are handled by the rules", () => {
  // [name, message from n9, recipient, whether the recipient's durable state may change]
  const cases: [string, Partial<Message> & Pick<Message, "type">, string, boolean][] = [
    ["an append acknowledgement to the leader", { type: MessageType.AppResp, index: 6 }, "n1", false],
    ["an append rejection to the leader", { type: MessageType.AppResp, index: 6, reject: true, rejectHint: 0 }, "n1", false],
    ["a heartbeat acknowledgement to the leader", { type: MessageType.HeartbeatResp, context: enc("c") }, "n1", false],
    ["a vote grant to the leader", { type: MessageType.VoteResp }, "n1", false],
    ["a ReadIndex to the leader", { type: MessageType.ReadIndex, term: 0, context: enc("r") }, "n1", false],
    ["a TransferLeader naming itself, to the leader", { type: MessageType.TransferLeader, term: 0 }, "n1", false],
    ["a proposal to the leader", { type: MessageType.Prop, term: 0, entries: [{ index: 0, term: 0, type: EntryType.Normal, data: enc("p") }] }, "n1", true],
    ["a same-term heartbeat to a follower (it takes n9 for the leader until n1 speaks)", { type: MessageType.Heartbeat, commit: 0 }, "n2", true],
    ["a vote request of the current term to a follower that voted", { type: MessageType.Vote, index: 99, logTerm: 9 }, "n2", false],
    ["an append of a higher term to a follower (it follows n9)", { type: MessageType.App, term: 3, index: 6, logTerm: 2, commit: 6 }, "n2", true],
  ];
  it.each(cases)("%s", (_name, fields, to, mayChange) => {
    const h = settled();
    const before = stateOf(h, to);
    const prsBefore = [...h.raft("n1").prs.keys()];
    let err: unknown;
    expect(() => {
      err = h.inject(message({ from: "n9", to, term: 2, ...fields }));
      h.stabilize();
    }).not.toThrow();
    expect(err).toBeUndefined();
    if (!mayChange) {
      const { hasReady: _a, ...now } = stateOf(h, to);
      const { hasReady: _b, ...was } = before;
      expect(now).toEqual(was);
    }
    // The leader never starts tracking an unknown member.
    expect([...h.raft("n1").prs.keys()]).toEqual(prsBefore);
    expect(h.raft("n1").voters).toEqual(THREE);
    if (fields.type === MessageType.App) {
      expect(h.raft(to).lead).toBe("n9");
      expect(h.raft(to).term).toBe(3);
    }
  });

  it("a vote request from an unknown member of a later term is judged on its log", () => {
    const h = settled({ checkQuorum: false });
    const last = h.raft("n2").log.lastIndex();
    for (const [index, logTerm, granted] of [[last, 2, true], [last - 1, 2, false]] as const) {
      const mark = h.sent.length;
      const term = h.raft("n2").term + 1;
      h.inject(message({ type: MessageType.Vote, from: "n9", to: "n2", term, index, logTerm }));
      h.processReadies();
      const resp = h.sent.slice(mark).find((m) => m.type === MessageType.VoteResp && m.to === "n9")!;
      expect(resp.reject).toBe(!granted);
      expect(h.raft("n2").term).toBe(term);
    }
  });
});

// ====================================================================== future terms

describe("a vote request from a future term with a stale log", () => {
  // §5.4.1 denies the vote; §5.1 still moves the term forward, unless (thesis §4.2.3, with
  // check-quorum) the member heard a leader within the election timeout and ignores the request.
  const stale = (term: number, type = MessageType.Vote) => message({ type, from: "n3", to: "n2", term, index: 3, logTerm: 1 });

  for (const type of [MessageType.Vote, MessageType.PreVote]) {
    const name = type === MessageType.Vote ? "vote" : "pre-vote";
    it(`without check-quorum: the ${name} is denied (and a vote request still raises the term)`, () => {
      const h = settled({ checkQuorum: false });
      const mark = h.sent.length;
      h.inject(stale(10, type));
      h.processReadies();
      const resp = h.sent.slice(mark).find((m) => m.to === "n3")!;
      expect(resp.type).toBe(type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp);
      expect(resp.reject).toBe(true);
      // A vote request moved the term (and cleared the vote of the old term); a pre-vote did not.
      expect(h.raft("n2").vote).toBe(type === MessageType.Vote ? "" : "n1");
      expect(h.raft("n2").term).toBe(type === MessageType.Vote ? 10 : 2);
      expect(h.raft("n2").log.committed).toBe(h.raft("n1").log.committed);
    });

    it(`with check-quorum, while it hears a leader: the ${name} is ignored outright`, () => {
      const h = settled({ checkQuorum: true });
      h.tick(undefined, 2);
      const before = stateOf(h, "n2");
      const mark = h.sent.length;
      h.inject(stale(10, type));
      h.processReadies();
      expect(stateOf(h, "n2")).toEqual(before);
      expect(h.sent.slice(mark).filter((m) => m.from === "n2" && m.to === "n3")).toEqual([]);
      // The leader is undisturbed.
      h.tick(undefined, 3);
      expect(h.leader()).toBe("n1");
      expect(h.raft("n1").term).toBe(2);
    });
  }

  it("with check-quorum, once the leader has been silent for an election timeout: heard, and denied", () => {
    const h = settled({ checkQuorum: true });
    h.isolate("n2");
    for (let i = 0; i < ELECTION_TICK; i++) h.raw("n2").tick();
    const mark = h.sent.length;
    h.heal();
    h.inject(stale(10));
    h.processReadies();
    const resp = h.sent.slice(mark).find((m) => m.type === MessageType.VoteResp && m.to === "n3")!;
    expect(resp.reject).toBe(true);
    expect(h.raft("n2").term).toBe(10);
  });
});

// ====================================================================== known bugs

describe("well-formed but hostile input (bugs found)", () => {
  // BUG (src/raft/message-validation.ts findProblem accepts term 0 on any network message;
  // src/raft/raft.ts step(), `if (m.term === 0) { // Local message. }`): a network message
  // with term 0 skips every term check and goes straight to the role's handler. Only
  // Prop / ReadIndex / TransferLeader are legitimately forwarded with term 0.
  const termZero: [string, () => { h: Harness; check: () => void }][] = [
    [
      "an append with term 0 does not make a follower commit entries nobody committed",
      () => {
        const h = new Harness(THREE, { logs: { n2: [2, 2] } });
        const commit = h.raft("n2").log.committed;
        return {
          h,
          check: () => {
            h.inject(message({ type: MessageType.App, from: "n1", to: "n2", term: 0, index: 5, logTerm: 2, commit: 100 }));
            expect(h.raft("n2").log.committed).toBe(commit);
          },
        };
      },
    ],
    [
      "a heartbeat with term 0 does not send a candidate's term back to 0",
      () => {
        const h = new Harness(THREE, { config: { preVote: false } });
        h.campaign("n1");
        h.processReadies();
        return {
          h,
          check: () => {
            h.inject(message({ type: MessageType.Heartbeat, from: "n2", to: "n1", term: 0 }));
            expect(h.raft("n1").term).toBe(2);
          },
        };
      },
    ],
    [
      "a snapshot with term 0 does not replace a follower's log",
      () => {
        const h = settled();
        const terms = h.termsOf("n2");
        return {
          h,
          check: () => {
            h.inject(message({ type: MessageType.Snap, from: "n9", to: "n2", term: 0, snapshot: { metadata: { index: 50, term: 1, confState: { voters: ["n9"], learners: [] } }, data: enc("[]") } }));
            expect(h.termsOf("n2")).toEqual(terms);
            expect(h.raft("n2").voters).toEqual(THREE);
          },
        };
      },
    ],
    [
      "a TimeoutNow with term 0 from anyone does not start an election that skips the leader's lease",
      () => {
        const h = settled();
        return {
          h,
          check: () => {
            h.inject(message({ type: MessageType.TimeoutNow, from: "n9", to: "n2", term: 0 }));
            h.stabilize();
            expect(h.leader()).toBe("n1");
            expect(h.raft("n2").term).toBe(2);
          },
        };
      },
    ],
  ];
  for (const [name, setup] of termZero) {
    it(name, () => {
      const { h, check } = setup();
      check();
      // Refused at the door as malformed: term 0 is only for forwarded requests.
      expect(h.refusals.length).toBeGreaterThan(0);
    });
  }

  // BUG (src/raft/raft.ts handleAppendResponse → Progress.maybeUpdate, then maybeSendAppend →
  // sendSnapshot `throw new Error("invariant: entries for ... are compacted but no snapshot
  // exists")`): an AppResp acknowledging an index past the leader's last index sets match/next
  // past the log; the next send finds no term for next-1 and throws out of step().
  it("an acknowledgement past the leader's last index does not throw out of step", () => {
    const h = settled();
    const r = h.raft("n1");
    expect(() => h.inject(message({ type: MessageType.AppResp, from: "n2", to: "n1", term: r.term, index: r.log.lastIndex() + 1000 }))).not.toThrow();
  });

  // BUG (src/raft/message-validation.ts checks `context` only on ReadIndex / ReadIndexResp;
  // src/raft/read-only.ts key() does Buffer.from(ctx.buffer, ...)): a heartbeat (or its
  // response) whose context is not bytes throws a TypeError out of the leader's step. A
  // follower echoes a heartbeat's context, so one bad Heartbeat crashes the leader later.
  it("a heartbeat response whose context is not bytes is refused, not thrown", () => {
    const h = settled();
    h.raw("n1").readIndex(enc("r"));
    let err: unknown;
    expect(() => {
      err = h.inject(bad({ ...message({ type: MessageType.HeartbeatResp, from: "n2", to: "n1", term: 2 }), context: "abc" }));
    }).not.toThrow();
    expect(err).toBeInstanceOf(InvalidMessageError);
  });

  // BUG (src/raft/message-validation.ts does not decode ConfChange entries; src/raft/raft.ts
  // appendProposal appends a forwarded ConfChange entry as is): a forwarded proposal whose
  // conf change does not decode is committed, and every member's driver then fails on it
  // (decodeConfChange throws ConfChangeError when the entry is applied): a poison pill.
  it("a forwarded conf change that does not decode never reaches the log", () => {
    const h = settled();
    const before = h.raft("n1").log.lastIndex();
    h.inject(message({ type: MessageType.Prop, from: "n2", to: "n1", entries: [{ index: 0, term: 0, type: EntryType.ConfChange, data: enc("garbage") }] }));
    expect(h.raft("n1").log.lastIndex()).toBe(before);
    expect(() => h.stabilize()).not.toThrow();
  });

  // BUG (src/raft/raft.ts appendProposal, `this.pendingConfIndex = this.log.lastIndex() + 1`
  // for every ConfChange of the batch): it records the index of the batch's first entry, not of
  // the conf change. A forwarded proposal [Normal, ConfChange] sets pendingConfIndex one short,
  // so once the Normal entry is applied a second change is accepted while the first is still
  // unapplied: two membership changes in flight (thesis §4.1 forbids it).
  it("a conf change behind a normal entry in one proposal still blocks a second change", () => {
    const h = settled({ maxSizePerMsg: 1 });
    h.addMember("n4");
    h.addMember("n5");
    const L = h.raft("n1").log.lastIndex();
    h.inject(
      message({
        type: MessageType.Prop,
        from: "n2",
        to: "n1",
        entries: [
          { index: 0, term: 0, type: EntryType.Normal, data: enc("n") },
          { index: 0, term: 0, type: EntryType.ConfChange, data: encodeConfChange({ type: ConfChangeType.AddLearner, nodeId: "n4" }) },
        ],
      }),
    );
    expect(h.raft("n1").log.term(L + 2)).toBe(2);
    // Only the Normal entry gets through for now.
    h.dropWhen((m) => m.type === MessageType.App && m.entries.some((e) => e.index === L + 2));
    h.stabilize();
    expect(h.member("n1").appliedIndex).toBe(L + 1);
    expect(() => h.proposeConfChange("n1", ConfChangeType.AddLearner, "n5")).toThrow(ConfChangeError);
  });

  // BUG (src/raft/raft.ts handleHeartbeatResponse, `pr.lastAckedHeartbeatTick =
  // Math.max(pr.lastAckedHeartbeatTick, m.index)`): the echoed send tick is trusted, so one
  // HeartbeatResp carrying a tick from the future keeps the lease valid (the leader's own tick
  // plus that one make a quorum of 3) long after a real quorum was last heard. It should be
  // clamped to the leader's current tick (or matched against ticks actually sent).
  const LEASE = { readOnlyOption: ReadOnlyOption.LeaseBased };
  function isolatedLeaderRead(forge: boolean): number {
    const h = settled(LEASE);
    h.tick(undefined, 2);
    if (forge) h.inject(message({ type: MessageType.HeartbeatResp, from: "n2", to: "n1", term: 2, index: 1e9 }));
    h.isolate("n1");
    h.tick("n1", ELECTION_TICK - 1); // past the lease (electionTick - leaseMarginTicks), before check-quorum
    expect(h.raft("n1").role).toBe(StateRole.Leader);
    h.raw("n1").readIndex(enc("r"));
    h.processReadies();
    return h.member("n1").readStates.length;
  }
  it("an isolated leader stops serving lease reads once the lease lapses", () => {
    expect(isolatedLeaderRead(false)).toBe(0);
  });
  it("a heartbeat response echoing a future tick does not extend the lease", () => {
    expect(isolatedLeaderRead(true)).toBe(0);
  });
});

// ====================================================================== fuzz

/**
 * Raft tolerates crash faults, not lies: a member that sends well-formed messages with made-up
 * content at its current term (a second "leader" of a term, a forged acknowledgement, a vote
 * request about a log it does not have) can break any Raft. So each message object is:
 *  - "malformed" when validation refuses it: stepped, and it must be refused and change nothing;
 *  - "gap" when it is malformed in a way validation does not catch yet (the bugs above, each
 *    with its own failing test): skipped; remove a line from validationGap when fixed;
 *  - "honest" when an honest group or the network could produce it, whatever it says:
 *      a stale one (term below the recipient's): §5.1 rejects it;
 *      a forwarded request (Prop / ReadIndex / TransferLeader at term 0), as a client asked;
 *      from a member the group does not know: any response, or a vote request;
 *    (real messages duplicated, reordered and delayed come from the `replay` step);
 *    stepped, and must not throw;
 *  - "byzantine" otherwise: skipped. Conf change proposals are skipped too: a well-formed
 *    change adding phantom voters may rightly leave the group without a quorum.
 */
function validationGap(_m: Message): boolean {
  // Every gap found by the fuzz is closed (term 0 from the network, context
  // that is not bytes, undecodable conf changes); add a line here if a new
  // one is found, with its own failing test.
  return false;
}


function classify(h: Harness, m: Message): "malformed" | "gap" | "honest" | "byzantine" {
  if (validateMessage(m) !== undefined) return "malformed";
  if (validationGap(m)) return "gap";
  if (m.entries.some((e) => e.type === EntryType.ConfChange)) return "byzantine";
  if (m.from === m.to) return "byzantine";
  const forwarded = m.type === MessageType.Prop || m.type === MessageType.ReadIndex || m.type === MessageType.TransferLeader;
  if (forwarded && m.term === 0) return "honest";
  if (m.term < h.raft(m.to).term) return "honest";
  if (!THREE.includes(m.from) && (isResponseMessage(m.type) || m.type === MessageType.Vote || m.type === MessageType.PreVote)) return "honest";
  return "byzantine";
}

const weird = fc.constantFrom<unknown>(-1, 1.5, NaN, Infinity, 2 ** 53, "2", null, undefined);
const num = (max: number) => fc.oneof({ weight: 40, arbitrary: fc.nat(max) as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: weird });
const bytes = fc.uint8Array({ maxLength: 6 });
const data = fc.oneof({ weight: 12, arbitrary: bytes as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: fc.constantFrom<unknown>("s", [1], null) });
const entryArb = fc.record({
  index: num(14),
  term: num(6),
  type: fc.oneof({ weight: 12, arbitrary: fc.constant<unknown>(EntryType.Normal) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(EntryType.ConfChange, 5) }),
  data,
});
const confStateArb = fc.oneof(
  { weight: 6, arbitrary: fc.record({ voters: fc.subarray(THREE, { minLength: 1 }), learners: fc.constant<string[]>([]) }) as fc.Arbitrary<unknown> },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(undefined, { voters: ["n9"], learners: [] }, { voters: [""], learners: [] }) },
);
const snapshotArb = fc.record({ metadata: fc.record({ index: num(20), term: num(6), confState: confStateArb }), data: fc.oneof(fc.constant(enc("[]")) as fc.Arbitrary<unknown>, data) });

const messageArb = fc
  .record({
    type: fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 0, max: 18 }) as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: fc.constantFrom<unknown>(-1, 19, 99, NaN, "App") }),
    from: fc.oneof({ weight: 12, arbitrary: fc.constantFrom<unknown>("n1", "n2", "n3", "n9", "n9", "x") }, { weight: 1, arbitrary: fc.constantFrom<unknown>("", 7) }),
    to: fc.constantFrom("n1", "n2", "n3"),
    term: num(6),
    logTerm: num(6),
    index: num(14),
    commit: num(14),
    rejectHint: num(14),
    reject: fc.boolean(),
    entries: fc.oneof({ weight: 12, arbitrary: fc.array(entryArb, { maxLength: 3 }) as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: fc.constantFrom<unknown>(null, "x") }),
    /** Renumber the entries so that more messages pass validation. */
    contiguous: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    snapshot: fc.option(snapshotArb, { nil: undefined }),
    context: fc.option(fc.oneof({ weight: 8, arbitrary: bytes as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: fc.constant<unknown>("ctx") }), { nil: undefined }),
    transfer: fc.option(fc.boolean(), { nil: undefined }),
  })
  .map(({ contiguous, ...m }) => {
    if (contiguous && Array.isArray(m.entries) && typeof m.index === "number" && typeof m.term === "number") {
      const prop = m.type === MessageType.Prop;
      m.entries = m.entries.map((e: Record<string, unknown>, i: number) => ({
        ...e,
        index: prop ? 0 : (m.index as number) + 1 + i,
        term: prop ? 0 : Math.min(Number(e.term) || 0, m.term as number),
      }));
    }
    return m as unknown as Message;
  });

type Step =
  | { kind: "message"; m: Message }
  | { kind: "replay"; pick: number }
  | { kind: "tick" }
  | { kind: "propose"; id: string }
  | { kind: "split"; id: string }
  | { kind: "heal" };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: messageArb.map((m) => ({ kind: "message" as const, m })) },
  { weight: 4, arbitrary: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }).map((pick) => ({ kind: "replay" as const, pick })) },
  { weight: 3, arbitrary: fc.constant({ kind: "tick" as const }) },
  { weight: 2, arbitrary: fc.constantFrom(...THREE).map((id) => ({ kind: "propose" as const, id })) },
  { weight: 1, arbitrary: fc.constantFrom(...THREE).map((id) => ({ kind: "split" as const, id })) },
  { weight: 1, arbitrary: fc.constant({ kind: "heal" as const }) },
);

describe("fuzz: arbitrary message objects stepped into a 3-member group", () => {
  it("never throw, never change state when refused, and the group still elects and commits", () => {
    const counts = { malformed: 0, honest: 0, replayed: 0, gap: 0, byzantine: 0 };
    fc.assert(
      fc.property(fc.nat(1000), fc.boolean(), fc.array(stepArb, { maxLength: 40, size: "max" }), (seed, withLeader, steps) => {
        const h = new Harness(THREE, { seed });
        if (withLeader) {
          h.elect("n1");
          h.propose("n1", "w");
          h.stabilize();
        }
        const leaderOfTerm = new Map<number, string>();
        const lastTerm = new Map<string, number>();
        for (const s of steps) {
          if (s.kind === "tick") h.tick();
          else if (s.kind === "split") h.isolate(s.id);
          else if (s.kind === "heal") h.heal();
          else if (s.kind === "propose") {
            try {
              h.propose(s.id, "p");
            } catch (err) {
              expect(err).toHaveProperty("code"); // a typed refusal, nothing else
            }
          } else if (s.kind === "replay") {
            const real = h.sent.filter((m) => THREE.includes(m.to));
            if (real.length === 0) continue;
            const m = real[Math.floor(s.pick * real.length)]!;
            expect(h.raw(m.to).step(m)).toBeUndefined();
            counts.replayed++;
          } else {
            const m = s.m;
            const kind = classify(h, m);
            counts[kind]++;
            if (kind === "gap" || kind === "byzantine") continue;
            const before = stateOf(h, m.to);
            const err = h.raw(m.to).step(m);
            if (kind === "malformed") {
              expect(err).toBeInstanceOf(InvalidMessageError);
              expect(stateOf(h, m.to)).toEqual(before);
            } else expect(err).toBeUndefined();
          }
          h.stabilize();
          // What no input may break.
          for (const id of THREE) {
            const r = h.raft(id);
            expect(r.log.applied).toBeLessThanOrEqual(r.log.committed);
            expect(r.log.committed).toBeLessThanOrEqual(r.log.lastIndex());
            expect(r.term).toBeGreaterThanOrEqual(lastTerm.get(id) ?? 0);
            lastTerm.set(id, r.term);
            if (r.role === StateRole.Leader) {
              expect(leaderOfTerm.get(r.term) ?? id).toBe(id); // election safety
              leaderOfTerm.set(r.term, id);
            }
          }
        }
        // Liveness afterwards: a leader, and a write that a majority applies.
        h.heal();
        h.tickUntil(() => h.leader() !== undefined, 20 * ELECTION_TICK);
        const final = `final-${seed}`;
        h.tickUntil(() => {
          const leader = h.leader();
          if (leader && !h.logOf(leader).some((e) => e.data.length > 0 && new TextDecoder().decode(e.data) === final)) {
            try {
              h.propose(leader, final);
            } catch {
              // a transfer under way: try again next tick
            }
          }
          return THREE.filter((id) => h.appliedTexts(id).includes(final)).length >= 2;
        }, 20 * ELECTION_TICK);
        // State machine safety: no two members applied different entries at one index.
        const byIndex = new Map<number, string>();
        for (const id of THREE) {
          for (const e of h.member(id).applied) {
            const fp = `${e.term}:${e.type}:${Buffer.from(e.data).toString("hex")}`;
            expect(byIndex.get(e.index) ?? fp).toBe(fp);
            byIndex.set(e.index, fp);
          }
        }
      }),
      { numRuns: 400, seed: 20240607 },
    );
    // The fuzz really exercised every path.
    expect(counts.malformed).toBeGreaterThan(1000);
    expect(counts.honest).toBeGreaterThan(200);
    expect(counts.replayed).toBeGreaterThan(400);
  });
});
