/**
 * The dashboard's history of meeting servers, read from the coordinator's
 * audit trail (MemberAdmin.AuditLog: one entry per applied command, part of
 * the replicated state, so it is the same on every member and survives a
 * gateway restart). Pure: entries in, timeline and per-server state history
 * out.
 *
 * It reads the entries' summaries, which the coordinator's state machine
 * writes (src/coordinator/apply-command.ts); test/dashboard.test.ts applies
 * real commands to the state machine and checks each form is understood, so
 * a change of wording there fails a test here rather than silently
 * emptying the timeline. Entries it does not recognise are left out.
 */

/** An AuditLog entry as the gateway receives it (proto field names, longs as numbers). */
export interface AuditEntryMessage {
  readonly index?: number;
  readonly kind?: string;
  readonly now_ms?: number;
  readonly ok?: boolean;
  readonly code?: string;
  readonly summary?: string;
}

export type TimelineKind = "joined" | "failed" | "false-alarm" | "suspected" | "back" | "drained" | "left";

export interface TimelineEvent {
  readonly atMs: number;
  readonly kind: TimelineKind;
  readonly nodeId: string;
  /** One line, for people: "m2 failed", "m2 is back". */
  readonly title: string;
  /** What happened, in words. */
  readonly detail: string;
  /** How long it took (failure noticed → meetings moved; suspected → answered; dead → back), when known. */
  readonly durationMs: number | null;
  /** Meetings moved by it (a failure, a drain with migrate, a leave). */
  readonly moved: number;
}

export interface StateChange {
  readonly atMs: number;
  /** alive, suspect, dead, draining, left. */
  readonly state: string;
}

export interface Timeline {
  /** Newest first. */
  readonly events: readonly TimelineEvent[];
  /** Per meeting server, its state changes, oldest first. */
  readonly history: ReadonlyMap<string, readonly StateChange[]>;
}

