/**
 * The operator commands of issue 19 (what applications on top need):
 *
 *   move MEETING [--to NODE]            MoveMeeting, then waits for the move
 *   rebalance [--max-moves N --rate R/s] Rebalance, a few moves at a time
 *   undrain NODE                        UndrainNode
 *   events [--from N] [--follow]        WatchEvents, printed
 *   events-relay --url URL --secret FILE   a process posting every event to a webhook
 */
import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { pino } from "pino";
import { describeEvent } from "../events-relay/event-json.js";
import { EventWatcher, TooFarBehindError, WatchRefusedError } from "../events-relay/event-watcher.js";
import { EventsRelay, RelayConfigError, secretFrom, validateUrl } from "../events-relay/relay.js";
import { CursorFileError } from "../events-relay/cursor-file.js";
import { durationArg, fractionArg, intArg, meetingIdArg, nodeIdArg, rateArg } from "./arguments.js";
import type { ClusterClient } from "./cluster-client.js";
import { CallError, CommandError, CommandFailed, EXIT_FAILED, UsageError } from "./errors.js";
import { clusterAccess, runOperator, withClusterOptions } from "./operator.js";
import type { Rendered } from "./render.js";
import { stopOnSignals } from "./signals.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface MoveAnswer {
  meeting_id: string;
  from_node_id: string;
  to_node_id: string;
  epoch: number;
  deadline_ms: number;
  started: boolean;
}

interface RouteAnswer {
  node_id: string;
  epoch: number;
}

/** Polls GetRoute until the meeting's epoch passes `epoch`; the route then, or undefined at the deadline. */
async function waitForNewEpoch(client: ClusterClient, meetingId: string, epoch: number, waitMs: number): Promise<RouteAnswer | undefined> {
  const until = Date.now() + waitMs;
  while (Date.now() < until) {
    try {
      const route = await client.call<RouteAnswer>("coordinator", "GetRoute", { meeting_id: meetingId, create: false });
      if (route.epoch > epoch) return route;
    } catch (err) {
      // Waiting unassigned for a node with room, or ended meanwhile: report it.
      if (!(err instanceof CallError)) throw err;
      throw new CommandError(`the meeting did not arrive anywhere: ${err.message}`, { cause: err });
    }
    await sleep(100);
  }
  return undefined;
}

function addMove(program: Command): void {
  withClusterOptions(
    program
      .command("move")
      .description("move a live meeting to another server without losing anything (a hand-over with a final checkpoint)")
      .argument("<meeting>", "meeting id", meetingIdArg)
      .option("--to <node>", "the server to move it to (default: placement's choice)", nodeIdArg)
      .addOption(new Option("--hand-over-timeout <duration>", "how long the server has to hand over before the move is forced with the last checkpoint (default 10s)").argParser(durationArg(1, 24 * 3_600_000)))
      .option("--no-wait", "return once the hand-over has started"),
  ).action(async (meeting: string, opts: { to?: string; handOverTimeout?: number; wait: boolean }, command: Command) =>
    runOperator(command, async (client) => {
      const started = await client.call<MoveAnswer>("coordinator", "MoveMeeting", { meeting_id: meeting, to_node_id: opts.to ?? "", timeout_ms: opts.handOverTimeout ?? 0 });
      const target = started.to_node_id || "placement's choice";
      if (!opts.wait) {
        return {
          text: `${meeting}: ${started.started ? "hand-over started" : "a hand-over was already under way"} from ${started.from_node_id} to ${target} (epoch ${started.epoch})\n`,
          json: started,
        };
      }
      const waitMs = Math.max(0, started.deadline_ms - Date.now()) + 5_000;
      const route = await waitForNewEpoch(client, meeting, started.epoch, waitMs);
      if (!route) throw new CommandError(`${meeting} did not move within ${Math.round(waitMs / 1000)} s; see \`convene events\` and the logs of ${started.from_node_id}`);
      const checkpoint = await client.call<{ node_id: string; sequence: number }>("coordinator", "GetCheckpoint", { meeting_id: meeting }).catch(() => undefined);
      const carried = checkpoint ? `checkpoint ${checkpoint.sequence} saved by ${checkpoint.node_id}` : "no checkpoint";
      const stayed = route.node_id === started.from_node_id ? `; no other server could take it, so it stays on ${route.node_id} at a new epoch` : "";
      return {
        text: `moved ${meeting} from ${started.from_node_id} to ${route.node_id} (epoch ${started.epoch} → ${route.epoch}) with ${carried}${stayed}\n`,
        json: { ...started, to_node_id: route.node_id, new_epoch: route.epoch, checkpoint_sequence: checkpoint?.sequence ?? 0 },
      };
    }),
  );
}

