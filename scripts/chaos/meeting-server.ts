/**
 * The chaos run's meeting server: a tiny real meeting server on the node
 * agent (src/node-agent), spawned as its own process by the chaos runner.
 *
 *   CONVENE_TOKEN=<agent token of m1> node --import tsx scripts/chaos/meeting-server.ts --node-id m1 \
 *     --listen 127.0.0.1:9101 --coordinators A,B,C --capacity 60 \
 *     --checkpoint-interval-ms 500 --log run/m1-1.jsonl \
 *     --ca ca.crt --cert agent-m1.crt --key agent-m1.key
 *
 * Its gRPC calls to the members (the agent's and the raw probes) use TLS
 * with that client certificate and the token in $CONVENE_TOKEN.
 *
 * A meeting's state is a counter of the requests it served. HTTP:
 *   GET /meetings/{id}/op  served: 200 {nodeId, meetingId, epoch, generation, counter}
 *                          not held (after waiting 1 s for an ASSIGNED): 421
 *   GET /healthz           200 {nodeId, pid, generation, meetings}
 *
 * Everything it does goes to --log as ServerRecords (server-log.ts), written
 * synchronously so a kill -9 loses nothing already done. After a stop of its
 * event loop (SIGSTOP ... SIGCONT, or a stall) it probes at once, with the
 * generation it had before: saveNow for each meeting it held, and one raw
 * SaveCheckpoint per meeting; a zombie must get FAILED_PRECONDITION for
 * every one (the runner knows which resumes were zombies).
 */
import { openSync, readFileSync, writeSync } from "node:fs";
import { createServer } from "node:http";
import { NodeAgent } from "../../src/node-agent/index.js";
import type { Checkpoint } from "../../src/node-agent/index.js";
import { clientSecurity } from "../../src/security/client-security.js";
import { silenceIpServernameWarning } from "../../src/security/servername-warning.js";
import { checkTlsMaterial } from "../../src/security/tls-files.js";
import { Rpc, RpcError, isTransient, statusName } from "./rpc.js";
import { type CheckpointSeen, type ServerRecord, writerOf } from "./server-log.js";

interface Held {
  epoch: number;
  counter: number;
}

function flag(name: string): string {
  const i = process.argv.indexOf(name);
  const value = i >= 0 ? process.argv[i + 1] : undefined;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
}

const nodeId = flag("--node-id");
const listen = flag("--listen");
const coordinators = flag("--coordinators").split(",");
const capacity = Number(flag("--capacity"));
const checkpointIntervalMs = Number(flag("--checkpoint-interval-ms"));
const logFd = openSync(flag("--log"), "a");
const tls = { ca: readFileSync(flag("--ca")), cert: readFileSync(flag("--cert")), key: readFileSync(flag("--key")) };
const token = process.env.CONVENE_TOKEN;
if (token === undefined || token === "") throw new Error("CONVENE_TOKEN (the agent token of --node-id) is required");
// The members are dialed by IP address: Node's warning about IP server names says nothing here.
silenceIpServernameWarning();

const RESUME_GAP_MS = 1000;
const TICK_MS = 100;
const NOT_HELD_WAIT_MS = 1000;

function record(r: ServerRecord): void {
  writeSync(logFd, `${JSON.stringify(r)}\n`);
}

const held = new Map<string, Held>();
/** Highest sequence this process knows for each meeting (acks, received checkpoints). */
const lastSeq = new Map<string, number>();
let attempts = 0;
const writer = (suffix: string | number): string => `${nodeId}.${process.pid}.${suffix}`;

function seen(cp: Checkpoint | undefined): CheckpointSeen | null {
  if (!cp) return null;
  return { seq: cp.sequence, epoch: cp.epoch, node: cp.nodeId, w: writerOf(cp.state) };
}

function restoredCounter(cp: Checkpoint | undefined): number {
  if (!cp) return 0;
  try {
    const c = (JSON.parse(Buffer.from(cp.state).toString("utf8")) as { c?: unknown }).c;
    return typeof c === "number" ? c : 0;
  } catch {
    return 0;
  }
}

const agent: NodeAgent = new NodeAgent({
  coordinators,
  nodeId,
  address: listen,
  capacity,
  checkpointIntervalMs,
  tls,
  token,
  onAssigned: (meetingId, epoch, checkpoint) => {
    held.set(meetingId, { epoch, counter: restoredCounter(checkpoint) });
    if (checkpoint) lastSeq.set(meetingId, Math.max(lastSeq.get(meetingId) ?? 0, checkpoint.sequence));
    record({ k: "assigned", t: Date.now(), m: meetingId, e: epoch, gen: agent.generation, cp: seen(checkpoint) });
  },
  onRevoked: (meetingId) => {
    held.delete(meetingId);
  },
  getState: (meetingId) => {
    const h = held.get(meetingId);
    const e = agent.meetings().get(meetingId);
    if (!h || e === undefined) return undefined;
    const w = writer(++attempts);
    record({ k: "attempt", t: Date.now(), m: meetingId, e, gen: agent.generation, w });
    return Buffer.from(JSON.stringify({ w, m: meetingId, e, c: h.counter }));
  },
});
agent.on("registered", (r) => record({ k: "registered", t: Date.now(), gen: r.generation, leaseMs: r.leaseTtlMs }));
agent.on("reregistered", (r) => record({ k: "reregistered", t: Date.now(), gen: r.generation, prev: r.previousGeneration, reason: r.reason }));
agent.on("revoked", (r) => record({ k: "revoked", t: Date.now(), m: r.meetingId, e: r.epoch, gen: agent.generation, reason: r.reason }));
agent.on("checkpoint", (c) => {
  lastSeq.set(c.meetingId, Math.max(lastSeq.get(c.meetingId) ?? 0, c.sequence));
  record({ k: "ack", t: Date.now(), m: c.meetingId, e: c.epoch, seq: c.sequence });
});
agent.on("error", (err) => record({ k: "error", t: Date.now(), msg: err.message.slice(0, 300) }));