const REGISTER = /^(\S+) generation (\d+) at (\S+) capacity (\d+)/;
const LIVENESS = /^(\S+) generation \d+ (ALIVE|SUSPECT|DEAD) → (ALIVE|SUSPECT|DEAD)(?:: moved (\d+), unassigned (\d+))?/;
const DRAIN = /^(\S+)( with migrate)?: draining, moved (\d+), stayed (\d+)/;
const LEAVE = /^(\S+) generation \d+ left: moved (\d+), unassigned (\d+)/;

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/** "320 ms", "4.2 s", "3 min 20 s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

interface NodeTrack {
  suspectedAtMs: number | undefined;
  deadAtMs: number | undefined;
  known: boolean;
  readonly changes: StateChange[];
}

/** The timeline of `entries` (oldest first, as AuditLog returns them), at most `maxEvents` newest. */
export function timelineOf(entries: readonly AuditEntryMessage[], maxEvents = 50): Timeline {
  const tracks = new Map<string, NodeTrack>();
  const track = (nodeId: string): NodeTrack => {
    let t = tracks.get(nodeId);
    if (!t) tracks.set(nodeId, (t = { suspectedAtMs: undefined, deadAtMs: undefined, known: false, changes: [] }));
    return t;
  };
  const events: TimelineEvent[] = [];
  const add = (e: TimelineEvent): void => void events.push(e);

  for (const entry of entries) {
    if (entry.ok !== true || typeof entry.summary !== "string" || typeof entry.now_ms !== "number") continue;
    const at = entry.now_ms;
    const summary = entry.summary;
    switch (entry.kind) {
      case "register": {
        const m = REGISTER.exec(summary);
        if (!m) break;
        const [, nodeId, , address, capacity] = m as unknown as [string, string, string, string, string];
        const t = track(nodeId);
        if (t.deadAtMs !== undefined) {
          const down = at - t.deadAtMs;
          add({ atMs: at, kind: "back", nodeId, title: `${nodeId} is back`, detail: `registered again at ${address}, ${formatDuration(down)} after it was declared dead`, durationMs: down, moved: 0 });
        } else if (!t.known) {
          add({ atMs: at, kind: "joined", nodeId, title: `${nodeId} joined`, detail: `registered at ${address}, room for ${plural(Number(capacity), "meeting")}`, durationMs: null, moved: 0 });
        }
        t.known = true;
        t.suspectedAtMs = undefined;
        t.deadAtMs = undefined;
        t.changes.push({ atMs: at, state: "alive" });
        break;
      }
      case "setLiveness": {
        const m = LIVENESS.exec(summary);
        if (!m) break;
        const [, nodeId, before, after, moved, unassigned] = m as unknown as [string, string, string, string, string | undefined, string | undefined];
        const t = track(nodeId);
        t.known = true;
        t.changes.push({ atMs: at, state: after.toLowerCase() });
        if (after === "SUSPECT") {
          t.suspectedAtMs = at;
        } else if (after === "DEAD") {
          const took = before === "SUSPECT" && t.suspectedAtMs !== undefined ? at - t.suspectedAtMs : null;
          const n = Number(moved ?? 0);
          const waiting = Number(unassigned ?? 0);
          const how = took === null ? "declared dead" : `declared dead ${formatDuration(took)} after it stopped answering`;
          const what = `${plural(n, "meeting")} moved to other servers${waiting > 0 ? `, ${waiting} waiting for a server with room` : ""}`;
          add({ atMs: at, kind: "failed", nodeId, title: `${nodeId} failed`, detail: `${how}; ${what}`, durationMs: took, moved: n });
          t.suspectedAtMs = undefined;
          t.deadAtMs = at;
        } else if (before === "SUSPECT") {
          const took = t.suspectedAtMs !== undefined ? at - t.suspectedAtMs : null;
          add({
            atMs: at,
            kind: "false-alarm",
            nodeId,
            title: `${nodeId} answered again`,
            detail: `it was suspected${took === null ? "" : ` for ${formatDuration(took)}`}; nothing moved`,
            durationMs: took,
            moved: 0,
          });
          t.suspectedAtMs = undefined;
        }
        break;
      }
      case "drainNode": {
        const m = DRAIN.exec(summary);
        if (!m) break;
        const [, nodeId, migrate, moved, stayed] = m as unknown as [string, string, string | undefined, string, string];
        track(nodeId).changes.push({ atMs: at, state: "draining" });
        const detail = migrate
          ? `gets no new meetings; ${plural(Number(moved), "meeting")} moved now${Number(stayed) > 0 ? `, ${stayed} stayed (no room elsewhere)` : ""}`
          : `gets no new meetings; its ${plural(Number(stayed), "meeting")} stay until they end`;
        add({ atMs: at, kind: "drained", nodeId, title: `${nodeId} drained`, detail, durationMs: null, moved: Number(moved) });
        break;
      }
      case "deregister": {
        const m = LEAVE.exec(summary);
        if (!m) break;
        const [, nodeId, moved, unassigned] = m as unknown as [string, string, string, string];
        const t = track(nodeId);
        t.changes.push({ atMs: at, state: "left" });
        t.known = false;
        const waiting = Number(unassigned);
        add({
          atMs: at,
          kind: "left",
          nodeId,
          title: `${nodeId} left`,
          detail: `shut down cleanly; ${plural(Number(moved), "meeting")} moved${waiting > 0 ? `, ${waiting} waiting for a server with room` : ""}`,
          durationMs: null,
          moved: Number(moved),
        });
        break;
      }
      default:
        break;
    }
  }
  // A failure still being judged: suspected, neither dead nor answering yet.
  for (const [nodeId, t] of tracks) {
    if (t.suspectedAtMs !== undefined) {
      add({ atMs: t.suspectedAtMs, kind: "suspected", nodeId, title: `${nodeId} is not answering`, detail: "suspected; its meetings move if it does not answer soon", durationMs: null, moved: 0 });
    }
  }
  events.sort((a, b) => b.atMs - a.atMs);
  return { events: events.slice(0, maxEvents), history: new Map([...tracks].map(([id, t]) => [id, t.changes])) };
}
