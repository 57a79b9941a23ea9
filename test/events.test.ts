/**
 * Events for applications (issue 19), end to end with real processes:
 *   - WatchEvents on any member: the same events under the same ids, and a
 *     watcher resumes on another member exactly where it stopped;
 *   - `convene events-relay` posts every event, signed, to a webhook: the
 *     relay is killed with -9 and the leader too, mid-stream; the receiver
 *     (deduplicating by id, refusing some posts) still saw every event, in
 *     order, and every signature checked out;
 *   - a watcher further behind than the kept events gets OUT_OF_RANGE with
 *     the oldest index it can resume from.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppCluster, EVENT, TestHost, type WireEvent, sleep, waitFor } from "./support/app-cluster.js";
import { CliProcess } from "./support/cli-process.js";

/** The whole kept list, read from one member until its first progress mark. */
async function keptEvents(cluster: AppCluster, memberId: string, fromIndex = 0): Promise<WireEvent[]> {
  const w = cluster.watchEvents(fromIndex, memberId);
  await waitFor(`a progress mark from ${memberId}`, () => w.batches.some((b) => b.events.length === 0), 30_000);
  w.cancel();
  return w.events;
}

const idOf = (e: { id: string }) => e.id;
const order = (id: string): [number, number] => id.split(":").map(Number) as [number, number];
const after = (a: string, b: string) => {
  const [ai, ap] = order(a);
  const [bi, bp] = order(b);
  return ai > bi || (ai === bi && ap > bp);
};

/** A webhook receiver as the README tells people to write one: verifies, deduplicates by id, keeps order. */
class Receiver {
  readonly seen: { id: string; type: string; meetingId: string }[] = [];
  readonly problems: string[] = [];
  posts = 0;
  refused = 0;
  private readonly server: http.Server;
  private last = "0:0";

