/**
 * The gateway's dashboard, the page an operator keeps open:
 * - its timeline reads the coordinator's audit trail: every summary form
 *   the state machine writes is understood (real commands applied to the
 *   real state machine), with the durations between them;
 * - in headless Chromium, against three real members, meeting servers
 *   played by raw gRPC agents and a gateway: members with roles and lag,
 *   servers with load and states, meetings with links, a failure with how
 *   long it took, live updates, "none yet" for empty tables, one time
 *   format, no jargon; and the failure is still there after the gateway
 *   restarts (it comes from the replicated audit trail, not the gateway).
 * Checked by the page's text and rows; a screenshot is kept as an artifact
 * (test-artifacts/dashboard.png).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Command, encodeCommand } from "../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../src/coordinator/coordinator-state-machine.js";
import { timelineOf } from "../src/gateway/audit-timeline.js";
import type { CoordinatorClient as GatewayCoordinatorClient } from "../src/gateway/coordinator-client.js";
import { DashboardSource } from "../src/gateway/dashboard-data.js";
import { type Gateway, startGateway, validateGatewayConfig } from "../src/gateway/index.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { MemberCluster, basePort, unary } from "./support/member-cluster.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");

type Input = Command extends infer C ? (C extends Command ? Omit<C, "nowMs"> : never) : never;

describe("the dashboard's timeline, from the audit trail", () => {
  it("understands every summary the state machine writes, with the durations between them", () => {
    const sm = new CoordinatorStateMachine({});
    let index = 0;
    const at = (nowMs: number, c: Input) => sm.apply(encodeCommand({ ...c, nowMs } as Command), ++index);
    for (const id of ["m1", "m2", "m3"]) at(1_000, { type: "register", nodeId: id, address: `127.0.0.1:${9000 + Number(id[1])}`, capacity: 10, region: "", labels: [] });
    for (const id of ["a", "b", "c"]) at(1_100, { type: "createMeeting", meetingId: id, region: "", requiredLabels: [] });
    const onM1 = sm.queries.listMeetings("m1").length;
    at(2_000, { type: "setLiveness", nodeId: "m1", generation: 1, liveness: "SUSPECT" });
    at(2_320, { type: "setLiveness", nodeId: "m1", generation: 1, liveness: "DEAD" });
    at(3_000, { type: "setLiveness", nodeId: "m2", generation: 1, liveness: "SUSPECT" });
    at(3_150, { type: "setLiveness", nodeId: "m2", generation: 1, liveness: "ALIVE" });
    at(5_000, { type: "register", nodeId: "m1", address: "127.0.0.1:9001", capacity: 10, region: "", labels: [] });
    at(6_000, { type: "drainNode", nodeId: "m2", migrate: true });
    at(7_000, { type: "deregister", nodeId: "m3", generation: 1 });
    at(8_000, { type: "setLiveness", nodeId: "m1", generation: 2, liveness: "SUSPECT" });
    at(8_100, { type: "drainNode", nodeId: "nosuch", migrate: true }); // refused: not in the timeline

    const entries = sm.queries.auditLog().map((e) => ({ index: e.index, kind: e.kind, now_ms: e.nowMs, ok: e.ok, code: e.code, summary: e.summary }));
    const { events, history } = timelineOf(entries);
    expect(events.map((e) => [e.atMs, e.kind, e.nodeId, e.durationMs])).toEqual([
      [8_000, "suspected", "m1", null],
      [7_000, "left", "m3", null],
      [6_000, "drained", "m2", null],
      [5_000, "back", "m1", 2_680],
      [3_150, "false-alarm", "m2", 150],
      [2_320, "failed", "m1", 320],
      [1_000, "joined", "m1", null],
      [1_000, "joined", "m2", null],
      [1_000, "joined", "m3", null],
    ]);
    const failed = events.find((e) => e.kind === "failed")!;
    expect(onM1).toBeGreaterThan(0);
    expect(failed).toMatchObject({ title: "m1 failed", moved: onM1 });
    expect(failed.detail).toBe(`declared dead 320 ms after it stopped answering; ${onM1} meeting${onM1 === 1 ? "" : "s"} moved to other servers`);
    expect(events.find((e) => e.kind === "back")!.detail).toBe("registered again at 127.0.0.1:9001, 2.7 s after it was declared dead");
    expect(events.find((e) => e.kind === "false-alarm")!.detail).toBe("it was suspected for 150 ms; nothing moved");
    expect(events.find((e) => e.kind === "drained")!.moved).toBeGreaterThan(0);
    expect(history.get("m1")!.map((c) => `${c.state}@${c.atMs}`)).toEqual(["alive@1000", "suspect@2000", "dead@2320", "alive@5000", "suspect@8000"]);
    expect(history.get("m3")!.map((c) => c.state)).toEqual(["alive", "left"]);
  });

  it("leaves out what it does not recognise", () => {
    expect(timelineOf([{ kind: "setLiveness", ok: true, now_ms: 1, summary: "something else entirely" }, { kind: "mystery", ok: true, now_ms: 2, summary: "x" }]).events).toEqual([]);
  });
});

describe("the dashboard's data", () => {
  it("serves one gather to every request for maxAgeMs, dated by when it began: a reader judges only data gathered after what it waits for", async () => {
    let state = 1; // alive
    let listNodes = 0;
    const client = {
      addresses: ["127.0.0.1:1"],
      unary: async (_service: string, method: string) => {
        if (method === "ListNodes") {
          listNodes++;
          return { nodes: [{ node_id: "m1", state }] };
        }
        return { entries: [] };
      },
      callAt: async () => ({}),
    } as unknown as GatewayCoordinatorClient;
    const gateway = { address: "", healthy: true, createEnabled: true, cachedRoutes: 0, feedRevision: 0, feedMember: null, openWebSockets: 0 };
    const source = new DashboardSource(client, () => gateway, () => [], 500);
    const first = await source.get(10_000);
    expect(first).toMatchObject({ generatedAtMs: 10_000, nodes: [{ nodeId: "m1", state: "alive" }] });
    state = 3; // m1 is declared dead
    // Within maxAgeMs every reader gets the gather from before the death,
    // and can tell by its date (what test/gateway.test.ts relies on).
    expect(await source.get(10_499)).toMatchObject({ generatedAtMs: 10_000, nodes: [{ nodeId: "m1", state: "alive" }] });
    expect(await source.get(10_500)).toMatchObject({ generatedAtMs: 10_500, nodes: [{ nodeId: "m1", state: "dead" }] });
    expect(listNodes).toBe(2);
  });
});

/** A meeting server as the coordinator sees it: registered, heartbeating, watching its assignments. */
class Agent {
  private beat: NodeJS.Timeout | undefined;
  private watch: grpc.ClientReadableStream<unknown> | undefined;
  private readonly client: grpc.Client;

