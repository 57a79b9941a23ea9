/**
 * Hostile input against the gateway (issue 6, fuzzing): three coordinator
 * members, a gateway and two demo meeting servers, each a real process on
 * 127.0.0.1, and thousands of seeded requests (FUZZ_SEED to replay another
 * run) written byte for byte on raw sockets: every route with traversal,
 * encoded slashes, "..;", NUL and control characters, absurd ids and any
 * method; injected and broken headers; bodies over the limit, cut short or
 * badly chunked; pipelined garbage; WebSocket upgrades to every kind of
 * path and with bad handshakes; and, after real upgrades, frames no client
 * may send (support/gateway-fuzz-cases.ts).
 * Checked: every process is the one that started and still answers; every
 * answer is a 4xx/5xx with a JSON {error, message} body (or, for protocol
 * garbage, a clean close), never a 500, never a hang; WebSocket garbage
 * ends the connection or gets error frames, never a chat message; and the
 * replicated state (nodes, meetings, checkpoints with each room's history,
 * the audit trail of applied writes) is what it was before.
 *
 * Knobs: FUZZ_SEED; FUZZ_GATEWAY_SCALE (multiplies the cases of each kind);
 * FUZZ_VERBOSE=1 prints the tally of outcomes and every 5xx;
 * FUZZ_TRACE=<regex> prints the answer to each request whose bytes match.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { decodeRoomState } from "../src/demo-server/index.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { CliProcess } from "./support/cli-process.js";
import { AuditWatcher, type StateDigest, digestDiff, stateDigest, writeBarrier } from "./support/cluster-digest.js";
import { FuzzLedger, drawPatiently, freeBasePort, fuzzSeed, processAlive, runPool } from "./support/fuzz-run.js";
import { type GatewayWorld, type HttpCase, couldCreate, gatewayArbitraries } from "./support/gateway-fuzz-cases.js";
import { MemberCluster, unary } from "./support/member-cluster.js";
import { type RawExchange, exchange, parseServerFrames } from "./support/raw-http.js";

const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");

/** Requests per kind; FUZZ_GATEWAY_SCALE multiplies them all. */
const SCALE = Number(process.env.FUZZ_GATEWAY_SCALE ?? 1);
const COUNTS: Record<HttpCase["kind"], number> = { path: 1_700, header: 800, body: 120, pipeline: 150, "ws-handshake": 400, "ws-frames": 500 };
const CONCURRENCY = 12;
/** Bound on any one exchange: more is a hang. */
const EXCHANGE_TIMEOUT_MS = 10_000;
/** How long a WebSocket stays open after its garbage before we hang up. */
const AFTER_UPGRADE_MS = 400;
const MEMBERS = ["n1", "n2", "n3"];
const HOST = "127.0.0.1";

/** What is wrong with a JSON error answer, if anything. */
function badErrorBody(status: number, headers: Readonly<Record<string, string>>, body: Buffer, head: boolean): string | undefined {
  if (status < 400 || status > 599) return `status ${status}, not an error: ${JSON.stringify(body.toString("latin1").slice(0, 120))}`;
  if (status === 500) return `500 (an unhandled error): ${body.toString().slice(0, 200)}`;
  if (head) return undefined;
  if (!/^application\/json/.test(headers["content-type"] ?? "")) return `${status} with content-type ${JSON.stringify(headers["content-type"])}: ${JSON.stringify(body.toString("latin1").slice(0, 200))}`;
  try {
    const parsed = JSON.parse(body.toString()) as { error?: unknown; message?: unknown };
    if (typeof parsed.error !== "string" || typeof parsed.message !== "string" || parsed.message === "") return `${status} body without error and message: ${body.toString().slice(0, 200)}`;
  } catch {
    return `${status} body is not JSON: ${JSON.stringify(body.toString("latin1").slice(0, 200))}`;
  }
  return undefined;
}

