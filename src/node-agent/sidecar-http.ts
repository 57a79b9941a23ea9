/**
 * The sidecar's local HTTP API for its host (a meeting server not written
 * in Node.js). Loopback only; no authentication beyond that.
 *
 *   GET  /meetings                    200 {"nodeId","generation","meetings":[{"meetingId","epoch","handingOver"}]}
 *   GET  /meetings/{id}/state         200 the state as bytes: the last PUT, else the checkpoint the
 *                                     meeting was restored from (for a host that polls instead of
 *                                     taking the webhook); headers say which, the epoch and sequence
 *   PUT  /meetings/{id}/state         204; body (any bytes) = the state the next checkpoint saves
 *   POST /meetings/{id}/checkpoint    200 {"meetingId","sequence"}: saved now
 *   POST /meetings/{id}/handover      202 {"meetingId"}: body = the final state of a meeting being
 *                                     handed over (after a "handover" webhook notice, or
 *                                     handingOver in GET /meetings); the host accepts no more
 *                                     writes to it. 409 not_handing_over when none is asked for.
 *   PUT  /load                        204; JSON {"cpu","netInBytesPerSec","netOutBytesPerSec","participants"}:
 *                                     the figures the next heartbeats carry (placement by load)
 *   GET  /healthz                     200 while registered, else 503
 *
 * Errors are JSON {"error": "<code>", "message": "<what and why>"}:
 * 400 invalid_meeting_id, 404 not_held / not_found / no_state (GET: nothing
 * PUT and no checkpoint), 405 method_not_allowed,
 * 409 no_state (nothing PUT since the assignment), moved (the coordinator
 * refused: the meeting is no longer this node's) or moving (it is being
 * handed over: no more checkpoints here), 413 too_large, 400 bad_load,
 * 503 unavailable (with Retry-After) when no coordinator member answered.
 * This file is the one place the agent's errors become HTTP statuses.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import * as grpc from "@grpc/grpc-js";
import { idProblem } from "../wire/describe.js";
import type { Checkpoint } from "./coordinator-responses.js";
import { type LoadSample, checkLoadSample } from "./agent-config.js";
import { AgentConfigError, AgentStoppedError, CoordinatorCallError, MeetingMovingError, MeetingNotHeldError } from "./errors.js";
import type { NodeAgent } from "./node-agent.js";

/** What the sidecar keeps for one held meeting, from its assignment until it is revoked. */
export interface HeldState {
  readonly epoch: number;
  /** The last state the host PUT in this tenure (the sidecar's getState reads it); none yet: undefined. */
  put: Uint8Array | undefined;
  /** The checkpoint the meeting arrived with (a move or a restart), if any. */
  readonly restored: Checkpoint | undefined;
}

export interface SidecarHttpDeps {
  readonly agent: NodeAgent;
  /** meeting id → its held state; set on assignment, dropped on revoke. */
  readonly held: Map<string, HeldState>;
  readonly maxStateBytes: number;
  /** Resolves the hand-over the agent waits for; false when none is pending for the meeting. */
  readonly handOver: (meetingId: string, state: Uint8Array) => boolean;
  /** Takes the host's load figures. */
  readonly setLoad: (sample: Required<LoadSample>) => void;
}

interface HttpError {
  readonly status: number;
  readonly error: string;
  readonly message: string;
}

const MEETING_PATH = /^\/meetings\/([^/]+)\/(state|checkpoint|handover)$/;

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  if (body === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers }).end(text);
}

function sendError(res: ServerResponse, e: HttpError, headers: Record<string, string> = {}): void {
  send(res, e.status, { error: e.error, message: e.message }, e.status === 503 ? { "retry-after": "1", ...headers } : headers);
}

/** GET /meetings/{id}/state: the last PUT, else the restored checkpoint, as the bytes themselves. */
function sendState(res: ServerResponse, meetingId: string, held: HeldState): void {
  const headers: Record<string, string> = { "content-type": "application/octet-stream", "cache-control": "no-store", "x-convene-epoch": String(held.epoch) };
  if (held.put !== undefined) {
    res.writeHead(200, { ...headers, "x-convene-state-source": "put", "content-length": String(held.put.length) }).end(held.put);
    return;
  }
  const c = held.restored;
  if (c === undefined) {
    sendError(res, { status: 404, error: "no_state", message: `meeting ${meetingId} has no checkpoint and no state was PUT since it was assigned` });
    return;
  }
  res
    .writeHead(200, { ...headers, "x-convene-state-source": "checkpoint", "x-convene-sequence": String(c.sequence), "content-length": String(c.state.length) })
    .end(c.state);
}

/** The HTTP answer for a failed save. */
export function saveErrorToHttp(err: unknown): HttpError {
  if (err instanceof MeetingNotHeldError) return { status: 404, error: "not_held", message: err.message };
  if (err instanceof MeetingMovingError) return { status: 409, error: "moving", message: err.message };
  if (err instanceof AgentStoppedError) return { status: 503, error: "unavailable", message: err.message };
  if (err instanceof CoordinatorCallError) {
    switch (err.status) {
      case grpc.status.FAILED_PRECONDITION:
      case grpc.status.NOT_FOUND:
        return { status: 409, error: "moved", message: err.message };
      case grpc.status.RESOURCE_EXHAUSTED:
        return { status: 413, error: "too_large", message: err.message };
      case grpc.status.UNAVAILABLE:
      case grpc.status.DEADLINE_EXCEEDED:
      case grpc.status.INTERNAL:
      case grpc.status.CANCELLED:
        return { status: 503, error: "unavailable", message: err.message };
      default:
        return { status: 502, error: "coordinator_error", message: err.message };
    }
  }
  return { status: 500, error: "internal", message: err instanceof Error ? err.message : String(err) };
}

