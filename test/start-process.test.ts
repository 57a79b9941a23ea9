/**
 * `convene start` as a user runs it, with real processes on non-default
 * ports and a temporary data directory: a second run on the same data
 * directory says so in one line and touches nothing; a demo server killed
 * with kill -9 is restarted (printed, with the last lines of its log) and
 * registers again under its node id with a new generation; a child that
 * dies as soon as it starts is restarted ever more slowly; Ctrl-C stops
 * everything and releases the lock. Then the refusals before anything
 * starts: a port taken by another program, bad port flags.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { type Server, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCK_FILE } from "../src/start/lock-file.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { pidAlive, pollUntil } from "./support/abrupt-tcp.js";
import { basePort, unary } from "./support/member-cluster.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");
const HOST = "127.0.0.1";

/** A `convene start` (or any convene command) run from the sources, its output kept. */
class Run {
  output = "";
  stderr = "";
  stdout = "";
  readonly child: ChildProcess;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: readonly string[]) {
    const env = { ...process.env };
    delete env.CONVENE_TOKEN;
    this.child = spawn(process.execPath, ["--import", "tsx", join(root, "src/cli.ts"), ...args], { cwd: root, env });
    this.child.stdout!.on("data", (d: Buffer) => ((this.stdout += d.toString()), (this.output += d.toString())));
    this.child.stderr!.on("data", (d: Buffer) => ((this.stderr += d.toString()), (this.output += d.toString())));
    this.exit = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
  }

  /** Waits until the output matches `pattern`; fails with the output if the run exits first or time runs out. */
  async waitFor(pattern: RegExp, timeoutMs = 90_000): Promise<RegExpMatchArray> {
    let exited = false;
    void this.exit.then(() => (exited = true));
    const found = await pollUntil(`${pattern} in the output`, () => this.output.match(pattern), (m) => m !== null, {
      timeoutMs,
      intervalMs: 100,
      fatal: () => (exited && !pattern.test(this.output) ? `convene exited:\n${this.output}` : undefined),
    });
    return found!;
  }

  /** The pid the welcome (or a restart line) gave `id` last. */
  pidOf(id: string): number {
    const pids = [...this.output.matchAll(new RegExp(`(?:^ {4}${id} +\\S+ +pid (\\d+)$|${id} restarted as pid (\\d+))`, "gm"))];
    const last = pids.at(-1);
    if (!last) throw new Error(`no pid for ${id} in:\n${this.output}`);
    return Number(last[1] ?? last[2]);
  }
}

