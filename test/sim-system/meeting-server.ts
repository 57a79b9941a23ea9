/**
 * A simulated meeting server: a process (its own clock: it crashes,
 * freezes and comes back) running the real NodeAgent (src/node-agent: the
 * heartbeat loop, assignment watch with its restarts and sweeps, meeting
 * table, checkpoint scheduler, hand-overs, registering again when fenced)
 * on virtual time, its calls crossing the RPC network (sim-agent-link.ts).
 * As host it keeps each meeting's state, a text naming who wrote it (a new
 * write before every save), stops writing to a meeting it hands over, and
 * tells the checker what it was given and what it handed over.
 */
import { pino } from "pino";
import type { SeededRandom } from "../../src/raft/index.js";
import { NodeAgent } from "../../src/node-agent/node-agent.js";
import { ProcessClock } from "../../src/time/process-clock.js";
import type { VirtualScheduler } from "../../src/time/virtual-scheduler.js";
import type { SimCoordinatorMember } from "./coordinator-member.js";
import type { RpcNetwork } from "./rpc-network.js";
import { type WireObserver, memberAddress, simAgentLink } from "./sim-agent-link.js";

/** What the checker hears from meeting servers. */
export interface ServerObserver extends WireObserver {
  /** The server takes (meeting, epoch) with the checkpoint it was sent. */
  holds(nodeId: string, generation: number, meetingId: string, epoch: number, checkpoint: { sequence: number; state: string } | undefined): void;
  /** The host stopped writing to (meeting, epoch) for a planned move: `state` is its last write. */
  handedOver(nodeId: string, generation: number, meetingId: string, epoch: number, state: string): void;
}

export interface ServerSetup {
  readonly world: VirtualScheduler;
  readonly rpc: RpcNetwork;
  readonly rng: SeededRandom;
  readonly memberIds: () => string[];
  readonly member: (id: string) => SimCoordinatorMember | undefined;
  readonly observer: ServerObserver;
  readonly checkpointEveryMs: number;
  readonly rpcTimeoutMs: number;
  readonly trace?: (line: string) => void;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const silent = pino({ level: "silent" });

export class SimMeetingServer {
  clock: ProcessClock | undefined;
  agent: NodeAgent | undefined;
  /** Bumped on every start and crash: the RPC network drops what was meant for an older process. */
  incarnation = 0;
  frozenUntil = 0;
  /** Since when this server has run without a start, crash or freeze (virtual time). */
  quietSince = 0;

  constructor(
    readonly id: string,
    readonly capacity: number,
    private readonly setup: ServerSetup,
  ) {}

  /** Its name on the RPC network. */
  get processName(): string {
    return this.id;
  }

  get up(): boolean {
    return this.clock !== undefined;
  }

  get frozen(): boolean {
    return this.clock?.isPaused ?? false;
  }

  /** The generation this process registered with (0 before it did). */
  get generation(): number {
    return this.agent?.generation ?? 0;
  }

  /** The epoch at which this process holds `meetingId`, if it does. */
  heldEpoch(meetingId: string): number | undefined {
    return this.agent?.meetings().get(meetingId);
  }

  process(): { clock: ProcessClock; incarnation: number } | undefined {
    return this.clock ? { clock: this.clock, incarnation: this.incarnation } : undefined;
  }