/** Reads the body up to `limit` bytes; undefined when it is larger (the rest is drained and dropped). */
function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) over = true;
      if (!over) chunks.push(chunk);
    });
    req.on("end", () => resolve(over ? undefined : new Uint8Array(Buffer.concat(chunks))));
    req.on("error", reject);
  });
}

/** The request handler for node:http's createServer. Never throws; every answer is JSON or empty. */
export function sidecarHandler(deps: SidecarHttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(deps, req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, { status: 500, error: "internal", message: err instanceof Error ? err.message : String(err) });
      else res.destroy();
    });
  };
}

async function handle(deps: SidecarHttpDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { agent } = deps;
  const path = new URL(req.url ?? "/", "http://sidecar").pathname;
  const method = req.method ?? "GET";
  if (path === "/load") {
    if (method !== "PUT") return sendError(res, { status: 405, error: "method_not_allowed", message: `${method} ${path}: use PUT` }, { allow: "PUT" });
    const body = await readBody(req, 4096);
    let sample: Required<LoadSample>;
    try {
      if (body === undefined) throw new AgentConfigError("the body must be at most 4096 bytes");
      sample = checkLoadSample(JSON.parse(Buffer.from(body).toString("utf8")) as unknown, "load");
    } catch (err) {
      return sendError(res, { status: 400, error: "bad_load", message: err instanceof SyntaxError ? "the body must be JSON" : (err as Error).message });
    }
    deps.setLoad(sample);
    return send(res, 204);
  }
  if (path === "/meetings" || path === "/healthz") {
    if (method !== "GET") return sendError(res, { status: 405, error: "method_not_allowed", message: `${method} ${path}: use GET` });
    if (path === "/healthz") {
      return agent.running
        ? send(res, 200, { nodeId: agent.config.nodeId, generation: agent.generation })
        : sendError(res, { status: 503, error: "unavailable", message: "the agent is not registered" });
    }
    const moving = new Set(agent.meetingsHandingOver());
    const meetings = [...agent.meetings()].map(([meetingId, epoch]) => ({ meetingId, epoch, handingOver: moving.has(meetingId) }));
    return send(res, 200, { nodeId: agent.config.nodeId, generation: agent.generation, meetings });
  }
  const match = MEETING_PATH.exec(path);
  if (!match) return sendError(res, { status: 404, error: "not_found", message: `no resource ${path}` });
  let meetingId: string;
  try {
    meetingId = decodeURIComponent(match[1]!);
  } catch {
    meetingId = "";
  }
  const idError = idProblem("meeting", meetingId);
  if (idError) return sendError(res, { status: 400, error: "invalid_meeting_id", message: `the meeting id in the path ${idError}` });
  const allowed = match[2] === "state" ? ["GET", "PUT"] : ["POST"];
  if (!allowed.includes(method)) {
    return sendError(res, { status: 405, error: "method_not_allowed", message: `${method} ${path}: use ${allowed.join(" or ")}` }, { allow: allowed.join(", ") });
  }
  const notHeld = (): HttpError => ({ status: 404, error: "not_held", message: `meeting ${meetingId} is not held by node ${agent.config.nodeId}` });
  const held = agent.meetings().has(meetingId) ? deps.held.get(meetingId) : undefined;
  if (!held) return sendError(res, notHeld());
  if (match[2] === "state" && method === "GET") return sendState(res, meetingId, held);
  if (match[2] === "handover") {
    const body = await readBody(req, deps.maxStateBytes);
    if (body === undefined) return sendError(res, { status: 413, error: "too_large", message: `state must be at most ${deps.maxStateBytes} bytes` });
    if (!deps.handOver(meetingId, body)) {
      return sendError(res, { status: 409, error: "not_handing_over", message: `no hand-over of meeting ${meetingId} is under way on node ${agent.config.nodeId}` });
    }
    return send(res, 202, { meetingId });
  }
  if (match[2] === "state") {
    const body = await readBody(req, deps.maxStateBytes);
    if (body === undefined) {
      return sendError(res, { status: 413, error: "too_large", message: `state must be at most ${deps.maxStateBytes} bytes` });
    }
    // The meeting may have been revoked (or moved away and back) while the body arrived: keep no state for another tenure.
    if (deps.held.get(meetingId) !== held || !agent.meetings().has(meetingId)) return sendError(res, notHeld());
    held.put = body;
    return send(res, 204);
  }
  let sequence: number | undefined;
  try {
    sequence = await agent.saveNow(meetingId);
  } catch (err) {
    return sendError(res, saveErrorToHttp(err));
  }
  if (sequence === undefined) {
    return sendError(res, { status: 409, error: "no_state", message: `no state was PUT for meeting ${meetingId} since it was assigned` });
  }
  return send(res, 200, { meetingId, sequence });
}