  constructor(
    readonly nodeId: string,
    coordinator: string,
    private readonly port: number,
  ) {
    this.client = new NodeAgentClient(coordinator, grpc.credentials.createInsecure());
  }

  async start(): Promise<void> {
    const register = () =>
      unary<{ generation: number; heartbeat_interval_ms: number }>(
        this.client,
        "Register",
        { node_id: this.nodeId, address: `127.0.0.1:${this.port}`, capacity: 4, region: "", labels: {} },
        10_000,
      );
    // An election may be under way (a loaded machine): UNAVAILABLE is worth another try, as a real agent does.
    let r: Awaited<ReturnType<typeof register>> | undefined;
    for (let attempt = 0; r === undefined; attempt++) {
      r = await register().catch((err: grpc.ServiceError) => {
        if (err.code !== grpc.status.UNAVAILABLE || attempt >= 50) throw err;
        return new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 200));
      });
    }
    this.beat = setInterval(() => {
      unary(this.client, "Heartbeat", { node_id: this.nodeId, generation: r.generation, active_meetings: 0, load: 0 }).catch(() => undefined);
    }, r.heartbeat_interval_ms);
    const watch = (this.client as unknown as { WatchAssignments(req: unknown): grpc.ClientReadableStream<unknown> }).WatchAssignments({ node_id: this.nodeId, generation: r.generation });
    watch.on("error", () => undefined);
    this.watch = watch;
  }

  /** As a kill -9: heartbeats stop and the watch stream breaks. */
  die(): void {
    clearInterval(this.beat);
    this.watch?.cancel();
    this.client.close();
  }
}

interface Rows {
  members: string[][];
  nodes: string[][];
  timeline: string[][];
  meetings: string[][];
}

async function rows(page: Page): Promise<Rows> {
  return page.evaluate(() => {
    const read = (id: string) => [...document.querySelectorAll(`#${id} tr`)].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? ""));
    return { members: read("members"), nodes: read("nodes"), timeline: read("timeline"), meetings: read("meetings") };
  });
}

const TIME = /^\d{2}:\d{2}:\d{2}$/;