describe("convene start supervises its processes", () => {
  const dir = mkdtempSync(join(tmpdir(), "convene-start-run-"));
  const dataDir = join(dir, "data");
  const port = basePort();
  const ports = ["--member-ports", `${port},${port + 1},${port + 2}`, "--gateway-port", String(port + 5), "--demo-ports", `${port + 6},${port + 7}`];
  const args = ["start", "--data", dataDir, ...ports];
  let run: Run;
  let coordinator: grpc.Client;
  const pidsSeen = new Set<number>();

  const nodes = async () => (await unary<{ nodes: { node_id: string; state: number; generation: number }[] }>(coordinator, "ListNodes", {}, 5_000)).nodes;
  const ALIVE = 1;
  const demoHealth = async (p: number): Promise<{ pid: number } | undefined> => {
    try {
      const res = await fetch(`http://${HOST}:${p}/healthz`, { signal: AbortSignal.timeout(2_000) });
      return res.ok ? ((await res.json()) as { pid: number }) : undefined;
    } catch {
      return undefined;
    }
  };

  beforeAll(async () => {
    run = new Run(args);
    await run.waitFor(/convene is running/, 120_000);
    for (const id of ["n1", "n2", "n3", "gateway", "m1", "m2"]) pidsSeen.add(run.pidOf(id));
    coordinator = new CoordinatorClient(`${HOST}:${port}`, grpc.credentials.createInsecure());
  }, 150_000);

  afterAll(async () => {
    coordinator?.close();
    if (run && run.child.exitCode === null) {
      run.child.kill("SIGINT");
      await Promise.race([run.exit, new Promise((r) => setTimeout(r, 20_000))]);
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
    }
    for (const pid of pidsSeen) if (pidAlive(pid)) process.kill(pid, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }, 40_000);

  it("a second run on the same data directory says so in one line, starts nothing and writes to no log", async () => {
    const logs = join(dataDir, "logs");
    const logFiles = () => readdirSync(logs).sort();
    const before = logFiles();
    const second = new Run(args);
    const { code } = await second.exit;
    expect(code, second.output).toBe(1);
    expect(second.stdout).toBe("");
    const lines = second.stderr.trimEnd().split("\n");
    expect(lines, second.stderr).toHaveLength(1);
    expect(lines[0]).toContain(`convene start: convene is already running on ${dataDir} (pid ${run.child.pid}`);
    expect(lines[0]).toContain(`gateway http://${HOST}:${port + 5}/`);
    // Every log line comes from the first run's processes (the running cluster keeps logging).
    expect(logFiles()).toEqual(before);
    for (const file of logFiles()) {
      for (const m of readFileSync(join(logs, file), "utf8").matchAll(/"pid":(\d+)/g)) expect(pidsSeen, `${file} has a line of pid ${m[1]}`).toContain(Number(m[1]));
    }
    expect(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), "utf8")).pid).toBe(run.child.pid);
    expect(run.child.exitCode).toBeNull();
  });

  it("restarts a demo server killed with kill -9: printed with its log, it registers again under its id with a new generation", async () => {
    const victim = run.pidOf("m1");
    const generation = Number((await nodes()).find((n) => n.node_id === "m1")!.generation);
    process.kill(victim, "SIGKILL");
    const restarted = await run.waitFor(/m1 restarted as pid (\d+)/, 30_000);
    const pid = Number(restarted[1]);
    pidsSeen.add(pid);
    expect(run.output).toMatch(new RegExp(`\\d\\d:\\d\\d:\\d\\d  m1 \\(pid ${victim}\\) was killed \\(SIGKILL\\) after [\\d.]+ s; restarting it in 0\\.5 s\\.`));
    expect(run.output).toContain(`the last lines of ${join(dataDir, "logs", "m1.log")}:`);
    expect(run.output).toMatch(/ {2}\| INFO +demo meeting server ready/);
    await pollUntil("m1 serving as its new process", () => demoHealth(port + 6), (h) => h?.pid === pid, { timeoutMs: 60_000 });
    await pollUntil(
      "m1 alive with a new generation",
      async () => (await nodes()).find((n) => n.node_id === "m1"),
      (n) => n?.state === ALIVE && Number(n.generation) > generation,
      { timeoutMs: 30_000 },
    );
  });

  it("restarts a child that dies as soon as it starts ever more slowly, and it serves again once it can", async () => {
    const victim = run.pidOf("m2");
    process.kill(victim, "SIGKILL");
    await pollUntil("m2 to be gone", () => pidAlive(victim), (alive) => !alive);
    // Its port taken by another program: every restart dies at once with EADDRINUSE.
    const squatter: Server = createServer();
    await new Promise<void>((resolve, reject) => {
      squatter.once("error", reject);
      squatter.listen(port + 7, HOST, resolve);
    });
    try {
      await run.waitFor(/(m2 \(pid \d+\) exited with code 1[^\n]*\n[^]*){3}/, 90_000);
      for (const m of run.output.matchAll(/m2 restarted as pid (\d+)/g)) pidsSeen.add(Number(m[1]));
      const delays = [...run.output.matchAll(/m2 \(pid \d+\) (?:was killed \(\w+\)|exited with code \d+) after [\d.]+ s; restarting it in ([\d.]+) s/g)].map((m) => Number(m[1]));
      expect(delays.slice(0, 4)).toEqual([0.5, 1, 2, 4].slice(0, delays.length));
      expect(delays.length).toBeGreaterThanOrEqual(3);
      expect(run.output).toContain("deaths in a row: waiting longer each time");
      expect(run.output).toMatch(/\| .*EADDRINUSE/);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
    const back = await pollUntil("m2 serving again", () => demoHealth(port + 7), (h) => h !== undefined, { timeoutMs: 90_000 });
    pidsSeen.add(back!.pid);
    expect(run.pidOf("m2")).toBe(back!.pid);
  }, 200_000);

  it("Ctrl-C stops every process, restarted ones included, and releases the lock", async () => {
    for (const m of run.output.matchAll(/restarted as pid (\d+)/g)) pidsSeen.add(Number(m[1]));
    run.child.kill("SIGINT");
    const { code } = await run.exit;
    expect(code, run.output).toBe(0);
    expect(run.output).toContain("stopped.");
    for (const pid of pidsSeen) expect(pidAlive(pid), `pid ${pid} still runs`).toBe(false);
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
  }, 40_000);
});

describe("convene start refuses before starting anything", () => {
  const dir = mkdtempSync(join(tmpdir(), "convene-start-refuse-"));
  const port = basePort();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a port taken by another program: which one, for what, and the flag that moves it, in the terminal", async () => {
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(port + 5, HOST, r));
    try {
      const dataDir = join(dir, "taken");
      const refused = new Run(["start", "--data", dataDir, "--member-ports", String(port), "--gateway-port", String(port + 5), "--demo-ports", String(port + 6)]);
      const { code } = await refused.exit;
      expect(code, refused.output).toBe(1);
      expect(refused.stderr.trimEnd()).toBe(
        `convene start: port ${port + 5} on ${HOST}, for the gateway, is in use by another program (\`ss -ltnp 'sport = :${port + 5}'\` shows which); stop it, or choose a free port with --gateway-port`,
      );
      expect(existsSync(join(dataDir, "logs")), "nothing was started").toBe(false);
      expect(existsSync(join(dataDir, LOCK_FILE)), "the lock was released").toBe(false);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });

  it.each([
    [["--member-ports", "7001,7002"], "convene start: --member-ports (config key memberPorts) lists 2 ports for 3 members; give 3 ports, or one base port"],
    [["--gateway-port", "80800"], 'convene start: --gateway-port (config key gatewayPort) must hold port numbers from 1 to 65535, got "80800"'],
    [["--demo-ports", "9001,x"], 'convene start: --demo-ports (config key demoPorts) must hold port numbers from 1 to 65535, got "x"'],
    [["--gateway-port", "7002"], "convene start: port 7002 is given to both member n2 and the gateway; each process needs its own port (--member-ports and --gateway-port)"],
  ])("bad port flags %j: a clear message, exit 2", async (flags, message) => {
    const dataDir = join(dir, "flags");
    const refused = new Run(["start", "--data", dataDir, ...flags]);
    const { code } = await refused.exit;
    expect(code, refused.output).toBe(2);
    expect(refused.stderr.trimEnd()).toBe(message);
    expect(existsSync(dataDir), "nothing was created").toBe(false);
  });
});
