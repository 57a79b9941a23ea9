/**
 * A planned move, as the node that gives the meeting away runs it, after
 * a HANDOVER event marked the tenure `handingOver` (so no periodic save
 * starts any more):
 *   1. the host's onHandover stops writes to the meeting and returns its
 *      final state (without onHandover: what getState returns now);
 *   2. the save in flight, if any, is waited for, so the final sequence is
 *      above every sequence sent before it;
 *   3. HandOver carries the final state; the coordinator stores it and
 *      assigns the meeting on in the same command. A transport failure is
 *      retried (member after member, then with backoff) for as long as the
 *      tenure is current and the agent runs: an attempt that timed out may
 *      have committed, and the retry then meets fencing, which says the
 *      same thing as success here (the meeting is no longer ours).
 * Owned by NodeAgent, which releases the meeting when this reports it
 * handed over or fenced.
 */
import type { CheckpointScheduler } from "./checkpoint-scheduler.js";
import type { CoordinatorConnection } from "./coordinator-connection.js";
import { type HandOverAnswer, parseHandOverResponse } from "./coordinator-responses.js";
import { AgentStoppedError, type CoordinatorCallError, HostCallbackError, isFenced } from "./errors.js";
import type { HeldMeeting, MeetingTable } from "./meeting-table.js";

export interface HandOverHost {
  readonly nodeId: string;
  readonly table: MeetingTable;
  readonly scheduler: CheckpointScheduler;
  readonly connection: CoordinatorConnection;
  generation(): number;
  /** Whether the agent still runs (not stopping, not re-registering). */
  running(): boolean;
  /** The host's final state (onHandover, else getState). */
  finalState(meetingId: string, epoch: number): Promise<Uint8Array | undefined>;
  handedOver(meeting: HeldMeeting, answer: HandOverAnswer): void;
  /** The coordinator refused: the meeting moved already (deadline passed) or ended. */
  fenced(meeting: HeldMeeting, err: CoordinatorCallError): void;
  failed(meeting: HeldMeeting, err: unknown): void;
}

export async function handOver(host: HandOverHost, meeting: HeldMeeting): Promise<void> {
  const { meetingId, epoch } = meeting;
  const current = () => host.running() && host.table.get(meetingId) === meeting;
  let state: Uint8Array | undefined;
  try {
    state = await host.finalState(meetingId, epoch);
  } catch (err) {
    if (!current()) return;
    host.failed(meeting, new HostCallbackError(`onHandover(${JSON.stringify(meetingId)}) failed; the meeting moves at the coordinator's deadline with its last checkpoint`, { cause: err }));
    return;
  }
  if (!(state instanceof Uint8Array)) {
    host.failed(meeting, new HostCallbackError(`onHandover(${JSON.stringify(meetingId)}) must resolve with a Uint8Array, got ${state === null ? "null" : typeof state}`));
    return;
  }
  await host.scheduler.settled(meetingId);
  if (!current()) return;
  const sequence = host.table.allocateSequence(meeting);
  const request = { node_id: host.nodeId, generation: host.generation(), meeting_id: meetingId, epoch, sequence, state };
  for (let round = 1; current(); round++) {
    try {
      const answer = parseHandOverResponse(await host.connection.unary("HandOver", request));
      if (current()) host.handedOver(meeting, answer);
      return;
    } catch (err) {
      if (err instanceof AgentStoppedError || !current()) return;
      if (isFenced(err)) {
        host.fenced(meeting, err as CoordinatorCallError);
        return;
      }
      host.failed(meeting, err);
      try {
        await host.connection.sleep(host.connection.backoffMs(round));
      } catch {
        return;
      }
    }
  }
}
