/**
 * The agent sidecar process (`convene agent`) under abrupt TCP behaviour
 * (issue 16 §1): the cases of support/abrupt-battery.ts against its
 * loopback HTTP API (it does no WebSockets: its plain answer to an upgrade
 * request stands in for the 101), with a webhook receiver that resets
 * every delivery, then its coordinator connection (through a TcpRelay)
 * reset under it. The sidecar is the real CLI process; the coordinator one
 * real member. After each case it is the same pid and /healthz answers;
 * at the end its resident memory has settled.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProto, lookup } from "../src/wire/proto.js";
import { type HttpServerUnderTest, httpBattery } from "./support/abrupt-battery.js";
import { MiB, pidAlive, pollUntil, rssBytes } from "./support/abrupt-tcp.js";
import { CliProcess } from "./support/cli-process.js";
import { MemberCluster, unary } from "./support/member-cluster.js";
import { TcpRelay } from "./support/tcp-relay.js";

const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");
const HOST = "127.0.0.1";
const MEETINGS = Array.from({ length: 30 }, (_, i) => `edge-m${i}`);
/**
 * Growth of the sidecar's resident memory over two more rounds of every
 * case, after a first round let V8 size its heap: each round opens and
 * resets over 350 connections, sends a 200 KB body cut short and has 5 MiB
 * of answers written to a client that does not read; a leak of any of it
 * shows as a multiple of it.
 */
const RSS_GROWTH_BOUND = 48 * MiB;

interface MeetingList {
  nodeId: string;
  generation: number;
  meetings: { meetingId: string; epoch: number }[];
}

describe("the agent sidecar process under abrupt TCP behaviour", () => {
  const cluster = new MemberCluster(["n1"], undefined, { app: "coordinator" });
  let port = 0;
  let sidecar: CliProcess;
  let relay: TcpRelay;
  let webhook: TcpRelay;
  let coordinator: grpc.Client;
  let pid = 0;
  let server: HttpServerUnderTest;

  const fatal = (): string | undefined => (sidecar.exited ? `the sidecar exited\n${sidecar.recentLogs()}` : undefined);
  const list = async (): Promise<MeetingList> => (await (await fetch(`http://${HOST}:${port}/meetings`, { signal: AbortSignal.timeout(5_000) })).json()) as MeetingList;

  async function expectServing(): Promise<void> {
    expect(sidecar.exited, `the sidecar exited\n${sidecar.recentLogs()}`).toBeUndefined();
    expect(pidAlive(pid)).toBe(true);
    const res = await fetch(`http://${HOST}:${port}/healthz`, { signal: AbortSignal.timeout(5_000) });
    expect(res.status, sidecar.recentLogs()).toBe(200);
  }

  beforeAll(async () => {
    const member = cluster.addresses.get("n1")!;
    port = Number(member.split(":")[1]) + 5;
    cluster.start("n1");
    await cluster.waitForLeader(60_000);
    relay = await TcpRelay.start({ host: HOST, port: Number(member.split(":")[1]) });
    // A webhook receiver that resets every delivery: the sidecar retries, then gives up on that notice.
    webhook = await TcpRelay.start(undefined);
    sidecar = new CliProcess("sidecar", [
      "agent", "--coordinators", relay.address, "--node-id", "edge-s1", "--address", `${HOST}:9`, "--capacity", "100",
      "--listen", `${HOST}:${port}`, "--webhook", `http://${webhook.address}/events`, "--log-level", "warn",
    ]);
    await sidecar.waitForHttp(`http://${HOST}:${port}/healthz`, 60_000);
    pid = sidecar.pid!;
    coordinator = new CoordinatorClient(member, grpc.credentials.createInsecure());
    for (const id of MEETINGS) await unary(coordinator, "GetRoute", { meeting_id: id, create: true, region: "" }, 10_000);
    await pollUntil("every meeting on the sidecar", async () => (await list()).meetings.length, (n) => n === MEETINGS.length, { fatal });
    await pollUntil("the webhook deliveries to be tried", () => webhook.accepted, (n) => n >= MEETINGS.length, { fatal });
    const answer = await fetch(`http://${HOST}:${port}/meetings`);
    server = {
      endpoint: { host: HOST, port },
      upgradePath: "/meetings",
      upgrades: false,
      bodyRequest: { method: "PUT", path: `/meetings/${MEETINGS[0]}/state`, contentType: "application/octet-stream", bytes: 200_000 },
      answer: { path: "/meetings", bytes: (await answer.arrayBuffer()).byteLength },
      expectServing,
    };
  }, 150_000);

  afterAll(async () => {
    coordinator?.close();
    await sidecar?.kill();
    await relay?.close();
    await webhook?.close();
    await cluster.close();
  });

  for (const c of httpBattery) it(c.name, () => c.run(server));

  it("its coordinator connection reset under it: it reconnects and keeps (or gets back) its meetings", async () => {
    const accepted = relay.accepted;
    relay.resetAll();
    await pollUntil("the agent to reconnect", () => relay.accepted, (n) => n > accepted, { fatal });
    await pollUntil("its meetings held again", async () => (await list()).meetings.length, (n) => n === MEETINGS.length, { fatal, timeoutMs: 20_000 });
    await expectServing();
  });

  it(`stays the same process, serving, and its memory settles: two more rounds of every case grow it by less than ${RSS_GROWTH_BOUND / MiB} MiB`, async () => {
    const settled = rssBytes(pid);
    for (let round = 0; round < 2; round++) for (const c of httpBattery) await c.run(server);
    const after = rssBytes(pid);
    console.log(`sidecar RSS: after the first round ${(settled / MiB).toFixed(1)} MiB, after two more ${(after / MiB).toFixed(1)} MiB`);
    expect(after - settled).toBeLessThan(RSS_GROWTH_BOUND);
    await expectServing();
  }, 180_000);
});