interface RebalanceAnswer {
  moves: { meeting_id: string; from_node_id: string; to_node_id: string }[];
  in_flight: number;
}

function addRebalance(program: Command): void {
  withClusterOptions(
    program
      .command("rebalance")
      .description("move meetings off servers above a utilization threshold, a few at a time, each as a planned move")
      .addOption(new Option("--max-moves <n>", "moves in all").default(10).argParser(intArg(1, 10_000)))
      .addOption(new Option("--rate <r/s>", "moves started per second").default(1, "1/s").argParser(rateArg))
      .addOption(new Option("--threshold <0..1>", "relieve servers whose utilization is above this").default(0.8).argParser(fractionArg))
      .addOption(new Option("--max-in-flight <n>", "hand-overs under way at once").default(2).argParser(intArg(1, 1000)))
      .addOption(new Option("--hand-over-timeout <duration>", "per move, as for `convene move` (default 10s)").argParser(durationArg(1, 24 * 3_600_000)))
      .option("--dry-run", "say what would move, move nothing"),
  ).action(
    async (
      opts: { maxMoves: number; rate: number; threshold: number; maxInFlight: number; handOverTimeout?: number; dryRun?: boolean },
      command: Command,
    ) =>
      runOperator(command, async (client) => {
        const base = { max_in_flight: opts.maxInFlight, threshold: opts.threshold, timeout_ms: opts.handOverTimeout ?? 0 };
        if (opts.dryRun) {
          // The whole run's plan, as if each move were done before the next: no in-flight limit.
          const all = Math.min(opts.maxMoves, 1000);
          const plan = await client.call<RebalanceAnswer>("coordinator", "Rebalance", { ...base, max_moves: all, max_in_flight: all, dry_run: true });
          return rendered(plan.moves, "would move", plan.in_flight);
        }
        const moves: RebalanceAnswer["moves"] = [];
        const everyMs = 1000 / opts.rate;
        let inFlight = 0;
        // Bounded: each round starts a move, or waits for the ones under way; it ends when none is left to make.
        for (let round = 0; moves.length < opts.maxMoves; round++) {
          const r = await client.call<RebalanceAnswer>("coordinator", "Rebalance", { ...base, max_moves: 1 });
          for (const m of r.moves) process.stderr.write(`moving ${m.meeting_id}: ${m.from_node_id} → ${m.to_node_id}\n`);
          moves.push(...r.moves);
          inFlight = r.in_flight;
          if (r.moves.length === 0 && inFlight === 0) break;
          if (round > opts.maxMoves * 10 + 600) throw new CommandError(`rebalancing made no progress for ${round} rounds; ${inFlight} hand-overs still under way`);
          await sleep(everyMs);
        }
        return rendered(moves, "moved", inFlight);
      }),
  );
}

function rendered(moves: RebalanceAnswer["moves"], verb: string, inFlight: number): Rendered {
  const lines = moves.map((m) => `${verb} ${m.meeting_id}: ${m.from_node_id} → ${m.to_node_id}`);
  const text = moves.length === 0 ? "no server is above the threshold, or no move would lower the fullest\n" : `${lines.join("\n")}\n`;
  return { text: `${text}${inFlight > 0 ? `${inFlight} hand-overs still under way\n` : ""}`, json: { moves, in_flight: inFlight } };
}

function addUndrain(program: Command): void {
  withClusterOptions(
    program.command("undrain").description("let a drained meeting server take new meetings again").argument("<node>", "meeting server id", nodeIdArg),
  ).action(async (node: string, _opts: unknown, command: Command) =>
    runOperator(command, async (client) => {
      await client.call("coordinator", "UndrainNode", { node_id: node });
      return { text: `${node} takes new meetings again\n`, json: { node_id: node, draining: false } };
    }),
  );
}