const server = createServer((req, res) => {
  const url = req.url ?? "/";
  const answer = (status: number, body: unknown): void => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  };
  if (url === "/healthz") return answer(200, { nodeId, pid: process.pid, generation: agent.generation, meetings: held.size });
  const match = /^\/meetings\/([A-Za-z0-9._:-]{1,128})\/op(?:\?.*)?$/.exec(url);
  if (!match) return answer(404, { error: "not_found", message: `no route for ${url.slice(0, 100)}` });
  const meetingId = match[1]!;
  const deadline = Date.now() + NOT_HELD_WAIT_MS;
  const serve = (): void => {
    const h = held.get(meetingId);
    const epoch = agent.meetings().get(meetingId);
    if (h && epoch !== undefined) {
      h.counter += 1;
      record({ k: "served", t: Date.now(), m: meetingId, e: epoch, gen: agent.generation, c: h.counter });
      return answer(200, { nodeId, meetingId, epoch, generation: agent.generation, counter: h.counter });
    }
    if (Date.now() >= deadline) return answer(421, { error: "not_here", message: `meeting ${meetingId} is not held by ${nodeId}` });
    setTimeout(serve, 25);
  };
  serve();
});

// ---- zombie probes -------------------------------------------------------

const rpc = new Rpc(clientSecurity(checkTlsMaterial(tls), token));
let lastTick = Date.now();
let genBefore = 0;
let heldBefore: [string, number][] = [];

/**
 * The stored sequence as far as this process knows, sent again: a node that
 * still owns the meeting gets the idempotent "already stored" (nothing
 * changes), a fenced one FAILED_PRECONDITION (fencing is checked before the
 * sequence). No probe before a first checkpoint: sequence 1 would store.
 */
async function rawProbe(meetingId: string, epoch: number, generation: number): Promise<void> {
  const sequence = lastSeq.get(meetingId) ?? 0;
  if (sequence === 0) return;
  const w = writer(`raw${++attempts}`);
  const t = Date.now();
  record({ k: "attempt", t, m: meetingId, e: epoch, gen: generation, w, raw: true, seq: sequence });
  const request = { node_id: nodeId, generation, meeting_id: meetingId, epoch, sequence, state: Buffer.from(JSON.stringify({ w, m: meetingId, e: epoch, c: -1 })) };
  let result = "UNAVAILABLE";
  let detail = "";
  let tries = 0;
  // Transient failures are tried again on the next member, for at most ~6 s.
  for (let i = 0; i < 3 * coordinators.length; i++) {
    const address = coordinators[(process.pid + i) % coordinators.length]!;
    tries += 1;
    try {
      await rpc.call("NodeAgent", address, "SaveCheckpoint", request, 1500);
      result = "ack";
      break;
    } catch (err) {
      result = err instanceof RpcError ? statusName(err.status) : "ERROR";
      detail = err instanceof Error ? err.message.slice(0, 200) : String(err);
      if (!(err instanceof RpcError) || !isTransient(err.status)) break;
      if (Date.now() - t > 6000) break;
    }
  }
  record({ k: "probe", t, tEnd: Date.now(), via: "raw", m: meetingId, e: epoch, gen: generation, w, result, detail, tries });
}

async function agentProbe(meetingId: string, epoch: number, generation: number): Promise<void> {
  const t = Date.now();
  let result: string;
  let detail = "";
  try {
    await agent.saveNow(meetingId);
    result = "ack";
  } catch (err) {
    const status = (err as { status?: unknown }).status;
    result = typeof status === "number" ? statusName(status) : ((err as { code?: string }).code ?? "ERROR");
    detail = err instanceof Error ? err.message.slice(0, 200) : String(err);
  }
  // The attempt itself is recorded by getState (its writer id is there).
  record({ k: "probe", t, tEnd: Date.now(), via: "agent", m: meetingId, e: epoch, gen: generation, w: "", result, detail });
}

setInterval(() => {
  const now = Date.now();
  const gap = now - lastTick;
  lastTick = now;
  if (gap > RESUME_GAP_MS && genBefore > 0) {
    record({ k: "resume", t: now, gapMs: gap, gen: genBefore, held: heldBefore });
    const generation = genBefore;
    for (const [m, e] of heldBefore) {
      void agentProbe(m, e, generation);
      void rawProbe(m, e, generation);
    }
  }
  genBefore = agent.generation;
  heldBefore = [...agent.meetings()];
}, TICK_MS);

// The runner is our parent: if it is gone, so are we.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500).unref();

process.on("SIGTERM", () => process.exit(0));

const [host, port] = [listen.slice(0, listen.lastIndexOf(":")), Number(listen.slice(listen.lastIndexOf(":") + 1))];
server.listen(port, host, () => {
  record({ k: "start", t: Date.now(), node: nodeId, pid: process.pid, address: listen });
  agent.start().catch((err: unknown) => {
    record({ k: "error", t: Date.now(), msg: `start failed: ${String(err)}` });
    process.exit(1);
  });
});
