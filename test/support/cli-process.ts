/**
 * One long-running `convene` process (gateway, demo-server) started from
 * the sources for an end-to-end test, with its output kept for failure
 * reports and a wait until it answers over HTTP.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class CliProcess {
  readonly logs: string[] = [];
  private readonly child: ChildProcess;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    readonly name: string,
    args: readonly string[],
  ) {
    // No token from the environment: these processes talk plaintext to loopback members.
    const env = { ...process.env };
    delete env.CONVENE_TOKEN;
    this.child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    const keep = (b: Buffer): void => {
      this.logs.push(b.toString());
      if (this.logs.length > 200) this.logs.shift();
    };
    this.child.stdout!.on("data", keep);
    this.child.stderr!.on("data", keep);
    this.child.on("exit", (code, signal) => (this.exit = { code, signal }));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether it has exited, and how. */
  get exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exit;
  }

  /** Waits until GET `url` answers 200 (the process is up and serving), or throws with its output. */
  async waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exit) throw new Error(`${this.name} exited (${JSON.stringify(this.exit)}) while starting:\n${this.recentLogs()}`);
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${this.name} did not answer ${url} within ${timeoutMs} ms:\n${this.recentLogs()}`);
      await sleep(100);
    }
  }

  recentLogs(lines = 30): string {
    return `--- ${this.name}\n${this.logs.slice(-lines).join("")}`;
  }

  async kill(): Promise<void> {
    if (this.exit || this.child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once("exit", () => resolve());
      this.child.kill("SIGKILL");
    });
  }
}
