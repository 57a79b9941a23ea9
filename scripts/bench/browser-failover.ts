/**
 * browser-failover: what a user sees, timed. The local cluster of
 * `convene start` (three members, a gateway, two demo meeting servers, each
 * its own process); headless Chromium joins a meeting through the gateway
 * and sends messages; the demo server hosting it is killed with kill -9;
 * the page's own reconnect (no clicks: it asks again at once, and the
 * gateway holds that request until the meeting has moved) brings it back.
 * Each trial measures kill → page connected again on the other server with
 * the whole history (polled every 20 ms), then restarts the killed server
 * for the next trial (five demo servers: see the flap damping note below).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { LocalCluster, clusterSpecs } from "../../src/start/local-cluster.js";
import { validateStartConfig } from "../../src/start/start-config.js";
import { basePort } from "../../test/support/member-cluster.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface DemoState {
  state: string;
  nodeId: string;
  pid: number;
  messages: number;
  /** The page's own measure: its connection lost → the new server's welcome. */
  lastReconnectMs: number;
  attempts: { status: number }[];
  /** Date.now() at each step of the last reconnect, on the page (the same clock as this process). */
  steps: { lost: number; asked: number; answered: number; opened: number; welcomed: number };
}

export async function benchBrowserFailover(trials = 10): Promise<Record<string, number | string>> {
  const dir = mkdtempSync(join(tmpdir(), "convene-bench-browser-"));
  const port = basePort();
  const config = validateStartConfig({
    dataDir: join(dir, "data"),
    memberBasePort: port,
    gatewayPort: port + 10,
    demoBasePort: port + 20,
    checkpointIntervalMs: 1000,
    logLevel: "warn",
    // Flap damping holds a server out of placement after its third death in
    // ten minutes, as it should: with ten kills, five servers keep a live
    // one with room for the meeting.
    demoServers: 5,
  });
  const cluster = new LocalCluster(config, () => undefined, [process.execPath, "--import", "tsx", join(root, "src/cli.ts")]);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const times: number[] = [];
  const noticed: number[] = [];
  const moved: number[] = [];
  const rejoined: number[] = [];
  const attempts: string[] = [];
  try {
    await cluster.start();
    const page = await browser.newPage();
    const demo = () => page.evaluate(() => (window as unknown as { conveneDemo: DemoState }).conveneDemo);
    await page.goto(`http://${config.host}:${config.gatewayPort}/meetings/bench-${Date.now()}/?name=bench`);
    await page.waitForFunction(() => (window as unknown as { conveneDemo?: DemoState }).conveneDemo?.state === "connected", undefined, { timeout: 30_000 });
    for (let trial = 0; trial < trials; trial++) {
      await page.fill("#message-input", `message before kill ${trial}`);
      await page.click("#send");
      const sent = trial + 1;
      await page.waitForFunction((n) => document.querySelectorAll("#messages .message").length >= n, sent, { timeout: 10_000 });
      // One checkpoint interval and its commit.
      await sleep(2_000);
      const before = await demo();
      const victim = [...cluster.processes.values()].find((p) => p.kind === "demo-server" && p.id === before.nodeId)!;
      const killedAt = Date.now();
      victim.child.kill("SIGKILL");
      // Back: connected to another server, showing every message sent so far (the welcome renders the whole history at once).
      await page.waitForFunction(
        ([node, n]) => {
          const d = (window as unknown as { conveneDemo: DemoState }).conveneDemo;
          return d.state === "connected" && d.nodeId !== node && document.querySelectorAll("#messages .message").length >= (n as number);
        },
        [before.nodeId, sent] as const,
        { timeout: 30_000, polling: 20 },
      );
      const { steps, attempts: tries } = await demo();
      // Timed by the page's own clock (the machine's), so the polling above adds nothing.
      times.push(steps.welcomed - killedAt);
      noticed.push(steps.lost - killedAt);
      moved.push(steps.answered - steps.asked);
      rejoined.push(steps.welcomed - steps.answered);
      // Each attempt's answer to GET ./state (0: no answer); more than one means the first did not bring the page back.
      attempts.push(tries.map((t) => t.status).join("+"));
      // The killed server comes back (a new process, a new generation) for the next trial.
      const spec = clusterSpecs(config).find((s) => s.id === victim.id)!;
      cluster.spawn(spec);
      await waitHealthy(`http://${spec.address}/healthz`);
    }
  } finally {
    await browser.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    trials: times.length,
    "kill -9 → page back with history, median ms": median(times),
    "min ms": Math.min(...times),
    "max ms": Math.max(...times),
    "each trial ms": times.join(", "),
    "of which: kill → page sees its connection lost, median ms": median(noticed),
    "of which: the page's request held by the gateway until the move, median ms": median(moved),
    "of which: WebSocket to the new server → welcome with the history, median ms": median(rejoined),
    "answers to the page's reconnect attempts, per trial": attempts.join(", "),
    target: "≤ 800 ms median, including the page's own retry",
  };
}

/** The median; of an even count, the mean of the two middle values. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
}

async function waitHealthy(url: string): Promise<void> {
  for (const start = Date.now(); Date.now() - start < 30_000; await sleep(100)) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1000) })).ok) return;
    } catch {
      // not up yet
    }
  }
  throw new Error(`${url} did not answer within 30 s`);
}