/** What is wrong with the exchange a case got, if anything; and a word for the outcome tally. */
function judgeExchange(c: HttpCase, x: RawExchange): { outcome: string; problem?: string } {
  const first = x.responses[0];
  const outcome = first ? String(first.status) : x.timedOut ? "timeout" : "closed";
  if (first?.status === 0) return { outcome: "garbage", problem: `an answer that is not HTTP: ${JSON.stringify(first.body.toString("latin1").slice(0, 200))}` };
  if (x.timedOut && !(c.expect === "ws" && first?.status === 101)) return { outcome, problem: `no ${first ? "end" : "answer"} within ${EXCHANGE_TIMEOUT_MS} ms` };
  switch (c.expect) {
    case "read":
      if (!first) return { outcome, problem: "a valid request got no answer" };
      return first.status === 500 ? { outcome, problem: `500 for a valid request: ${first.body.toString().slice(0, 200)}` } : { outcome };
    case "error":
    case "error-or-close": {
      if (!first && c.expect === "error") return { outcome, problem: `closed without an answer${x.error ? ` (${x.error})` : ""}` };
      for (const r of x.responses) {
        const problem = badErrorBody(r.status, r.headers, r.body, c.head);
        if (problem) return { outcome, problem };
      }
      return { outcome };
    }
    case "ws": {
      if (!first) return { outcome, problem: `an upgrade got no answer${x.error ? ` (${x.error})` : ""}` };
      if (first.status !== 101) {
        const problem = badErrorBody(first.status, first.headers, first.body, c.head);
        return problem ? { outcome, problem } : { outcome };
      }
      for (const f of parseServerFrames(x.rest)) {
        if (f.opcode !== 1) continue;
        let type: unknown;
        try {
          type = (JSON.parse(f.payload.toString()) as { type?: unknown }).type;
        } catch {
          return { outcome, problem: `a text frame that is not JSON: ${f.payload.toString().slice(0, 100)}` };
        }
        if (!["welcome", "error", "pong", "participants"].includes(String(type))) return { outcome, problem: `garbage got a ${String(type)} frame: ${f.payload.toString().slice(0, 200)}` };
      }
      return { outcome: `101 ${x.closed ? "closed" : "open"}` };
    }
  }
}

