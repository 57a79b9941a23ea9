/**
 * `convene start`'s parts without a cluster: its options (port flags
 * included) by table, the restart backoff, the supervisor under a fake
 * clock, the data directory's lock and the port check. The real processes
 * are in test/start-process.test.ts.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ClusterRunningError, PortInUseError, StartConfigError, portOwners, validateStartConfig } from "../src/start/index.js";
import { DataDirLock, LOCK_FILE } from "../src/start/lock-file.js";
import { lastLines, renderLogLine } from "../src/start/log-tail.js";
import { checkPortsFree } from "../src/start/port-check.js";
import { RestartBackoff } from "../src/start/restart-policy.js";
import { Supervisor, type SupervisorClock } from "../src/start/supervisor.js";
import type { RunningProcess } from "../src/start/local-cluster.js";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "convene-start-unit-"));
  dirs.push(dir);
  return dir;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("start options", () => {
  it("defaults to API.md's ports", () => {
    const c = validateStartConfig({});
    expect(c.memberPorts).toEqual([7001, 7002, 7003]);
    expect(c.gatewayPort).toBe(8080);
    expect(c.demoPorts).toEqual([9001, 9002]);
  });

  it.each([
    [{ memberPorts: "7101,7102,7103" }, { memberPorts: [7101, 7102, 7103] }],
    [{ memberPorts: "7101" }, { memberPorts: [7101, 7102, 7103] }],
    [{ memberPorts: 7101 }, { memberPorts: [7101, 7102, 7103] }],
    [{ memberPorts: [7201, 7205, 7203] }, { memberPorts: [7201, 7205, 7203] }],
    [{ memberBasePort: 7300 }, { memberPorts: [7300, 7301, 7302] }],
    [{ demoPorts: " 9101 , 9105 " }, { demoPorts: [9101, 9105] }],
    [{ demoPorts: "9200", demoServers: 4 }, { demoPorts: [9200, 9201, 9202, 9203] }],
    [{ demoServers: 0, demoPorts: "9000" }, { demoPorts: [] }],
    [{ gatewayPort: "18080" }, { gatewayPort: 18080 }],
    [{ members: 1, memberPorts: "7400" }, { memberPorts: [7400] }],
  ])("accepts %j", (raw, expected) => {
    expect(validateStartConfig(raw)).toMatchObject(expected);
  });

  it.each([
    [{ gatewayPort: "70000" }, "--gateway-port (config key gatewayPort) must hold port numbers from 1 to 65535, got \"70000\""],
    [{ gatewayPort: "http" }, "--gateway-port (config key gatewayPort) must hold port numbers from 1 to 65535, got \"http\""],
    [{ memberPorts: "7001,7002" }, "--member-ports (config key memberPorts) lists 2 ports for 3 members; give 3 ports, or one base port"],
    [{ memberPorts: "7001,,7003" }, "--member-ports (config key memberPorts) must be ports separated by commas (e.g. 7001,7002,7003) or one base port, got \"7001,,7003\""],
    [{ memberPorts: "7001,x,7003" }, "--member-ports (config key memberPorts) must hold port numbers from 1 to 65535, got \"x\""],
    [{ memberPorts: "65534" }, "--member-ports (config key memberPorts): 3 members from port 65534 would pass 65535; give a lower base port"],
    [{ demoPorts: "9001,9002,9003" }, "--demo-ports (config key demoPorts) lists 3 ports for 2 demo servers; give 2 ports, or one base port"],
    [{ demoPorts: "0" }, "--demo-ports (config key demoPorts) must hold port numbers from 1 to 65535, got \"0\""],
    [{ memberPorts: "7001", memberBasePort: 7001 }, "--member-ports (config key memberPorts) and memberBasePort both set the ports; keep one"],
    [{ gatewayPort: 7002 }, "port 7002 is given to both member n2 and the gateway; each process needs its own port (--member-ports and --gateway-port)"],
    [{ demoPorts: "9001,9001" }, "port 9001 is given to both demo server m1 and demo server m2; each process needs its own port (--demo-ports)"],
    [{ members: 2 }, "members must be 1, 3 or 5 (a majority of 2 survives no more failures than of 1), got 2"],
    [{ members: 7 }, "members must be a whole number from 1 to 5, got 7"],
    [{ dataDir: "" }, "--data (config key dataDir) must be a directory path, got \"\""],
    [{ logLevel: "loud" }, "logLevel must be one of fatal, error, warn, info, debug, trace, silent, got \"loud\""],
    [{ gatewayPrt: 1 }, "unknown start option \"gatewayPrt\""],
  ])("refuses %j", (raw, message) => {
    let thrown: unknown;
    try {
      validateStartConfig(raw);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(StartConfigError);
    expect((thrown as Error).message.startsWith(message), (thrown as Error).message).toBe(true);
  });

  it("cuts long values short in its messages", () => {
    const long = "9".repeat(10_000);
    expect(() => validateStartConfig({ gatewayPort: long })).toThrow(/got "9{60}…"$/);
  });

  it("names every port with the process it is for and the flag that moves it", () => {
    expect(portOwners(validateStartConfig({ members: 1, demoServers: 1 }))).toEqual([
      { port: 7001, name: "member n1", flag: "--member-ports" },
      { port: 8080, name: "the gateway", flag: "--gateway-port" },
      { port: 9001, name: "demo server m1", flag: "--demo-ports" },
    ]);
  });
});

describe("restart backoff", () => {
  it("starts at 0.5 s, doubles with each death in a row up to 30 s, and starts over after a healthy run", () => {
    const b = new RestartBackoff();
    const quick = Array.from({ length: 9 }, () => b.next(100));
    expect(quick).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(b.next(29_999)).toBe(30_000);
    expect(b.next(30_000)).toBe(500);
    expect(b.next(10)).toBe(1000);
  });
});

class FakeClock implements SupervisorClock {
  time = 1_000_000;
  private timers: { at: number; run: () => void; id: number }[] = [];
  private nextId = 1;
  now(): number {
    return this.time;
  }
  setTimeout(run: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.time + ms, run, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.run();
    }
    this.time = until;
  }
}

describe("supervisor", () => {
  const dir = tempDir();
  const logFile = join(dir, "m1.log");
  writeFileSync(
    logFile,
    [
      JSON.stringify({ level: 30, time: 1, msg: "listening; registering with the coordinator" }),
      JSON.stringify({ level: 50, time: 2, msg: "listen failed", err: { code: "EADDRINUSE", message: "listen EADDRINUSE: address already in use 127.0.0.1:9001" } }),
      "Error: boom",
      "    at somewhere (file.js:1:1)",
      "",
    ].join("\n"),
  );

  function setup() {
    const clock = new FakeClock();
    const printed: string[] = [];
    let nextPid = 500;
    const spawned: string[] = [];
    const proc = (startedAt: number): RunningProcess =>
      ({ id: "m1", kind: "demo-server", address: "127.0.0.1:9001", args: [], logFile, startedAt, exited: true, child: { pid: nextPid++ } }) as unknown as RunningProcess;
    let current = proc(clock.now());
    const failures: Error[] = [];
    const cluster = {
      spawn: () => {
        const failure = failures.shift();
        if (failure) throw failure;
        spawned.push(`at ${clock.now()}`);
        current = proc(clock.now());
        return current;
      },
    };
    const supervisor = new Supervisor(cluster, (t) => printed.push(t), { clock });
    return { clock, printed, spawned, supervisor, current: () => current, failNextSpawn: (err: Error) => failures.push(err) };
  }

  it("restarts a child that died, printing why, the last lines of its log, and the new pid", () => {
    const { clock, printed, spawned, supervisor, current } = setup();
    clock.advance(60_000);
    supervisor.watch(current(), null, "SIGKILL");
    expect(printed[0]).toMatch(/^\d\d:\d\d:\d\d {2}m1 \(pid 500\) was killed \(SIGKILL\) after 60 s; restarting it in 0\.5 s\.\n/);
    expect(printed[0]).toContain(`the last lines of ${logFile}:`);
    expect(printed[0]).toContain("  | ERROR listen failed (EADDRINUSE: listen EADDRINUSE: address already in use 127.0.0.1:9001)");
    expect(printed[0]).toContain("  | Error: boom");
    expect(printed[0]).toContain("its meetings move to the other meeting servers");
    clock.advance(499);
    expect(spawned).toEqual([]);
    clock.advance(1);
    expect(spawned).toHaveLength(1);
    expect(printed[1]).toMatch(/m1 restarted as pid 501 on 127\.0\.0\.1:9001; it registers again as m1$/);
  });

  it("backs off a child that keeps dying at once, and starts over once it stayed up", () => {
    const { clock, printed, spawned, supervisor, current } = setup();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      clock.advance(200); // it dies 0.2 s after each start
      supervisor.watch(current(), 1, null);
      const before = spawned.length;
      const started = clock.now();
      while (spawned.length === before) clock.advance(100);
      delays.push(clock.now() - started);
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000]);
    expect(printed.filter((p) => p.includes("exited with code 1"))[4]).toContain("restarting it in 8.0 s (5 deaths in a row: waiting longer each time)");
    clock.advance(45_000);
    supervisor.watch(current(), null, "SIGKILL");
    expect(printed.at(-1)).toContain("restarting it in 0.5 s.");
  });

  it("tries again later when a child cannot even be spawned", () => {
    const { clock, printed, supervisor, current, failNextSpawn } = setup();
    failNextSpawn(new Error("EMFILE: too many open files"));
    supervisor.watch(current(), null, "SIGKILL");
    clock.advance(500);
    expect(printed.at(-1)).toMatch(/m1 could not be started \(EMFILE: too many open files\); trying again in 1\.0 s\.$/);
    clock.advance(1000);
    expect(printed.at(-1)).toMatch(/m1 restarted as pid \d+/);
  });

  it("restarts nothing once stopped, including a restart already scheduled", () => {
    const { clock, spawned, supervisor, current } = setup();
    supervisor.watch(current(), null, "SIGKILL");
    supervisor.stop();
    clock.advance(60_000);
    supervisor.watch(current(), null, "SIGTERM");
    clock.advance(60_000);
    expect(spawned).toEqual([]);
  });

  it("reads only the end of a long log, and shortens long lines", () => {
    const big = join(dir, "big.log");
    writeFileSync(big, Array.from({ length: 5000 }, (_, i) => `line ${i} ${"x".repeat(20)}`).join("\n"));
    expect(lastLines(big, 3)).toEqual([4997, 4998, 4999].map((i) => `line ${i} ${"x".repeat(20)}`));
    expect(lastLines(join(dir, "missing.log"))).toEqual([]);
    expect(renderLogLine("y".repeat(500))).toHaveLength(200);
  });
});

describe("data directory lock", () => {
  it("is taken once; a second run on the directory is told who runs there, and the lock goes on release", async () => {
    const dir = tempDir();
    // A live process whose command line says "start", as `convene start`'s does.
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)", "start"], { stdio: "ignore" });
    try {
      await new Promise((r) => holder.once("spawn", r));
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: holder.pid, startedAt: "2026-01-01T00:00:00.000Z", gateway: "http://127.0.0.1:8080/" }));
      let thrown: unknown;
      try {
        DataDirLock.acquire(dir, "http://127.0.0.1:18080/");
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ClusterRunningError);
      expect((thrown as Error).message).toBe(
        `convene is already running on ${dir} (pid ${holder.pid}, since 2026-01-01T00:00:00.000Z, gateway http://127.0.0.1:8080/); nothing was started. Stop it first (Ctrl-C in its terminal, or kill ${holder.pid}), or use another --data directory and ports.`,
      );
      expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")).pid).toBe(holder.pid);
    } finally {
      holder.kill("SIGKILL");
    }
  });

  it("takes over a stale lock (its process is gone, or the pid now belongs to another program)", async () => {
    const dir = tempDir();
    const gone = spawn(process.execPath, ["-e", "0"], { stdio: "ignore" });
    await new Promise((r) => gone.once("exit", r));
    for (const pid of [gone.pid!, process.ppid]) {
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid, startedAt: "then", gateway: "x" }));
      const lock = DataDirLock.acquire(dir, "http://127.0.0.1:18080/");
      expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8"))).toMatchObject({ pid: process.pid, gateway: "http://127.0.0.1:18080/" });
      lock.release();
      expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    }
    // An unreadable lock is stale too; a missing directory is created.
    const nested = join(dir, "a", "b");
    mkdirSync(nested, { recursive: true });
    writeFileSync(join(nested, LOCK_FILE), "garbage");
    DataDirLock.acquire(nested, "x").release();
    DataDirLock.acquire(join(dir, "new"), "x").release();
  });
});

describe("port check", () => {
  it("explains a port taken by another program: which, for what, and the flag that moves it", async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(checkPortsFree("127.0.0.1", [{ port, name: "the gateway", flag: "--gateway-port" }])).rejects.toThrow(PortInUseError);
      await expect(checkPortsFree("127.0.0.1", [{ port, name: "the gateway", flag: "--gateway-port" }])).rejects.toThrow(
        `port ${port} on 127.0.0.1, for the gateway, is in use by another program (\`ss -ltnp 'sport = :${port}'\` shows which); stop it, or choose a free port with --gateway-port`,
      );
    } finally {
      await new Promise((r) => taken.close(r));
    }
    // Free now: the check passes and holds nothing.
    await checkPortsFree("127.0.0.1", [{ port, name: "the gateway", flag: "--gateway-port" }]);
    await checkPortsFree("127.0.0.1", [{ port, name: "the gateway", flag: "--gateway-port" }]);
  });
});