function watchFailure(command: string, err: unknown): Error {
  if (err instanceof TooFarBehindError) {
    return new CommandFailed(command, EXIT_FAILED, `${err.message} (oldest index to resume from: ${err.oldestIndex})`, { cause: err });
  }
  if (err instanceof WatchRefusedError || err instanceof CursorFileError) return new CommandFailed(command, EXIT_FAILED, err.message, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

function addEvents(program: Command): void {
  withClusterOptions(
    program
      .command("events")
      .description("the events applications see (meetings created, moved, ended; servers joining, dying, draining), oldest first")
      .addOption(new Option("--from <index>", "start after this Raft index (default: the oldest kept)").default(0).argParser(intArg(0)))
      .option("--follow", "keep printing new events until interrupted"),
  ).action(async (opts: { from: number; follow?: boolean }, command: Command) => {
    const { coordinators, security, flags } = clusterAccess(command);
    const watcher = new EventWatcher({ coordinators, security, fromIndex: opts.from });
    if (opts.follow) stopOnSignals(async () => watcher.stop());
    // Without --follow: done at the first progress mark; none within the bound means no member hears a leader.
    const boundMs = 5_000 + coordinators.length * flags.timeoutMs;
    let caughtUp = false;
    const giveUp = opts.follow ? undefined : setTimeout(() => watcher.stop(), boundMs);
    try {
      await watcher.run(async (batch) => {
        for (const e of batch.events) process.stdout.write(`${flags.json ? JSON.stringify(e) : describeEvent(e)}\n`);
        // A progress mark: everything kept has been printed.
        if (batch.events.length === 0 && !opts.follow) {
          caughtUp = true;
          watcher.stop();
        }
      });
    } catch (err) {
      throw watchFailure("events", err);
    } finally {
      clearTimeout(giveUp);
    }
    if (!opts.follow && !caughtUp) {
      throw new CommandFailed("events", EXIT_FAILED, `no member said it was up to date within ${Math.round(boundMs / 1000)} s (is there a quorum?); printed up to index ${watcher.index}`);
    }
  });
}

function addEventsRelay(program: Command): void {
  withClusterOptions(
    program
      .command("events-relay")
      .description("post every event to a webhook, signed, at least once and in order (a process of its own)")
      .requiredOption("--url <url>", "where each event is POSTed as JSON")
      .requiredOption("--secret <file>", "file holding the shared secret that signs each post (HMAC-SHA256; 16 bytes or more)")
      .option("--cursor <file>", "where the relay keeps its position", "./convene-events.cursor")
      .addOption(new Option("--from <index>", "start after this Raft index instead of the cursor file (0: the oldest kept)").argParser(intArg(0)))
      .addOption(new Option("--post-timeout <duration>", "deadline of each POST").default(10_000, "10s").argParser(durationArg(1, 600_000)))
      .option("--log-level <level>", "pino level", "info"),
  ).action(async (opts: { url: string; secret: string; cursor: string; from?: number; postTimeout: number; logLevel: string }, command: Command) => {
    const { coordinators, security } = clusterAccess(command);
    let relay: EventsRelay;
    const log = pino({ level: opts.logLevel, base: { component: "events-relay" } });
    try {
      validateUrl(opts.url);
      let contents: Buffer;
      try {
        contents = readFileSync(opts.secret);
      } catch (err) {
        throw new RelayConfigError(`secret file ${opts.secret} cannot be read: ${(err as Error).message}`, { cause: err });
      }
      relay = new EventsRelay({
        url: opts.url,
        secret: secretFrom(contents, opts.secret),
        cursorPath: opts.cursor,
        ...(opts.from === undefined ? {} : { fromIndex: opts.from }),
        coordinators,
        security,
        log,
        postTimeoutMs: opts.postTimeout,
      });
    } catch (err) {
      if (err instanceof RelayConfigError || err instanceof CursorFileError) throw new UsageError("events-relay", err.message, { cause: err });
      throw err;
    }
    stopOnSignals(async () => relay.stop(), log);
    try {
      await relay.run();
    } catch (err) {
      throw watchFailure("events-relay", err);
    }
  });
}

/** `convene move`, `rebalance`, `undrain`, `events`, `events-relay`. */
export function addAppCommands(program: Command): void {
  addMove(program);
  addRebalance(program);
  addUndrain(program);
  addEvents(program);
  addEventsRelay(program);
}