describe("hostile HTTP and WebSocket input against a gateway and its meeting servers", () => {
  let port: number;
  let cluster: MemberCluster;
  let coordinators: string;
  let gatewayPort: number;
  const processes: CliProcess[] = [];
  const seed = fuzzSeed();
  let coordinator: grpc.Client;
  let world: GatewayWorld;
  let before: StateDigest;
  const memberPids = new Map<string, number>();
  const processPids = new Map<CliProcess, number>();

  beforeAll(async () => {
    // Members on port..port+2, the gateway on +5, the meeting servers on +6 and +7.
    port = await freeBasePort(8);
    cluster = new MemberCluster(MEMBERS, port, { app: "coordinator" });
    coordinators = MEMBERS.map((_, i) => `${HOST}:${port + i}`).join(",");
    gatewayPort = port + 5;
    for (const id of MEMBERS) cluster.start(id);
    await cluster.waitForLeader(30_000);
    await cluster.waitForAll(30_000);
    for (const id of MEMBERS) memberPids.set(id, cluster.pid(id)!);
    coordinator = new CoordinatorClient(cluster.addresses.get("n1")!, grpc.credentials.createInsecure());
    const gateway = new CliProcess("gateway", ["gateway", "--listen", `${HOST}:${gatewayPort}`, "--coordinators", coordinators, "--log-level", "warn"]);
    const demos = ["fz-d1", "fz-d2"].map(
      (id, i) =>
        new CliProcess(id, [
          "demo-server", "--node-id", id, "--listen", `${HOST}:${port + 6 + i}`, "--coordinators", coordinators,
          "--capacity", "50", "--checkpoint-interval-ms", "200", "--log-level", "warn",
        ]),
    );
    processes.push(gateway, ...demos);
    await Promise.all([
      gateway.waitForHttp(`http://${HOST}:${gatewayPort}/healthz`),
      ...demos.map((d, i) => d.waitForHttp(`http://${HOST}:${port + 6 + i}/healthz`)),
    ]);
    for (const p of processes) processPids.set(p, p.pid!);

    // Meetings created through the gateway, each with a chat history (so a checkpoint) but the last.
    const meetings = ["fz-g-0", "fz-g-1", "fz:g.2", "fz-g-3", "fz.g-4", "fz-g-5"];
    for (const id of meetings) {
      const r = await fetch(`http://${HOST}:${gatewayPort}/route/${id}`);
      expect(r.status, await r.text()).toBe(200);
    }
    for (const id of meetings.slice(0, 5)) {
      const ws = new WebSocket(`ws://${HOST}:${gatewayPort}/meetings/${id}/ws`);
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      ws.send(JSON.stringify({ type: "join", name: "fuzz" }));
      ws.send(JSON.stringify({ type: "say", text: `hello ${id}` }));
      // The say is applied once the room answers it with the message.
      await new Promise<void>((resolve) => ws.on("message", (m) => String(m).includes(`hello ${id}`) && resolve()));
      ws.close();
    }
    // Wait until every room's history is checkpointed: a demo server saves a
    // room only when it changed, so once its checkpoint holds the room's one
    // message nothing more is saved (however late, on a loaded machine).
    const checkpointed = async (id: string): Promise<boolean> => {
      try {
        const c = await unary<{ state: Buffer }>(coordinator, "GetCheckpoint", { meeting_id: id }, 5_000);
        return decodeRoomState(c.state).some((m) => m.text === `hello ${id}`);
      } catch {
        return false; // none yet
      }
    };
    for (const id of meetings.slice(0, 5)) await vi.waitFor(async () => expect(await checkpointed(id), `${id}'s history checkpointed`).toBe(true), { timeout: 30_000, interval: 100 });
    world = { host: HOST, port: gatewayPort, meetings };
    before = await stateDigest(coordinator);
  }, 90_000);

  afterAll(async () => {
    coordinator?.close();
    await Promise.all(processes.map((p) => p.kill()));
    await cluster?.close();
  });

  it("answers every hostile request with a JSON error or a clean close, stays up, and changes nothing", async () => {
    const started = Date.now();
    console.log(`fuzz-gateway: seed ${seed} (set FUZZ_SEED to replay another)`);
    const arbitraries = gatewayArbitraries(world);
    const cases: HttpCase[] = [];
    let skipped = 0;
    for (const [i, [kind, arb]] of Object.entries(arbitraries).entries()) {
      for (const c of await drawPatiently(arb, Math.round(COUNTS[kind as HttpCase["kind"]] * SCALE), seed, 100 + i)) {
        // Never send what could create a meeting: it would be a valid request that changes the state.
        if (couldCreate(world, c.bytes.map((b) => b.toString("latin1")).join(""))) skipped++;
        else cases.push(c);
      }
    }

    const ledger = new FuzzLedger();
    const audit = new AuditWatcher(() => cluster.admin("n2"));
    const startIndex = await audit.start();
    try {
      await runPool(cases, CONCURRENCY, async (c) => {
        const x = await exchange(HOST, gatewayPort, c.bytes, {
          timeoutMs: EXCHANGE_TIMEOUT_MS,
          responses: c.responses,
          head: c.head,
          halfClose: c.halfClose,
          ...(c.afterUpgrade ? { afterUpgrade: c.afterUpgrade, afterUpgradeMs: AFTER_UPGRADE_MS } : {}),
        });
        const { outcome, problem } = judgeExchange(c, x);
        ledger.record(c.kind, `${c.expect} ${outcome}`);
        // A 5xx is allowed (a JSON 503 is a clear answer), but none should come from a healthy cluster: shown when verbose.
        // FUZZ_TRACE=<regex> shows the answer to every request whose bytes match.
        const trace = process.env.FUZZ_TRACE ? new RegExp(process.env.FUZZ_TRACE).test(c.shown) : false;
        if (trace || (process.env.FUZZ_VERBOSE && outcome.startsWith("5"))) {
          console.log(`  ${outcome} for ${c.kind}: ${c.shown.slice(0, 300)} -> ${x.responses[0]?.body.toString().slice(0, 300)}`);
        }
        if (problem) ledger.fail(`${c.kind} (expected ${c.expect})`, problem, c.shown);
      });
    } finally {
      // Every write the run caused comes before the barrier in the log; the trail is read once more after it.
      await writeBarrier(MEMBERS.map((id) => cluster.addresses.get(id)!), world.meetings[0]!);
      await audit.stop();
    }
    const elapsed = Date.now() - started;

    // Every process is the one that started, and answers.
    for (const id of MEMBERS) {
      expect(processAlive(memberPids.get(id)), `${id} died\n${cluster.recentLogs()}`).toBe(true);
      expect((await cluster.status(id)).id).toBe(id);
    }
    for (const [p, pid] of processPids) {
      expect(p.exited, `${p.name} exited\n${p.recentLogs()}`).toBeUndefined();
      expect(processAlive(pid)).toBe(true);
    }
    for (const [i, url] of [`http://${HOST}:${gatewayPort}/healthz`, `http://${HOST}:${port + 6}/healthz`, `http://${HOST}:${port + 7}/healthz`].entries()) {
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      expect(res.status, `${url} after the run\n${processes[i]!.recentLogs()}`).toBe(200);
    }
    if (ledger.failures.length > 0) console.log(processes.map((p) => p.recentLogs()).join("\n"));
    expect(ledger.failures, `${ledger.failures.length} bad answers:\n${ledger.report()}`).toEqual([]);
    // Nothing the run sent changed the replicated state.
    expect(digestDiff(before, await stateDigest(coordinator)), "the replicated state changed").toBe("");
    const writes = audit.writesAfter(startIndex);
    expect(writes.map((e) => `${e.index} ${e.kind}: ${e.summary}`), "applied writes during the run").toEqual([]);
    expect(audit.gaps, "audit entries the polls missed").toEqual([]);
    // The rooms still hold exactly their history (the meeting servers' own view).
    for (const id of world.meetings.slice(0, 5)) {
      const state = (await (await fetch(`http://${HOST}:${gatewayPort}/meetings/${id}/state`)).json()) as { history: { text: string }[] };
      expect(state.history.map((m) => m.text)).toEqual([`hello ${id}`]);
    }

    console.log(`fuzz-gateway: ${ledger.requests} requests, ${ledger.targets.size} kinds over every route, seed ${seed}, 0 crashes (${elapsed} ms; ${skipped} cases that could create a meeting not sent)`);
    if (process.env.FUZZ_VERBOSE) console.log([...ledger.byOutcome].sort().map(([k, n]) => `  ${k}: ${n}`).join("\n"));
    expect(ledger.requests).toBeGreaterThanOrEqual(3_000 * SCALE);
  }, 120_000);

  it("proxies valid requests that carry hop-by-hop headers (they were answered 503, blaming the host)", async () => {
    const id = world.meetings[0]!;
    for (const extra of [["Keep-Alive: timeout=5"], ["Upgrade: h2c"], ["Connection: keep-alive, x-drop", "X-Drop: 1"], ["TE: trailers"]]) {
      const bytes = Buffer.from([`GET /meetings/${id}/state HTTP/1.1`, `Host: ${HOST}:${gatewayPort}`, ...extra, "Connection: close", "", ""].join("\r\n"));
      const x = await exchange(HOST, gatewayPort, bytes, { timeoutMs: EXCHANGE_TIMEOUT_MS });
      expect(x.responses[0]?.status, `${extra.join(" ")}: ${x.responses[0]?.body.toString()}`).toBe(200);
    }
    const http10 = Buffer.from(`GET /meetings/${id}/state HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n`);
    expect((await exchange(HOST, gatewayPort, http10, { timeoutMs: EXCHANGE_TIMEOUT_MS })).responses[0]?.status).toBe(200);
  });
});
