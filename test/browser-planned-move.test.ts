/**
 * A planned move as a user sees it, in headless Chromium: `convene start`
 * runs the local cluster (three members, a gateway, two demo meeting
 * servers, all separate processes); a page joins a meeting through the
 * gateway; the user sends a message and in the same instant the meeting is
 * moved (MoveMeeting, what `convene move` calls; then `convene move` of it
 * back). The page reconnects by itself to the other server, and the
 * message sent just before the move is there, with the rest of the
 * history: nothing waited for a periodic checkpoint (they are a minute
 * apart here), the hand-over carried it.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { NEWEST_CLUSTER_VERSION } from "../src/coordinator/formats.js";
import { CoordinatorClient, runConvene } from "./support/app-cluster.js";
import { LocalCluster, launchChromium } from "./support/local-cluster.js";
import { basePort, unary } from "./support/member-cluster.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Demo {
  state: string;
  nodeId: string;
  epoch: number;
  resent: number;
}

describe("a planned move in a real browser", () => {
  const port = basePort();
  const gateway = `http://127.0.0.1:${port + 5}`;
  const members = [0, 1, 2].map((i) => `127.0.0.1:${port + i}`).join(",");
  let cluster: LocalCluster | undefined;
  let browser: Browser;

  beforeAll(async () => {
    const started = Date.now();
    const local = await LocalCluster.start({ memberBasePort: port, gatewayPort: port + 5, demoBasePort: port + 6, checkpointIntervalMs: 60_000 });
    cluster = local;
    // A planned move needs cluster version 3, which the new group raises by itself within a second or two.
    const coordinator = new CoordinatorClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      while ((await unary<{ cluster_version: number }>(coordinator, "ClusterStatus", {}).catch(() => ({ cluster_version: 0 }))).cluster_version < NEWEST_CLUSTER_VERSION) {
        if (Date.now() - started > 90_000) throw new Error(`the cluster version was not raised to ${NEWEST_CLUSTER_VERSION}:\n${local.printed}`);
        await sleep(200);
      }
    } finally {
      coordinator.close();
    }
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
  }, 30_000);

  it("the message sent just before a planned move is on the new server, and the page got there by itself", async () => {
    const page = await browser.newPage();
    const demo = () => page.evaluate(() => (window as unknown as { conveneDemo: Demo }).conveneDemo);
    await page.goto(`${gateway}/meetings/planned-move/?name=tester`);
    await page.waitForFunction(() => (window as unknown as { conveneDemo?: Demo }).conveneDemo?.state === "connected", undefined, { timeout: 20_000 });
    const first = await demo();
    const sent = ["hello", "we are about to move"];
    for (const text of sent) {
      await page.fill("#message-input", text);
      await page.click("#send");
    }
    await page.waitForFunction((n) => document.querySelectorAll("#messages .message").length >= n, sent.length, { timeout: 10_000 });

    // The last message and the move, with no pause between them.
    const last = "sent just before the move";
    sent.push(last);
    await page.fill("#message-input", last);
    const other = first.nodeId === "m1" ? "m2" : "m1";
    const coordinator = new CoordinatorClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    await page.click("#send");
    const movedAt = Date.now();
    try {
      await unary(coordinator, "MoveMeeting", { meeting_id: "planned-move", to_node_id: other }, 10_000);
    } finally {
      coordinator.close();
    }

    // No "Try again" by the user: the page reconnects by itself after the move.
    await page.waitForFunction((node) => {
      const d = (window as unknown as { conveneDemo: Demo }).conveneDemo;
      return d.state === "connected" && d.nodeId === node;
    }, other, { timeout: 30_000 });
    const second = await demo();
    expect(second.epoch).toBe(first.epoch + 1);
    await page.waitForFunction((n) => document.querySelectorAll("#messages .message").length >= n, sent.length, { timeout: 10_000 });
    const texts = await page.$$eval("#messages .message .text", (els) => els.map((e) => e.textContent ?? ""));
    expect(texts).toEqual(sent);
    console.log(`page on ${second.nodeId} with every message ${Date.now() - movedAt} ms after the move was asked for (${second.resent} re-sent)`);

    // And back, as an operator does it.
    const run = await runConvene(["move", "planned-move", "--to", first.nodeId, "--coordinators", members]);
    expect(run.code, `${run.stderr}\n${cluster?.printed}`).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^moved planned-move from ${other} to ${first.nodeId} \\(epoch ${second.epoch} → ${second.epoch + 1}\\)`, "m"));
    await page.waitForFunction((node) => {
      const d = (window as unknown as { conveneDemo: Demo }).conveneDemo;
      return d.state === "connected" && d.nodeId === node;
    }, first.nodeId, { timeout: 30_000 });
    expect(await page.$$eval("#messages .message .text", (els) => els.map((e) => e.textContent ?? ""))).toEqual(sent);
  }, 90_000);
});
