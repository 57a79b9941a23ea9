/**
 * A coordinator state machine for the state benchmarks, built by applying
 * commands in this process: three nodes with room for everything, then
 * `meetings` meetings named meeting-0, meeting-1, ... `apply` goes on
 * applying at the next index (for checkpoints and the like).
 */
import { type Command, encodeCommand } from "../../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../../src/coordinator/coordinator-state-machine.js";

export function machineWithMeetings(meetings: number): { sm: CoordinatorStateMachine; apply: (command: object) => void } {
  const sm = new CoordinatorStateMachine();
  let index = 0;
  const apply = (c: object): void => void sm.apply(encodeCommand({ nowMs: 1_000 + index, ...c } as Command), ++index);
  for (let n = 0; n < 3; n++) apply({ type: "register", nodeId: `m${n}`, address: `127.0.0.1:${10_000 + n}`, capacity: 1_000_000, region: "", labels: [] });
  for (let m = 0; m < meetings; m++) apply({ type: "createMeeting", meetingId: `meeting-${m}`, region: "", requiredLabels: [] });
  return { sm, apply };
}
