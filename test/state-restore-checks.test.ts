/**
 * A restored state is checked as its indexes are rebuilt (rebuildDerived),
 * not by a second pass: each invariant that a snapshot's records can break
 * must still stop the restore.
 */
import { describe, expect, it } from "vitest";
import { type Command, encodeCommand } from "../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../src/coordinator/coordinator-state-machine.js";
import { BrokenInvariantError } from "../src/coordinator/errors.js";
import type { MeetingRecord, NodeRecord } from "../src/coordinator/model.js";
import { NEWEST_CLUSTER_VERSION } from "../src/coordinator/formats.js";
import { defaultStateConfig } from "../src/coordinator/state-config.js";
import { decodeState, encodeState } from "../src/coordinator/state-snapshot.js";
import type { CoordinatorState } from "../src/coordinator/state.js";

/** At the newest cluster version (whose snapshots carry moves): two nodes, three meetings (two on one node), a checkpoint: a valid state to break. */
function validState(): CoordinatorState {
  const sm = new CoordinatorStateMachine();
  let index = 0;
  const apply = (c: object): void => void sm.apply(encodeCommand({ nowMs: 1_000 + index, ...c } as Command, { version: NEWEST_CLUSTER_VERSION, term: 1 }), ++index);
  apply({ type: "setClusterVersion", version: NEWEST_CLUSTER_VERSION });
  apply({ type: "register", nodeId: "m1", address: "10.0.0.1:9000", capacity: 10, region: "", labels: [] });
  apply({ type: "register", nodeId: "m2", address: "10.0.0.2:9000", capacity: 10, region: "", labels: [] });
  for (const id of ["a", "b", "c"]) apply({ type: "createMeeting", meetingId: id, region: "", requiredLabels: [] });
  const state = sm.queries as CoordinatorState;
  const a = state.meetings.get("a")!;
  apply({ type: "saveCheckpoint", nodeId: a.owner, generation: 1, meetingId: "a", epoch: a.epoch, sequence: 1, state: new Uint8Array([1, 2, 3]) });
  expect(state.checkpoints.has("a")).toBe(true);
  return state;
}

/** The records are read-only to the product; the tests break them on purpose. */
type Writable<T> = { -readonly [K in keyof T]: T[K] };
const meeting = (s: CoordinatorState, id: string): Writable<MeetingRecord> => s.meetings.get(id)!;
const node = (s: CoordinatorState, id: string): NodeRecord => s.nodes.get(id)!;

describe("restoring a snapshot checks its records", () => {
  it("restores a valid state whose indexes then pass every invariant", () => {
    const restored = decodeState(encodeState(validState()), defaultStateConfig());
    restored.checkInvariants();
    expect(restored.meetings.size).toBe(3);
  });

  const broken: [string, (s: CoordinatorState) => void, RegExp][] = [
    ["a meeting of epoch 0", (s) => void (meeting(s, "b").epoch = 0), /meeting b has epoch 0/],
    ["a meeting owned by an unknown node", (s) => void (meeting(s, "b").owner = "ghost"), /ghost/],
    [
      "a meeting owned by a dead node",
      (s) => void ((node(s, meeting(s, "b").owner) as Writable<NodeRecord>).liveness = "DEAD"),
      /owned by dead node/,
    ],
    [
      "an unowned meeting with a move under way",
      (s) => {
        const m = meeting(s, "b");
        m.owner = "";
        m.move = { toNodeId: "", reason: "DRAIN", startedAtMs: 1, deadlineMs: 2 } as MeetingRecord["move"];
      },
      /unowned meeting b has a move under way/,
    ],
    ["a checkpoint of an unknown meeting", (s) => void s.meetings.delete("a"), /checkpoint of unknown meeting a/],
  ];
  for (const [what, breakIt, message] of broken) {
    it(`refuses ${what}`, () => {
      const state = validState();
      breakIt(state);
      const bytes = encodeState(state);
      expect(() => decodeState(bytes, defaultStateConfig())).toThrow(BrokenInvariantError);
      expect(() => decodeState(bytes, defaultStateConfig())).toThrow(message);
    });
  }
});
