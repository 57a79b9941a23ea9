/**
 * Saves each held meeting's state every `intervalMs`, and on demand.
 *
 * Rules:
 * - At most one save per meeting is in flight: two saves of one meeting
 *   racing could commit out of order, and the lower sequence would then be
 *   refused as if the meeting had moved.
 * - At most `maxInFlight` saves over all meetings; the rest wait in line.
 * - The state is read (getState) only when a slot is free, so what is sent
 *   is as fresh as possible; `undefined` skips the round, costs no sequence.
 * - The sequence is allocated just before sending (MeetingTable), so it
 *   grows by one per save sent and continues from the checkpoint received.
 * - FAILED_PRECONDITION / NOT_FOUND for a tenure that is still current:
 *   the meeting is no longer ours; the target's `rejected` drops it.
 * - A meeting being handed over gets no more saves: its final state goes
 *   with HandOver (hand-over.ts), which first waits for the save in flight
 *   (`settled`) so the final sequence is the highest.
 *
 * Owned by NodeAgent: `start` after Register, `stop` in NodeAgent.stop,
 * `flush` before a graceful Deregister.
 */
import { type Scheduler, type TimerHandle, realScheduler } from "../time/scheduler.js";
import type { CoordinatorCallError } from "./errors.js";
import { AgentStoppedError, HostCallbackError, MeetingMovingError, MeetingNotHeldError, isFenced } from "./errors.js";
import type { HeldMeeting, MeetingTable } from "./meeting-table.js";

export interface CheckpointTarget {
  readonly table: MeetingTable;
  /** The host's getState for the meeting; may throw or reject. */
  getState(meetingId: string): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** Sends SaveCheckpoint for this tenure; resolves with the stored sequence. */
  save(meeting: HeldMeeting, sequence: number, state: Uint8Array): Promise<number>;
  /** The coordinator refused the save by fencing while `meeting` was still the current tenure. */
  rejected(meeting: HeldMeeting, err: CoordinatorCallError): void;
  saved(meeting: HeldMeeting, sequence: number, bytes: number): void;
  /** A periodic save failed for another reason (unavailable, too large, getState threw). */
  failed(meetingId: string, err: unknown): void;
}

export interface SchedulerOptions {
  readonly intervalMs: number;
  readonly maxInFlight: number;
}

export class CheckpointScheduler {
  private readonly running = new Map<string, Promise<number | undefined>>();
  private readonly followUps = new Map<string, Promise<number | undefined>>();
  private readonly waiting: (() => void)[] = [];
  private active = 0;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly target: CheckpointTarget,
    private readonly options: SchedulerOptions,
    /** The periodic round's timer (virtual time in the simulation). */
    private readonly clock: Scheduler = realScheduler,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = this.clock.setInterval(() => this.tick(), this.options.intervalMs);
    this.timer.unref?.();
  }

  /** Stops the periodic saves; saves in flight finish (or fail when the connection closes). */
  stop(): void {
    if (this.timer) this.clock.clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One periodic round: a save for every held meeting that has none in flight. */
  tick(): void {
    for (const id of this.target.table.ids()) {
      if (this.running.has(id) || this.target.table.get(id)?.handingOver) continue;
      this.begin(id).catch((err: unknown) => {
        if (err instanceof MeetingNotHeldError || err instanceof MeetingMovingError || err instanceof AgentStoppedError || isFenced(err)) return;
        this.target.failed(id, err);
      });
    }
  }

  /**
   * Saves the meeting's current state now. Resolves with the stored
   * sequence, or undefined when getState had nothing to save. Rejects with
   * MeetingNotHeldError, a CoordinatorCallError (the meeting is dropped
   * when it was fencing), a HostCallbackError, or AgentStoppedError.
   * When a save of this meeting is in flight, a fresh one follows it (many
   * calls meanwhile share that one follow-up).
   */
  saveNow(meetingId: string): Promise<number | undefined> {
    const running = this.running.get(meetingId);
    if (!running) return this.begin(meetingId);
    let follow = this.followUps.get(meetingId);
    if (!follow) {
      follow = running
        .catch(() => undefined)
        .then(() => {
          this.followUps.delete(meetingId);
          return this.saveNow(meetingId);
        });
      this.followUps.set(meetingId, follow);
    }
    return follow;
  }

  /** Resolves once no save of the meeting is in flight or queued (whatever their outcome). */
  async settled(meetingId: string): Promise<void> {
    for (;;) {
      const pending = this.followUps.get(meetingId) ?? this.running.get(meetingId);
      if (!pending) return;
      await pending.catch(() => undefined);
    }
  }

  /** Saves every held meeting once and waits for all of them; failures are left to the caller's logs. */
  async flush(): Promise<void> {
    await Promise.allSettled(this.target.table.ids().map((id) => this.saveNow(id)));
  }

  private begin(meetingId: string): Promise<number | undefined> {
    const p = this.run(meetingId).finally(() => {
      if (this.running.get(meetingId) === p) this.running.delete(meetingId);
    });
    this.running.set(meetingId, p);
    return p;
  }

  private async run(meetingId: string): Promise<number | undefined> {
    const table = this.target.table;
    const meeting = table.get(meetingId);
    if (!meeting) throw new MeetingNotHeldError(meetingId);
    if (meeting.handingOver) throw new MeetingMovingError(meetingId);
    await this.acquire();
    try {
      if (table.get(meetingId) !== meeting) throw new MeetingNotHeldError(meetingId);
      if (meeting.handingOver) throw new MeetingMovingError(meetingId);
      const state = await this.readState(meetingId);
      if (state === undefined) return undefined;
      // getState may have awaited: the meeting may have moved meanwhile.
      if (table.get(meetingId) !== meeting) throw new MeetingNotHeldError(meetingId);
      const sequence = table.allocateSequence(meeting);
      let stored: number;
      try {
        stored = await this.target.save(meeting, sequence, state);
      } catch (err) {
        if (isFenced(err) && table.get(meetingId) === meeting) this.target.rejected(meeting, err as CoordinatorCallError);
        throw err;
      }
      // The answer is the stored sequence; never let the next save go below it.
      if (stored > meeting.lastSequence) meeting.lastSequence = stored;
      this.target.saved(meeting, stored, state.length);
      return stored;
    } finally {
      this.release();
    }
  }

  private async readState(meetingId: string): Promise<Uint8Array | undefined> {
    let state: unknown;
    try {
      state = await this.target.getState(meetingId);
    } catch (err) {
      throw new HostCallbackError(`getState(${JSON.stringify(meetingId)}) failed`, { cause: err });
    }
    if (state === undefined || state === null) return undefined;
    if (!(state instanceof Uint8Array)) {
      throw new HostCallbackError(`getState(${JSON.stringify(meetingId)}) must return a Uint8Array or undefined, got ${typeof state}`);
    }
    return state;
  }

  private acquire(): Promise<void> {
    if (this.active < this.options.maxInFlight) {
      this.active += 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot to the next in line, or frees it. */
  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active -= 1;
  }
}