  constructor(
    private readonly secret: Buffer,
    private readonly refuseEvery: number,
  ) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.posts++;
        const body = Buffer.concat(chunks).toString();
        const id = String(req.headers["x-convene-event-id"]);
        const timestamp = String(req.headers["x-convene-timestamp"]);
        const expected = Buffer.from(`sha256=${createHmac("sha256", this.secret).update(`${timestamp}.${body}`).digest("hex")}`);
        const given = Buffer.from(String(req.headers["x-convene-signature"]));
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
          this.problems.push(`bad signature on ${id}`);
          res.writeHead(401).end();
          return;
        }
        if (this.posts % this.refuseEvery === 0) {
          this.refused++;
          res.writeHead(503).end();
          return;
        }
        const event = JSON.parse(body) as { id: string; type: string; meetingId: string };
        if (event.id !== id) this.problems.push(`header id ${id} but body id ${event.id}`);
        if (after(id, this.last)) {
          this.seen.push({ id, type: event.type, meetingId: event.meetingId });
          this.last = id;
        } else if (!this.seen.some((s) => s.id === id)) {
          this.problems.push(`${id} arrived after ${this.last} and was never seen: out of order`);
        }
        res.writeHead(200).end();
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/convene`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe("events", () => {
  const cluster = new AppCluster(["--event-log-size", "300"]);
  const dir = mkdtempSync(join(tmpdir(), "convene-events-"));

  beforeAll(async () => {
    await cluster.start();
  }, 60_000);

  afterAll(async () => {
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it("every member streams the same events under the same ids, and a watcher resumes on another member exactly", async () => {
    const host = new TestHost();
    await cluster.agent("ev-a", host);
    for (let i = 0; i < 5; i++) await cluster.call("GetRoute", { meeting_id: `ev-${i}`, create: true }, "n2");
    await cluster.call("EndMeeting", { meeting_id: "ev-0" });
    const [n1, n2, n3] = [await keptEvents(cluster, "n1"), await keptEvents(cluster, "n2"), await keptEvents(cluster, "n3")];
    expect(n1.length).toBeGreaterThanOrEqual(7);
    expect(n2).toEqual(n1);
    expect(n3).toEqual(n1);
    expect(n1.map((e) => [e.type, e.meeting_id || e.node_id])).toEqual(
      expect.arrayContaining([[EVENT.NODE_REGISTERED, "ev-a"], [EVENT.MEETING_CREATED, "ev-3"], [EVENT.MEETING_ENDED, "ev-0"]]),
    );
    for (const e of n1) expect(e.id).toBe(`${e.index}:${e.position}`);
    // Resume on n3 from the middle: exactly the rest, no gap, no repeat.
    const middle = n1[Math.floor(n1.length / 2)]!.index;
    const first = n1.filter((e) => e.index <= middle);
    const rest = cluster.watchEvents(middle, "n3");
    await cluster.call("GetRoute", { meeting_id: "ev-late", create: true });
    await waitFor("the late event", () => rest.events.some((e) => e.meeting_id === "ev-late"));
    rest.cancel();
    const whole = await keptEvents(cluster, "n1");
    expect([...first, ...rest.events].map(idOf)).toEqual(whole.map(idOf));
  }, 60_000);

  it("`convene events-relay` delivers every event in order to a signed webhook while the relay and the leader are killed mid-stream", async () => {
    const secret = Buffer.from("a-shared-secret-of-32-characters");
    writeFileSync(join(dir, "secret"), `${secret.toString()}\n`);
    const receiver = new Receiver(secret, 7);
    const url = await receiver.listen();
    const host = new TestHost();
    await cluster.agent("relay-a", host, { capacity: 500 });
    const relayArgs = ["events-relay", "--url", url, "--secret", join(dir, "secret"), "--cursor", join(dir, "cursor"), "--coordinators", cluster.addresses.join(","), "--log-level", "warn"];
    let relay = new CliProcess("relay", relayArgs);

    // Load: meetings created and ended one after another, retried through elections (create is idempotent).
    let stop = false;
    let made = 0;
    const acknowledged: string[] = [];
    let survivor = "n1";
    const members = ["n1", "n2", "n3"];
    // Each call retried on its own: retrying the create after a failed end
    // would create the ended meeting a second time.
    const untilDone = async (i: number, call: (member: string) => Promise<unknown>): Promise<boolean> => {
      for (let attempt = 0; !stop; attempt++) {
        try {
          await call(members[(i + attempt) % 3]!);
          return true;
        } catch (err) {
          if ((err as grpc.ServiceError).code === grpc.status.NOT_FOUND) return true; // an end that committed unanswered
          await sleep(100);
        }
      }
      return false;
    };
    // Paced by the test's phases, so a slow relay restart cannot let the load use up its 150 meetings before the leader is killed.
    let quota = 40;
    const load = (async () => {
      for (let i = 0; !stop && i < 150; i++) {
        while (!stop && made >= quota) await sleep(20);
        if (!(await untilDone(i, (m) => cluster.call("GetRoute", { meeting_id: `relay-${i}`, create: true }, m, 2_000)))) break;
        acknowledged.push(`relay-${i}`);
        if (i % 3 === 0 && !(await untilDone(i, (m) => cluster.call("EndMeeting", { meeting_id: `relay-${i}` }, m, 2_000)))) break;
        made++;
        await sleep(40);
      }
    })();
    try {
      await waitFor("30 events at the receiver", () => receiver.seen.length >= 30, 60_000);
      await relay.kill(); // kill -9: no chance to write anything more
      const atKill = receiver.seen.length;
      relay = new CliProcess("relay", relayArgs);
      quota = made + 30;
      await waitFor("more events after the relay's restart", () => receiver.seen.length >= atKill + 20, 60_000);
      quota = 150;
      const leader = await cluster.members.waitForLeader();
      survivor = ["n1", "n2", "n3"].find((id) => id !== leader)!;
      await cluster.members.kill9(leader);
      const atLeaderKill = made;
      await waitFor("the load to go on under a new leader", () => made >= atLeaderKill + 20, 60_000);
      cluster.members.start(leader);
      await waitFor("the load to go on", () => made >= atLeaderKill + 40, 60_000);
    } finally {
      stop = true;
      await load;
    }
    const expected = await keptEvents(cluster, survivor);
    await waitFor("the receiver to have every event", () => receiver.seen.length >= expected.length || receiver.problems.length > 0, 60_000);
    await relay.kill();
    await receiver.close();
    expect(receiver.problems).toEqual([]);
    expect(receiver.seen.map(idOf)).toEqual(expected.map(idOf));
    expect(receiver.refused).toBeGreaterThan(0);
    expect(receiver.posts).toBeGreaterThan(receiver.seen.length); // refusals and the restart's repeats were posted again
    // Every create the load saw acknowledged was delivered (one more may have committed unanswered as the load stopped).
    const created = receiver.seen.filter((s) => s.type === "MEETING_CREATED" && s.meetingId.startsWith("relay-")).map((s) => s.meetingId);
    expect(created.slice(0, acknowledged.length)).toEqual(acknowledged);
  }, 240_000);

  it("a watcher further behind than the kept events gets OUT_OF_RANGE with the oldest index it can resume from", async () => {
    // The test before killed the leader: the first create waits for a new one.
    await waitFor("a create after the leader's restart", () => cluster.call("GetRoute", { meeting_id: "flood-0", create: true }, "n1").then(() => true, () => false), 60_000);
    for (let i = 1; i < 320; i++) await cluster.call("GetRoute", { meeting_id: `flood-${i}`, create: true }, "n1");
    const kept = await keptEvents(cluster, "n2");
    const behind = cluster.watchEvents(1, "n3");
    const status = await behind.status;
    expect(status.code).toBe(grpc.status.OUT_OF_RANGE);
    const floor = Number(status.metadata.get("convene-oldest-index")[0]);
    expect(floor).toBeGreaterThan(1);
    expect(floor).toBeLessThan(kept[0]!.index);
    expect(status.details).toMatch(new RegExp(`from_index 1 is too far behind: events after index ${floor} are kept`));
    const run = await cluster.cli(["events", "--from", "1"]);
    expect(run.code).toBe(1);
    const named = Number(/\(oldest index to resume from: (\d+)\)/.exec(run.stderr)?.[1]);
    expect(named).toBeGreaterThanOrEqual(floor);
    // 0: from the oldest kept, whatever it is by then.
    const ok = await cluster.cli(["events", "--from", "0", "--json"]);
    expect(ok.code, ok.stderr).toBe(0);
    const lines = ok.stdout.trim().split("\n").map((l) => JSON.parse(l) as { id: string; index: number; type: string });
    expect(lines[0]!.index).toBeGreaterThan(named);
    expect(lines.length).toBeGreaterThanOrEqual(290);
    expect(lines.map((l) => l.type)).toContain("MEETING_CREATED");
  }, 120_000);
});
