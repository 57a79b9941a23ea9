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
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { NEWEST_CLUSTER_VERSION } from "../src/coordinator/formats.js";
import { CoordinatorClient, runConvene } from "./support/app-cluster.js";
import { basePort, unary } from "./support/member-cluster.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Demo {
  state: string;
  nodeId: string;
  epoch: number;
  resent: number;
}

describe("a planned move in a real browser", () => {
  const dir = mkdtempSync(join(tmpdir(), "convene-start-"));
  const port = basePort();
  const gateway = `http://127.0.0.1:${port + 5}`;
  const members = [0, 1, 2].map((i) => `127.0.0.1:${port + i}`).join(",");
  let cluster: ChildProcess;
  let output = "";
  let browser: Browser;

  beforeAll(async () => {
    const config = join(dir, "convene.yaml");
    writeFileSync(
      config,
      [`dataDir: ${join(dir, "data")}`, `memberBasePort: ${port}`, `gatewayPort: ${port + 5}`, `demoBasePort: ${port + 6}`, "checkpointIntervalMs: 60000", ""].join("\n"),
    );
    cluster = spawn(process.execPath, ["--import", "tsx", join(root, "src/cli.ts"), "start", "--config", config], { cwd: root });
    cluster.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    cluster.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const started = Date.now();
    while (!output.includes("convene is running")) {
      if (cluster.exitCode !== null || Date.now() - started > 90_000) throw new Error(`convene start did not come up:\n${output}`);
      await sleep(200);
    }
    // A planned move needs cluster version 3, which the new group raises by itself within a second or two.
    const coordinator = new CoordinatorClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      while ((await unary<{ cluster_version: number }>(coordinator, "ClusterStatus", {}).catch(() => ({ cluster_version: 0 }))).cluster_version < NEWEST_CLUSTER_VERSION) {
        if (Date.now() - started > 90_000) throw new Error(`the cluster version was not raised to ${NEWEST_CLUSTER_VERSION}:\n${output}`);
        await sleep(200);
      }
    } finally {
      coordinator.close();
    }
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (cluster && cluster.exitCode === null) {
      const exited = new Promise((r) => cluster.once("exit", r));
      cluster.kill("SIGINT");
      await Promise.race([exited, sleep(15_000)]);
      if (cluster.exitCode === null) cluster.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
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
    expect(run.code, `${run.stderr}\n${output}`).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^moved planned-move from ${other} to ${first.nodeId} \\(epoch ${second.epoch} → ${second.epoch + 1}\\)`, "m"));
    await page.waitForFunction((node) => {
      const d = (window as unknown as { conveneDemo: Demo }).conveneDemo;
      return d.state === "connected" && d.nodeId === node;
    }, first.nodeId, { timeout: 30_000 });
    expect(await page.$$eval("#messages .message .text", (els) => els.map((e) => e.textContent ?? ""))).toEqual(sent);
  }, 90_000);
});
