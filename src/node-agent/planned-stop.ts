/**
 * The first half of NodeAgent.shutdown({ deadlineMs }), a planned stop:
 * the node asks the coordinator to drain it (NodeAgent.Drain: no new
 * meetings; at the deadline the coordinator hands the remaining meetings
 * over, each through the host's onHandover), then waits until it holds no
 * meeting (each ended or was handed over) or the wait runs out. The agent
 * then deregisters, which moves whatever is still here with a checkpoint
 * saved just before.
 */
import type { AgentLogger } from "./agent-config.js";
import type { CoordinatorConnection } from "./coordinator-connection.js";
import { parseNodeDrainResponse } from "./coordinator-responses.js";
import { AgentStoppedError } from "./errors.js";

export interface PlannedStopHost {
  readonly nodeId: string;
  readonly connection: CoordinatorConnection;
  readonly log: AgentLogger;
  generation(): number;
  /** Meetings still held. */
  held(): number;
  /** Whether the agent still runs (a stop() meanwhile ends the wait). */
  running(): boolean;
  /** The agent's clock (its injected scheduler's). */
  now(): number;
}

/** Resolves false when the agent was stopped meanwhile (nothing more to do), true when it should deregister now. */
export async function drainAndWait(host: PlannedStopHost, deadlineMs: number, handOverWaitMs: number): Promise<boolean> {
  const until = host.now() + deadlineMs + handOverWaitMs;
  try {
    const raw = await host.connection.unary(
      "Drain",
      { node_id: host.nodeId, generation: host.generation(), deadline_ms: deadlineMs },
      { attempts: 3 * host.connection.memberCount },
    );
    host.log.info({ deadlineMs, handOverAt: parseNodeDrainResponse(raw), meetings: host.held() }, "draining: meetings still here at the deadline are handed over");
    while (host.held() > 0 && host.running() && host.now() < until) await host.connection.sleep(50);
    if (host.held() > 0) host.log.warn({ meetings: host.held() }, "hand-overs not done in time; deregistering: the rest move with a checkpoint saved now");
  } catch (err) {
    if (err instanceof AgentStoppedError) return false;
    host.log.warn({ err }, "could not drain; deregistering instead");
  }
  return true;
}
