/**
 * The local cluster a newcomer runs (`convene start`: three members, a
 * gateway, two demo meeting servers) as a child process on ports of the
 * test's own, and the headless Chromium the browser tests drive it with.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium } from "playwright-core";

const root = fileURLToPath(new URL("../../", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LocalClusterPorts {
  readonly memberBasePort: number;
  readonly gatewayPort: number;
  readonly demoBasePort: number;
  readonly checkpointIntervalMs: number;
}

export class LocalCluster {
  private output = "";

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {
    child.stdout!.on("data", (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (this.output += d.toString()));
  }

  /** Everything `convene start` printed so far. */
  get printed(): string {
    return this.output;
  }

  /** Starts it and resolves once it says it is running (at most 90 s). */
  static async start(settings: LocalClusterPorts): Promise<LocalCluster> {
    const dir = mkdtempSync(join(tmpdir(), "convene-start-"));
    const config = join(dir, "convene.yaml");
    const { memberBasePort, gatewayPort, demoBasePort, checkpointIntervalMs } = settings;
    writeFileSync(
      config,
      [`dataDir: ${join(dir, "data")}`, `memberBasePort: ${memberBasePort}`, `gatewayPort: ${gatewayPort}`, `demoBasePort: ${demoBasePort}`, `checkpointIntervalMs: ${checkpointIntervalMs}`, ""].join("\n"),
    );
    const cluster = new LocalCluster(spawn(process.execPath, ["--import", "tsx", join(root, "src/cli.ts"), "start", "--config", config], { cwd: root }), dir);
    const started = Date.now();
    while (!cluster.output.includes("convene is running")) {
      if (cluster.child.exitCode !== null || Date.now() - started > 90_000) {
        await cluster.stop();
        throw new Error(`convene start did not come up:\n${cluster.output}`);
      }
      await sleep(200);
    }
    return cluster;
  }

  /** Ctrl-C, as a user stops it (SIGKILL after 15 s), then removes its data. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGINT");
      await Promise.race([exited, sleep(15_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Debian's Chromium, headless, with the flags this machine needs. */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", ...extraArgs],
  });
}