  start(): void {
    if (this.clock) this.crash();
    const incarnation = ++this.incarnation;
    const clock = new ProcessClock(this.setup.world, { rate: 0.98 + 0.04 * this.setup.rng.next() });
    this.clock = clock;
    this.quietSince = this.setup.world.now();
    const { rng, rpc, member, observer } = this.setup;
    const memberIds = this.setup.memberIds();
    let writes = 0;
    // Load as a random walk; half the servers declare a CPU limit it crosses now and then.
    let cpu = rng.next() * 0.5;
    const cpuLimit = this.capacity % 2 === 0 ? 0.6 + 0.3 * rng.next() : 0;
    /** `${meeting}@${epoch}` → the final state a planned move took: the host writes nothing after it. */
    const finals = new Map<string, Uint8Array>();
    const write = (meetingId: string, epoch: number): Uint8Array =>
      finals.get(`${meetingId}@${epoch}`) ?? encoder.encode(`${meetingId}/${this.id}.${agent.generation}@${epoch}#${incarnation}.${++writes}`);
    const agent: NodeAgent = new NodeAgent(
      {
        coordinators: memberIds.map((m) => memberAddress(memberIds, m)),
        nodeId: this.id,
        address: `${this.id}.sim:9000`,
        capacity: this.capacity,
        checkpointIntervalMs: this.setup.checkpointEveryMs,
        rpcTimeoutMs: this.setup.rpcTimeoutMs,
        logger: silent,
        onAssigned: (meetingId, epoch, checkpoint) => {
          const state = checkpoint ? { sequence: checkpoint.sequence, state: decoder.decode(checkpoint.state) } : undefined;
          observer.holds(this.id, agent.generation, meetingId, epoch, state);
        },
        onRevoked: () => undefined,
        reportLoad: () => {
          cpu = Math.min(1, Math.max(0, cpu + (rng.next() - 0.45) * 0.15));
          return { cpu, participants: 10 * agent.meetings().size };
        },
        ...(cpuLimit > 0 ? { limits: { cpu: cpuLimit } } : {}),
        // Each save's bytes name the writer and tenure, and are unique: the host wrote since the last one.
        getState: (meetingId): Uint8Array | undefined => {
          const epoch: number | undefined = agent.meetings().get(meetingId);
          return epoch === undefined ? undefined : write(meetingId, epoch);
        },
        // A planned move: the last write, after which the host refuses writes to this tenure.
        onHandover: (meetingId, epoch) => {
          const state = write(meetingId, epoch);
          finals.set(`${meetingId}@${epoch}`, state);
          observer.handedOver(this.id, agent.generation, meetingId, epoch, decoder.decode(state));
          return state;
        },
      },
      { random: () => rng.next(), incarnation: `${this.id}-${incarnation}`, scheduler: clock, link: simAgentLink(this.processName, rpc, memberIds, member, observer) },
    );
    agent.on("error", () => undefined);
    this.agent = agent;
    // A refused Register stops the agent for good: the liveness check then names the server.
    clock.run(() => void agent.start().catch((err: unknown) => this.setup.trace?.(`${this.id} agent did not start: ${err instanceof Error ? err.message : String(err)}`)));
  }

  /**
   * A graceful leave: the agent saves every meeting once, deregisters, and the process exits;
   * with `deadlineMs`, a planned stop (shutdown): it drains, hands what is left over at the
   * deadline, then deregisters.
   */
  leave(deadlineMs?: number): void {
    const agent = this.agent;
    const clock = this.clock;
    if (!agent || !clock || clock.isPaused) return;
    clock.run(() => {
      void (deadlineMs === undefined ? agent.stop({ deregister: true }) : agent.shutdown({ deadlineMs, handOverWaitMs: 3_000 }))
        .catch(() => undefined)
        .finally(() => {
          if (this.agent === agent) this.crash();
        });
    });
  }

  crash(): void {
    this.incarnation++;
    this.clock?.kill();
    this.clock = undefined;
    this.agent = undefined;
    this.frozenUntil = 0;
    this.setup.rpc.clientCrashed(this.processName);
  }

  /** SIGSTOP for `ms`: it sends nothing, its streams stay open, and it wakes up a zombie if it was declared dead meanwhile. */
  freeze(ms: number): void {
    const clock = this.clock;
    if (!clock || clock.isPaused) return;
    clock.pause();
    this.frozenUntil = this.setup.world.now() + ms;
    this.quietSince = this.frozenUntil;
    this.setup.world.setTimeout(() => {
      if (this.clock === clock) this.frozenUntil = 0;
      clock.resume();
    }, ms);
  }

  thaw(): void {
    if (this.frozen) this.quietSince = this.setup.world.now();
    this.clock?.resume();
    this.frozenUntil = 0;
  }
}
