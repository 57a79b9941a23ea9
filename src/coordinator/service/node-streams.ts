/**
 * Which members hold open watch streams of which node generation.
 *
 * A node is connected while it has at least one open WatchAssignments
 * stream on any member: liveness follows the node, not a stream. An agent
 * restarting its watch opens a stream on one member and cancels another on
 * a second member, and the two members' reports reach the leader in either
 * order; a node may also hold extra streams. So each member counts its own
 * streams per node generation (`LocalStreams`) and reports the count, not
 * the event, stamped with a sequence number; the leader (`StreamTable`)
 * keeps the newest count per member and calls a node disconnected only when
 * every member's count is zero.
 *
 * A new leader knows nothing of streams opened under an older one: every
 * member sends its whole table (a resync) when it learns of a new leader,
 * and the detector trusts "no stream left" only after its first full lease
 * (failure-detector.ts).
 *
 * A report can be lost on the way (a connection that breaks under it). A
 * lost "opened" is the dangerous one: the leader then believes a node's
 * last stream closed while it is open, and judges it by the stricter
 * rule of a disconnected node. Each member numbers its reports one by
 * one, so the leader notices a missing number at the next report and
 * answers it with `resync` (the member then sends its whole table); a
 * report that is itself the last one lost is noticed by its sender when
 * it goes unanswered (stream-reporter.ts).
 */

export interface StreamCount {
  readonly nodeId: string;
  readonly generation: number;
  /** Open streams of this node generation on the reporting member. */
  readonly open: number;
  /** The reporting member's sequence at this count: a later report has a larger one. */
  readonly sequence: number;
}

/** What a member tells the leader: some of its counts, or all of them (resync). */
export interface StreamReport {
  readonly memberId: string;
  /** True when `counts` is the member's whole table: a node it does not list has no stream there. */
  readonly resync: boolean;
  /** The member's sequence when the report was made (for a resync: every count it omits is zero as of this). */
  readonly sequence: number;
  readonly counts: readonly StreamCount[];
}

/** The leader's answer to a report. */
export interface StreamReportAnswer {
  /** A report of this member is missing (or none has reached this leader yet): send the whole table. */
  readonly resync: boolean;
}

export interface NodeGeneration {
  readonly nodeId: string;
  readonly generation: number;
}

/** A member's own streams. Called by the WatchAssignments handler; reports go to the leader through `sink`. */
export class LocalStreams {
  private readonly counts = new Map<string, { nodeId: string; generation: number; open: number }>();
  private sequence: number;

  constructor(
    private readonly memberId: string,
    private readonly sink: (report: StreamReport) => void,
    /** Where sequences start: a restarted member must count on from above its earlier reports (e.g. wall-clock µs). */
    firstSequence: number,
  ) {
    this.sequence = firstSequence;
  }

  opened(nodeId: string, generation: number): void {
    this.change(nodeId, generation, +1);
  }

  closed(nodeId: string, generation: number): void {
    this.change(nodeId, generation, -1);
  }

  /** Open streams of this node generation here. */
  openOn(nodeId: string, generation: number): number {
    return this.counts.get(keyOf(nodeId, generation))?.open ?? 0;
  }

  /** The whole table, for a new leader. */
  resync(): StreamReport {
    const sequence = ++this.sequence;
    const counts = [...this.counts.values()].map((c) => ({ ...c, sequence }));
    return { memberId: this.memberId, resync: true, sequence, counts };
  }

  private change(nodeId: string, generation: number, by: 1 | -1): void {
    const key = keyOf(nodeId, generation);
    const entry = this.counts.get(key) ?? { nodeId, generation, open: 0 };
    entry.open = Math.max(0, entry.open + by);
    if (entry.open === 0) this.counts.delete(key);
    else this.counts.set(key, entry);
    // Only a change between none and some matters to the leader.
    if (!(entry.open === 0 || (entry.open === 1 && by === 1))) return;
    const sequence = ++this.sequence;
    this.sink({ memberId: this.memberId, resync: false, sequence, counts: [{ nodeId, generation, open: entry.open, sequence }] });
  }
}