describe("the dashboard in a real browser", () => {
  const cluster = new MemberCluster(["n1", "n2", "n3"], undefined, { app: "coordinator" });
  const agents: Agent[] = [];
  const logger = pino({ level: "warn" });
  let gateway: Gateway;
  let browser: Browser;

  const startOne = () =>
    startGateway(validateGatewayConfig({ listen: "127.0.0.1:0", coordinators: [...cluster.addresses.values()], logLevel: "warn" }), logger);

  beforeAll(async () => {
    for (const id of ["n1", "n2", "n3"]) cluster.start(id);
    await cluster.waitForLeader(30_000);
    await cluster.waitForAll(30_000);
    const port = basePort();
    for (const [i, id] of ["m1", "m2"].entries()) {
      const agent = new Agent(id, cluster.addresses.get("n1")!, port + i);
      await agent.start();
      agents.push(agent);
    }
    gateway = await startOne();
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    for (const a of agents) a.die();
    await cluster.close();
  });

  it("shows members with roles and lag, servers with load and states, meetings with links, and a failure with how long it took, live", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`http://${gateway.address}/`);

    // Members: three, one leader, each with its lag in words (a member too slow to answer one refresh shows as unreachable in it).
    const everyMember = (r: Rows) => r.members.length === 3 && r.members.every((m) => m[2] !== "unreachable");
    await expect.poll(async () => everyMember(await rows(page)), { timeout: 20_000 }).toBe(true);
    let r = await rows(page);
    expect(r.members.map((m) => m[0]).sort()).toEqual(["n1", "n2", "n3"]);
    expect(r.members.filter((m) => m[2] === "leader")).toHaveLength(1);
    for (const m of r.members) expect(m[3]).toMatch(/^(up to date|\d+ entr(y|ies) behind)$/);

    // Servers with their load; the joins on the timeline; no meeting yet.
    expect(r.nodes.map((n) => [n[0], n[2], n[3]])).toEqual([
      ["m1", "alive", "0 of 4 (0%)"],
      ["m2", "alive", "0 of 4 (0%)"],
    ]);
    expect(r.timeline.map((t) => t[1])).toEqual(expect.arrayContaining(["m1 joined", "m2 joined"]));
    expect(r.meetings).toEqual([["none yet"]]);

    // A meeting appears by itself (the page polls), with a link through this gateway.
    const route = (await (await fetch(`http://${gateway.address}/route/standup`)).json()) as { nodeId: string };
    await expect.poll(async () => (await rows(page)).meetings, { timeout: 10_000 }).toEqual([["standup", route.nodeId, "never"]]);
    expect(await page.getAttribute("#meetings a", "href")).toBe("/meetings/standup/");
    await expect.poll(async () => (await rows(page)).nodes.find((n) => n[0] === route.nodeId)?.[3], { timeout: 10_000 }).toBe("1 of 4 (25%)");

    // Its server dies: the page shows it dead, the failure with how long it took, and the meeting moved.
    const renders = await page.evaluate(() => (window as unknown as { conveneDashboard: { renders: number } }).conveneDashboard.renders);
    agents.find((a) => a.nodeId === route.nodeId)!.die();
    const other = route.nodeId === "m1" ? "m2" : "m1";
    await expect.poll(async () => (await rows(page)).nodes.find((n) => n[0] === route.nodeId)?.[2], { timeout: 20_000 }).toBe("dead");
    r = await rows(page);
    const failure = r.timeline.find((t) => t[1] === `${route.nodeId} failed`)!;
    expect(failure[0]).toMatch(TIME);
    expect(failure[2]).toMatch(/^\d+(\.\d)? (ms|s)$/);
    expect(failure[3]).toMatch(/^declared dead .* after it stopped answering; 1 meeting moved to other servers$/);
    // Its recent states end in its death (a loaded machine may show an earlier false alarm, alive again, before it).
    expect(r.nodes.find((n) => n[0] === route.nodeId)![4]).toMatch(/^alive \d{2}:\d{2}:\d{2}( → (not answering|alive) \d{2}:\d{2}:\d{2})* → not answering \d{2}:\d{2}:\d{2} → dead \d{2}:\d{2}:\d{2}$/);
    await expect.poll(async () => (await rows(page)).meetings, { timeout: 10_000 }).toEqual([["standup", other, "1 time"]]);
    expect(await page.evaluate(() => (window as unknown as { conveneDashboard: { renders: number } }).conveneDashboard.renders)).toBeGreaterThan(renders);

    // One time format, words instead of jargon, the gateway described.
    const text = await page.innerText("body");
    for (const jargon of ["feed revision", "creation on", "cached routes", "epoch", "commit", "generation"]) expect(text.toLowerCase()).not.toContain(jargon);
    for (const t of r.timeline) expect(t[0]).toMatch(TIME);
    expect(await page.textContent("#health")).toMatch(/^The coordinators answer with a quorum\. Updated \d{2}:\d{2}:\d{2}\.$/);
    expect(await page.textContent("#gateway")).toMatch(
      new RegExp(`^This gateway \\(${gateway.address.replace(/\./g, "\\.")}\\) knows where 1 meeting lives, gets live route updates from 127\\.0\\.0\\.1:\\d+, holds 0 open WebSockets, opens a meeting on its first visit\\.$`),
    );
    mkdirSync(join(root, "test-artifacts"), { recursive: true });
    await page.screenshot({ path: join(root, "test-artifacts", "dashboard.png"), fullPage: true });
  }, 120_000);

  it("keeps the failures and moves across a restart of the gateway: they come from the replicated audit trail", async () => {
    await gateway.close();
    gateway = await startOne();
    const page = await browser.newPage();
    await page.goto(`http://${gateway.address}/`);
    await expect.poll(async () => (await rows(page)).timeline.map((t) => t[1]), { timeout: 20_000 }).toEqual(expect.arrayContaining([expect.stringMatching(/ failed$/), "m1 joined", "m2 joined"]));
  }, 60_000);
});