/** The leader's view: the newest count each member reported for each node generation. */
export class StreamTable {
  /** node generation key → member id → its newest count. Zero counts stay, so a late older report cannot revive them. */
  private readonly byNode = new Map<string, Map<string, { open: number; sequence: number }>>();
  /** The newest generation reported per node: entries of older ones are dropped. */
  private readonly generations = new Map<string, number>();
  /** Per member, the newest report sequence that arrived, and whether one before it is missing (until a whole table comes). */
  private readonly reporters = new Map<string, { sequence: number; missing: boolean }>();

  /**
   * Applies a report; returns the node generations whose total went from
   * none to some (`opened`) or from some to none (`closed`), and whether the
   * member must send its whole table (`resync`: a report of it is missing).
   */
  apply(report: StreamReport): { opened: NodeGeneration[]; closed: NodeGeneration[]; resync: boolean } {
    const resync = this.noteSequence(report);
    const touched = new Map<string, NodeGeneration & { before: boolean }>();
    const touch = (nodeId: string, generation: number): Map<string, { open: number; sequence: number }> => {
      const key = keyOf(nodeId, generation);
      let members = this.byNode.get(key);
      if (!members) this.byNode.set(key, (members = new Map()));
      if (!touched.has(key)) touched.set(key, { nodeId, generation, before: total(members) > 0 });
      return members;
    };
    for (const c of report.counts) {
      const newest = this.generations.get(c.nodeId) ?? 0;
      if (c.generation < newest) continue;
      if (c.generation > newest) this.forgetOlder(c.nodeId, c.generation);
      const members = touch(c.nodeId, c.generation);
      const known = members.get(report.memberId);
      if (!known || c.sequence > known.sequence) members.set(report.memberId, { open: c.open, sequence: c.sequence });
    }
    if (report.resync) {
      const listed = new Set(report.counts.map((c) => keyOf(c.nodeId, c.generation)));
      for (const [key, members] of this.byNode) {
        const known = members.get(report.memberId);
        if (listed.has(key) || !known || known.sequence >= report.sequence || known.open === 0) continue;
        const [nodeId, generation] = splitKey(key);
        touch(nodeId, generation).set(report.memberId, { open: 0, sequence: report.sequence });
      }
    }
    const opened: NodeGeneration[] = [];
    const closed: NodeGeneration[] = [];
    for (const [key, t] of touched) {
      const now = total(this.byNode.get(key)!) > 0;
      if (now && !t.before) opened.push({ nodeId: t.nodeId, generation: t.generation });
      if (!now && t.before) closed.push({ nodeId: t.nodeId, generation: t.generation });
    }
    return { opened, closed, resync };
  }

  /**
   * Whether a report of this member went missing: its reports are numbered
   * one by one, so a number skipped (or a first report that is not a whole
   * table) means this leader lacks one. A report merely overtaken by a later
   * one also looks missing; asking for the table then costs one extra.
   * The previous form's reports (no member id) carry no numbering.
   */
  private noteSequence(report: StreamReport): boolean {
    if (report.memberId === "") return false;
    const known = this.reporters.get(report.memberId);
    if (report.resync) {
      if (!known || report.sequence > known.sequence) this.reporters.set(report.memberId, { sequence: report.sequence, missing: false });
      return false;
    }
    const missing = !known || known.missing || report.sequence > known.sequence + 1;
    this.reporters.set(report.memberId, { sequence: Math.max(known?.sequence ?? 0, report.sequence), missing });
    return missing;
  }

  /** Open streams of this node generation on every member, as last reported. */
  openStreams(nodeId: string, generation: number): number {
    const members = this.byNode.get(keyOf(nodeId, generation));
    return members ? total(members) : 0;
  }

  clear(): void {
    this.byNode.clear();
    this.generations.clear();
    this.reporters.clear();
  }

  private forgetOlder(nodeId: string, generation: number): void {
    const older = this.generations.get(nodeId);
    if (older !== undefined) this.byNode.delete(keyOf(nodeId, older));
    this.generations.set(nodeId, generation);
  }
}

function total(members: Map<string, { open: number }>): number {
  let sum = 0;
  for (const m of members.values()) sum += m.open;
  return sum;
}

function keyOf(nodeId: string, generation: number): string {
  return `${generation}/${nodeId}`;
}

function splitKey(key: string): [string, number] {
  const slash = key.indexOf("/");
  return [key.slice(slash + 1), Number(key.slice(0, slash))];
}
